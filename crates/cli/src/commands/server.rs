//! `cassette server`: the cluster coordinator and its REST API.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use cassette_server::coordinator::{Coordinator, CoordinatorConfig};
use cassette_server::store::Store;

use crate::cli::{ServerArgs, ServiceArgs};
use crate::exit::InvalidInput;

pub async fn run(args: ServerArgs) -> anyhow::Result<ExitCode> {
    let token = token(&args.service)?;
    let mut http = reqwest::Client::builder();
    if let Some(ca) = &args.ca_cert {
        let pem = std::fs::read(ca).with_context(|| format!("cannot read the CA certificate {}", ca.display()))?;
        let cert = reqwest::Certificate::from_pem(&pem)
            .map_err(|e| InvalidInput(format!("{} is not a PEM certificate: {e}", ca.display())))?;
        http = http.add_root_certificate(cert);
    }
    for url in args.agents.iter().chain(&args.webhooks) {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(InvalidInput(format!("{url}: give a URL, e.g. http://10.0.0.5:7081")).into());
        }
    }
    let store = Store::open(&args.db)?;
    let http = http.build().context("cannot build the HTTP client")?;
    let webhooks = cassette_server::notify::Webhooks { urls: args.webhooks.clone(), http: http.clone(), attempts: 5 };
    let config = CoordinatorConfig {
        agents: args.agents.clone(),
        agent_token: args.agent_token.clone().or_else(|| token.clone()),
        http,
        poll_interval: Duration::from_millis(args.poll_ms.max(50)),
        webhooks,
    };
    let coordinator = Coordinator::new(config, store).await?;
    tokio::spawn(cassette_server::schedule::run_scheduler(coordinator.clone()));
    tracing::info!(listen = %args.listen, agents = ?args.agents, db = %args.db.display(), "cassette server listening");
    eprintln!(
        "cassette server: listening on {} ({} agents, history in {})",
        args.listen,
        args.agents.len(),
        args.db.display()
    );
    let router = cassette_server::api::router(coordinator, token);
    cassette_server::serve(router, args.listen, tls(&args.service)).await?;
    Ok(ExitCode::SUCCESS)
}

/// The token, or an error saying how to give one: a service that can truncate tables does
/// not listen without one unless told so.
pub fn token(service: &ServiceArgs) -> anyhow::Result<Option<String>> {
    match (&service.token, service.insecure_no_token) {
        (Some(t), _) if t.is_empty() => Err(InvalidInput("the token is empty: give a long random one".into()).into()),
        (Some(t), _) => Ok(Some(t.clone())),
        (None, true) => Ok(None),
        (None, false) => Err(InvalidInput(
            "no token: set CASSETTE_TOKEN (or --token) to a long random secret, the same for server and agents; \
             --insecure-no-token runs without one"
                .into(),
        )
        .into()),
    }
}

pub fn tls(service: &ServiceArgs) -> Option<cassette_server::Tls> {
    match (&service.tls_cert, &service.tls_key) {
        (Some(cert), Some(key)) => Some(cassette_server::Tls { cert: cert.clone(), key: key.clone() }),
        _ => None,
    }
}
