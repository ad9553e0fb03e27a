//! What a node can be restored to: its complete backups and archived segments, read from the
//! repository, turned into recoverable windows and gaps (the rule is the format's,
//! `cassette_format::commitlog`), and the plan of a restore to one point in time.

use cassette_format::BackupSummary;
use cassette_format::SegmentRecord;
use cassette_format::commitlog::{self, BackupSpan, Chain, Gap, Window};
use cassette_store::Store;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::{CommitlogError, Result};

/// One node's recoverable windows.
#[derive(Clone, Debug, Serialize)]
pub struct NodeRecovery {
    /// The node's cluster.
    pub cluster: String,
    /// The node's host ID.
    pub host_id: String,
    /// Where its segments are.
    pub location: String,
    /// The times a restore can reach, oldest first.
    pub windows: Vec<Window>,
    /// Where segments are missing.
    pub gaps: Vec<Gap>,
    /// Segments archived.
    pub segments: usize,
    /// Their bytes.
    pub bytes: u64,
    /// The last write of the newest archived segment.
    pub newest_write: Option<DateTime<Utc>>,
    /// Records that cannot be read: (where, why).
    pub damaged: Vec<(String, String)>,
    #[serde(skip)]
    chains: Vec<Chain>,
    #[serde(skip)]
    backups: Vec<BackupSpan>,
}

impl NodeRecovery {
    /// The newest complete backup that finished at or before `until` (or the one named), and
    /// the segments that bring it forward to `until`; a time no window holds is refused with
    /// the windows there are.
    pub fn plan(&self, until: DateTime<Utc>, name: Option<&str>) -> Result<RestorePlan> {
        let backup = match name {
            Some(n) => self.backups.iter().find(|b| b.name == n).cloned().ok_or_else(|| {
                CommitlogError::Refused(format!(
                    "no complete backup named {n} of node {} in {}: `cassette list --commitlog` shows the backups and windows",
                    self.host_id, self.location
                ))
            })?,
            None => self
                .backups
                .iter()
                .filter(|b| b.finished_at <= until)
                .max_by_key(|b| b.finished_at)
                .cloned()
                .ok_or_else(|| self.outside(until, "no complete backup of the node finished before it"))?,
        };
        if backup.finished_at > until {
            return Err(
                self.outside(until, &format!("the backup {} finished later, at {}", backup.name, backup.finished_at))
            );
        }
        let chain = commitlog::chain_for(&self.chains, &backup, until).ok_or_else(|| {
            self.outside(until, &format!("the archived segments do not reach from the backup {} to it", backup.name))
        })?;
        let segments: Vec<SegmentRecord> =
            commitlog::segments_to_replay(chain, &backup, until).into_iter().cloned().collect();
        Ok(RestorePlan { backup: backup.name.clone(), backup_finished_at: backup.finished_at, until, segments })
    }

    fn outside(&self, until: DateTime<Utc>, why: &str) -> CommitlogError {
        let windows = if self.windows.is_empty() {
            "none (a window needs a complete backup and the segments archived after it)".to_owned()
        } else {
            self.windows
                .iter()
                .map(|w| format!("{} to {} (from backup {})", w.from, w.until, w.backup))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let gaps = if self.gaps.is_empty() {
            String::new()
        } else {
            format!(
                "; segments are missing between {}",
                self.gaps.iter().map(|g| format!("{} and {}", g.from, g.until)).collect::<Vec<_>>().join(", ")
            )
        };
        CommitlogError::Refused(format!(
            "cannot restore node {} to {until}: {why}. Its recoverable windows: {windows}{gaps}. Nothing was touched",
            self.host_id
        ))
    }
}

/// What a restore to a point in time replays.
#[derive(Clone, Debug, Serialize)]
pub struct RestorePlan {
    /// The backup restored first.
    pub backup: String,
    /// When it finished.
    pub backup_finished_at: DateTime<Utc>,
    /// The point in time.
    pub until: DateTime<Utc>,
    /// The segments replayed after it, oldest first.
    pub segments: Vec<SegmentRecord>,
}

/// Reads a node's backups and archived segments from `store`.
pub async fn node_recovery(store: &dyn Store, cluster: &str, host_id: &str) -> Result<NodeRecovery> {
    let archive = store.segments(cluster, host_id)?;
    let found = archive.records().await?;
    let backups: Vec<BackupSpan> = store.list(Some(cluster), Some(host_id)).await?.iter().filter_map(span).collect();
    let (chains, gaps) = commitlog::chains(&found.records);
    Ok(NodeRecovery {
        cluster: cluster.into(),
        host_id: host_id.into(),
        location: archive.location(),
        windows: commitlog::windows(&chains, &backups),
        gaps,
        segments: found.records.len(),
        bytes: found.records.iter().map(|r| r.size).sum(),
        newest_write: found.records.iter().map(|r| r.last_write).max(),
        damaged: found.damaged,
        chains,
        backups,
    })
}

fn span(b: &BackupSummary) -> Option<BackupSpan> {
    match (b.complete, b.started_at, b.finished_at) {
        (true, Some(started_at), Some(finished_at)) => {
            Some(BackupSpan { name: b.name.clone(), started_at, finished_at })
        }
        _ => None,
    }
}
