//! `cassette agent`: runs beside one Cassandra node and puts the node engines behind HTTP.
//!
//! One job at a time (the engines also hold the node's lock, so a CLI job on the same node is
//! refused too). Jobs run in the agent's process; their live view is kept in memory for the
//! coordinator to poll. Every call needs the bearer token.

mod commitlog;
mod live;
mod run;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use cassette_cassandra::{Cql, CqlTarget, Nodetool};
use serde::Deserialize;
use utoipa::{IntoParams, OpenApi};

use crate::api::extract::{Json as Body, Path, Query};
use crate::api_error::{ApiError, ErrorBody};
use crate::model::{AgentJobRequest, AgentJobState, AgentJobView, NodeProgress, NodeView, StoredBackup};
pub use live::Live;

/// How the agent reaches its node and where backups go.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// CQL of the node.
    pub cql: CqlTarget,
    /// The node's nodetool.
    pub nodetool: Nodetool,
    /// The backup directory, or an object store URL (`s3://bucket/prefix`).
    pub backup_root: PathBuf,
    /// Transfers to and from an object store.
    pub transfer: cassette_store::Transfer,
    /// Data directories (`None`: ask the node).
    pub data_dirs: Option<Vec<PathBuf>>,
    /// Configuration directories stored with each backup.
    pub config_dirs: Vec<PathBuf>,
    /// Allow the backup directory on a data directory's filesystem.
    pub allow_same_disk: bool,
    /// A human name for the node.
    pub alias: Option<String>,
    /// The node's commitlog spool, shipped into the repository every `commitlog_ship_interval`.
    pub commitlog_spool: Option<PathBuf>,
    /// Time between two shipping runs.
    pub commitlog_ship_interval: std::time::Duration,
    /// How to stop and start the node, for restores to a point in time (`None`: refused).
    pub offline: Option<AgentOffline>,
}

/// What an agent needs to restore its node offline to a point in time.
#[derive(Debug, Clone)]
pub struct AgentOffline {
    /// Stops the node (run with `sh -c`).
    pub stop_command: String,
    /// Starts the node (`sh -c`; returns once the node is launched).
    pub start_command: String,
    /// The node's `commitlog_archiving.properties`, where the restore settings go.
    pub commitlog_archiving_properties: PathBuf,
    /// The node's system.log, read for the replayed mutations (`None`: the usual places).
    pub cassandra_log: Option<PathBuf>,
}

impl AgentConfig {
    /// The repository `backup_root` names.
    pub fn repository(&self) -> Result<Arc<dyn cassette_store::Store>, String> {
        cassette_store::open(&self.backup_root, self.transfer.clone()).map_err(|e| e.to_string())
    }
}

/// Jobs kept for polling after they finished.
const KEPT_JOBS: usize = 64;

struct AgentState {
    config: AgentConfig,
    jobs: Mutex<VecDeque<(String, Live)>>,
    shipping: Arc<commitlog::Shipping>,
}

impl AgentState {
    fn running(&self) -> Option<String> {
        let jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        jobs.iter().find(|(_, l)| l.snapshot().state == AgentJobState::Running).map(|(id, _)| id.clone())
    }

    fn find(&self, id: &str) -> Option<Live> {
        let jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        jobs.iter().find(|(i, _)| i == id).map(|(_, l)| l.clone())
    }
}

/// The OpenAPI description of the agent's API (the server's side of it).
#[derive(OpenApi)]
#[openapi(
    info(title = "cassette agent", description = "The node engines of one Cassandra node behind HTTP, for `cassette server`. Every call but /health and /openapi.json needs `Authorization: Bearer <token>`."),
    paths(node, start_job, jobs, job, backups, commitlog_view),
    components(schemas(
        crate::model::CommitlogView, crate::model::RecoverableWindow,
        NodeView, AgentJobRequest, AgentJobView, AgentJobState, NodeProgress, StoredBackup, ErrorBody,
        crate::model::KeyspaceRun, crate::model::KeyspaceStatus, crate::model::Retention
    )),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
pub struct AgentApiDoc;

/// The bearer token scheme of the agent's API.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The agent's routes (behind the token check).
pub fn router(config: AgentConfig, token: Option<String>) -> Router {
    let shipping = Arc::new(commitlog::Shipping::default());
    commitlog::spawn(&config, shipping.clone());
    let state = Arc::new(AgentState { config, jobs: Mutex::new(VecDeque::new()), shipping });
    let v1 = Router::new()
        .route("/v1/node", get(node))
        .route("/v1/jobs", post(start_job).get(jobs))
        .route("/v1/jobs/{id}", get(job))
        .route("/v1/backups", get(backups))
        .route("/v1/commitlog", get(commitlog_view))
        .with_state(state)
        .layer(axum::middleware::from_fn(move |req, next| crate::auth::require_token(token.clone(), true, req, next)));
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/openapi.json", get(|| async { Json(AgentApiDoc::openapi()) }))
        .merge(v1)
}

