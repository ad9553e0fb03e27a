//! The versioned API beside seed 000's: the cluster's nodes, backups across the cluster, the
//! job history, one job in detail (live bytes and files per node), resume.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api_error::ApiError;
use crate::coordinator::{Coordinator, StartError};
use crate::model::{ClusterJob, JobParams, JobType, NodeView, StoredBackup};
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
    /// The agent's URL.
    pub agent: String,
    /// The node, when the agent answered.
    pub node: Option<NodeView>,
    /// Why the agent did not answer.
    pub error: Option<String>,
}

/// The configured agents and their nodes.
#[utoipa::path(get, path = "/v1/cluster", tag = "v1", responses((status = 200, body = Vec<ClusterNode>)))]
pub async fn cluster(State(c): State<Arc<Coordinator>>) -> Json<Vec<ClusterNode>> {
    let agents = c.agents();
    let views = futures_util::future::join_all(agents.iter().map(|a| a.node())).await;
    Json(
        agents
            .into_iter()
            .zip(views)
            .map(|(a, v)| match v {
                Ok(node) => ClusterNode { agent: a.url, node: Some(node), error: None },
                Err(e) => ClusterNode { agent: a.url, node: None, error: Some(e) },
            })
            .collect(),
    )
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

/// Backups across the cluster, grouped by name, newest first.
#[utoipa::path(get, path = "/v1/backups", tag = "v1", responses((status = 200, body = Vec<ClusterBackup>)))]
pub async fn backups(State(c): State<Arc<Coordinator>>) -> Result<Json<Vec<ClusterBackup>>, ApiError> {
    let agents = c.agents();
    let lists = futures_util::future::join_all(agents.iter().map(|a| a.backups_all())).await;
    let mut by_name: BTreeMap<String, Vec<StoredBackup>> = BTreeMap::new();
    for list in lists {
        // Agents that share a backup directory list the same backups: one entry per node.
        for b in list.map_err(ApiError::unavailable)? {
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
    Ok(Json(out))
}

fn newest(b: &ClusterBackup) -> Option<&str> {
    b.nodes.iter().filter_map(|n| n.started_at.as_deref()).max()
}

/// Which jobs to list.
#[derive(Debug, Deserialize, IntoParams)]
pub struct HistoryQuery {
    /// Only this type (BACKUP, RESTORE, REPAIR, CLEANUP).
    #[serde(rename = "type")]
    pub job_type: Option<JobType>,
    /// At most this many (default 50).
    pub limit: Option<u32>,
}

/// The job history, newest first (the running job included).
#[utoipa::path(get, path = "/v1/jobs", tag = "v1", params(HistoryQuery), responses((status = 200, body = Vec<ClusterJob>)))]
pub async fn jobs(
    State(c): State<Arc<Coordinator>>,
    Query(q): Query<HistoryQuery>,
) -> Result<Json<Vec<ClusterJob>>, ApiError> {
    let mut list = c.store().history(q.job_type, q.limit.unwrap_or(50).min(1000)).await.map_err(ApiError::internal)?;
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
    /// BACKUP, RESTORE, REPAIR or CLEANUP.
    #[serde(rename = "type")]
    pub job_type: JobType,
    /// Its parameters.
    #[serde(flatten)]
    pub params: JobParams,
}

/// Starts a job: 202 with the job.
#[utoipa::path(post, path = "/v1/jobs", tag = "v1", request_body = NewJob,
    responses((status = 202, body = ClusterJob), (status = 400), (status = 401), (status = 409)))]
pub async fn start(
    State(c): State<Arc<Coordinator>>,
    Json(new): Json<NewJob>,
) -> Result<(StatusCode, Json<ClusterJob>), ApiError> {
    Ok((StatusCode::ACCEPTED, Json(c.start(new.job_type, new.params).await?)))
}

/// One job, live while it runs.
#[utoipa::path(get, path = "/v1/jobs/{id}", tag = "v1", params(("id" = i64, Path)),
    responses((status = 200, body = ClusterJob), (status = 404)))]
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

/// Aborts job `id` after the nodes it is on.
#[utoipa::path(post, path = "/v1/jobs/{id}/abort", tag = "v1", params(("id" = i64, Path)),
    responses((status = 200, body = Object), (status = 401), (status = 404)))]
pub async fn abort(
    State(c): State<Arc<Coordinator>>,
    Path(id): Path<i64>,
) -> Result<Json<serde_json::Value>, ApiError> {
    match c.running().await {
        Some(j) if j.id == id => Ok(Json(serde_json::json!({"aborted": c.abort(None).await}))),
        _ => Err(ApiError::not_found(format!("job {id} is not running"))),
    }
}

/// Starts a job that finishes what job `id` left (interrupted, failed or aborted): 202.
#[utoipa::path(post, path = "/v1/jobs/{id}/resume", tag = "v1", params(("id" = i64, Path)),
    responses((status = 202, body = ClusterJob), (status = 400), (status = 401), (status = 404), (status = 409)))]
pub async fn resume(
    State(c): State<Arc<Coordinator>>,
    Path(id): Path<i64>,
) -> Result<(StatusCode, Json<ClusterJob>), ApiError> {
    Ok((StatusCode::ACCEPTED, Json(c.resume(id).await?)))
}

/// The backup schedules.
#[utoipa::path(get, path = "/v1/schedules", tag = "v1", responses((status = 200, body = Vec<Schedule>)))]
pub async fn schedules(State(c): State<Arc<Coordinator>>) -> Result<Json<Vec<Schedule>>, ApiError> {
    Ok(Json(c.store().schedules().await.map_err(ApiError::internal)?))
}

/// Adds a backup schedule: 201 with it (its next run set).
#[utoipa::path(post, path = "/v1/schedules", tag = "v1", request_body = Schedule,
    responses((status = 201, body = Schedule), (status = 400), (status = 401), (status = 409)))]
pub async fn add_schedule(
    State(c): State<Arc<Coordinator>>,
    Json(s): Json<Schedule>,
) -> Result<(StatusCode, Json<Schedule>), ApiError> {
    let s = crate::schedule::prepare(s).map_err(ApiError::bad_request)?;
    if c.store().schedule_named(&s.name).await.map_err(ApiError::internal)?.is_some() {
        return Err(ApiError::conflict(format!(
            "a schedule named '{}' exists; remove it first or choose another name",
            s.name
        )));
    }
    Ok((StatusCode::CREATED, Json(c.store().add_schedule(s).await.map_err(ApiError::internal)?)))
}

/// Removes a schedule (its backups stay).
#[utoipa::path(delete, path = "/v1/schedules/{id}", tag = "v1", params(("id" = i64, Path)),
    responses((status = 204), (status = 401), (status = 404)))]
pub async fn remove_schedule(State(c): State<Arc<Coordinator>>, Path(id): Path<i64>) -> Result<StatusCode, ApiError> {
    match c.store().remove_schedule(id).await.map_err(ApiError::internal)? {
        true => Ok(StatusCode::NO_CONTENT),
        false => Err(ApiError::not_found(format!("no schedule {id}"))),
    }
}
