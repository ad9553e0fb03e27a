//! The agent's commitlog shipper (`cassette agent --commitlog-spool DIR`): ships the node's
//! spooled segments into the repository every interval, and keeps what `GET /v1/commitlog`
//! and the server's `/metrics` show (the spool, the last run, the recoverable windows).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use cassette_commitlog::{Spool, node_recovery, ship};
use chrono::Utc;

use super::AgentConfig;
use crate::model::{CommitlogView, RecoverableWindow};

/// What the last runs found, for the view.
#[derive(Default)]
pub(super) struct Shipping {
    view: Mutex<CommitlogView>,
}

impl Shipping {
    /// The view now: the spool read as it is, the rest as the last run left it.
    pub fn view(&self, spool: Option<&PathBuf>) -> CommitlogView {
        let mut view = self.view.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(dir) = spool {
            view.enabled = true;
            if let Ok(depth) = Spool::new(dir).depth() {
                view.spool_segments = depth.segments as u64;
                view.spool_bytes = depth.bytes;
                view.spool_oldest_archived_at = depth.oldest_archived_at.map(|t| t.to_rfc3339());
            }
        }
        view
    }

    fn update(&self, change: impl FnOnce(&mut CommitlogView)) {
        change(&mut self.view.lock().unwrap_or_else(|e| e.into_inner()));
    }
}

/// Starts the shipper loop when the agent has a spool.
pub(super) fn spawn(config: &AgentConfig, shipping: Arc<Shipping>) {
    let Some(dir) = config.commitlog_spool.clone() else { return };
    let config = config.clone();
    tokio::spawn(async move {
        let spool = Spool::new(&dir);
        let mut windows_read: Option<std::time::Instant> = None;
        loop {
            run_once(&config, &spool, &shipping, &mut windows_read).await;
            tokio::time::sleep(config.commitlog_ship_interval).await;
        }
    });
}

/// How long the windows shown may lag a purge or a backup made without a shipment (on an idle
/// node, say): they are read again at least this often.
const WINDOWS_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(60);

async fn run_once(
    config: &AgentConfig,
    spool: &Spool,
    shipping: &Shipping,
    windows_read: &mut Option<std::time::Instant>,
) {
    let store = match config.repository() {
        Ok(s) => s,
        Err(e) => return shipping.update(|v| v.last_error = Some(e)),
    };
    let report = ship(spool, &*store).await;
    let now = Utc::now().to_rfc3339();
    let shipped_some = match &report {
        Ok(r) => {
            if let Some(e) = &r.error {
                tracing::warn!(error = %e, waiting = r.waiting.segments, "commitlog shipping stopped early");
            }
            shipping.update(|v| {
                v.last_run_at = Some(now);
                v.last_error = r.error.clone();
            });
            !r.shipped.is_empty() || !r.already_archived.is_empty()
        }
        Err(e) => {
            tracing::warn!(error = %e, "commitlog shipping failed");
            shipping.update(|v| {
                v.last_run_at = Some(now);
                v.last_error = Some(e.to_string());
            });
            false
        }
    };
    // The windows change when segments are archived, and when backups are made or purged:
    // read the repository after a shipment, and at least every WINDOWS_MAX_AGE.
    if shipped_some || windows_read.is_none_or(|t| t.elapsed() >= WINDOWS_MAX_AGE) {
        let Ok(id) = spool.identity() else { return };
        match node_recovery(&*store, &id.cluster, &id.host_id).await {
            Ok(r) => {
                *windows_read = Some(std::time::Instant::now());
                shipping.update(|v| {
                    v.host_id = Some(id.host_id.clone());
                    v.newest_archived_write = r.newest_write.map(|t| t.to_rfc3339());
                    v.gaps = r.gaps.len() as u64;
                    v.windows = r
                        .windows
                        .iter()
                        .map(|w| RecoverableWindow {
                            from: w.from.to_rfc3339(),
                            until: w.until.to_rfc3339(),
                            backup: w.backup.clone(),
                        })
                        .collect();
                });
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the node's recoverable windows"),
        }
    }
}