/// The node's commitlog archiving: the spool, the shipper's last run, the recoverable windows.
#[utoipa::path(get, path = "/v1/commitlog", operation_id = "getCommitlog",
    responses((status = 200, description = "the archiving state (enabled false: no --commitlog-spool)", body = crate::model::CommitlogView),
        (status = 401, description = "no or wrong token", body = ErrorBody)))]
async fn commitlog_view(State(state): State<Arc<AgentState>>) -> Json<crate::model::CommitlogView> {
    Json(state.shipping.view(state.config.commitlog_spool.as_ref()))
}

/// The agent's node: identity, ring, keyspaces.
#[utoipa::path(get, path = "/v1/node", operation_id = "getNode",
    responses((status = 200, description = "the node", body = NodeView),
        (status = 401, description = "no or wrong token", body = ErrorBody),
        (status = 503, description = "Cassandra cannot be reached", body = ErrorBody)))]
async fn node(State(state): State<Arc<AgentState>>) -> Result<Json<NodeView>, ApiError> {
    let cfg = &state.config;
    let cql = Cql::connect(&cfg.cql).await.map_err(|e| {
        ApiError::unavailable(format!("cannot reach Cassandra at {}:{}: {e}", cfg.cql.host, cfg.cql.port))
    })?;
    let local = cql.local_node().await.map_err(ApiError::unavailable)?;
    let peers = cql.peers().await.map_err(ApiError::unavailable)?;
    let keyspaces = cql.keyspaces().await.map_err(|e| ApiError::unavailable(e.to_string()))?;
    Ok(Json(NodeView {
        host_id: local.host_id.to_string(),
        cluster_name: local.cluster_name,
        // The address the manifest records (broadcast, as the ring knows the node).
        address: local
            .broadcast_address
            .or(local.rpc_address)
            .map(|a| a.to_string())
            .unwrap_or_else(|| cfg.cql.host.clone()),
        hostname: hostname(),
        datacenter: local.datacenter,
        rack: local.rack,
        release_version: local.release_version,
        peers: peers.into_iter().map(|p| (p.host_id.to_string(), p.address.to_string())).collect(),
        running_job: state.running(),
        keyspaces: keyspaces
            .into_iter()
            .map(|k| k.name)
            .filter(|k| !cassette_cassandra::keyspaces::is_system(k))
            .collect(),
    }))
}

/// Starts a job on the node: 202 with its view.
#[utoipa::path(post, path = "/v1/jobs", operation_id = "startNodeJob", request_body = AgentJobRequest,
    responses((status = 202, description = "started", body = AgentJobView),
        (status = 400, description = "an invalid backup name, or a body that is not JSON", body = ErrorBody),
        (status = 401, description = "no or wrong token", body = ErrorBody),
        (status = 409, description = "another job runs on this agent", body = ErrorBody),
        (status = 413, description = "the body is too large", body = ErrorBody),
        (status = 415, description = "the body is not sent as application/json", body = ErrorBody),
        (status = 422, description = "the JSON does not describe a job", body = ErrorBody)))]
async fn start_job(State(state): State<Arc<AgentState>>, Body(request): Body<AgentJobRequest>) -> Response {
    if let Some(name) = request_name(&request)
        && let Err(e) = cassette_repo::BackupName::parse(name)
    {
        return ApiError::bad_request(e.to_string()).into_response();
    }
    let live = {
        let mut jobs = state.jobs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((id, _)) = jobs.iter().find(|(_, l)| l.snapshot().state == AgentJobState::Running) {
            return ApiError::conflict(format!("job {id} is running on this agent; wait for it to finish"))
                .into_response();
        }
        let id = uuid::Uuid::new_v4().to_string();
        let live = Live(Arc::new(Mutex::new(AgentJobView {
            id: id.clone(),
            request: request.clone(),
            state: AgentJobState::Running,
            started: chrono::Utc::now().timestamp_millis(),
            finished: None,
            progress: NodeProgress::default(),
            keyspaces: Default::default(),
            remaining_keyspaces: Vec::new(),
            error: None,
            snapshot_tag: None,
            report: None,
        })));
        jobs.push_back((id, live.clone()));
        while jobs.len() > KEPT_JOBS {
            jobs.pop_front();
        }
        live
    };
    let view = live.snapshot();
    tracing::info!(job = %view.id, request = ?request, "agent job started");
    let st = state.clone();
    tokio::spawn(async move {
        run::run_job(&st.config, request, live.clone()).await;
        let v = live.snapshot();
        tracing::info!(job = %v.id, state = ?v.state, error = ?v.error, "agent job finished");
    });
    (StatusCode::ACCEPTED, Json(view)).into_response()
}

