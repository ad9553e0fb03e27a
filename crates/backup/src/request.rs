//! What a backup is asked to do, and what it reports.

use std::path::PathBuf;

pub use cassette_cassandra::Node;
use cassette_repo::Manifest;
pub use cassette_repo::report::{KeyspaceOutcome, Status};
use serde::Serialize;

/// A backup request. Build with [`BackupRequest::new`] and set the fields that differ.
#[derive(Debug, Clone)]
pub struct BackupRequest {
    /// The backup's name (checked: 1-128 of `[A-Za-z0-9._-]`, no leading dot).
    pub name: String,
    /// The repository root (`--backup-dir`).
    pub backup_root: PathBuf,
    /// Keyspaces to back up; empty: every non-system keyspace.
    pub keyspaces: Vec<String>,
    /// Tables (`keyspace.table`) to back up; restricts the keyspaces to theirs.
    pub tables: Vec<String>,
    /// Also back up the replicated system keyspaces (system_auth, system_distributed, system_traces).
    pub include_system: bool,
    /// Configuration directories to store with the backup (e.g. CASSANDRA_HOME/conf).
    pub config_dirs: Vec<PathBuf>,
    /// A human name for the node, recorded beside its host ID.
    pub alias: Option<String>,
    /// Allow a backup directory on the same filesystem as a data directory.
    pub allow_same_disk: bool,
    /// Data directories; `None`: ask the node (`system_views.settings`). Each must be one of
    /// the node's own (through any path) unless `data_dirs_override`.
    pub data_dirs: Option<Vec<PathBuf>>,
    /// `data_dirs` are the node's data directories as this machine mounts them (a container
    /// whose mount paths differ from the node's): not checked against what CQL reports. The
    /// snapshot's own file list is checked either way.
    pub data_dirs_override: bool,
    /// Files copied at once.
    pub parallel_files: usize,
    /// Copy this snapshot, taken earlier by [`crate::take_snapshot`], instead of taking one per
    /// keyspace: a cluster backup snapshots every node first, so the nodes' backups are close
    /// to one point in time. It is cleared like cassette's own snapshots, so it must be one:
    /// a tag [`crate::take_snapshot`] made for this backup's name, or the job is refused.
    pub snapshot_tag: Option<String>,
    /// Object storage: part size, buffers, files at once, bandwidth (unused for a directory).
    pub transfer: cassette_store::Transfer,
}

impl BackupRequest {
    /// A request with the defaults: every non-system keyspace, no configuration directories.
    pub fn new(name: impl Into<String>, backup_root: impl Into<PathBuf>) -> Self {
        BackupRequest {
            name: name.into(),
            backup_root: backup_root.into(),
            keyspaces: Vec::new(),
            tables: Vec::new(),
            include_system: false,
            config_dirs: Vec::new(),
            alias: None,
            allow_same_disk: false,
            data_dirs: None,
            data_dirs_override: false,
            parallel_files: 2,
            snapshot_tag: None,
            transfer: cassette_store::Transfer::default(),
        }
    }
}

/// Why one table failed. The job goes on with the other tables; the manifest is not written,
/// and running the same backup again retries what failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    /// Cassandra's snapshot of the table is not what Cassandra says it holds (not found, no
    /// `manifest.json`, listed files missing).
    #[error("{0}")]
    Snapshot(String),
    /// The table's schema could not be stored.
    #[error("{0}")]
    Schema(String),
    /// A file could not be stored (read, `Digest.crc32` mismatch, write, upload).
    #[error("{0}")]
    Store(String),
    /// The journal could not record a stored file, so a resumed run could not trust it.
    #[error("{0}")]
    Journal(String),
}

impl TableError {
    /// The word `error_kind` says in reports.
    pub fn kind(&self) -> &'static str {
        match self {
            TableError::Snapshot(_) => "snapshot",
            TableError::Schema(_) => "schema",
            TableError::Store(_) => "store",
            TableError::Journal(_) => "journal",
        }
    }
}

fn message_of<S: serde::Serializer>(error: &Option<TableError>, s: S) -> Result<S::Ok, S::Error> {
    match error {
        Some(e) => s.collect_str(e),
        None => s.serialize_none(),
    }
}

/// What happened to one table.
#[derive(Debug, Clone, Serialize)]
pub struct TableOutcome {
    /// Keyspace.
    pub keyspace: String,
    /// Table.
    pub table: String,
    /// Outcome.
    pub status: Status,
    /// Why it failed (in JSON: its message, and `error_kind`).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "message_of")]
    pub error: Option<TableError>,
    /// Which step of the table failed: `snapshot`, `schema`, `store` or `journal`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<&'static str>,
    /// Files stored.
    pub files: u64,
    /// Bytes stored.
    pub bytes: u64,
    /// Bytes this backup stored itself (not hard-linked from an earlier backup).
    pub bytes_added: u64,
    /// Bytes this run copied: less than `bytes_added` when a resumed run kept what the
    /// interrupted run had stored.
    pub bytes_copied: u64,
    /// Time spent copying it.
    pub duration_ms: u64,
}

/// The outcome of [`crate::run_backup`].
#[derive(Debug, Serialize)]
pub struct BackupReport {
    /// The backup's name.
    pub name: String,
    /// Its directory.
    pub path: PathBuf,
    /// True when the manifest was written: the backup can be restored.
    pub complete: bool,
    /// True when an interrupted backup of the same name was resumed.
    pub resumed: bool,
    /// Per keyspace.
    pub keyspaces: Vec<KeyspaceOutcome>,
    /// Per table.
    pub tables: Vec<TableOutcome>,
    /// The manifest, when complete.
    #[serde(skip)]
    pub manifest: Option<Manifest>,
    /// Totals: files, bytes, bytes added.
    pub totals: cassette_repo::Totals,
    /// Wall time.
    pub duration_ms: u64,
}
