//! axum's extractors with their refusals as the API's JSON errors (`{"error": ...}`, the
//! status axum chose: 400, 413, 415 or 422), so that every answer is the JSON the OpenAPI
//! document describes.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::api_error::ApiError;

/// A JSON body.
pub struct Json<T>(pub T);

/// The query string.
pub struct Query<T>(pub T);

/// The path parameters.
pub struct Path<T>(pub T);

fn refused(status: axum::http::StatusCode, what: &str, text: String) -> ApiError {
    ApiError { status, message: format!("{what}: {text}") }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Json(v)),
            Err(e @ JsonRejection::MissingJsonContentType(_)) => {
                Err(refused(e.status(), "send the body as JSON with `Content-Type: application/json`", e.body_text()))
            }
            Err(e) => Err(refused(e.status(), "the JSON body is not what this call takes", e.body_text())),
        }
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(v)| Query(v))
            .map_err(|e: QueryRejection| refused(e.status(), "a query parameter is wrong", e.body_text()))
    }
}

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| Path(v))
            .map_err(|e: PathRejection| refused(e.status(), "a path parameter is wrong", e.body_text()))
    }
}
