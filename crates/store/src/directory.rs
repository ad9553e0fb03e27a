//! The directory store: a repository directory (`cassette-repo`). Files are copied verified with
//! `.partial` + rename, files an earlier backup stored are hard-linked, the node's `.lock` file
//! keeps writers apart, and every backup stays a complete tree that `cp` can restore.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use cassette_object::Transfer;
use cassette_repo::RepositoryFormat;
use cassette_repo::purge::{NodePurge, PurgeOptions};
use cassette_repo::{
    BackupState, BackupSummary, BadFile, DeleteSummary, Depth, Durability, FileEntry, LinkOutcome, Manifest,
    ManifestFile, NodeLock, RepoError, RepoLayout, VerifyReport,
};
use futures::future::BoxFuture;

use crate::reuse::{FileToStore, Reuse, Stored, StoredIndex};
use crate::{BackupId, BackupReader, BackupWriter, OnFile, Result, Store, blocking};

/// A repository directory (`--backup-dir /backup`).
#[derive(Debug, Clone)]
pub struct DirectoryStore {
    root: PathBuf,
}

impl DirectoryStore {
    /// The repository at `root` (not created until a backup is written).
    pub fn new(root: PathBuf, _transfer: Transfer) -> DirectoryStore {
        DirectoryStore { root }
    }

    /// Refuses a repository a newer cassette format holds; with `create`, writes this
    /// format's file into a repository that has none.
    fn check_format(&self, create: bool) -> Result<()> {
        let path = self.root.join(cassette_repo::layout::REPOSITORY_FORMAT_FILE);
        match cassette_repo::fsutil::read_regular(&path)? {
            Some(bytes) => Ok(RepositoryFormat::from_json(&bytes).and_then(|f| f.check()).map_err(RepoError::from)?),
            None if create => Ok(cassette_repo::write_file_atomically(&path, &RepositoryFormat::current().to_json())?),
            None => Ok(()),
        }
    }

    fn backup_dir(&self, b: &BackupId) -> Result<PathBuf> {
        Ok(RepoLayout::new(&self.root).checked_backup_dir(&b.cluster, &b.host_id, &b.name)?)
    }
}

/// Makes a new repository directory at `root` with `format`: refused where a repository is
/// (a format file, or any backup).
pub(crate) fn init(root: &Path, format: &RepositoryFormat) -> Result<(), RepoError> {
    std::fs::create_dir_all(root).map_err(|e| RepoError::io("create repository directory", root, e))?;
    let taken = std::fs::read_dir(root)
        .map_err(|e| RepoError::io("read repository directory", root, e))?
        .flatten()
        .any(|e| !e.file_name().to_string_lossy().starts_with('.'));
    if taken {
        return Err(RepoError::AlreadyExists { path: root.to_path_buf() });
    }
    cassette_repo::write_file_atomically(&root.join(cassette_repo::layout::REPOSITORY_FORMAT_FILE), &format.to_json())
}

/// Whether the repository directory at `root` is encoded (its format file says so).
pub(crate) fn is_encoded(root: &Path) -> Result<bool> {
    let path = root.join(cassette_repo::layout::REPOSITORY_FORMAT_FILE);
    match cassette_repo::fsutil::read_regular(&path)? {
        Some(bytes) => {
            let format = RepositoryFormat::from_json(&bytes).map_err(RepoError::from)?;
            format.check().map_err(RepoError::from)?;
            Ok(!format.encoding().is_plain())
        }
        None => Ok(false),
    }
}

#[async_trait]
impl Store for DirectoryStore {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn local_root(&self) -> Option<&Path> {
        Some(&self.root)
    }

    async fn list(&self, cluster: Option<&str>, host: Option<&str>) -> Result<Vec<BackupSummary>> {
        if !self.root.exists() {
            return Ok(Vec::new());
        }
        self.check_format(false)?;
        Ok(blocking(|| cassette_repo::list_backups(&self.root, cluster, host))?)
    }

