//! The versioned API beside seed 000's: the cluster's nodes, backups across the cluster, the
//! job history, one job in detail (live bytes and files per node), resume.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::extract::{Json as Body, Path, Query};
use crate::api_error::{ApiError, ErrorBody};
use crate::coordinator::{Coordinator, StartError};
use crate::model::{ClusterJob, JobParams, JobType, KnownNode, NodeView, StoredBackup};
use crate::schedule::Schedule;

impl From<StartError> for ApiError {
    fn from(e: StartError) -> ApiError {
        match e {
            StartError::Invalid(m) => ApiError::bad_request(m),
            StartError::Conflict(m) => ApiError::conflict(m),
            StartError::NotFound(m) => ApiError::not_found(m),
            StartError::Store(e) => ApiError::internal(e),
        }
    }
}

/// One configured agent and its node.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterNode {
    /// The agent's URL (without the user and password it may carry).
    pub agent: String,
    /// The node, when the agent answered.
    pub node: Option<NodeView>,
    /// Why the agent did not answer.
    pub error: Option<String>,
    /// The node the agent served when it last answered (from the history), when it does not
    /// answer now.
    pub last_seen: Option<KnownNode>,
    /// Point-in-time recovery: the node's commitlog archive and the times a restore can reach,
    /// when the agent ships a spool.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commitlog: Option<crate::model::CommitlogView>,
}

/// The configured agents and their nodes.
#[utoipa::path(get, path = "/v1/cluster", tag = "v1", operation_id = "getCluster",
    responses((status = 200, description = "every configured agent, with its node or why it does not answer", body = Vec<ClusterNode>)))]
pub async fn cluster(State(c): State<Arc<Coordinator>>) -> Json<Vec<ClusterNode>> {
    let agents = c.agents();
    let views = futures_util::future::join_all(agents.iter().map(|a| async move {
        let (node, commitlog) = futures_util::join!(a.node(), a.commitlog());
        (node, commitlog.ok().filter(|c| c.enabled))
    }))
    .await;
    let mut out = Vec::new();
    for (a, (v, commitlog)) in agents.into_iter().zip(views) {
        out.push(match v {
            Ok(node) => {
                let known = KnownNode {
                    host_id: node.host_id.clone(),
                    hostname: node.hostname.clone(),
                    address: node.address.clone(),
                    seen: crate::coordinator::now_ms(),
                };
                if let Err(e) = c.store().remember_agent(&a.url, known).await {
                    tracing::warn!(agent = %a.url, error = %e, "could not record the agent's node");
                }
                ClusterNode { agent: a.url, node: Some(node), error: None, last_seen: None, commitlog }
            }
            Err(e) => {
                let last_seen = c.store().known_agent(&a.url).await.ok().flatten();
                ClusterNode { agent: a.url, node: None, error: Some(e), last_seen, commitlog: None }
            }
        });
    }
    Json(out)
}

/// A backup name across the cluster.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterBackup {
    /// Backup name.
    pub name: String,
    /// True when every node listed has a complete backup of this name.
    pub complete: bool,
    /// Bytes across nodes.
    pub bytes: u64,
    /// Bytes added across nodes.
    pub bytes_added: u64,
    /// Per node.
    pub nodes: Vec<StoredBackup>,
}

/// An agent whose backups could not be listed.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentError {
    /// The agent's URL.
    pub agent: String,
    /// Why, and what to do.
    pub error: String,
}

/// Backups across the cluster, and the agents that could not list theirs.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterBackups {
    /// What the agents that answered have, grouped by name, newest first.
    pub backups: Vec<ClusterBackup>,
    /// The agents that did not answer (their nodes' backups may be missing above).
    pub errors: Vec<AgentError>,
}

/// Backups across the cluster, grouped by name, newest first; an agent that does not answer
/// is listed in `errors`, and the others' backups are still shown.
#[utoipa::path(get, path = "/v1/backups", tag = "v1", operation_id = "listBackups",
    responses((status = 200, description = "the backups the agents that answered have, and the agents that did not", body = ClusterBackups)))]
