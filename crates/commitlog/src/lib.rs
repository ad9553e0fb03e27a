//! Point-in-time recovery, on the node: Cassandra's commitlog archiving done safely.
//!
//! Cassandra runs `archive_command` for every finished commitlog segment and waits for it
//! before it deletes the segment; a failing command makes it keep the segment, and its
//! commitlog disk fills up. So the archive command ([`Spool::archive`]) does no network work:
//! it hard-links (or copies, across filesystems) the segment into a local spool, fsyncs and
//! returns. The shipper ([`ship`]) stores each spooled segment in the repository with its
//! BLAKE3 and size (the segment first, then its record: `cassette_format::commitlog`), and only
//! then removes it from the spool. A shipper killed at any point leaves each segment either
//! still in the spool or archived, never lost; a rerun stores none twice.
//!
//! [`node_recovery`] reads what a node can be restored to from the repository: its recoverable
//! windows, the gaps between them, and the plan of a restore to one point in time
//! ([`NodeRecovery::plan`]: the backup to start from and the segments to replay).
//!
//! [`settings`] reads and writes `commitlog_archiving.properties`: the `archive_command` line
//! that calls cassette, and the restore settings an offline restore to a point in time writes
//! and removes again.
//!
//! ```text
//! <spool>/cassette-spool.json            which node the spool belongs to (SpoolIdentity)
//! <spool>/CommitLog-7-<id>.log           segments waiting to be shipped (oldest id first)
//! <spool>/.CommitLog-7-<id>.log.partial  a segment being spooled (never shipped)
//! <spool>/.ship.lock                     held by the running shipper
//! ```

#![deny(missing_docs)]

mod error;
mod recovery;
pub mod settings;
mod ship;
mod spool;

pub use error::{CommitlogError, Result};
pub use recovery::{NodeRecovery, RestorePlan, node_recovery};
pub use ship::{ShipReport, ship};
pub use spool::{Archived, Spool, SpoolDepth, SpoolIdentity};
