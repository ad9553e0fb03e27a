//! What a listing says of one backup ([`BackupSummary`]), built the same way whatever the
//! store: from a manifest or a node index entry for a complete backup
//! ([`BackupSummary::complete`]), from what is stored for an incomplete one.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::index::IndexEntry;
use crate::manifest::Manifest;

/// One backup found in the repository.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupSummary {
    /// Cluster name (directory name).
    pub cluster: String,
    /// Host ID (directory name).
    pub host_id: String,
    /// Backup name (directory name).
    pub name: String,
    /// The backup directory (or its URL on object storage).
    pub path: PathBuf,
    /// Whether it has a readable manifest.
    pub complete: bool,
    /// Number of files (manifest totals, or counted in the store if incomplete).
    pub files: u64,
    /// Bytes in those files.
    pub bytes: u64,
    /// Bytes this backup added (manifest totals); if incomplete, bytes of
    /// files stored not shared with another backup.
    pub bytes_added: u64,
    /// When it started (manifest, or the journal if incomplete).
    pub started_at: Option<DateTime<Utc>>,
    /// When it finished (complete backups only).
    pub finished_at: Option<DateTime<Utc>>,
    /// Incomplete backups: when a file of it was last written (the newest modification time in
    /// its tree), which tells an interrupted backup from a running one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_written_at: Option<DateTime<Utc>>,
    /// Why it could not be described fully (e.g. an unreadable manifest).
    pub error: Option<String>,
    /// Something is where its manifest goes, but it cannot be read or is not this backup's
    /// (truncated, not JSON, an unknown version, another backup's, a link or a FIFO): never
    /// restored, never deleted by purge. Shown as DAMAGED.
    #[serde(default)]
    pub damaged: bool,
    /// The lock the store keeps its objects under (complete backups made with
    /// `--object-lock-days`): not deleted, by `delete` or `purge`, before `until`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_lock: Option<crate::lock::ObjectLock>,
}

impl BackupSummary {
    /// A backup known only by where it is: incomplete, nothing counted yet. The store fills in
    /// what it finds (files, times, an error).
    pub fn incomplete(cluster: &str, host_id: &str, name: &str, path: impl Into<PathBuf>) -> BackupSummary {
        BackupSummary {
            cluster: cluster.to_owned(),
            host_id: host_id.to_owned(),
            name: name.to_owned(),
            path: path.into(),
            complete: false,
            files: 0,
            bytes: 0,
            bytes_added: 0,
            started_at: None,
            finished_at: None,
            last_written_at: None,
            error: None,
            damaged: false,
            object_lock: None,
        }
    }

    /// A complete backup, described by its index entry (or [`IndexEntry::of`] its manifest):
    /// the manifest's totals and times.
    pub fn complete(cluster: &str, host_id: &str, path: impl Into<PathBuf>, entry: &IndexEntry) -> BackupSummary {
        BackupSummary {
            complete: true,
            files: entry.totals.files,
            bytes: entry.totals.bytes,
            bytes_added: entry.totals.bytes_added,
            started_at: Some(entry.started_at),
            finished_at: Some(entry.finished_at),
            object_lock: entry.object_lock,
            ..BackupSummary::incomplete(cluster, host_id, &entry.name, path)
        }
    }

    /// A complete backup, described by its manifest.
    pub fn of_manifest(cluster: &str, host_id: &str, path: impl Into<PathBuf>, m: &Manifest) -> BackupSummary {
        BackupSummary::complete(cluster, host_id, path, &IndexEntry::of(m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::samples::sample;

    #[test]
    fn a_complete_backup_is_described_by_its_manifest_totals_and_times() {
        let m = sample();
        let s = BackupSummary::of_manifest("Test Cluster", "h1", "/r/Test Cluster/h1/b1", &m);
        assert!(s.complete && !s.damaged && s.error.is_none());
        assert_eq!((s.name.as_str(), s.files, s.bytes, s.bytes_added), ("b1", 3, 1057, 1007));
        assert_eq!((s.started_at, s.finished_at), (Some(m.started_at), Some(m.finished_at)));
        assert_eq!(s, BackupSummary::complete("Test Cluster", "h1", "/r/Test Cluster/h1/b1", &IndexEntry::of(&m)));
        let i = BackupSummary::incomplete("c", "h", "b2", "/r/c/h/b2");
        assert!(!i.complete && i.files == 0 && i.started_at.is_none());
    }
}
