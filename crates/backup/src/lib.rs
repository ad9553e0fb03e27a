//! The node backup engine of cassette: snapshot → copy per keyspace → clear, manifest last.
//!
//! [`run_backup`] backs up the node that a [`Node`] (CQL session + nodetool) reaches into a
//! repository directory laid out by `cassette-repo`. A job is a sequence of named [`Stage`]s:
//!
//! 1. `prepare`: check the name, the node, the selection, the target (`--data-dir` the node's
//!    own, the backup directory outside them); take the node lock; clear snapshots that an
//!    interrupted cassette run left on the node (only tags cassette makes);
//! 2. `schema`: store the CQL schema of every selected keyspace;
//! 3. `snapshot`: one `nodetool snapshot -t cassette-...` of every selected keyspace (one point
//!    in time for the node); then per keyspace `copy`: every SSTable file (a table fails unless
//!    every file Cassandra's snapshot `manifest.json` lists is found), verified against
//!    `Digest.crc32`, hashed with BLAKE3, hard-linked instead of copied when an earlier backup
//!    of this node holds the same file, made durable by one filesystem flush per table; then
//!    `clear` (always, also when a copy failed);
//! 4. `config`: copy configuration directories;
//! 5. `manifest`: written last and atomically, and only when every table succeeded.
//!
//! Every stored file is journaled, so running the same backup again after a crash resumes it:
//! what is stored and unchanged is kept, the rest is copied.
//!
//! ```no_run
//! # async fn demo() -> Result<(), cassette_backup::BackupError> {
//! use cassette_backup::{BackupRequest, Node, NoProgress, run_backup};
//! use cassette_cassandra::{Cql, CqlTarget, Nodetool};
//! let node = Node {
//!     cql: Cql::connect(&CqlTarget::new("127.0.0.1", 9042)).await?,
//!     nodetool: Nodetool::new("nodetool", "127.0.0.1", 7199),
//! };
//! let request = BackupRequest::new("nightly-1", "/backup");
//! let report = run_backup(&node, &request, &NoProgress).await?;
//! assert!(report.complete);
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod config_copy;
mod engine;
mod error;
mod progress;
mod request;
mod safety;
mod select;
mod table_copy;

pub use engine::{run_backup, take_snapshot};
pub use error::BackupError;
pub use progress::{NoProgress, Progress, Stage};
pub use request::{BackupReport, BackupRequest, KeyspaceOutcome, Node, Status, TableError, TableOutcome};

/// Prefix of every snapshot tag cassette creates: snapshots with it that no running job owns
/// are leftovers of an interrupted run, and are cleared.
pub const SNAPSHOT_TAG_PREFIX: &str = "cassette-";