    async fn manifest(&self, b: &BackupSummary) -> Result<Manifest> {
        let dir = self.backup_dir(&BackupId::of(b)?)?;
        Ok(blocking(|| Manifest::read(&dir))?)
    }

    async fn verify(
        &self,
        b: &BackupSummary,
        depth: Depth,
        parallel: usize,
        on_file: OnFile<'_>,
    ) -> Result<VerifyReport> {
        let dir = self.backup_dir(&BackupId::of(b)?)?;
        Ok(blocking(|| cassette_repo::verify_backup(&dir, depth, parallel, on_file))?)
    }

    async fn delete(&self, b: &BackupSummary) -> Result<DeleteSummary> {
        let dir = self.backup_dir(&BackupId::of(b)?)?;
        Ok(blocking(|| cassette_repo::delete_backup(&dir))?)
    }

    async fn purge(&self, cluster: Option<&str>, host: Option<&str>, opts: &PurgeOptions) -> Result<Vec<NodePurge>> {
        Ok(blocking(|| cassette_repo::purge(&self.root, cluster, host, opts))?)
    }

    async fn rebuild_indexes(&self, cluster: Option<&str>, host: Option<&str>) -> Result<usize> {
        Ok(blocking(|| cassette_repo::rebuild_indexes(&self.root, cluster, host))?)
    }

    async fn open_backup(&self, b: &BackupId) -> Result<Box<dyn BackupWriter>> {
        let root = &self.root;
        let node_dir = RepoLayout::new(root).node_dir(&b.cluster, &b.host_id)?;
        std::fs::create_dir_all(root).map_err(|e| RepoError::io("create backup directory", root, e))?;
        self.check_format(true)?;
        // The repository path policy (`cassette_repo::beneath`): no directory reached through a
        // symbolic link, the backup's own included, and nothing resumed into a tree holding one.
        cassette_repo::beneath::create_dir_all(root, &node_dir)?;
        let lock = NodeLock::acquire(&node_dir)?;
        let backup_dir = self.backup_dir(b)?;
        if let Some((path, what)) = cassette_repo::beneath::find_special(&backup_dir)? {
            return Err(RepoError::Unsafe {
                path,
                problem: format!("the interrupted backup {} holds {what}, which is not resumed into", b.name.as_str()),
            }
            .into());
        }
        Ok(Box::new(DirectoryWriter { node_dir, backup_dir, name: b.name.to_string(), _lock: lock }))
    }

    fn segments(&self, cluster: &str, host_id: &str) -> Result<Box<dyn crate::SegmentArchive>> {
        if self.root.exists() {
            self.check_format(false)?;
        }
        Ok(Box::new(crate::segments::directory(&self.root, cluster, host_id)?))
    }

    fn open_restore(&self, b: &BackupId) -> Result<Box<dyn BackupReader>> {
        if self.root.exists() {
            self.check_format(false)?;
        }
        let dir = self.backup_dir(b)?;
        Ok(Box::new(DirectoryReader {
            root: self.root.clone(),
            cluster: b.cluster.clone(),
            name: b.name.to_string(),
            dir,
        }))
    }
}

struct DirectoryWriter {
    node_dir: PathBuf,
    backup_dir: PathBuf,
    name: String,
    _lock: NodeLock,
}

#[async_trait]
impl BackupWriter for DirectoryWriter {
    fn location(&self) -> PathBuf {
        self.backup_dir.clone()
    }

    async fn state(&self) -> Result<BackupState> {
        Ok(BackupState::of(&self.backup_dir))
    }

    fn journal_path(&self) -> PathBuf {
        RepoLayout::journal_path(&self.backup_dir)
    }

    fn begin(&self, _resumed: bool) {
        // The journal lives in the backup itself.
        if let Err(e) = cassette_repo::index::forget(&self.node_dir, &[&self.name]) {
            tracing::warn!(node = %self.node_dir.display(), error = %e, "could not update the node index");
        }
    }

