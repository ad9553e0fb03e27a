//! `cassette server`'s HTTP API: seed 000's routes, the versioned routes, the OpenAPI
//! description. Reads are open; every call that changes something needs the bearer token.

pub(crate) mod extract;
pub mod seed;
pub mod v1;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::{Json, Router};
use utoipa::OpenApi;

use crate::coordinator::Coordinator;

/// The OpenAPI description of the server's API.
#[derive(OpenApi)]
#[openapi(
    info(title = "cassette server", description = "Cluster backup and restore for Apache Cassandra. The Cassandra-Mesos-compatible API under /cluster, the versioned API under /v1. Calls that change something need `Authorization: Bearer <token>`."),
    paths(seed::start, seed::status, seed::last, seed::abort, v1::cluster, v1::backups, v1::jobs, v1::start, v1::job, v1::abort, v1::resume, v1::schedules, v1::add_schedule, v1::remove_schedule),
    components(schemas(
        crate::model::ClusterJob, crate::model::NodeRun, crate::model::KeyspaceRun, crate::model::Failure,
        crate::model::NodeProgress, crate::model::Phase, crate::model::JobParams, crate::model::JobType,
        crate::model::JobState, crate::model::KeyspaceStatus, crate::model::NodeView, crate::model::StoredBackup,
        crate::model::KnownNode, v1::ClusterNode, v1::ClusterBackup, v1::ClusterBackups, v1::AgentError,
        v1::NewJob, v1::Aborted, seed::Started, seed::AbortAnswer, crate::api_error::ErrorBody,
        crate::schedule::Schedule, crate::model::Retention, crate::model::ObjectLockOptions
    )),
    tags((name = "seed", description = "The Cassandra-Mesos-compatible cluster job API, same paths and JSON"), (name = "v1", description = "The versioned API"))
)]
pub struct ApiDoc;

/// The server's routes.
pub fn router(coordinator: Arc<Coordinator>, token: Option<String>) -> Router {
    Router::new()
        .route("/cluster/{job}/start", post(seed::start))
        .route("/cluster/{job}/status", get(seed::status))
        .route("/cluster/{job}/last", get(seed::last))
        .route("/cluster/{job}/abort", post(seed::abort))
        .route("/v1/cluster", get(v1::cluster))
        .route("/v1/backups", get(v1::backups))
        .route("/v1/jobs", get(v1::jobs).post(v1::start))
        .route("/v1/jobs/{id}", get(v1::job))
        .route("/v1/jobs/{id}/abort", post(v1::abort))
        .route("/v1/jobs/{id}/resume", post(v1::resume))
        .route("/v1/schedules", get(v1::schedules).post(v1::add_schedule))
        .route("/v1/schedules/{id}", axum::routing::delete(v1::remove_schedule))
        .route("/metrics", get(metrics))
        .route("/", get(crate::dashboard::page))
        .route("/openapi.json", get(|| async { Json(ApiDoc::openapi()) }))
        .route("/health", get(|| async { "ok" }))
        .with_state(coordinator)
        .layer(axum::middleware::from_fn(move |req, next| crate::auth::require_token(token.clone(), false, req, next)))
}

/// `/metrics`: Prometheus text format.
async fn metrics(axum::extract::State(c): axum::extract::State<Arc<Coordinator>>) -> axum::response::Response {
    use axum::response::IntoResponse;
    match crate::metrics::render(&c).await {
        Ok(text) => {
            ([(axum::http::header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text)
                .into_response()
        }
        Err(e) => crate::api_error::ApiError::internal(e).into_response(),
    }
}
