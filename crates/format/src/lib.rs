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
//! A backend only needs the store interface: a backend implements `cassette_store::Store`; it
//! reads and writes these types through `to_json`/`from_json`.
//!
//! ```
//! use cassette_format::{BackupName, FormatError, Manifest, RepositoryFormat, layout};
//!
//! // What a store writes at `<root>/cassette-repository.json`, and checks on opening.
//! let bytes = RepositoryFormat::current().to_json();
//! RepositoryFormat::from_json(&bytes)?.check()?;
//! assert_eq!(layout::REPOSITORY_FORMAT_FILE, "cassette-repository.json");
//!
//! // A manifest is checked as it is parsed: one of a newer version is refused.
//! let name = BackupName::parse("nightly-2024-06-01")?;
//! let damaged = br#"{"format":"cassette.backup-manifest","format_version":99}"#;
//! assert!(matches!(Manifest::from_json(damaged), Err(FormatError::NewerVersion { found: 99, .. })));
//! # let _ = name;
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
//! - [`RepositoryFormat`]: the repository's version.

#![deny(missing_docs)]

pub mod error;
pub mod hash;
pub mod index;
pub mod journal;
pub mod layout;
pub mod manifest;
pub mod name;
pub mod report;
pub mod repository;
pub mod retention;
pub mod summary;
pub mod version;

pub use error::{FormatError, Result};
pub use hash::{ContentHasher, StoredFile};
pub use index::{IndexEntry, ManifestStamp, NodeIndex};
pub use journal::{FileContext, JOURNAL_VERSION, JournalRecord};
pub use layout::relative_path;
pub use manifest::{
    ConfigDirEntry, FileEntry, KeyspaceEntry, MANIFEST_FORMAT, MANIFEST_VERSION, Manifest, NodeInfo, TableEntry, Totals,
};
pub use name::{BackupName, MAX_BACKUP_NAME_LEN, check_relative, path_component};
pub use report::{KeyspaceOutcome, Status};
pub use repository::{REPOSITORY_FORMAT, REPOSITORY_VERSION, RepositoryFormat};
pub use retention::{Policy, Reason};
pub use summary::BackupSummary;