    async fn earlier_copies(&self, resumed: bool, keyspaces: &[String]) -> Result<(StoredIndex, StoredIndex)> {
        let resume = if resumed {
            // What the interrupted run stored and the journal cannot vouch for is removed: it
            // would be copied again anyway, and it holds the space the copy needs.
            let (dir, keyspaces) = (self.backup_dir.clone(), keyspaces.to_vec());
            tokio::task::spawn_blocking(move || {
                let resume = StoredIndex::from_journal(&dir);
                remove_untrusted(&dir, &keyspaces, &resume).map(|()| resume)
            })
            .await
            .expect("resume task panicked")?
        } else {
            StoredIndex::default()
        };
        let (node_dir, name) = (self.node_dir.clone(), self.name.clone());
        let previous = tokio::task::spawn_blocking(move || StoredIndex::from_previous_backup(&node_dir, &name))
            .await
            .expect("index task panicked");
        Ok((resume, previous))
    }

    fn parallel_files(&self, requested: usize) -> usize {
        requested
    }

    fn available_bytes(&self) -> Result<Option<u64>> {
        let dir = &self.backup_dir;
        Ok(Some(cassette_repo::available_bytes(dir.parent().unwrap_or(dir))?))
    }

    fn store_files(&self, files: Vec<FileToStore>) -> Vec<BoxFuture<'static, Vec<Stored>>> {
        // Files whose earlier copy is linked or kept are metadata work: done in batches on one
        // blocking thread each, not a task per file (8,000 hand-offs cost more than the links).
        let mut jobs: Vec<BoxFuture<'static, Vec<Stored>>> = Vec::new();
        let mut batch = Vec::new();
        for f in files {
            let dest = self.backup_dir.join(&f.path);
            if matches!(f.reuse, Reuse::None) {
                jobs.push(Box::pin(in_blocking(vec![(f, dest)])));
            } else {
                batch.push((f, dest));
                if batch.len() == LINK_BATCH {
                    jobs.push(Box::pin(in_blocking(std::mem::take(&mut batch))));
                }
            }
        }
        if !batch.is_empty() {
            jobs.push(Box::pin(in_blocking(batch)));
        }
        jobs
    }

    async fn put_meta(&self, relative: &str, bytes: &[u8]) -> Result<()> {
        Ok(cassette_repo::write_file_atomically(&self.backup_dir.join(relative), bytes)?)
    }

    async fn make_durable(&self) -> Result<()> {
        let dir = self.backup_dir.clone();
        Ok(tokio::task::spawn_blocking(move || cassette_repo::sync_filesystem(&dir))
            .await
            .expect("flush task panicked")?)
    }

    async fn remove_strays(&self, manifest: &Manifest) -> Result<()> {
        Ok(remove_strays(&self.backup_dir, manifest)?)
    }

    async fn check_stored(&self, _manifest: &Manifest) -> Result<Vec<BadFile>> {
        // Each file was checked as it was written; a last flush makes them all durable.
        self.make_durable().await?;
        Ok(Vec::new())
    }

    async fn put_manifest(&self, manifest: &Manifest) -> Result<()> {
        manifest.write_atomically(&self.backup_dir)?;
        cassette_repo::fault::point("manifest-written");
        if let Err(e) = cassette_repo::index::record(&self.node_dir, manifest) {
            // The index is a cache: `cassette list` reads the manifest of a backup it lacks.
            tracing::warn!(node = %self.node_dir.display(), error = %e, "could not update the node index");
        }
        Ok(())
    }
}

/// How many linked or kept files one blocking task stores.
const LINK_BATCH: usize = 512;

/// Stores files one after the other on a blocking thread.
async fn in_blocking(files: Vec<(FileToStore, PathBuf)>) -> Vec<Stored> {
    tokio::task::spawn_blocking(move || files.into_iter().map(|(f, dest)| store_one(f, dest)).collect())
        .await
        .unwrap_or_else(|e| vec![Err(format!("copy task failed: {e}"))])
}

