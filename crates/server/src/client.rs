//! The coordinator's side of the agent API.

use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::model::{AgentJobRequest, AgentJobView, CommitlogView, NodeView, StoredBackup};

/// Calls one agent.
#[derive(Clone)]
pub struct AgentClient {
    http: reqwest::Client,
    /// The base URL requests go to, credentials included.
    base: String,
    /// The agent's URL as shown in messages, the API and the history: without the user and
    /// password a URL may carry (`http://10.0.0.5:7001`).
    pub url: String,
    token: Option<String>,
}

impl AgentClient {
    /// A client for the agent at `url` (TLS roots from `http`).
    pub fn new(http: reqwest::Client, url: &str, token: Option<String>) -> AgentClient {
        let base = url.trim_end_matches('/').to_string();
        AgentClient { http, url: redact_url(&base), base, token }
    }

    /// The agent's node.
    pub async fn node(&self) -> Result<NodeView, String> {
        self.send(self.http.get(format!("{}/v1/node", self.base))).await
    }

    /// Starts a job on the agent; `Busy` when the agent runs another job.
    pub async fn start(&self, request: &AgentJobRequest) -> Result<AgentJobView, StartRefused> {
        match self.send_raw(self.http.post(format!("{}/v1/jobs", self.base)).json(request)).await {
            Ok(v) => Ok(v),
            Err((Some(reqwest::StatusCode::CONFLICT), m)) => Err(StartRefused::Busy(m)),
            Err((_, m)) => Err(StartRefused::Failed(m)),
        }
    }

    /// The agent's recent jobs, newest last.
    pub async fn jobs(&self) -> Result<Vec<AgentJobView>, String> {
        self.send(self.http.get(format!("{}/v1/jobs", self.base))).await
    }

    /// A job's view.
    pub async fn job(&self, id: &str) -> Result<AgentJobView, String> {
        self.send(self.http.get(format!("{}/v1/jobs/{id}", self.base))).await
    }

    /// The backups named `name` in the agent's repository.
    pub async fn backups(&self, name: &str) -> Result<Vec<StoredBackup>, String> {
        self.send(self.http.get(format!("{}/v1/backups", self.base)).query(&[("name", name)])).await
    }

    /// Every backup in the agent's repository.
    pub async fn backups_all(&self) -> Result<Vec<StoredBackup>, String> {
        self.send(self.http.get(format!("{}/v1/backups", self.base))).await
    }

    /// The agent's commitlog archiving.
    pub async fn commitlog(&self) -> Result<CommitlogView, String> {
        self.send(self.http.get(format!("{}/v1/commitlog", self.base))).await
    }

    async fn send<T: DeserializeOwned>(&self, req: reqwest::RequestBuilder) -> Result<T, String> {
        self.send_raw(req).await.map_err(|(_, m)| m)
    }

    async fn send_raw<T: DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<T, (Option<reqwest::StatusCode>, String)> {
        let req = match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        };
        let resp =
            req.timeout(Duration::from_secs(60)).send().await.map_err(|e| {
                (None, format!("agent {} cannot be reached: {}", self.url, error_chain(&e.without_url())))
            })?;
        let status = resp.status();
        if status.is_success() {
            return resp.json().await.map_err(|e| {
                (Some(status), format!("agent {} answered something unexpected: {}", self.url, e.without_url()))
            });
        }
        let body = resp.text().await.unwrap_or_default();
        let message = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
            .unwrap_or(body);
        Err((Some(status), format!("agent {} answered {status}: {message}", self.url)))
    }
}

/// Why an agent did not start a job.
#[derive(Debug)]
pub enum StartRefused {
    /// It runs another job.
    Busy(String),
    /// Anything else: unreachable, invalid request.
    Failed(String),
}

/// The error with its causes ("error sending request: connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// `url` without the user and password it may carry (`http://user:pass@host:7081` becomes
/// `http://host:7081`): credentials in a URL are never shown, logged or stored.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else { return url.to_string() };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}{}", &url[..scheme_end], &rest[at + 1..]),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn urls_lose_their_credentials() {
        assert_eq!(redact_url("http://user:pa%40ss@10.0.0.5:7081"), "http://10.0.0.5:7081");
        assert_eq!(redact_url("https://token@host/hook?a=b@c"), "https://host/hook?a=b@c");
        assert_eq!(redact_url("http://10.0.0.5:7081/x@y"), "http://10.0.0.5:7081/x@y");
        assert_eq!(redact_url("not a url"), "not a url");
    }
}
