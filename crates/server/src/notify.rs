//! Webhooks: every configured URL gets a POST with a JSON payload when a job ends, retried with
//! backoff when the receiver fails.

use std::time::Duration;

use serde::Serialize;

use crate::model::{ClusterJob, JobState};

/// Where and how to notify.
#[derive(Clone, Default)]
pub struct Webhooks {
    /// The receivers.
    pub urls: Vec<String>,
    /// The HTTP client.
    pub http: reqwest::Client,
    /// Attempts per receiver (at least 1).
    pub attempts: u32,
}

/// The payload: the outcome at a glance, and the whole job.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Payload<'a> {
    event: &'static str,
    /// `succeeded`, `failed`, `aborted` or `interrupted`.
    status: JobState,
    /// One line for a chat channel.
    summary: String,
    job: &'a ClusterJob,
}

impl Webhooks {
    /// Notifies every receiver of `job`'s end (in the background; failures are logged).
    pub fn job_finished(&self, job: &ClusterJob) {
        if self.urls.is_empty() {
            return;
        }
        let failed: Vec<&str> =
            job.completed_nodes.iter().filter(|n| n.failure.is_some()).map(|n| n.executor_id.as_str()).collect();
        let summary = format!(
            "cassette {} job {}{}: {}{}",
            job.job_type.key(),
            job.id,
            job.backup_name.as_ref().map(|n| format!(" ({n})")).unwrap_or_default(),
            serde_json::to_value(job.state).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default(),
            if failed.is_empty() { String::new() } else { format!("; failed nodes: {}", failed.join(", ")) }
        );
        let body = serde_json::to_vec(&Payload { event: "job.finished", status: job.state, summary, job })
            .expect("the payload serializes");
        for url in &self.urls {
            let (http, url, body, attempts) = (self.http.clone(), url.clone(), body.clone(), self.attempts.max(1));
            tokio::spawn(async move { deliver(&http, &url, body, attempts).await });
        }
    }
}

async fn deliver(http: &reqwest::Client, url: &str, body: Vec<u8>, attempts: u32) {
    let mut delay = Duration::from_millis(500);
    let shown = crate::client::redact_url(url);
    for attempt in 1..=attempts {
        let sent = http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.clone())
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => return,
            Ok(r) => {
                tracing::warn!(url = %shown, attempt, status = %r.status(), "webhook receiver refused the notification")
            }
            Err(e) => tracing::warn!(url = %shown, attempt, error = %e.without_url(), "webhook receiver unreachable"),
        }
        if attempt < attempts {
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(60));
        }
    }
    tracing::error!(url = %shown, attempts, "webhook notification given up");
}
