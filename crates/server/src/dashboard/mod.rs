//! The web dashboard: one page, built into the binary (nothing is fetched at run time), that
//! reads the /v1 API and calls it for its actions.

use axum::response::Html;

/// The page.
pub async fn page() -> Html<&'static str> {
    Html(include_str!("index.html"))
}