pub async fn backups(State(c): State<Arc<Coordinator>>) -> Json<ClusterBackups> {
    let agents = c.agents();
    let lists = futures_util::future::join_all(agents.iter().map(|a| a.backups_all())).await;
    let mut by_name: BTreeMap<String, Vec<StoredBackup>> = BTreeMap::new();
    let mut errors = Vec::new();
    for (agent, list) in agents.iter().zip(lists) {
        let list = match list {
            Ok(list) => list,
            Err(error) => {
                errors.push(AgentError { agent: agent.url.clone(), error });
                continue;
            }
        };
        // Agents that share a backup directory list the same backups: one entry per node.
        for b in list {
            let nodes = by_name.entry(b.name.clone()).or_default();
            if !nodes.iter().any(|n| n.host_id == b.host_id && n.cluster == b.cluster) {
                nodes.push(b);
            }
        }
    }
    let mut out: Vec<ClusterBackup> = by_name
        .into_iter()
        .map(|(name, nodes)| ClusterBackup {
            complete: nodes.iter().all(|n| n.complete),
            bytes: nodes.iter().map(|n| n.bytes).sum(),
            bytes_added: nodes.iter().map(|n| n.bytes_added).sum(),
            name,
            nodes,
        })
        .collect();
    out.sort_by(|a, b| newest(b).cmp(&newest(a)));
    Json(ClusterBackups { backups: out, errors })
}

fn newest(b: &ClusterBackup) -> Option<&str> {
    b.nodes.iter().filter_map(|n| n.started_at.as_deref()).max()
}

/// Which jobs to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Only this type.
    #[serde(rename = "type")]
    pub job_type: Option<JobType>,
    /// At most this many (default 50; 1 to 1000, others are refused).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// The most jobs one history call lists.
pub const MAX_HISTORY: u32 = 1000;

/// The job history, newest first (the running job included).
#[utoipa::path(get, path = "/v1/jobs", tag = "v1", operation_id = "listJobs", params(HistoryQuery),
    responses((status = 200, description = "the newest jobs", body = Vec<ClusterJob>),
        (status = 400, description = "an unknown type, or a limit out of range", body = ErrorBody),
        (status = 500, description = "the job database cannot be read", body = ErrorBody)))]
pub async fn jobs(
    State(c): State<Arc<Coordinator>>,
    Query(q): Query<HistoryQuery>,
) -> Result<Json<Vec<ClusterJob>>, ApiError> {
    let limit = q.limit.unwrap_or(50);
    if limit == 0 || limit > MAX_HISTORY {
        return Err(ApiError::bad_request(format!("limit={limit} is out of range: give 1 to {MAX_HISTORY}")));
    }
    let mut list = c.store().history(q.job_type, limit).await.map_err(ApiError::internal)?;
    if let Some(running) = c.running().await {
        for j in list.iter_mut().filter(|j| j.id == running.id) {
            *j = running.clone();
        }
    }
    Ok(Json(list))
}

/// A job to start.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NewJob {
    /// BACKUP, RESTORE, REPAIR, CLEANUP or VERIFY.
    #[serde(rename = "type")]
    pub job_type: JobType,
    /// Its parameters.
    #[serde(flatten)]
    pub params: JobParams,
}

/// Starts a job: 202 with the job.
#[utoipa::path(post, path = "/v1/jobs", tag = "v1", operation_id = "startJob", request_body = NewJob,
    responses((status = 202, description = "started", body = ClusterJob),
        (status = 400, description = "an invalid name, keyspace or option, or a body that is not JSON", body = ErrorBody),
        (status = 401, description = "no or wrong token", body = ErrorBody),
        (status = 409, description = "another job runs", body = ErrorBody),
        (status = 413, description = "the body is too large", body = ErrorBody),
        (status = 415, description = "the body is not sent as application/json", body = ErrorBody),
        (status = 422, description = "the JSON does not describe a job", body = ErrorBody),
        (status = 500, description = "the job database cannot be written", body = ErrorBody)))]
pub async fn start(
    State(c): State<Arc<Coordinator>>,
    Body(new): Body<NewJob>,
) -> Result<(StatusCode, axum::Json<ClusterJob>), ApiError> {
    Ok((StatusCode::ACCEPTED, axum::Json(c.start(new.job_type, new.params).await?)))
}

/// One job, live while it runs.
#[utoipa::path(get, path = "/v1/jobs/{id}", tag = "v1", operation_id = "getJob", params(("id" = i64, Path, description = "the job's ID")),
    responses((status = 200, description = "the job", body = ClusterJob),
        (status = 400, description = "the ID is not a number", body = ErrorBody),
        (status = 404, description = "no such job", body = ErrorBody),
        (status = 500, description = "the job database cannot be read", body = ErrorBody)))]
pub async fn job(State(c): State<Arc<Coordinator>>, Path(id): Path<i64>) -> Result<Json<ClusterJob>, ApiError> {
    if let Some(running) = c.running().await.filter(|j| j.id == id) {
        return Ok(Json(running));
    }
    c.store()
        .get(id)
        .await
        .map_err(ApiError::internal)?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no job {id} in the history (GET /v1/jobs lists them)")))
}

/// Whether an abort was asked.
#[derive(Debug, Serialize, ToSchema)]
pub struct Aborted {
    /// True: the job stops after the nodes it is on.
    pub aborted: bool,
}

