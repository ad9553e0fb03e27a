//! One interface to a backup repository, whatever holds it: a directory ([`DirectoryStore`],
//! over `cassette-repo`) or an object store ([`BucketStore`], over `cassette-object`: S3 and
//! S3-compatible servers, GCS, Azure Blob). The backup and restore engines, the CLI and the agent
//! hold an `Arc<dyn Store>` from [`open`] and never learn which kind it is.
//!
//! - [`Store`]: the repository: list, read a manifest, verify, delete, purge, and open one
//!   backup to write ([`BackupWriter`]) or to restore from ([`BackupReader`]).
//! - [`BackupWriter`]: put a verified file, reuse a stored one, put metadata, check what is
//!   stored, put the manifest last (create-only), and hold the repository's lock meanwhile.
//! - [`BackupReader`]: verify the files a restore uses, fetch a table's files verified into a
//!   staging directory, and keep the backup from being purged while it is restored.
//! - [`SegmentArchive`]: a node's archived commitlog segments (point-in-time recovery): put a
//!   spooled segment and its record, list the records, fetch or check a segment.
//!
//! What is written once over the interface, for every kind: the not-found hint ([`locate`]),
//! the location syntax ([`parse_location`]), the reuse of earlier copies ([`reuse`]).
//!
//! Adding a backend means implementing these three traits (and a branch in [`open`] for its
//! location syntax); nothing above this crate changes. A directory store keeps what makes a
//! directory repository useful by hand: every backup is a complete tree (files an earlier
//! backup stored are hard links), restorable with `cp`.
//!
//! Errors are [`StoreError`]s, whose messages name the path or URL involved and say what to do.

#![deny(missing_docs)]

mod bucket;
mod directory;
mod encoding;
pub mod locate;
mod location;
pub mod reuse;
mod segments;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use cassette_repo::RepositoryFormat;
use cassette_repo::purge::{NodePurge, PurgeOptions};
use cassette_repo::{BackupName, BackupState, BackupSummary, BadFile, DeleteSummary, Depth, FileEntry, Manifest};
use futures::future::BoxFuture;

pub use bucket::BucketStore;
pub use cassette_object::{ObjectError as StoreError, Transfer};
pub use directory::{DirectoryStore, REWRITTEN, restore_journal_in};
pub use locate::{LocateError, Located};
pub use location::{ACCEPTED_LOCATIONS, is_object_store_url, parse_location};
pub use reuse::{FileToStore, Reuse, Stored, StoredCopy, StoredIndex};
pub use segments::{Records, SegmentArchive, SpooledSegment};

/// The result of a store operation.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Called with the size of each file checked.
pub type OnFile<'a> = &'a (dyn Fn(u64) + Sync);

/// Which backup: its cluster, its node (host ID) and its name.
#[derive(Debug, Clone)]
pub struct BackupId {
    /// The cluster name.
    pub cluster: String,
    /// The node's host ID.
    pub host_id: String,
    /// The backup's name.
    pub name: BackupName,
}

impl BackupId {
    /// The backup a listing found.
    pub fn of(b: &BackupSummary) -> Result<BackupId> {
        Ok(BackupId { cluster: b.cluster.clone(), host_id: b.host_id.clone(), name: BackupName::parse(&b.name)? })
    }
}

/// Opens the repository at `location`: a directory, `file:///PATH`, or an object store URL
/// (`s3://`, `gs://`, `az://`, `memory://`). Only a directory's format file is read: an encoded
/// directory repository is served by the object store code, over the local filesystem, so
/// every encoded object goes through one path.
pub fn open(location: &Path, transfer: Transfer) -> Result<Arc<dyn Store>> {
    let location = match location.to_str() {
        Some(l) => parse_location(l)?,
        None => location.to_path_buf(),
    };
    if let Some(url) = location.to_str().filter(|l| is_object_store_url(l)) {
        return Ok(Arc::new(BucketStore::open(url, transfer)?));
    }
    if transfer.object_lock.is_some() {
        return Err(StoreError::LockUnsupported {
            url: location.display().to_string(),
            detail: "a directory cannot lock its files: back up to an S3 bucket made with Object Lock enabled".into(),
        });
    }
    if directory::is_encoded(&location)? {
        return Ok(Arc::new(BucketStore::on_directory(&location, transfer)?));
    }
    if transfer.keyring.is_some() {
        return Err(cassette_seal::SealError::Disagrees {
            location: location.display().to_string(),
            detail: "this repository is not encrypted, and a key file was given: give no key file, or back up into a new repository made with `cassette repo init --encrypt`".into(),
        }
        .into());
    }
    Ok(Arc::new(DirectoryStore::new(location, transfer)))
}

