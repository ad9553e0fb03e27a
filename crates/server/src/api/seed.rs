//! Seed 000's API, same paths and JSON: `/cluster/{backup,restore,repair,cleanup}/{start,
//! status,last,abort}`. Where the original was wrong, this is right: a second job is 409, a
//! missing or invalid name is 400, and aborted and interrupted jobs stay in the history.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use super::extract::{Path, Query};
use crate::api_error::{ApiError, ErrorBody};
use crate::coordinator::{Coordinator, StartError};
use crate::model::{JobParams, JobType};

/// The options of a start call.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StartQuery {
    /// The backup's name (backup and restore; required).
    pub name: Option<String>,
    /// Keyspaces, comma-separated; default every non-system keyspace.
    pub keyspaces: Option<String>,
    /// Nodes worked on at once (default 1: node by node; at most 64).
    #[param(minimum = 1, maximum = 64)]
    pub parallel: Option<usize>,
    /// `together`: snapshot every node first, then copy (backup); `each` (the default): each
    /// node's snapshot when its turn comes.
    #[param(pattern = "^(together|each)$")]
    pub snapshot: Option<String>,
    /// `true`: `nodetool repair -pr --full` on every node after a restore.
    pub repair: Option<bool>,
    /// Restore: to this point in time (UTC, whole seconds: `2026-12-02T10:15:00Z`), offline,
    /// node by node; `name` is then optional (each node's newest backup before it).
    pub until: Option<String>,
    /// Backup: lock every object it writes for this many days (S3 Object Lock).
    #[serde(rename = "objectLockDays")]
    #[param(minimum = 1, maximum = 36500)]
    pub object_lock_days: Option<u32>,
    /// Backup: the lock's mode, `governance` (the default) or `compliance`.
    #[serde(rename = "objectLockMode")]
    #[param(value_type = Option<String>, pattern = "^(governance|compliance)$")]
    pub object_lock_mode: Option<cassette_repo::LockMode>,
}

impl StartQuery {
    /// The job parameters these options give.
    pub(crate) fn params(self) -> Result<JobParams, ApiError> {
        let snapshot_together = match self.snapshot.as_deref() {
            None | Some("each") => false,
            Some("together") => true,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "snapshot={other} is not known: use snapshot=together or snapshot=each"
                )));
            }
        };
        Ok(JobParams {
            name: self.name,
            keyspaces: self
                .keyspaces
                .map(|k| k.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect())
                .unwrap_or_default(),
            parallel: self.parallel.unwrap_or(1),
            snapshot_together,
            repair: self.repair.unwrap_or(false),
            until: self.until,
            schedule: None,
            retention: None,
            object_lock: crate::model::ObjectLockOptions {
                object_lock_days: self.object_lock_days,
                object_lock_mode: self.object_lock_mode,
            },
        })
    }
}

fn job_type(key: &str) -> Result<JobType, ApiError> {
    JobType::from_key(key).ok_or_else(|| {
        ApiError::not_found(format!("no cluster job '{key}': the jobs are backup, restore, repair, cleanup and verify"))
    })
}

/// The answer of a start call.
#[derive(Debug, Serialize, ToSchema)]
pub struct Started {
    /// Whether the job started.
    pub started: bool,
    /// The job's ID, when it started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    /// Why it did not start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Whether an abort was asked.
#[derive(Debug, Serialize, ToSchema)]
pub struct AbortAnswer {
    /// True when a job of this type was running; it stops after the nodes it is on.
    pub aborted: bool,
}

/// Starts a cluster job: `{"started": true, "id": N}`.
#[utoipa::path(post, path = "/cluster/{job}/start", tag = "seed", operation_id = "startClusterJob",
    params(("job" = String, Path, description = "backup, restore, repair, cleanup or verify"), StartQuery),
    responses((status = 200, description = "started", body = Started),
        (status = 400, description = "an invalid name or option", body = Started),
        (status = 401, description = "no or wrong token", body = ErrorBody),
        (status = 404, description = "no such job type", body = Started),
        (status = 409, description = "another job runs", body = Started),
        (status = 500, description = "the job database cannot be written", body = Started)))]
pub async fn start(
    State(c): State<Arc<Coordinator>>,
    Path(job): Path<String>,
    q: Result<Query<StartQuery>, ApiError>,
) -> Response {
    let refused = |status: StatusCode, error: String| {
        (status, Json(Started { started: false, id: None, error: Some(error) })).into_response()
    };
    let job_type = match job_type(&job) {
        Ok(t) => t,
        Err(e) => return refused(e.status, e.message),
    };
    let params = match q.and_then(|Query(q)| q.params()) {
        Ok(p) => p,
        Err(e) => return refused(e.status, e.message),
    };
    match c.start(job_type, params).await {
        Ok(job) => Json(Started { started: true, id: Some(job.id), error: None }).into_response(),
        Err(StartError::Invalid(e)) => refused(StatusCode::BAD_REQUEST, e),
        Err(StartError::Conflict(e)) => refused(StatusCode::CONFLICT, e),
        Err(StartError::NotFound(e)) => refused(StatusCode::NOT_FOUND, e),
        Err(StartError::Store(e)) => refused(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// The running job of this type: `{"running": bool, "<job>": JOB or null}`.
#[utoipa::path(get, path = "/cluster/{job}/status", tag = "seed", operation_id = "getClusterJobStatus",
    params(("job" = String, Path, description = "backup, restore, repair, cleanup or verify")),
    responses((status = 200, description = "the running job of this type, or null", body = Object),
        (status = 404, description = "no such job type", body = ErrorBody)))]
pub async fn status(State(c): State<Arc<Coordinator>>, Path(job): Path<String>) -> Result<Json<Value>, ApiError> {
    let t = job_type(&job)?;
    let running = c.running().await.filter(|j| j.job_type == t);
    Ok(Json(json!({"running": running.is_some(), t.key(): running})))
}

/// The newest finished job of this type: `{"present": bool, "<job>": JOB or null}`.
#[utoipa::path(get, path = "/cluster/{job}/last", tag = "seed", operation_id = "getLastClusterJob",
    params(("job" = String, Path, description = "backup, restore, repair, cleanup or verify")),
    responses((status = 200, description = "the newest finished job of this type, or null", body = Object),
        (status = 404, description = "no such job type", body = ErrorBody),
        (status = 500, description = "the job database cannot be read", body = ErrorBody)))]
pub async fn last(State(c): State<Arc<Coordinator>>, Path(job): Path<String>) -> Result<Json<Value>, ApiError> {
    let t = job_type(&job)?;
    let last = c.store().last(t).await.map_err(ApiError::internal)?;
    Ok(Json(json!({"present": last.is_some(), t.key(): last})))
}

/// Aborts the running job of this type after the nodes it is on: `{"aborted": bool}`.
#[utoipa::path(post, path = "/cluster/{job}/abort", tag = "seed", operation_id = "abortClusterJob",
    params(("job" = String, Path, description = "backup, restore, repair, cleanup or verify")),
    responses((status = 200, description = "whether a job of this type was running", body = AbortAnswer),
        (status = 401, description = "no or wrong token", body = ErrorBody),
        (status = 404, description = "no such job type", body = ErrorBody)))]
pub async fn abort(State(c): State<Arc<Coordinator>>, Path(job): Path<String>) -> Result<Json<AbortAnswer>, ApiError> {
    let t = job_type(&job)?;
    Ok(Json(AbortAnswer { aborted: c.abort(Some(t)).await }))
}
