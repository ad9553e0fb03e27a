//! Seed 000's API, same paths and JSON: `/cluster/{backup,restore,repair,cleanup}/{start,
//! status,last,abort}`. Where the original was wrong, this is right: a second job is 409, a
//! missing or invalid name is 400, and aborted and interrupted jobs stay in the history.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::IntoParams;

use crate::api_error::ApiError;
use crate::coordinator::{Coordinator, StartError};
use crate::model::{JobParams, JobType};

/// The options of a start call.
#[derive(Debug, Deserialize, IntoParams)]
pub struct StartQuery {
    /// The backup's name (backup and restore; required).
    pub name: Option<String>,
    /// Keyspaces, comma-separated; default every non-system keyspace.
    pub keyspaces: Option<String>,
    /// Nodes worked on at once (default 1: node by node).
    pub parallel: Option<usize>,
    /// `together`: snapshot every node first, then copy (backup).
    pub snapshot: Option<String>,
    /// `true`: `nodetool repair -pr --full` on every node after a restore.
    pub repair: Option<bool>,
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
            schedule: None,
            retention: None,
        })
    }
}

fn job_type(key: &str) -> Result<JobType, ApiError> {
    JobType::from_key(key).ok_or_else(|| {
        ApiError::not_found(format!("no cluster job '{key}': the jobs are backup, restore, repair and cleanup"))
    })
}

/// Starts a cluster job: `{"started": true, "id": N}`.
#[utoipa::path(post, path = "/cluster/{job}/start", tag = "seed",
    params(("job" = String, Path, description = "backup, restore, repair or cleanup"), StartQuery),
    responses((status = 200, description = "started", body = Object), (status = 400, description = "invalid name or option"),
        (status = 401, description = "no or wrong token"), (status = 409, description = "another job runs")))]
pub async fn start(
    State(c): State<Arc<Coordinator>>,
    Path(job): Path<String>,
    Query(q): Query<StartQuery>,
) -> Response {
    let refused =
        |status: StatusCode, error: String| (status, Json(json!({"started": false, "error": error}))).into_response();
    let job_type = match job_type(&job) {
        Ok(t) => t,
        Err(e) => return refused(e.status, e.message),
    };
    let params = match q.params() {
        Ok(p) => p,
        Err(e) => return refused(e.status, e.message),
    };
    match c.start(job_type, params).await {
        Ok(job) => Json(json!({"started": true, "id": job.id})).into_response(),
        Err(StartError::Invalid(e)) => refused(StatusCode::BAD_REQUEST, e),
        Err(StartError::Conflict(e)) => refused(StatusCode::CONFLICT, e),
        Err(StartError::NotFound(e)) => refused(StatusCode::NOT_FOUND, e),
        Err(StartError::Store(e)) => refused(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// The running job of this type: `{"running": bool, "<job>": JOB or null}`.
#[utoipa::path(get, path = "/cluster/{job}/status", tag = "seed",
    params(("job" = String, Path, description = "backup, restore, repair or cleanup")),
    responses((status = 200, description = "the running job of this type, or null", body = Object)))]
pub async fn status(State(c): State<Arc<Coordinator>>, Path(job): Path<String>) -> Result<Json<Value>, ApiError> {
    let t = job_type(&job)?;
    let running = c.running().await.filter(|j| j.job_type == t);
    Ok(Json(json!({"running": running.is_some(), t.key(): running})))
}

/// The newest finished job of this type: `{"present": bool, "<job>": JOB or null}`.
#[utoipa::path(get, path = "/cluster/{job}/last", tag = "seed",
    params(("job" = String, Path, description = "backup, restore, repair or cleanup")),
    responses((status = 200, description = "the newest finished job of this type, or null", body = Object)))]
pub async fn last(State(c): State<Arc<Coordinator>>, Path(job): Path<String>) -> Result<Json<Value>, ApiError> {
    let t = job_type(&job)?;
    let last = c.store().last(t).await.map_err(ApiError::internal)?;
    Ok(Json(json!({"present": last.is_some(), t.key(): last})))
}

/// Aborts the running job of this type after the nodes it is on: `{"aborted": bool}`.
#[utoipa::path(post, path = "/cluster/{job}/abort", tag = "seed",
    params(("job" = String, Path, description = "backup, restore, repair or cleanup")),
    responses((status = 200, description = "whether a job of this type was running", body = Object),
        (status = 401, description = "no or wrong token")))]
pub async fn abort(State(c): State<Arc<Coordinator>>, Path(job): Path<String>) -> Result<Json<Value>, ApiError> {
    let t = job_type(&job)?;
    Ok(Json(json!({"aborted": c.abort(Some(t)).await})))
}
