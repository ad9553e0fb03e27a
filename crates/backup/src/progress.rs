//! Progress reporting: a trait the CLI draws bars with and the API turns into JSON.

use crate::{KeyspaceOutcome, TableOutcome};

/// The named stages of a backup, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Checks, lock, leftover snapshots.
    Prepare,
    /// Storing the CQL schema.
    Schema,
    /// `nodetool snapshot` of every selected keyspace.
    Snapshot,
    /// Copying a keyspace's snapshot files.
    Copy,
    /// `nodetool clearsnapshot` of the backup's snapshot.
    Clear,
    /// Copying configuration directories.
    Config,
    /// Writing the manifest.
    Manifest,
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stage::Prepare => "prepare",
            Stage::Schema => "schema",
            Stage::Snapshot => "snapshot",
            Stage::Copy => "copy",
            Stage::Clear => "clear",
            Stage::Config => "config",
            Stage::Manifest => "manifest",
        })
    }
}

/// Receives progress; every method has a no-op default.
pub trait Progress: Send + Sync {
    /// A stage starts (`detail` names the keyspace where there is one).
    fn stage(&self, _stage: Stage, _detail: &str) {}
    /// More work is known: files and bytes to store (reused or copied).
    fn add_total(&self, _files: u64, _bytes: u64) {}
    /// One file is stored; `copied` is false when an earlier copy was reused.
    fn file_stored(&self, _bytes: u64, _copied: bool) {}
    /// A table is done (successfully or not).
    fn table_finished(&self, _outcome: &TableOutcome) {}
    /// The keyspaces this backup covers, in the order it will take them (after `prepare`).
    fn keyspaces_selected(&self, _keyspaces: &[String]) {}
    /// A keyspace is done: snapshot, copy and clear (successfully or not).
    fn keyspace_finished(&self, _outcome: &KeyspaceOutcome) {}
}

/// Reports nothing.
pub struct NoProgress;

impl Progress for NoProgress {}
