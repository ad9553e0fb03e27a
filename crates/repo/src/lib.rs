//! The on-disk format of a cassette backup repository: where a backup's
//! files live, what its manifest says, and how files get there safely.
//!
//! What is written (names, layout, the manifest, the node index, journal records, retention,
//! the hasher) is `cassette-format`'s and re-exported here under the paths callers always
//! used; this crate is the directory store: how it is written, read, locked and removed. The
//! manifest's file operations come with the [`ManifestFile`] trait (import it to call
//! `Manifest::read(&dir)`).
//!
//! This crate knows nothing of Cassandra processes, `nodetool` or CQL; it
//! deals in paths, files, hashes and manifests. A backup of one node is a
//! directory that mirrors Cassandra's data layout, so it can be restored by
//! hand with `cp`:
//!
//! ```text
//! <root>/<cluster_name>/<host_id>/<backup_name>/
//!     <keyspace>/<table>/<SSTable component files>
//!     cassette-meta/{schema.cql, tables/, conf/, journal.jsonl}
//!     manifest.json        (written last, atomically: its presence = complete)
//! <root>/<cluster_name>/<host_id>/.lock
//! ```
//!
//! Main types:
//! - [`BackupName`] and [`path_component`]: names safe to use as directories.
//! - [`RepoLayout`] and [`BackupState`]: the paths above, and whether a backup finished.
//! - [`Manifest`] (with [`FileEntry`] and friends): what a complete backup contains.
//! - [`copy_verified`], [`link_or_copy`], [`hash_file`]: storing SSTable
//!   components, hashed with BLAKE3 and checked against Cassandra's `Digest.crc32`.
//! - [`Journal`]: progress of a running backup, so it can be resumed.
//! - [`NodeLock`]: one cassette job at a time per node.
//! - [`list_backups`] (fast with thousands of backups: the node [`index`]), [`delete_backup`],
//!   [`purge`] with a retention [`Policy`], [`archive_backup`], [`available_bytes`], [`same_filesystem`].
//!
//! All fallible functions return [`RepoError`], whose messages name the path
//! involved and say what to do.
//!
//! ```
//! use cassette_repo::{BackupName, BackupState, Manifest, ManifestFile, NodeLock, RepoLayout, copy_verified};
//! # fn main() -> Result<(), cassette_repo::RepoError> {
//! # let tmp = tempfile::tempdir().unwrap();
//! # let snapshot = tmp.path().join("snapshot");
//! # std::fs::create_dir_all(&snapshot).unwrap();
//! # std::fs::write(snapshot.join("nb-1-big-Data.db"), b"sstable bytes").unwrap();
//! let layout = RepoLayout::new(tmp.path().join("repo"));
//! let name = BackupName::parse("nightly-2024-06-01")?;
//! let _lock = NodeLock::acquire(&layout.node_dir("Test Cluster", "5d3c7a9e-0000-4000-8000-000000000001")?)?;
//! let backup = layout.backup_dir("Test Cluster", "5d3c7a9e-0000-4000-8000-000000000001", &name)?;
//!
//! let table_dir = RepoLayout::table_dir(&backup, "shop", "orders")?;
//! let stored = copy_verified(&snapshot.join("nb-1-big-Data.db"), &table_dir.join("nb-1-big-Data.db"), None)?;
//! assert_eq!(stored.size, 13);
//! // ... copy the rest, then write the manifest last:
//! assert_eq!(BackupState::of(&backup), BackupState::Incomplete);
//! assert!(matches!(Manifest::read(&backup), Err(cassette_repo::RepoError::Incomplete { .. })));
//! # Ok(()) }
//! ```

#![deny(missing_docs)]

pub mod archive;
pub mod beneath;
pub mod copy;
pub mod delete;
pub mod error;
pub mod fault;
pub mod fsutil;
pub mod index;
pub mod journal;
pub mod layout;
pub mod list;
pub mod lock;
pub mod manifest;
pub mod name;
pub mod purge;
pub mod report;
pub mod retention;
pub mod space;
pub mod state;
pub mod verify;

pub use archive::{ArchiveSummary, archive_backup};
pub use cassette_format::{ContentHasher, FormatError, LockMode, LockRequest, ObjectLock, RepositoryFormat};
pub use copy::{
    Durability, LinkOutcome, StoredFile, copy_verified, copy_verified_with, hash_file, hash_open_file, link_or_copy,
    link_or_copy_with, read_digest_crc32,
};
pub use delete::{DeleteSummary, delete_backup};
pub use error::{RepoError, Result};
pub use fsutil::{partial_path, sync_dir, sync_filesystem, write_file_atomically};
pub use index::IndexEntry;
pub use journal::{FileContext, Journal, JournalRecord};
pub use layout::{BackupState, RepoLayout, relative_path};
pub use list::{BackupSummary, list_backups, list_node, node_dirs, rebuild_indexes};
pub use lock::NodeLock;
pub use manifest::{
    ConfigDirEntry, FileEntry, KeyspaceEntry, MANIFEST_FORMAT, MANIFEST_VERSION, Manifest, ManifestFile, NodeInfo,
    TableEntry, Totals,
};
pub use name::{BackupName, path_component};
pub use purge::{NodePurge, PurgeOptions, purge, purge_node};
pub use retention::{Policy, Reason};
pub use space::{available_bytes, same_filesystem};
pub use verify::{BadFile, Depth, VerifyReport, check_file, check_files, verify_backup};