/// Aborts job `id` after the nodes it is on.
#[utoipa::path(post, path = "/v1/jobs/{id}/abort", tag = "v1", operation_id = "abortJob", params(("id" = i64, Path, description = "the job's ID")),
    responses((status = 200, description = "the abort was asked", body = Aborted),
        (status = 400, description = "the ID is not a number", body = ErrorBody),
        (status = 401, description = "no or wrong token", body = ErrorBody),
        (status = 404, description = "the job is not running", body = ErrorBody)))]
pub async fn abort(State(c): State<Arc<Coordinator>>, Path(id): Path<i64>) -> Result<Json<Aborted>, ApiError> {
    match c.running().await {
        Some(j) if j.id == id => Ok(Json(Aborted { aborted: c.abort(None).await })),
        _ => Err(ApiError::not_found(format!("job {id} is not running"))),
    }
}

/// Starts a job that finishes what job `id` left (interrupted, failed or aborted): 202.
#[utoipa::path(post, path = "/v1/jobs/{id}/resume", tag = "v1", operation_id = "resumeJob", params(("id" = i64, Path, description = "the job's ID")),
    responses((status = 202, description = "the resuming job started", body = ClusterJob),
        (status = 400, description = "the ID is not a number, or the job cannot be resumed (running or succeeded)", body = ErrorBody),
        (status = 401, description = "no or wrong token", body = ErrorBody),
        (status = 404, description = "no such job", body = ErrorBody),
        (status = 409, description = "another job runs", body = ErrorBody),
        (status = 500, description = "the job database cannot be read or written", body = ErrorBody)))]
pub async fn resume(
    State(c): State<Arc<Coordinator>>,
    Path(id): Path<i64>,
) -> Result<(StatusCode, axum::Json<ClusterJob>), ApiError> {
    Ok((StatusCode::ACCEPTED, axum::Json(c.resume(id).await?)))
}

/// The backup schedules.
#[utoipa::path(get, path = "/v1/schedules", tag = "v1", operation_id = "listSchedules",
    responses((status = 200, description = "every schedule", body = Vec<Schedule>),
        (status = 500, description = "the job database cannot be read", body = ErrorBody)))]
pub async fn schedules(State(c): State<Arc<Coordinator>>) -> Result<Json<Vec<Schedule>>, ApiError> {
    Ok(Json(c.store().schedules().await.map_err(ApiError::internal)?))
}

/// Adds a backup schedule: 201 with it (its next run set).
#[utoipa::path(post, path = "/v1/schedules", tag = "v1", operation_id = "addSchedule", request_body = Schedule,
    responses((status = 201, description = "added", body = Schedule),
        (status = 400, description = "an invalid name, cron expression or retention, or a body that is not JSON", body = ErrorBody),
        (status = 401, description = "no or wrong token", body = ErrorBody),
        (status = 409, description = "a schedule of that name exists", body = ErrorBody),
        (status = 413, description = "the body is too large", body = ErrorBody),
        (status = 415, description = "the body is not sent as application/json", body = ErrorBody),
        (status = 422, description = "the JSON does not describe a schedule", body = ErrorBody),
        (status = 500, description = "the job database cannot be written", body = ErrorBody)))]
pub async fn add_schedule(
    State(c): State<Arc<Coordinator>>,
    Body(s): Body<Schedule>,
) -> Result<(StatusCode, axum::Json<Schedule>), ApiError> {
    let s = crate::schedule::prepare(s).map_err(ApiError::bad_request)?;
    if c.store().schedule_named(&s.name).await.map_err(ApiError::internal)?.is_some() {
        return Err(ApiError::conflict(format!(
            "a schedule named '{}' exists; remove it first or choose another name",
            s.name
        )));
    }
    Ok((StatusCode::CREATED, axum::Json(c.store().add_schedule(s).await.map_err(ApiError::internal)?)))
}

/// Removes a schedule (its backups stay).
#[utoipa::path(delete, path = "/v1/schedules/{id}", tag = "v1", operation_id = "removeSchedule", params(("id" = i64, Path, description = "the schedule's ID")),
    responses((status = 204, description = "removed"),
        (status = 400, description = "the ID is not a number", body = ErrorBody),
        (status = 401, description = "no or wrong token", body = ErrorBody),
        (status = 404, description = "no such schedule", body = ErrorBody),
        (status = 500, description = "the job database cannot be written", body = ErrorBody)))]
pub async fn remove_schedule(State(c): State<Arc<Coordinator>>, Path(id): Path<i64>) -> Result<StatusCode, ApiError> {
    match c.store().remove_schedule(id).await.map_err(ApiError::internal)? {
        true => Ok(StatusCode::NO_CONTENT),
        false => Err(ApiError::not_found(format!("no schedule {id}"))),
    }
}
