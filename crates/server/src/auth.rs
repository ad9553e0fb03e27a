//! The bearer token: agents want it on every call, the server on every call that changes
//! something (reads stay open to dashboards and monitoring).

use axum::extract::Request;
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Lets the request through when it carries `Authorization: Bearer <token>`, when no token is
/// configured, or (unless `all_methods`) when it only reads; 401 otherwise.
pub async fn require_token(token: Option<String>, all_methods: bool, req: Request, next: Next) -> Response {
    let Some(token) = token else { return next.run(req).await };
    let reads = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if reads && !all_methods {
        return next.run(req).await;
    }
    let given =
        req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    if given.is_some_and(|g| constant_time_eq(g.as_bytes(), token.as_bytes())) {
        return next.run(req).await;
    }
    let message = if given.is_some() { "the bearer token is wrong" } else { "this call needs a bearer token" };
    let body = serde_json::json!({
        "error": format!("{message}: send `Authorization: Bearer <token>` with the token given to the server (--token or CASSETTE_TOKEN)")
    });
    (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response()
}

/// Compares without leaking where the first difference is through timing.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    #[test]
    fn compares_tokens() {
        assert!(super::constant_time_eq(b"secret", b"secret"));
        assert!(!super::constant_time_eq(b"secret", b"secreT"));
        assert!(!super::constant_time_eq(b"secret", b"secret2"));
    }
}
