//! Where a backup goes: a repository directory (hard links, `.partial` + rename, a lock file)
//! or a repository on object storage (uploads, references, a create-only manifest). The
//! engine's stages are the same for both; this module holds what differs.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use cassette_object::{RemoteBackup, RemoteRepo, Transfer};
use cassette_repo::{BackupName, BackupState, Depth, Manifest, ManifestFile, NodeLock, RepoError, RepoLayout};

use crate::BackupError;

/// The backup's destination, with whatever it holds for the job's duration.
pub(crate) enum Dest {
    Local {
        node_dir: PathBuf,
        backup_dir: PathBuf,
        _lock: NodeLock,
    },
    Remote {
        repo: Arc<RemoteRepo>,
        backup: RemoteBackup,
        /// The local progress journal of an upload (object stores cannot append): resuming
        /// needs the same machine, else the backup is uploaded again from the start.
        journal_path: PathBuf,
    },
}

/// Whether `root` (`--backup-dir`) names an object store.
pub fn is_remote(root: &Path) -> bool {
    root.to_str().is_some_and(cassette_object::is_remote_url)
}

impl Dest {
    /// Opens the destination and takes the repository's lock (local only: object stores have
    /// none; the node-wide job lock keeps this node's jobs apart).
    pub async fn open(
        root: &Path,
        transfer: &Transfer,
        cluster: &str,
        host_id: &str,
        name: &BackupName,
    ) -> Result<Dest, BackupError> {
        if let Some(url) = root.to_str().filter(|r| cassette_object::is_remote_url(r)) {
            let repo = Arc::new(RemoteRepo::open(url, transfer.clone())?);
            let backup = repo.backup(cluster, host_id, name)?;
            let journal_path =
                cassette_repo::state::dir_for("uploads", &repo.url_of(&backup.prefix))?.join("journal.jsonl");
            return Ok(Dest::Remote { repo, backup, journal_path });
        }
        let layout = RepoLayout::new(root);
        let node_dir = layout.node_dir(cluster, host_id)?;
        std::fs::create_dir_all(root).map_err(|e| RepoError::io("create backup directory", root, e))?;
        // The repository path policy (`cassette_repo::beneath`): no directory reached through a
        // symbolic link, the backup's own included, and nothing resumed into a tree holding one.
        cassette_repo::beneath::create_dir_all(root, &node_dir)?;
        let lock = NodeLock::acquire(&node_dir)?;
        let backup_dir = layout.checked_backup_dir(cluster, host_id, name)?;
        if let Some((path, what)) = cassette_repo::beneath::find_special(&backup_dir)? {
            return Err(RepoError::Unsafe {
                path,
                problem: format!("the interrupted backup {} holds {what}, which is not resumed into", name.as_str()),
            }
            .into());
        }
        Ok(Dest::Local { node_dir, backup_dir, _lock: lock })
    }

    /// The backup's directory or URL, for reports and messages.
    pub fn location(&self) -> PathBuf {
        match self {
            Dest::Local { backup_dir, .. } => backup_dir.clone(),
            Dest::Remote { repo, backup, .. } => PathBuf::from(repo.url_of(&backup.prefix)),
        }
    }

    pub async fn state(&self) -> Result<BackupState, BackupError> {
        match self {
            Dest::Local { backup_dir, .. } => Ok(BackupState::of(backup_dir)),
            Dest::Remote { repo, backup, .. } => {
                if repo.exists(&backup.tombstone()).await? {
                    return Err(BackupError::InvalidInput(format!(
                        "the name '{}' belonged to a deleted backup whose files later backups still use ({}): choose another name",
                        backup.name,
                        repo.url_of(&backup.prefix)
                    )));
                }
                Ok(repo.state(backup).await?)
            }
        }
    }

    pub fn journal_path(&self) -> PathBuf {
        match self {
            Dest::Local { backup_dir, .. } => RepoLayout::journal_path(backup_dir),
            Dest::Remote { journal_path, .. } => journal_path.clone(),
        }
    }

    /// A fresh (not resumed) remote backup starts with an empty local journal.
    pub fn reset_journal(&self) {
        if let Dest::Remote { journal_path, .. } = self {
            let _ = std::fs::remove_file(journal_path);
        }
    }

    /// Writes a small metadata file at `relative` (schema, a table's schema).
    pub async fn write_meta(&self, relative: &str, bytes: &[u8]) -> Result<(), BackupError> {
        match self {
            Dest::Local { backup_dir, .. } => {
                Ok(cassette_repo::write_file_atomically(&backup_dir.join(relative), bytes)?)
            }
            Dest::Remote { repo, backup, .. } => {
                Ok(repo.put_small(&backup.key(relative), bytes.to_vec(), object_store_overwrite()).await?)
            }
        }
    }

    /// After a resume: stored files that the manifest does not list are removed, so the
    /// backup holds exactly what the manifest lists.
    pub async fn remove_strays(&self, manifest: &Manifest) -> Result<(), BackupError> {
        match self {
            Dest::Local { backup_dir, .. } => remove_local_strays(backup_dir, manifest),
            Dest::Remote { repo, backup, .. } => {
                let listed: std::collections::HashSet<_> = manifest.files().map(|f| backup.key(&f.path)).collect();
                let data: Vec<_> = manifest.keyspaces.iter().map(|k| backup.key(&k.name)).collect();
                let mut strays = Vec::new();
                for prefix in data {
                    for o in repo.objects(&prefix).await? {
                        if !listed.contains(&o.location) {
                            strays.push(o.location);
                        }
                    }
                }
                Ok(cassette_object::gc::delete_many(repo, strays).await?)
            }
        }
    }