fn request_name(request: &AgentJobRequest) -> Option<&str> {
    match request {
        AgentJobRequest::Backup { name, .. }
        | AgentJobRequest::Snapshot { name, .. }
        | AgentJobRequest::Restore { name, .. } => Some(name),
        AgentJobRequest::Verify { name } | AgentJobRequest::PointInTimeRestore { name, .. } => name.as_deref(),
        AgentJobRequest::Repair { .. } | AgentJobRequest::Cleanup { .. } | AgentJobRequest::Purge { .. } => None,
    }
}

/// The agent's recent jobs, oldest first.
#[utoipa::path(get, path = "/v1/jobs", operation_id = "listNodeJobs",
    responses((status = 200, description = "the jobs kept", body = Vec<AgentJobView>),
        (status = 401, description = "no or wrong token", body = ErrorBody)))]
async fn jobs(State(state): State<Arc<AgentState>>) -> Json<Vec<AgentJobView>> {
    let jobs = state.jobs.lock().unwrap_or_else(|e| e.into_inner());
    Json(jobs.iter().map(|(_, l)| l.snapshot()).collect())
}

/// One job of the agent, live while it runs.
#[utoipa::path(get, path = "/v1/jobs/{id}", operation_id = "getNodeJob", params(("id" = String, Path, description = "the job's ID")),
    responses((status = 200, description = "the job", body = AgentJobView),
        (status = 401, description = "no or wrong token", body = ErrorBody),
        (status = 404, description = "no such job on this agent", body = ErrorBody)))]
async fn job(State(state): State<Arc<AgentState>>, Path(id): Path<String>) -> Result<Json<AgentJobView>, ApiError> {
    state.find(&id).map(|l| Json(l.snapshot())).ok_or_else(|| {
        ApiError::not_found(format!("no job {id} on this agent (it restarted since, or the ID is wrong)"))
    })
}

/// Which backups to list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct BackupQuery {
    /// Only backups of this name.
    name: Option<String>,
}

/// The backups in the agent's backup directory (every node's, when it is shared).
#[utoipa::path(get, path = "/v1/backups", operation_id = "listNodeBackups", params(BackupQuery),
    responses((status = 200, description = "the backups", body = Vec<StoredBackup>),
        (status = 400, description = "a query parameter is wrong", body = ErrorBody),
        (status = 401, description = "no or wrong token", body = ErrorBody),
        (status = 500, description = "the backup directory cannot be read", body = ErrorBody)))]
async fn backups(
    State(state): State<Arc<AgentState>>,
    Query(q): Query<BackupQuery>,
) -> Result<Json<Vec<StoredBackup>>, ApiError> {
    let repository = state.config.repository().map_err(ApiError::internal)?;
    let list = repository.list(None, None).await.map_err(|e| ApiError::internal(e.to_string()))?;
    let mut out = Vec::new();
    for b in list.into_iter().filter(|b| q.name.as_deref().is_none_or(|n| n == b.name)) {
        let manifest = if b.complete { repository.manifest(&b).await.ok() } else { None };
        out.push(stored_backup(b, manifest));
    }
    Ok(Json(out))
}

fn stored_backup(b: cassette_repo::BackupSummary, manifest: Option<cassette_repo::Manifest>) -> StoredBackup {
    {
        {
            let keyspaces = manifest.as_ref().map(|m| m.keyspaces.iter().map(|k| k.name.clone()).collect());
            let node = manifest.map(|m| m.node);
            StoredBackup {
                cluster: b.cluster,
                host_id: b.host_id,
                name: b.name,
                complete: b.complete,
                address: node.as_ref().map(|n| n.address.clone()),
                tokens: node.map(|n| n.tokens).unwrap_or_default(),
                keyspaces: keyspaces.unwrap_or_default(),
                files: b.files,
                bytes: b.bytes,
                bytes_added: b.bytes_added,
                started_at: b.started_at.map(|t| t.to_rfc3339()),
                finished_at: b.finished_at.map(|t| t.to_rfc3339()),
            }
        }
    }
}

/// The machine's host name (`/proc/sys/kernel/hostname`), as seed 000 reported it.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_string()).unwrap_or_default()
}
