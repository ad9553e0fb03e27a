//! [`Repository`]: a backup repository of either kind, a directory (`cassette-repo`) or an
//! object store ([`RemoteRepo`]), behind the operations the CLI and the agent offer on it, so
//! that they are written once.

use std::path::{Path, PathBuf};

use cassette_repo::purge::{NodePurge, PurgeOptions};
use cassette_repo::{BackupName, BackupSummary, DeleteSummary, Depth, Manifest, VerifyReport};

use crate::error::Result;
use crate::repo::{RemoteRepo, Transfer, is_remote_url};

/// A backup repository: a directory or an object store.
#[derive(Debug, Clone)]
pub enum Repository {
    /// A directory (`--backup-dir /backup`).
    Local(PathBuf),
    /// An object store (`--backup-dir s3://bucket/prefix`).
    Remote(RemoteRepo),
}

impl Repository {
    /// The repository at `location` (a directory, or a URL that [`is_remote_url`] accepts).
    pub fn open(location: &Path, transfer: Transfer) -> Result<Repository> {
        match location.to_str().filter(|l| is_remote_url(l)) {
            Some(url) => Ok(Repository::Remote(RemoteRepo::open(url, transfer)?)),
            None => Ok(Repository::Local(location.to_path_buf())),
        }
    }

    /// The backups (optionally of one cluster and/or host).
    pub async fn list(&self, cluster: Option<&str>, host: Option<&str>) -> Result<Vec<BackupSummary>> {
        match self {
            Repository::Local(root) => {
                if !root.exists() {
                    return Ok(Vec::new());
                }
                Ok(blocking(|| cassette_repo::list_backups(root, cluster, host))?)
            }
            Repository::Remote(r) => crate::list::list_backups(r, cluster, host).await,
        }
    }

    /// The manifest of a complete backup found by [`Repository::list`].
    pub async fn manifest(&self, b: &BackupSummary) -> Result<Manifest> {
        match self {
            Repository::Local(_) => Ok(blocking(|| Manifest::read(&b.path))?),
            Repository::Remote(r) => {
                r.read_manifest(&r.backup(&b.cluster, &b.host_id, &BackupName::parse(&b.name)?)?).await
            }
        }
    }

    /// Checks every file of a complete backup found by [`Repository::list`].
    pub async fn verify(
        &self,
        b: &BackupSummary,
        depth: Depth,
        parallel: usize,
        on_file: &(dyn Fn(u64) + Sync),
    ) -> Result<VerifyReport> {
        match self {
            Repository::Local(_) => Ok(blocking(|| cassette_repo::verify_backup(&b.path, depth, parallel, on_file))?),
            Repository::Remote(r) => {
                let rb = r.backup(&b.cluster, &b.host_id, &BackupName::parse(&b.name)?)?;
                crate::verify::verify_backup(r, &rb, depth, on_file).await
            }
        }
    }

    /// Deletes a backup found by [`Repository::list`]; what other backups share stays.
    pub async fn delete(&self, b: &BackupSummary) -> Result<DeleteSummary> {
        match self {
            Repository::Local(_) => Ok(blocking(|| cassette_repo::delete_backup(&b.path))?),
            Repository::Remote(r) => {
                crate::gc::delete_backup(r, &b.cluster, &b.host_id, &BackupName::parse(&b.name)?).await
            }
        }
    }

    /// Purges by `opts` (optionally one cluster and/or host).
    pub async fn purge(
        &self,
        cluster: Option<&str>,
        host: Option<&str>,
        opts: &PurgeOptions,
    ) -> Result<Vec<NodePurge>> {
        match self {
            Repository::Local(root) => Ok(blocking(|| cassette_repo::purge(root, cluster, host, opts))?),
            Repository::Remote(r) => crate::gc::purge(r, cluster, host, opts).await,
        }
    }

    /// Whether this is an object store.
    pub fn is_remote(&self) -> bool {
        matches!(self, Repository::Remote(_))
    }
}

/// Runs blocking file work: on a multi-thread runtime the worker is handed over first, so that
/// the runtime's other tasks (an agent's HTTP server) keep being served.
fn blocking<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}
