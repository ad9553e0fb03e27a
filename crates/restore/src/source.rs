//! Where the backup to restore is read from: a repository directory, or a repository on object
//! storage. On object storage nothing is downloaded whole: `verify` streams every object
//! through the hashes without storing it, and each table's files are then downloaded (and
//! checked again) into the staging directory just before they are imported, so the extra disk
//! a restore needs is the largest table, not the backup.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use cassette_object::{ObjectError, RemoteBackup, RemoteRepo, Transfer};
use cassette_repo::{BackupName, Depth, FileEntry, Manifest};

use crate::locate::{Located, locate};
use crate::{Progress, RestoreError, Stage};

/// The backup being restored.
pub(crate) enum Source {
    Local(PathBuf),
    Remote { repo: Arc<RemoteRepo>, backup: RemoteBackup },
}

impl Source {
    /// Finds the backup `name` of `host_id` in `cluster` under `root` and reads its manifest.
    pub async fn locate(
        root: &Path,
        cluster: &str,
        host_id: &str,
        name: &str,
        transfer: &Transfer,
    ) -> Result<(Source, Manifest), RestoreError> {
        let Some(url) = root.to_str().filter(|r| cassette_object::is_remote_url(r)) else {
            let Located { dir, manifest } = locate(root, cluster, host_id, name)?;
            return Ok((Source::Local(dir), manifest));
        };
        let parsed = BackupName::parse(name).map_err(|e| RestoreError::InvalidInput(e.to_string()))?;
        let repo = Arc::new(RemoteRepo::open(url, transfer.clone())?);
        let backup = repo.backup(cluster, host_id, &parsed)?;
        match repo.read_manifest(&backup).await {
            Ok(m) => Ok((Source::Remote { repo, backup }, m)),
            Err(ObjectError::Incomplete { url }) => Err(RestoreError::Incomplete { path: url }),
            Err(ObjectError::NotFound { url }) => {
                let listed = cassette_object::list_node(&repo, cluster, host_id).await.unwrap_or_default();
                let none = listed.is_empty();
                let mut hint = crate::locate::this_node_backups(listed.into_iter().map(|b| (b.name, b.complete)));
                hint.push_str(if none {
                    "; `cassette list` shows every backup (--from-node restores another node's)"
                } else {
                    ". `cassette list` shows every backup."
                });
                Err(RestoreError::NotFound {
                    name: name.to_string(),
                    cluster: cluster.to_string(),
                    host_id: host_id.to_string(),
                    path: url,
                    hint,
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// On object storage, puts or refreshes this node's restore marker in the backup, so that a
    /// purge on any machine keeps the backup while it is restored (in a directory repository the
    /// restore journal, in the backup, does this). A store that refuses the write (read-only
    /// credentials) is warned about, not fatal: the restore itself only reads.
    pub async fn mark_restoring(&self, host_id: &str) {
        let Source::Remote { repo, backup } = self else { return };
        if let Err(e) = cassette_object::gc::mark_restoring(repo, backup, host_id).await {
            tracing::warn!(
                error = %e,
                "cannot mark the backup as being restored: a purge on another machine could delete it during this restore"
            );
        }
    }

    /// The backup's directory or URL.
    pub fn location(&self) -> PathBuf {
        match self {
            Source::Local(dir) => dir.clone(),
            Source::Remote { repo, backup } => PathBuf::from(repo.url_of(&backup.prefix)),
        }
    }

    pub fn is_remote(&self) -> bool {
        matches!(self, Source::Remote { .. })
    }

    /// The restore journal of this node for this backup: in the backup directory, or (object
    /// storage, which cannot append) in cassette's local state directory.
    pub fn journal_path(&self, host_id: &str) -> PathBuf {
        match self {
            Source::Local(dir) => crate::journal::journal_path(dir, host_id),
            Source::Remote { repo, backup } => {
                cassette_repo::state::dir_path_for("restores", &repo.url_of(&backup.prefix))
                    .join(format!("restore-{host_id}.jsonl"))
            }
        }
    }

    /// The `verify` stage of both restore modes: every file the restore will use, before
    /// anything live is touched. Returns the bytes verified, or `Corrupt` naming every bad file.
    pub async fn verify(
        &self,
        name: &str,
        files: &[&FileEntry],
        parallel: usize,
        progress: &dyn Progress,
    ) -> Result<u64, RestoreError> {
        let dir = match self {
            Source::Local(dir) => return crate::verify::verify_stage(dir, name, files, parallel, progress),
            Source::Remote { .. } => self.location(),
        };
        let Source::Remote { repo, backup } = self else { unreachable!() };
        progress.stage(Stage::Verify, name);
        let bytes: u64 = files.iter().map(|f| f.size).sum();
        progress.add_total(files.len() as u64, bytes);
        let bad =
            cassette_object::verify::check_files(repo, backup, files, Depth::Full, &|s| progress.file_verified(s))
                .await?;
        if !bad.is_empty() {
            return Err(RestoreError::Corrupt { path: dir.display().to_string(), files: bad });
        }
        Ok(bytes)
    }

    /// Fills `dir` (emptied first) with `files`: hard links or copies from a directory,
    /// verified downloads from object storage.
    pub async fn stage_table(&self, files: &[&FileEntry], dir: &Path) -> Result<(), String> {
        match self {
            Source::Local(backup_dir) => crate::stage::stage_table(backup_dir, files, dir).map_err(|e| e.to_string()),
            Source::Remote { repo, backup } => {
                if dir.exists() {
                    std::fs::remove_dir_all(dir).map_err(|e| format!("cannot empty {}: {e}", dir.display()))?;
                }
                std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
                let jobs: Vec<_> = files
                    .iter()
                    .map(|f| {
                        let file_name = f.path.rsplit('/').next().unwrap_or(&f.path).to_string();
                        let dest = dir.join(file_name);
                        let key = backup.data_key(f);
                        async move { repo.download_verified(&key, f, &dest).await }
                    })
                    .collect();
                use futures::StreamExt;
                let mut results = futures::stream::iter(jobs).buffer_unordered(repo.transfer().parallel_files.max(1));
                while let Some(r) = results.next().await {
                    r.map_err(|e| format!("downloading from object storage failed: {e}"))?;
                }
                Ok(())
            }
        }
    }
}
