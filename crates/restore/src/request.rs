//! What a restore is asked to do, and what it reports.

use std::path::PathBuf;

use serde::Serialize;

use crate::Status;

/// Which parts of the restore run: truncating is cluster-wide, loading is per node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Truncate each table, then load this node's backup into it (one node, or the first).
    TruncateAndLoad,
    /// Load without truncating (`--no-truncate`): nodes of a cluster restore, after
    /// [`Mode::TruncateOnly`] ran once.
    LoadOnly,
    /// Only truncate (`--truncate-only`): the once-per-cluster step of a cluster restore.
    TruncateOnly,
}

impl Mode {
    /// True when tables are truncated.
    pub fn truncates(self) -> bool {
        self != Mode::LoadOnly
    }

    /// True when SSTables are loaded.
    pub fn loads(self) -> bool {
        self != Mode::TruncateOnly
    }
}

/// A restore request. Build with [`RestoreRequest::new`] and set the fields that differ.
#[derive(Debug, Clone)]
pub struct RestoreRequest {
    /// The backup's name.
    pub name: String,
    /// The repository root (`--backup-dir`).
    pub backup_root: PathBuf,
    /// Restore the backup of another cluster (its name); `None`: the node's own cluster.
    pub from_cluster: Option<String>,
    /// Restore the backup of another node (its host ID); `None`: this node's own.
    pub from_node: Option<String>,
    /// Only these keyspaces of the backup (backup names); empty: every keyspace backed up,
    /// except the replicated system keyspaces, which are restored only when named.
    pub keyspaces: Vec<String>,
    /// Only these tables of the backup, as `keyspace.table` (backup names).
    pub tables: Vec<String>,
    /// Name mappings backup → live: `old_ks=new_ks` or `old_ks.t=new_ks.t`.
    pub renames: Vec<String>,
    /// Create missing keyspaces and tables from the backup's schema.
    pub create_schema: bool,
    /// Data centre renames `SOURCE=TARGET` for the keyspaces `create_schema` creates.
    pub dc_map: Vec<String>,
    /// What to do: truncate and load, load only, truncate only.
    pub mode: Mode,
    /// Start a new restore of this backup: ignore the journals of earlier restores.
    pub new_restore: bool,
    /// Clear the `truncated-*` snapshots that TRUNCATE leaves on this node (with
    /// `auto_snapshot: true`) once the table is loaded.
    pub clear_truncate_snapshots: bool,
    /// Where to stage SSTables before `nodetool import`; `None`: `<root>/.restore-staging`, or
    /// for a backup on object storage `<first data directory>/../cassette-restore-staging`.
    pub staging_dir: Option<PathBuf>,
    /// Verify and plan, touch nothing.
    pub dry_run: bool,
    /// `nodetool repair -pr --full KS` after loading each keyspace.
    pub repair: bool,
    /// Files hashed at once during verification.
    pub parallel_files: usize,
    /// Object storage: buffers, files at once, bandwidth (unused for a directory).
    pub transfer: cassette_store::Transfer,
}

impl RestoreRequest {
    /// A request with the defaults: every keyspace of the backup, truncate and load.
    pub fn new(name: impl Into<String>, backup_root: impl Into<PathBuf>) -> Self {
        RestoreRequest {
            name: name.into(),
            backup_root: backup_root.into(),
            from_cluster: None,
            from_node: None,
            keyspaces: Vec::new(),
            tables: Vec::new(),
            renames: Vec::new(),
            create_schema: false,
            dc_map: Vec::new(),
            mode: Mode::TruncateAndLoad,
            new_restore: false,
            clear_truncate_snapshots: false,
            staging_dir: None,
            dry_run: false,
            repair: false,
            parallel_files: 2,
            transfer: cassette_store::Transfer::default(),
        }
    }
}

/// Why one table's restore failed. The job goes on with the other tables; running the same
/// restore again retries from the journal (a truncated table is not truncated again).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    /// `TRUNCATE` failed.
    #[error("{0}")]
    Truncate(String),
    /// The table's SSTables could not be staged for the import.
    #[error("{0}")]
    Stage(String),
    /// `nodetool import` failed or reported a failure.
    #[error("{0}")]
    Load(String),
    /// The truncate snapshots could not be cleared (`--clear-truncate-snapshots`).
    #[error("{0}")]
    ClearSnapshots(String),
}

impl TableError {
    /// The word `error_kind` says in reports.
    pub fn kind(&self) -> &'static str {
        match self {
            TableError::Truncate(_) => "truncate",
            TableError::Stage(_) => "stage",
            TableError::Load(_) => "load",
            TableError::ClearSnapshots(_) => "clear_snapshots",
        }
    }
}

fn message_of<S: serde::Serializer>(error: &Option<TableError>, s: S) -> Result<S::Ok, S::Error> {
    match error {
        Some(e) => s.collect_str(e),
        None => s.serialize_none(),
    }
}

/// What happened (or, in a dry run, would happen) to one table.
#[derive(Debug, Clone, Serialize)]
pub struct TableOutcome {
    /// Live keyspace.
    pub keyspace: String,
    /// Live table.
    pub table: String,
    /// Keyspace in the backup (differs with `--rename`).
    pub backup_keyspace: String,
    /// Table in the backup.
    pub backup_table: String,
    /// Outcome.
    pub status: Status,
    /// Why it failed (in JSON: its message, and `error_kind`).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "message_of")]
    pub error: Option<TableError>,
    /// Which step of the table failed: `truncate`, `stage`, `load` or `clear_snapshots`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<&'static str>,
    /// Truncated by this run.
    pub truncated: bool,
    /// Loaded by this run.
    pub loaded: bool,
    /// Why a step was skipped (journal, mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// The snapshot TRUNCATE left on this node (the pre-restore copy), unless cleared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncate_snapshot: Option<String>,
    /// SSTable files loaded (secondary index files are not: Cassandra rebuilds indexes).
    pub files: u64,
    /// Bytes of those files.
    pub bytes: u64,
    /// Time spent on the table.
    pub duration_ms: u64,
}

/// What happened to one keyspace (live name), as seed 000 reports it: the backup's type.
pub use cassette_repo::report::KeyspaceOutcome;

/// The outcome of [`crate::run_restore`].
#[derive(Debug, Serialize)]
pub struct RestoreReport {
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
    /// What ran.
    pub mode: Mode,
    /// Nothing was touched.
    pub dry_run: bool,
    /// An interrupted restore was resumed (tables skipped per the journal).
    pub resumed: bool,
    /// True when every selected table succeeded.
    pub complete: bool,
    /// Files verified (every file of the selected tables).
    pub verified_files: u64,
    /// Bytes verified.
    pub verified_bytes: u64,
    /// Every table was staged before the first truncate, each file checked as it arrived: each
    /// file was read once (an object store, with room to stage everything).
    pub staged_first: bool,
    /// Schema statements executed by `create_schema` (or that would be, in a dry run).
    pub schema_created: Vec<String>,
    /// Per keyspace.
    pub keyspaces: Vec<KeyspaceOutcome>,
    /// Per table.
    pub tables: Vec<TableOutcome>,
    /// The restore journal.
    pub journal: PathBuf,
    /// Wall time.
    pub duration_ms: u64,
}
