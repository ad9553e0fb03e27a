//! The OpenAPI documents checked in under `docs/openapi/` are the ones the server and the agent
//! serve at `/openapi.json`: a change to the API that does not update them fails here.
//! `CASSETTE_BLESS=1 cargo test -p cassette-server --test openapi_documents` rewrites them.

use std::path::PathBuf;

use utoipa::OpenApi;

fn check(file: &str, served: utoipa::openapi::OpenApi) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi").join(file);
    let served = format!("{}\n", serde_json::to_string_pretty(&served).unwrap());
    if std::env::var_os("CASSETTE_BLESS").is_some() {
        std::fs::write(&path, &served).unwrap();
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == served,
        "{} is stale: the API changed; run `CASSETTE_BLESS=1 cargo test -p cassette-server --test openapi_documents` and commit it",
        path.display()
    );
}

#[test]
fn the_checked_in_server_document_is_the_served_one() {
    check("server.json", cassette_server::api::ApiDoc::openapi());
}

#[test]
fn the_checked_in_agent_document_is_the_served_one() {
    check("agent.json", cassette_server::agent::AgentApiDoc::openapi());
}
