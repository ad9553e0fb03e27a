//! What an offline restore tells its caller: the steps done (or planned, in a dry run) and
//! what happened to each table.

use std::path::PathBuf;

use serde::Serialize;

use super::plan::OfflineTable;

/// One step of an offline restore, as done (or planned, in a dry run).
#[derive(Debug, Clone, Serialize)]
pub struct OfflineStep {
    /// `verify`, `drain`, `stop`, `quarantine`, `place`, `start`, `repair`.
    pub step: String,
    /// What it did (or would do), or why it was skipped.
    pub detail: String,
}

pub(super) fn step(step: &str, detail: String) -> OfflineStep {
    OfflineStep { step: step.into(), detail }
}

/// What happened to one table.
#[derive(Debug, Clone, Serialize)]
pub struct OfflineTableOutcome {
    /// Live keyspace.
    pub keyspace: String,
    /// Live table.
    pub table: String,
    /// Keyspace in the backup.
    pub backup_keyspace: String,
    /// Table in the backup.
    pub backup_table: String,
    /// The live directory the backup's files went to.
    pub live_dir: PathBuf,
    /// Live files moved into the quarantine by this run (a dry run: that would be).
    pub quarantined_files: u64,
    /// Backed-up files placed by this run (a dry run: that would be).
    pub placed_files: u64,
    /// Their bytes.
    pub placed_bytes: u64,
    /// Steps skipped because an interrupted run did them (journal).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

impl OfflineTableOutcome {
    /// Nothing done yet to `t`, whose backed-up files go to `live_dir`.
    pub(super) fn nothing_yet(t: &OfflineTable, live_dir: PathBuf) -> Self {
        OfflineTableOutcome {
            keyspace: t.keyspace.clone(),
            table: t.table.clone(),
            backup_keyspace: t.backup_keyspace.clone(),
            backup_table: t.backup_table.clone(),
            live_dir,
            quarantined_files: 0,
            placed_files: 0,
            placed_bytes: 0,
            skipped: None,
        }
    }
}

/// The outcome of [`run_offline_restore`](super::run_offline_restore).
#[derive(Debug, Serialize)]
pub struct OfflineReport {
    /// The backup's name.
    pub name: String,
    /// Its directory.
    pub backup_path: PathBuf,
    /// The cluster the backup was taken from.
    pub source_cluster: String,
    /// The host ID the backup was taken from.
    pub source_host_id: String,
    /// The host ID of the node restored.
    pub host_id: String,
    /// Nothing was touched.
    pub dry_run: bool,
    /// An interrupted offline restore was continued.
    pub resumed: bool,
    /// The node is up with the restored tables.
    pub complete: bool,
    /// Files verified.
    pub verified_files: u64,
    /// Bytes verified.
    pub verified_bytes: u64,
    /// Schema statements executed (or that would be) by `create_schema`.
    pub schema_created: Vec<String>,
    /// The node's data directories.
    pub data_dirs: Vec<PathBuf>,
    /// Its commitlog directory.
    pub commitlog_dir: PathBuf,
    /// Its saved caches directory.
    pub saved_caches_dir: PathBuf,
    /// Where the replaced files are kept (until `cassette quarantine purge`).
    pub quarantine: Vec<PathBuf>,
    /// The steps, in order.
    pub steps: Vec<OfflineStep>,
    /// Per table.
    pub tables: Vec<OfflineTableOutcome>,
    /// The commitlog replay of a restore to a point in time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replay: Option<super::ReplayOutcome>,
    /// Why `complete` is false (a repair failure; the restore itself is done).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The restore journal.
    pub journal: PathBuf,
    /// Wall time.
    pub duration_ms: u64,
}
