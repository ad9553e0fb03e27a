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

/// The fewest characters a token may have.
pub const MIN_TOKEN_LEN: usize = 24;
/// The least entropy a token may show, in bits (`openssl rand -hex 24` shows about 180).
pub const MIN_TOKEN_BITS: f64 = 64.0;

/// Why `token` is too weak to guard a service that can truncate tables, if it is: too short,
/// too repetitive (estimated by its characters' Shannon entropy times its length), or with
/// characters an HTTP header cannot carry. The message says how to make a good one.
pub fn weak_token(token: &str) -> Option<String> {
    let make = "make one with `openssl rand -hex 24` and give the same to the server and every agent \
                (CASSETTE_TOKEN or --token)";
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Some(format!(
            "the token has spaces or characters other than visible ASCII, which an HTTP header cannot carry; {make}"
        ));
    }
    let bits = entropy_bits(token);
    if token.len() < MIN_TOKEN_LEN || bits < MIN_TOKEN_BITS {
        return Some(format!(
            "the token is too weak ({} characters, about {bits:.0} bits; at least {MIN_TOKEN_LEN} random characters \
             and {MIN_TOKEN_BITS:.0} bits are needed): {make}",
            token.len()
        ));
    }
    None
}

/// Length times the Shannon entropy of the characters' frequencies: an upper bound on what a
/// guesser must try, low for short or repetitive tokens.
fn entropy_bits(token: &str) -> f64 {
    let mut counts = std::collections::BTreeMap::new();
    for b in token.bytes() {
        *counts.entry(b).or_insert(0usize) += 1;
    }
    let n = token.len() as f64;
    let per_char: f64 = counts.values().map(|&c| c as f64 / n).map(|p| -p * p.log2()).sum();
    per_char * n
}

/// Compares without leaking where the first difference is through timing.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    #[test]
    fn weak_tokens_are_refused_with_how_to_make_one() {
        for weak in
            ["a", " ", "", "test-token-5f1c", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "abababababababababababababab"]
        {
            let why = super::weak_token(weak).unwrap_or_else(|| panic!("{weak:?} accepted"));
            assert!(why.contains("openssl rand -hex 24"), "{why}");
        }
        assert!(super::weak_token("3f9c2a7d1e8b4c6f0a5d9e2b7c4f1a8d3e6b9c2f5a8d1e4b").is_none());
        assert!(super::weak_token("3f9c2a7d1e8b4c6f 0a5d9e2b7c4f1a8d3e6b9c2f5a8d1e4b").is_some());
    }

    #[test]
    fn compares_tokens() {
        assert!(super::constant_time_eq(b"secret", b"secret"));
        assert!(!super::constant_time_eq(b"secret", b"secreT"));
        assert!(!super::constant_time_eq(b"secret", b"secret2"));
    }
}