/// Makes a new encoded repository at `location` (`cassette repo init`): writes its format
/// file, refusing a location that holds a repository already.
pub async fn init(location: &Path, transfer: Transfer, format: &RepositoryFormat) -> Result<()> {
    let location = match location.to_str() {
        Some(l) => parse_location(l)?,
        None => location.to_path_buf(),
    };
    match location.to_str().filter(|l| is_object_store_url(l)) {
        Some(url) => BucketStore::open(url, transfer)?.init(format).await,
        None => Ok(directory::init(&location, format)?),
    }
}

/// Makes the key with fingerprint `new_key` the one new objects of the encrypted repository
/// at `location` are encrypted for (`cassette repo rotate-key`); `transfer`'s keyring must
/// hold the current key. Returns the repository's new format.
pub async fn rotate_key(location: &Path, transfer: Transfer, new_key: &str) -> Result<RepositoryFormat> {
    let location = match location.to_str() {
        Some(l) => parse_location(l)?,
        None => location.to_path_buf(),
    };
    let store = match location.to_str().filter(|l| is_object_store_url(l)) {
        Some(url) => BucketStore::open(url, transfer)?,
        None if directory::is_encoded(&location)? => BucketStore::on_directory(&location, transfer)?,
        None => {
            return Err(cassette_seal::SealError::Disagrees {
                location: location.display().to_string(),
                detail: "this repository is not encrypted, so it has no key to rotate".into(),
            }
            .into());
        }
    };
    store.rotate_key(new_key).await
}

/// A backup repository.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Where it is (a directory or a URL), for messages.
    fn location(&self) -> String;

    /// The directory of a plain directory repository: its stored files are the files
    /// themselves, restorable by hand and hard-linked by an offline restore.
    fn local_root(&self) -> Option<&Path>;

    /// The directory of this machine the repository stores into, plain or encoded: the backup
    /// engine refuses to put backups inside or beside the data directories they protect.
    fn local_directory(&self) -> Option<&Path> {
        self.local_root()
    }

    /// The backups (optionally of one cluster and/or host), sorted by cluster, host, name.
    async fn list(&self, cluster: Option<&str>, host: Option<&str>) -> Result<Vec<BackupSummary>>;

    /// The manifest of a complete backup that [`Store::list`] found.
    async fn manifest(&self, b: &BackupSummary) -> Result<Manifest>;

    /// Checks every file of a complete backup that [`Store::list`] found.
    async fn verify(
        &self,
        b: &BackupSummary,
        depth: Depth,
        parallel: usize,
        on_file: OnFile<'_>,
    ) -> Result<cassette_repo::VerifyReport>;

    /// Deletes a backup that [`Store::list`] found; what other backups still use stays.
    async fn delete(&self, b: &BackupSummary) -> Result<DeleteSummary>;

    /// Deletes what the retention policy in `opts` no longer keeps (optionally of one cluster
    /// and/or host), and what deleted backups left.
    async fn purge(&self, cluster: Option<&str>, host: Option<&str>, opts: &PurgeOptions) -> Result<Vec<NodePurge>>;

    /// Rebuilds the node indexes from the manifests; returns how many backups were indexed.
    async fn rebuild_indexes(&self, cluster: Option<&str>, host: Option<&str>) -> Result<usize>;

    /// Opens backup `b` for writing, taking the repository's lock for the node.
    async fn open_backup(&self, b: &BackupId) -> Result<Box<dyn BackupWriter>>;

    /// Opens backup `b` for restoring, without reading anything: [`locate::locate`] reads its
    /// manifest and explains a backup that is not there.
    fn open_restore(&self, b: &BackupId) -> Result<Box<dyn BackupReader>>;

    /// The archived commitlog segments of a node, without reading anything.
    fn segments(&self, cluster: &str, host_id: &str) -> Result<Box<dyn SegmentArchive>>;
}

/// One backup being written. It holds the repository's lock for the node until dropped.
#[async_trait]
pub trait BackupWriter: Send + Sync {
    /// The backup's directory or URL, for reports and messages.
    fn location(&self) -> PathBuf;

    /// Whether the backup is absent, interrupted or complete. A name that a deleted backup
    /// still holds (its files used by later backups) is refused.
    async fn state(&self) -> Result<BackupState>;