/// Stores one file at `dest`; returns its manifest entry and whether bytes were copied.
fn store_one(f: FileToStore, dest: PathBuf) -> Stored {
    let path = f.path;
    match f.reuse {
        Reuse::Kept(copy) => Ok((FileEntry { path, ..copy.entry }, false)),
        Reuse::Earlier(copy) => {
            // Replaces whatever `dest` holds (an interrupted run's leftover) atomically.
            let outcome =
                cassette_repo::link_or_copy_with(&copy.path, &dest, Durability::Deferred).map_err(|e| e.to_string())?;
            let mut entry = FileEntry { path, reused_from: copy.backup.clone(), ..copy.entry.clone() };
            if let LinkOutcome::Copied(stored) = outcome {
                if stored.blake3 != copy.entry.blake3 {
                    return Err(format!(
                        "the stored copy {} no longer matches its manifest hash: the earlier backup is damaged (run `cassette verify`)",
                        copy.path.display()
                    ));
                }
                entry.reused_from = None;
                return Ok((entry, true));
            }
            Ok((entry, false))
        }
        Reuse::None => {
            let stored = cassette_repo::copy_verified_with(&f.source, &dest, f.expected_crc32, Durability::Deferred)
                .map_err(|e| e.to_string())?;
            Ok((stored.to_entry(path, f.expected_crc32), true))
        }
    }
}

/// Before a resumed backup copies anything: every file under its selected keyspaces that
/// `resume` does not vouch for (stored but not journaled, `*.partial`, changed since) is
/// removed. It would be replaced by a copy anyway; removed first, its space is free for the
/// copy, and the free-space check counts only what is still to store.
fn remove_untrusted(backup_dir: &Path, keyspaces: &[String], resume: &StoredIndex) -> Result<(), RepoError> {
    let removed = remove_files_under(backup_dir, keyspaces.iter().map(String::as_str), |p| !resume.vouches_for(p))?;
    if removed > 0 {
        tracing::info!(backup = %backup_dir.display(), removed, "removed files of the interrupted run that its journal does not vouch for");
    }
    Ok(())
}

fn remove_strays(backup_dir: &Path, manifest: &Manifest) -> Result<(), RepoError> {
    let listed: std::collections::HashSet<PathBuf> = manifest.files().map(|f| backup_dir.join(&f.path)).collect();
    remove_files_under(backup_dir, manifest.keyspaces.iter().map(|k| k.name.as_str()), |p| !listed.contains(p))?;
    Ok(())
}

/// Removes every file under `backup_dir/<keyspace>` for which `remove` says so; returns how
/// many. The entry's own type decides: a link to a directory is removed as a link, never
/// walked into.
fn remove_files_under<'k>(
    backup_dir: &Path,
    keyspaces: impl Iterator<Item = &'k str>,
    remove: impl Fn(&Path) -> bool,
) -> Result<u64, RepoError> {
    let mut removed = 0;
    for ks in keyspaces {
        let mut stack = vec![backup_dir.join(ks)];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            for entry in entries.flatten() {
                let path = entry.path();
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(path);
                } else if remove(&path) {
                    std::fs::remove_file(&path).map_err(|e| RepoError::io("remove stale file", &path, e))?;
                    removed += 1;
                }
            }
        }
    }
    Ok(removed)
}

struct DirectoryReader {
    root: PathBuf,
    cluster: String,
    name: String,
    dir: PathBuf,
}

/// The restore journal of `host_id` in the backup directory `backup_dir`: a purge keeps a
/// backup that holds a recent one.
pub fn restore_journal_in(backup_dir: &Path, host_id: &str) -> PathBuf {
    RepoLayout::meta_dir(backup_dir).join(format!("restore-{host_id}.jsonl"))
}

/// Components Cassandra can rewrite during or after an import: never hard-linked from a
/// backup, always copied.
pub const REWRITTEN: &[&str] = &["Statistics.db", "Summary.db"];

#[async_trait]
impl BackupReader for DirectoryReader {
    fn location(&self) -> PathBuf {
        self.dir.clone()
    }

