//! Progress reporting: a trait the CLI draws bars with.

use crate::{KeyspaceOutcome, TableOutcome};

/// The named stages of a restore, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Finding the backup, reading its manifest.
    Locate,
    /// Downloading every table's SSTables into the staging directory, checked as they arrive,
    /// before anything is truncated (an object store with room to stage: one read per file).
    Fetch,
    /// Hashing every file to restore (those the fetch stage did not check).
    Verify,
    /// Checking (or creating) the live schema.
    Schema,
    /// `TRUNCATE` of a table.
    Truncate,
    /// Staging and `nodetool import` of a table.
    Load,
    /// `nodetool repair -pr --full` of a keyspace.
    Repair,
    /// `nodetool drain` (offline restore).
    Drain,
    /// The stop command, and waiting for the node to be down (offline restore).
    Stop,
    /// Moving live files into the quarantine (offline restore).
    Quarantine,
    /// Placing the backed-up files into the live table directory (offline restore).
    Place,
    /// The start command, and waiting for the node to be up (offline restore).
    Start,
}

/// Receives progress; every method has a no-op default.
pub trait Progress: Send + Sync {
    /// A stage starts (`detail` names the keyspace or table where there is one).
    fn stage(&self, _stage: Stage, _detail: &str) {}
    /// More work is known: files and bytes to verify.
    fn add_total(&self, _files: u64, _bytes: u64) {}
    /// One file is verified.
    fn file_verified(&self, _bytes: u64) {}
    /// A table is done (successfully or not).
    fn table_finished(&self, _outcome: &TableOutcome) {}
    /// The keyspaces (live names) this restore covers, in order (after `verify`).
    fn keyspaces_selected(&self, _keyspaces: &[String]) {}
    /// A keyspace is done (successfully or not).
    fn keyspace_finished(&self, _outcome: &KeyspaceOutcome) {}
}

/// Reports nothing.
pub struct NoProgress;

impl Progress for NoProgress {}