    /// The backup's progress journal (where a resumed run finds what is stored).
    fn journal_path(&self) -> PathBuf;

    /// A run of the backup begins: no index entry may describe it until its manifest is written
    /// (one could be left by a delete killed before it updated the index). Unless `resumed`, a
    /// journal an earlier run of this name left outside the backup is removed.
    fn begin(&self, resumed: bool);

    /// What can stand for snapshot files: what an interrupted run of this backup stored (when
    /// `resumed`; what the journal cannot vouch for under `keyspaces` is removed first, so
    /// that its space is free), and the node's newest other complete backup.
    async fn earlier_copies(&self, resumed: bool, keyspaces: &[String]) -> Result<(StoredIndex, StoredIndex)>;

    /// How many files to store at once, given the request's `--parallel-files`.
    fn parallel_files(&self, requested: usize) -> usize;

    /// Free bytes where the backup's files go, when that is bounded (a directory).
    fn available_bytes(&self) -> Result<Option<u64>>;

    /// Stores `files` (copied verified, or an earlier copy reused), as units of work to run at
    /// most [`BackupWriter::parallel_files`] at a time, each yielding its files' results.
    fn store_files(&self, files: Vec<FileToStore>) -> Vec<BoxFuture<'static, Vec<Stored>>>;

    /// Puts a small metadata file at `relative` (a schema), replacing what is there.
    async fn put_meta(&self, relative: &str, bytes: &[u8]) -> Result<()>;

    /// Makes every file stored so far durable (one filesystem flush; objects are durable once
    /// acknowledged).
    async fn make_durable(&self) -> Result<()>;

    /// After a resume: stored files the manifest does not list are removed.
    async fn remove_strays(&self, manifest: &Manifest) -> Result<()>;

    /// Before the manifest: every file it lists is stored with its size (objects), or durable
    /// (files); the journal is kept beside the backup. Returns the files that are not.
    async fn check_stored(&self, manifest: &Manifest) -> Result<Vec<BadFile>>;

    /// Writes the manifest, create-only: from here on the backup is complete. Then updates the
    /// node index (a cache: a failure there is logged).
    async fn put_manifest(&self, manifest: &Manifest) -> Result<()>;
}

/// One backup being restored.
#[async_trait]
pub trait BackupReader: Send + Sync {
    /// The backup's directory or URL.
    fn location(&self) -> PathBuf;

    /// The backup's directory, when its files can be used in place (an offline restore moves
    /// them into the data directories).
    fn local_dir(&self) -> Option<&Path>;

    /// Reads the manifest (`NotFound`, `Incomplete` as the store reports them).
    async fn read_manifest(&self) -> Result<Manifest>;

    /// Marks the backup as being restored by `host_id`, so that a purge keeps it meanwhile.
    /// Called again as the restore goes on; a store refusing the write is warned about.
    async fn mark_restoring(&self, host_id: &str);

    /// The restore journal of `host_id` for this backup.
    fn restore_journal_path(&self, host_id: &str) -> PathBuf;

    /// The restore journals of this backup's name for every node of its cluster that a shared
    /// repository holds: `(host ID restored, journal)`. Empty when journals are kept locally.
    fn cluster_restore_journals(&self) -> Vec<(String, PathBuf)>;

    /// Where a restore stages SSTables by default: `data_root` is the parent of the node's
    /// first data directory.
    fn default_staging_dir(&self, data_root: Option<&Path>) -> PathBuf;

    /// Checks `files` fully (size, BLAKE3, `Data.db` CRC32) and returns the bad ones.
    async fn verify_files(&self, files: &[&FileEntry], parallel: usize, on_file: OnFile<'_>) -> Result<Vec<BadFile>>;

    /// Fills `dir` (emptied first) with `files`: hard links to the files the verify stage
    /// checked (copies of those an import may rewrite), or downloads verified as they arrive.
    /// The backup's own files are never handed out to be changed.
    async fn fetch_table(&self, files: &[&FileEntry], dir: &Path) -> Result<()>;

    /// Whether [`BackupReader::fetch_table`] checks every file as it arrives (size, BLAKE3,
    /// CRC32) and writes fresh files the restore may move: then a restore stages first and
    /// verifies only what it did not stage (one read of each file, not two).
    fn fetch_verifies(&self) -> bool {
        false
    }
}

/// Runs blocking file work: on a multi-thread runtime the worker is handed over first, so that
/// the runtime's other tasks (an agent's HTTP server, a CQL session) keep being served.
pub(crate) fn blocking<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}