    fn local_dir(&self) -> Option<&Path> {
        Some(&self.dir)
    }

    async fn read_manifest(&self) -> Result<Manifest> {
        Ok(blocking(|| Manifest::read(&self.dir))?)
    }

    async fn mark_restoring(&self, _host_id: &str) {
        // The restore journal, written in the backup, is the mark a purge honours.
    }

    fn restore_journal_path(&self, host_id: &str) -> PathBuf {
        restore_journal_in(&self.dir, host_id)
    }

    fn cluster_restore_journals(&self) -> Vec<(String, PathBuf)> {
        let mut out = Vec::new();
        let Ok(cluster_dir) = cassette_repo::path_component("cluster name", &self.cluster).map(|c| self.root.join(c))
        else {
            return out;
        };
        let Ok(hosts) = std::fs::read_dir(&cluster_dir) else { return out };
        for host in hosts.flatten() {
            let meta = RepoLayout::meta_dir(&host.path().join(&self.name));
            let Ok(entries) = std::fs::read_dir(&meta) else { continue };
            for e in entries.flatten() {
                let file = e.file_name().to_string_lossy().into_owned();
                if let Some(restored) = file.strip_prefix("restore-").and_then(|f| f.strip_suffix(".jsonl")) {
                    out.push((restored.to_string(), e.path()));
                }
            }
        }
        out
    }

    fn default_staging_dir(&self, _data_root: Option<&Path>) -> PathBuf {
        // Beside the backups, on their filesystem: staged files are hard links, not copies.
        self.root.join(cassette_repo::layout::RESTORE_STAGING_DIR)
    }

    async fn verify_files(&self, files: &[&FileEntry], parallel: usize, on_file: OnFile<'_>) -> Result<Vec<BadFile>> {
        Ok(blocking(|| cassette_repo::check_files(&self.dir, files, Depth::Full, parallel, on_file)))
    }

    async fn fetch_table(&self, files: &[&FileEntry], dir: &Path) -> Result<()> {
        blocking(|| {
            empty_dir(dir)?;
            for f in files {
                let src = self.dir.join(&f.path);
                let name = f.path.rsplit('/').next().unwrap_or(&f.path);
                let dst = dir.join(name);
                if REWRITTEN.iter().any(|c| name.ends_with(c)) {
                    cassette_repo::copy_verified(&src, &dst, None)?;
                } else {
                    cassette_repo::link_or_copy(&src, &dst)?;
                }
            }
            Ok(())
        })
    }
}

/// Empties `dir` (created if missing) for a table's staged files.
pub(crate) fn empty_dir(dir: &Path) -> Result<(), RepoError> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| RepoError::io("empty staging directory", dir, e))?;
    }
    std::fs::create_dir_all(dir).map_err(|e| RepoError::io("create staging directory", dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> BackupId {
        BackupId { cluster: "c".into(), host_id: "h".into(), name: cassette_repo::BackupName::parse("b").unwrap() }
    }

    #[tokio::test]
    async fn a_new_repository_gets_the_format_file_and_a_newer_format_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let store = DirectoryStore::new(d.path().to_path_buf(), Transfer::default());
        drop(store.open_backup(&id()).await.unwrap());
        let file = d.path().join(cassette_repo::layout::REPOSITORY_FORMAT_FILE);
        let written = RepositoryFormat::from_json(&std::fs::read(&file).unwrap()).unwrap();
        assert_eq!(written.version, cassette_repo::RepositoryFormat::current().version);

        let newer = RepositoryFormat { version: cassette_format::repository::REPOSITORY_VERSION + 1, ..written };
        std::fs::write(&file, newer.to_json()).unwrap();
        for e in [
            store.list(None, None).await.unwrap_err().to_string(),
            store.open_backup(&id()).await.err().unwrap().to_string(),
            store.open_restore(&id()).err().unwrap().to_string(),
        ] {
            assert!(e.contains("upgrade cassette"), "{e}");
        }
    }
}
