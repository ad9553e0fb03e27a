//! The node restore engine of cassette: locate → verify → check schema → truncate → load,
//! with nothing live destroyed before the backup replacing it is verified.
//!
//! [`run_restore`] restores, into the running node that a [`Node`] (CQL session + nodetool)
//! reaches, a complete backup from a repository laid out by `cassette-repo`. Its stages, in order:
//!
//! 1. `locate`: the backup `<root>/<cluster>/<host ID>/<name>/` of this node (host ID and cluster
//!    from `system.local`), or of another node (`from_node`, a node replacing a dead one) or
//!    cluster (`from_cluster`, a restore into a new cluster). No manifest: refused (incomplete).
//! 2. `fetch` (object stores and encoded repositories, with room to stage everything): every
//!    table's SSTables downloaded into the staging directory, each checked as it arrives, so
//!    that each file is read once (`prestage`). A failed download falls back to step 3 for
//!    every file.
//! 3. `verify`: every file to restore that `fetch` did not check is hashed again (size + BLAKE3
//!    against the manifest, and the CRC32 of each `Data.db` against its `Digest.crc32`). One bad
//!    or missing file and the restore stops here, naming every bad file: **no live data is
//!    destroyed before the backup replacing it is verified**.
//! 4. `schema`: the backed-up tables (after `--keyspace`/`--table` selection and `--rename`)
//!    must exist in the live schema; with `create_schema` the backed-up `DESCRIBE KEYSPACE`
//!    CQL creates what is missing. Files go to the live table, whatever its table id.
//! 5. per table, `truncate` (CQL `TRUNCATE`, cluster-wide) then `load`: the table's SSTables
//!    are staged outside the data directories (hard links from the backup, copies of the
//!    components Cassandra rewrites) and loaded with `nodetool import --copy-data`, so the
//!    data directories never share a file with the backup. Tables `fetch` staged are loaded by
//!    `nodetool import` without `--copy-data`: their files are moved in.
//! 6. `repair` (optional): `nodetool repair -pr --full` per keyspace.
//!
//! `--offline` ([`run_offline_restore`], see [`offline`]) is seed 001's procedure instead of
//! steps 5-6: after the same locate/verify/schema stages, drain and stop the node, move the
//! commitlog, saved caches and the restored tables' live SSTables into a quarantine directory,
//! put the backup's files in place, start the node.
//!
//! A restore journal (see [`journal`]) records each table truncated and loaded, so running the
//! same restore again after a crash skips the tables already loaded and never truncates a
//! table whose backed-up data was loaded. Restoring a cluster node by node: since `TRUNCATE`
//! is cluster-wide, run [`Mode::TruncateOnly`] once (on any node), then [`Mode::LoadOnly`] on
//! every node; a truncating restore that would wipe data another node already loaded from
//! this backup is refused.
//!
//! ```no_run
//! # async fn demo() -> Result<(), cassette_restore::RestoreError> {
//! use cassette_cassandra::{Cql, CqlTarget, Node, Nodetool};
//! use cassette_restore::{NoProgress, RestoreRequest, run_restore};
//! let node = Node {
//!     cql: Cql::connect(&CqlTarget::new("127.0.0.1", 9042)).await?,
//!     nodetool: Nodetool::new("nodetool", "127.0.0.1", 7199),
//! };
//! let request = RestoreRequest::new("nightly-1", "/backup");
//! let report = run_restore(&node, &request, &NoProgress).await?;
//! assert!(report.complete);
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod combine;
mod dc_map;
mod engine;
mod error;
pub mod journal;
mod locate;
pub mod offline;
mod prestage;
mod progress;
mod request;
mod schema;
mod schema_policy;
mod select;
mod stage;
mod topology;
mod verify;

pub use cassette_cassandra::Node;
pub use cassette_repo::report::Status;
pub use engine::run_restore;
pub use error::{BadFile, RestoreError};
pub use offline::{OfflineOptions, OfflineReport, PointInTime, ReplayOutcome, run_offline_restore};
pub use progress::{NoProgress, Progress, Stage};
pub use request::{KeyspaceOutcome, Mode, RestoreReport, RestoreRequest, TableError, TableOutcome};
pub use select::Rename;
pub use topology::{SourceOutcome, TopologyReport, run_topology_restore};
