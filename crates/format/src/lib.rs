//! The cassette repository format: what is written into a backup repository, never how.
//!
//! This crate holds the names, the layout's relative paths and the documents of a repository
//! (the manifest, the node index, the backup journal's records, the repository format file),
//! with the rules a document must pass to be read (paths that stay inside their backup,
//! versions) and the one hasher stored files are checked by. It is pure: it does no I/O beyond
//! (de)serialising, so every store (a directory, an object store) and every test shares exactly
//! the same format. Each document says which version it is; a reader reads its own version and
//! older ones, and refuses a newer one with "upgrade cassette".
//!
//! A backend only needs the store interface: it implements `cassette_store`'s three traits
//! (`Store`, `BackupWriter`, `BackupReader`), and reads and writes these types through
//! `to_json`/`from_json`; nothing above the store crate changes.
//!
//! ```
//! use std::collections::BTreeMap;
//!
//! use cassette_format::{FormatError, IndexEntry, Manifest, RepositoryFormat, index, layout};
//!
//! // A backend's whole job: bytes under keys. What the bytes are, and where, is the format's.
//! let mut store: BTreeMap<String, Vec<u8>> = BTreeMap::new();
//! store.insert(layout::REPOSITORY_FORMAT_FILE.into(), RepositoryFormat::current().to_json());
//! RepositoryFormat::from_json(&store["cassette-repository.json"])?.check()?;
//!
//! // A manifest of a newer cassette is refused before anything in it is used.
//! let newer = br#"{"format":"cassette.backup-manifest","format_version":99}"#;
//! store.insert(format!("prod/host-1/nightly/{}", layout::MANIFEST_FILE), newer.to_vec());
//! let read = Manifest::from_json(&store["prod/host-1/nightly/manifest.json"]);
//! assert!(matches!(read, Err(FormatError::NewerVersion { found: 99, .. })));
//!
//! // The node index is a cache: written and read the same way by every backend.
//! let entries = BTreeMap::<String, IndexEntry>::new();
//! store.insert(format!("prod/host-1/{}", layout::INDEX_FILE), index::to_json(&entries));
//! assert!(index::NodeIndex::from_json(&store["prod/host-1/.index.json"]).entries().is_empty());
//! # Ok::<(), FormatError>(())
//! ```
//!
//! Main items:
//! - [`BackupName`], [`path_component`], [`check_relative`]: names and paths safe in a tree.
//! - [`layout`]: file names and paths relative to a backup or a node, [`relative_path`].
//! - [`Manifest`] (with [`FileEntry`] and friends): what a complete backup contains.
//! - [`index`]: the node index ([`IndexEntry`], [`NodeIndex`]) and the rule deciding which
//!   entries a listing may trust ([`index::reconcile`]).
//! - [`journal`]: a running backup's records ([`JournalRecord`], [`FileContext`]), versioned.
//! - [`retention`]: which backups a [`Policy`] keeps, and why ([`Reason`]).
//! - [`BackupSummary`]: one backup in a listing; [`report`]: outcome words.
//! - [`ContentHasher`] and [`StoredFile`]: BLAKE3, `Digest.crc32`'s CRC32 and size in one pass.
//! - [`RepositoryFormat`]: the repository's version, and [`encoding`]: what its objects are
//!   encoded with (compression, encryption), for the repository and per stored file.
//! - [`lock`]: a backup's object lock ([`ObjectLock`]), recorded in its manifest.
//! - [`commitlog`]: archived commitlog segments ([`SegmentName`], [`SegmentRecord`]) and the
//!   times a restore can reach from a node's backups and segments ([`commitlog::windows`]).

#![deny(missing_docs)]

pub mod commitlog;
pub mod encoding;
pub mod error;
pub mod hash;
pub mod index;
pub mod journal;
pub mod layout;
pub mod lock;
pub mod manifest;
pub mod name;
pub mod report;
pub mod repository;
pub mod retention;
pub mod summary;
pub mod version;

pub use commitlog::{SegmentName, SegmentRecord};
pub use encoding::{Encoded, RepositoryEncoding};
pub use error::{FormatError, Result};
pub use hash::{ContentHasher, StoredFile};
pub use index::{IndexEntry, ManifestStamp, NodeIndex};
pub use journal::{FileContext, JOURNAL_VERSION, JournalRecord};
pub use layout::relative_path;
pub use lock::{LockMode, LockRequest, ObjectLock};
pub use manifest::{
    ConfigDirEntry, FileEntry, KeyspaceEntry, MANIFEST_FORMAT, MANIFEST_VERSION, Manifest, NodeInfo, TableEntry, Totals,
};
pub use name::{BackupName, MAX_BACKUP_NAME_LEN, check_relative, path_component};
pub use report::{KeyspaceOutcome, Status};
pub use repository::{REPOSITORY_FORMAT, REPOSITORY_VERSION, RepositoryFormat};
pub use retention::{Policy, Reason};
pub use summary::BackupSummary;
