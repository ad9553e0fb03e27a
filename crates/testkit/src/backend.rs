//! Where a test's backups go, whatever the kind: a backup directory on another filesystem than
//! the node's data, or a bucket on one of the object-storage test servers of [`crate::s3`].
//!
//! A [`Backend`] gives a test body everything it needs without asking which kind it runs on:
//! the `--backup-dir` location ([`Backend::location`]), the environment cassette needs
//! ([`Backend::env`]), what is stored below the location ([`Backend::stored`]: path → size and
//! a version that changes whenever the file or object is written again), and ways to read
//! ([`Backend::read`]) and to damage ([`Backend::corrupt`]) one stored file. On a directory
//! these go through the filesystem; on an object store through the server's own API.
//!
//! ```no_run
//! use cassette_testkit::backend::{Backend, BackendKind};
//! let backend = Backend::start(BackendKind::Directory);
//! // run cassette with `.envs(backend.env())` and `--backup-dir backend.location()`.
//! # let _ = backend.location();
//! ```

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::s3::{StoreKind, StoreServer};

/// The prefix, inside the bucket, under which object-store backends keep the backups.
pub const STORE_PREFIX: &str = "backups";

/// Which kind of repository a [`Backend`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackendKind {
    /// A backup directory on tmpfs (`/dev/shm`), another filesystem than the node's data, so the
    /// same-disk safety check passes; later backups reuse stored files by hard links.
    Directory,
    /// A bucket on an object-storage test server; later backups reuse stored objects by
    /// reference (the manifest names the object that holds the bytes).
    Store(StoreKind),
}

impl BackendKind {
    /// The five kinds the backend tests run on.
    pub const ALL: [BackendKind; 5] = [
        BackendKind::Directory,
        BackendKind::Store(StoreKind::S3sFs),
        BackendKind::Store(StoreKind::Moto),
        BackendKind::Store(StoreKind::FakeGcs),
        BackendKind::Store(StoreKind::Azurite),
    ];

    /// `directory`, or the store's name (`s3s-fs`, `moto`, `fake-gcs`, `azurite`).
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Directory => "directory",
            BackendKind::Store(kind) => kind.name(),
        }
    }
}

/// One stored file (directory) or object (store), as [`Backend::stored`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFile {
    /// Its size in bytes.
    pub size: u64,
    /// What changes whenever it is written again: a directory's inode and modification time;
    /// a store's ETag, version (generation) and last-modified time.
    pub version: String,
}

/// A repository for one test, empty at first: removed (directory) or stopped (server) on drop.
#[derive(Debug)]
pub struct Backend {
    /// Which kind this is.
    pub kind: BackendKind,
    /// The backup directory (directory kind only).
    dir: Option<tempfile::TempDir>,
    /// The object-storage server (store kinds only).
    server: Option<StoreServer>,
    /// cassette's state directory (`CASSETTE_STATE_DIR`: its local journal of uploads), one per
    /// backend so that tests do not share it.
    state: tempfile::TempDir,
}

impl Backend {
    /// A new, empty repository of this kind: a fresh directory under `/dev/shm`, or a newly
    /// started server with an empty bucket. Panics (never skips) if either cannot be had.
    pub fn start(kind: BackendKind) -> Backend {
        let (dir, server) = match kind {
            BackendKind::Directory => {
                let shm = Path::new("/dev/shm");
                assert!(shm.is_dir(), "the directory backend needs /dev/shm (tmpfs) as a second filesystem");
                (Some(tempfile::tempdir_in(shm).expect("a backup directory in /dev/shm")), None)
            }
            BackendKind::Store(store) => (None, Some(StoreServer::start(store))),
        };
        let state = tempfile::tempdir().expect("a state directory for cassette");
        Backend { kind, dir, server, state }
    }

    /// What `--backup-dir` is given: the directory's path, or `<scheme>://cassette/backups`.
    pub fn location(&self) -> String {
        match (&self.dir, &self.server) {
            (Some(dir), _) => dir.path().to_string_lossy().into_owned(),
            (None, Some(server)) => server.url(STORE_PREFIX),
            (None, None) => unreachable!("a backend is a directory or a server"),
        }
    }

    /// The environment cassette needs for this backend: its own state directory, and a store's
    /// endpoint and credentials ([`StoreServer::env`]).
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = self.server.as_ref().map(StoreServer::env).unwrap_or_default();
        env.push(("CASSETTE_STATE_DIR".to_string(), self.state.path().to_string_lossy().into_owned()));
        env
    }

    /// The object-storage server, for a check only a store can make (moto's request log).
    pub fn server(&self) -> Option<&StoreServer> {
        self.server.as_ref()
    }

    /// Everything stored below [`Backend::location`], by '/'-separated path relative to it
    /// (e.g. `solo/<host id>/<backup>/<keyspace>/<table>/<file>`), sorted.
    pub async fn stored(&self) -> BTreeMap<String, StoredFile> {
        match (&self.dir, &self.server) {
            (Some(dir), _) => {
                let mut out = BTreeMap::new();
                walk(dir.path(), dir.path(), &mut out);
                out
            }
            (None, Some(server)) => server
                .objects()
                .await
                .into_iter()
                .filter_map(|(key, meta)| {
                    let path = key.strip_prefix(&format!("{STORE_PREFIX}/"))?.to_string();
                    let version = format!("{:?} {:?} {}", meta.e_tag, meta.version, meta.last_modified);
                    Some((path, StoredFile { size: meta.size, version }))
                })
                .collect(),
            (None, None) => unreachable!("a backend is a directory or a server"),
        }
    }

    /// The bytes stored at `path` (relative to [`Backend::location`]).
    pub async fn read(&self, path: &str) -> Vec<u8> {
        match (&self.dir, &self.server) {
            (Some(dir), _) => {
                let file = dir.path().join(path);
                std::fs::read(&file).unwrap_or_else(|e| panic!("read {}: {e}", file.display()))
            }
            (None, Some(server)) => server.get(&format!("{STORE_PREFIX}/{path}")).await,
            (None, None) => unreachable!("a backend is a directory or a server"),
        }
    }

    /// Flips one bit in the middle of the file stored at `path`; its size stays the same. In a
    /// directory the file is first replaced by a copy of its own, so that the backups sharing
    /// it through hard links keep the good bytes.
    pub async fn corrupt(&self, path: &str) {
        let mut bytes = self.read(path).await;
        assert!(!bytes.is_empty(), "{path} is empty: nothing to corrupt");
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x10;
        match (&self.dir, &self.server) {
            (Some(dir), _) => {
                let file = dir.path().join(path);
                let copy = file.with_extension("corrupted-copy");
                std::fs::write(&copy, &bytes).unwrap_or_else(|e| panic!("write {}: {e}", copy.display()));
                std::fs::rename(&copy, &file).unwrap_or_else(|e| panic!("replace {}: {e}", file.display()));
            }
            (None, Some(server)) => server.put(&format!("{STORE_PREFIX}/{path}"), bytes).await,
            (None, None) => unreachable!("a backend is a directory or a server"),
        }
    }
}

/// Every regular file below `dir`, by path relative to `root`.
fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, StoredFile>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.filter_map(|e| e.ok()) {
        let path: PathBuf = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else { continue };
        if meta.is_dir() {
            walk(root, &path, out);
        } else if meta.is_file() {
            let rel = path.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
            let version = format!("inode {} mtime {}.{:09}", meta.ino(), meta.mtime(), meta.mtime_nsec());
            out.insert(rel, StoredFile { size: meta.len(), version });
        }
    }
}