    /// Makes every file stored so far durable: one flush of the backup directory's filesystem
    /// (files are copied with deferred durability). Objects are durable once acknowledged.
    pub async fn make_durable(&self) -> Result<(), BackupError> {
        let Dest::Local { backup_dir, .. } = self else { return Ok(()) };
        let dir = backup_dir.clone();
        Ok(tokio::task::spawn_blocking(move || cassette_repo::sync_filesystem(&dir))
            .await
            .expect("flush task panicked")?)
    }

    /// Object stores: every object the manifest lists (uploaded or referenced) is present with
    /// its size, and the journal is stored beside it. Local files were checked as they were
    /// written; a last flush makes them all durable before the manifest.
    pub async fn check_stored(&self, manifest: &Manifest) -> Result<(), BackupError> {
        let Dest::Remote { repo, backup, journal_path } = self else { return self.make_durable().await };
        let files: Vec<_> = manifest.files().collect();
        let bad = cassette_object::verify::check_files(repo, backup, &files, Depth::Quick, &|_| {}).await?;
        if let Some(b) = bad.first() {
            return Err(BackupError::InvalidInput(format!(
                "{} of {} stored objects are not as uploaded (first: {}: {}); the backup stays incomplete: run it again",
                bad.len(),
                files.len(),
                b.path,
                b.problem
            )));
        }
        if journal_path.exists() {
            // Streamed from the file like any upload: with 50,000 files the journal is 17 MB.
            repo.upload_file(journal_path, &backup.key(JOURNAL), None).await?;
        }
        Ok(())
    }

    /// Writes the manifest: from here on the backup is complete. Then updates the node index.
    pub async fn write_manifest(&self, manifest: &Manifest) -> Result<(), BackupError> {
        match self {
            Dest::Local { node_dir, backup_dir, .. } => {
                manifest.write_atomically(backup_dir)?;
                cassette_repo::fault::point("manifest-written");
                if let Err(e) = cassette_repo::index::record(node_dir, manifest) {
                    // The index is a cache: `cassette list` reads the manifest of a backup it lacks.
                    tracing::warn!(node = %node_dir.display(), error = %e, "could not update the node index");
                }
            }
            Dest::Remote { repo, backup, journal_path } => {
                repo.write_manifest(backup, manifest).await?;
                cassette_repo::fault::point("manifest-written");
                // Stamped with the manifest object's size and time, so that listings trust it.
                let stamp = repo.stamp(&backup.manifest()).await.ok().flatten();
                let entry = cassette_repo::IndexEntry::stamped(manifest, stamp);
                if let Err(e) = repo
                    .update_index(&backup.node, |entries| {
                        entries.insert(entry.name.clone(), entry);
                    })
                    .await
                {
                    tracing::warn!(error = %e, "could not update the node index");
                }
                let _ = std::fs::remove_file(journal_path);
            }
        }
        Ok(())
    }

    /// Forgets a stale index entry of this name (local: one could be left by a killed delete).
    pub fn forget_index_entry(&self, name: &str) {
        if let Dest::Local { node_dir, .. } = self
            && let Err(e) = cassette_repo::index::forget(node_dir, &[name])
        {
            tracing::warn!(node = %node_dir.display(), error = %e, "could not update the node index");
        }
    }
}

/// Where a remote backup keeps a copy of its journal, as a local backup does.
const JOURNAL: &str = "cassette-meta/journal.jsonl";

fn object_store_overwrite() -> cassette_object::PutMode {
    cassette_object::PutMode::Overwrite
}

/// Where cassette keeps local state (locks, journals of object-store jobs): see
/// `cassette_repo::state` for the rule and the checks.
pub fn state_dir() -> PathBuf {
    cassette_repo::state::state_dir_path()
}

/// Before a resumed local backup copies anything: every file under its selected keyspaces that
/// `resume` does not vouch for (stored but not journaled, `*.partial`, changed since) is
/// removed. It would be replaced by a copy anyway; removed first, its space is free for the
/// copy, and the free-space check counts only what is still to store.
pub(crate) fn remove_untrusted(
    backup_dir: &Path,
    keyspaces: &[String],
    resume: &crate::dedup::StoredIndex,
) -> Result<(), BackupError> {
    let mut removed = 0u64;
    for ks in keyspaces {
        let mut stack = vec![backup_dir.join(ks)];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            for entry in entries.flatten() {
                let path = entry.path();
                let Ok(kind) = entry.file_type() else { continue };
                if kind.is_dir() {
                    stack.push(path);
                } else if !resume.vouches_for(&path) {
                    std::fs::remove_file(&path).map_err(|e| RepoError::io("remove unjournaled file", &path, e))?;
                    removed += 1;
                }
            }
        }
    }
    if removed > 0 {
        tracing::info!(backup = %backup_dir.display(), removed, "removed files of the interrupted run that its journal does not vouch for");
    }
    Ok(())
}

fn remove_local_strays(backup_dir: &Path, manifest: &Manifest) -> Result<(), BackupError> {
    let listed: std::collections::HashSet<PathBuf> = manifest.files().map(|f| backup_dir.join(&f.path)).collect();
    for ks in &manifest.keyspaces {
        let mut stack = vec![backup_dir.join(&ks.name)];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            for entry in entries.flatten() {
                let path = entry.path();
                // The entry's own type: a link to a directory is a stray, removed as a link,
                // never walked into.
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(path);
                } else if !listed.contains(&path) {
                    std::fs::remove_file(&path).map_err(|e| RepoError::io("remove stale file", &path, e))?;
                }
            }
        }
    }
    Ok(())
}
