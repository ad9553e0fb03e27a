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
    if let Some(t) = &args.agent_token
        && let Some(why) = cassette_server::auth::weak_token(t)
    {
        return Err(InvalidInput(format!("--agent-token (CASSETTE_AGENT_TOKEN): {why}")).into());
    }
    let limits = limits(&args.service)?;
    // Idle connections to agents are dropped before an agent's own idle limit closes them.
    let mut http = reqwest::Client::builder().pool_idle_timeout(std::time::Duration::from_secs(5));
    if let Some(ca) = &args.ca_cert {
        let pem = std::fs::read(ca).with_context(|| format!("cannot read the CA certificate {}", ca.display()))?;
        let cert = reqwest::Certificate::from_pem(&pem)
            .map_err(|e| InvalidInput(format!("{} is not a PEM certificate: {e}", ca.display())))?;
        http = http.add_root_certificate(cert);
    }
    for url in args.agents.iter().chain(&args.webhooks) {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            let shown = cassette_server::client::redact_url(url);
            return Err(InvalidInput(format!("{shown}: give a URL, e.g. http://10.0.0.5:7081")).into());
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
    let shown: Vec<String> = args.agents.iter().map(|a| cassette_server::client::redact_url(a)).collect();
    tracing::info!(listen = %args.listen, agents = ?shown, db = %args.db.display(), "cassette server listening");
    eprintln!(
        "cassette server: listening on {} ({} agents, history in {})",
        args.listen,
        args.agents.len(),
        args.db.display()
    );
    let router = cassette_server::api::router(coordinator, token);
    cassette_server::serve(router, args.listen, tls(&args.service)?, limits).await?;
    Ok(ExitCode::SUCCESS)
}

/// The token, or an error saying how to give one: a service that can truncate tables does
/// not listen without one unless told so.
pub fn token(service: &ServiceArgs) -> anyhow::Result<Option<String>> {
    match (&service.token, service.insecure_no_token) {
        (Some(t), _) => match cassette_server::auth::weak_token(t) {
            Some(why) => Err(InvalidInput(why).into()),
            None => Ok(Some(t.clone())),
        },
        (None, true) => Ok(None),
        (None, false) => Err(InvalidInput(
            "no token: set CASSETTE_TOKEN (or --token) to a long random secret, the same for server and agents \
             (make one with `openssl rand -hex 24`); --insecure-no-token runs without one"
                .into(),
        )
        .into()),
    }
}

/// The connection limits, or why they are wrong.
pub fn limits(service: &ServiceArgs) -> anyhow::Result<cassette_server::Limits> {
    for (name, d) in [("--header-timeout", service.header_timeout), ("--body-timeout", service.body_timeout)] {
        if d.is_zero() {
            return Err(InvalidInput(format!("{name} 0s would close every connection: give e.g. 10s")).into());
        }
    }
    if service.max_connections == 0 {
        return Err(InvalidInput("--max-connections 0 would serve nothing: give e.g. 512".into()).into());
    }
    Ok(cassette_server::Limits {
        header_timeout: service.header_timeout,
        body_timeout: service.body_timeout,
        max_connections: service.max_connections,
    })
}

/// HTTPS, when both files are given (checked here, not by clap: one may come from the
/// configuration file and the other from a flag).
pub fn tls(service: &ServiceArgs) -> anyhow::Result<Option<cassette_server::Tls>> {
    match (&service.tls_cert, &service.tls_key) {
        (Some(cert), Some(key)) => Ok(Some(cassette_server::Tls { cert: cert.clone(), key: key.clone() })),
        (None, None) => Ok(None),
        _ => Err(crate::exit::InvalidInput(
            "HTTPS needs a certificate and its key: give both --tls-cert and --tls-key".into(),
        )
        .into()),
    }
}
