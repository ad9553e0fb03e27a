//! [`Repository`]: a backup repository of either kind, a directory (`cassette-repo`) or an
//! object store ([`RemoteRepo`]), behind the operations the CLI and the agent offer on it, so
//! that they are written once.

use std::path::{Path, PathBuf};

use cassette_repo::purge::{NodePurge, PurgeOptions};
use cassette_repo::{BackupName, BackupSummary, DeleteSummary, Depth, Manifest, ManifestFile, VerifyReport};

use crate::error::{ObjectError, Result};
use crate::repo::{RemoteRepo, Transfer, is_remote_url};

/// What `--backup-dir` accepts, for messages.
pub const ACCEPTED_LOCATIONS: &str =
    "a directory, s3://BUCKET/PREFIX, gs://BUCKET/PREFIX, az://CONTAINER/PREFIX or file:///PATH";

/// Reads a backup location (`--backup-dir`, `CASSANDRA_BACKUP_DIRECTORY`): a directory, an
/// object store URL that [`is_remote_url`] accepts, or `file:///PATH` (a directory). Anything
/// else that looks like a URL (`s3:/b`, `S3://b`, `gcs://b`) is refused: taken as a relative
/// directory, it would put backups in `./s3:/b` and report success.
pub fn parse_location(location: &str) -> Result<PathBuf> {
    if is_remote_url(location) {
        return Ok(PathBuf::from(location));
    }
    if let Some(path) = location.strip_prefix("file://") {
        if path.starts_with('/') {
            return Ok(PathBuf::from(path));
        }
        return Err(ObjectError::InvalidUrl {
            url: location.to_string(),
            reason: "a file:// URL takes an absolute path (file:///backup); use the directory itself".into(),
        });
    }
    if looks_like_url(location) {
        return Err(ObjectError::InvalidUrl {
            url: location.to_string(),
            reason: format!(
                "it looks like a URL, but the scheme is not one cassette knows (they are lower case): use {ACCEPTED_LOCATIONS} (a directory whose name has ':' in it: write ./{location})"
            ),
        });
    }
    Ok(PathBuf::from(location))
}

/// `scheme:/...`: a letter, then letters, digits, `+`, `-` or `.`, then `:/` (RFC 3986's scheme).
fn looks_like_url(location: &str) -> bool {
    let Some((scheme, rest)) = location.split_once(':') else { return false };
    rest.starts_with('/')
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

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
        if let Some(l) = location.to_str() {
            parse_location(l)?;
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations() {
        for ok in ["./backup", "/backup", "backup", "s3://b/x", "gs://b", "az://c/p", "memory://", "a:b", "./s3:/b"] {
            assert_eq!(parse_location(ok).unwrap(), PathBuf::from(ok), "{ok}");
        }
        assert_eq!(parse_location("file:///srv/backup").unwrap(), PathBuf::from("/srv/backup"));
        for bad in ["s3:/b/x", "S3://b/x", "gcs://b", "Gs://b", "http://h/x", "file://host/x", "s3+x:/b", "c:/x"] {
            let e = parse_location(bad).unwrap_err().to_string();
            assert!(e.contains(bad) && (e.contains("s3://BUCKET/PREFIX") || e.contains("file:///")), "{bad}: {e}");
        }
    }
}
