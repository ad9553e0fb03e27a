//! The object store: a repository in an S3 bucket (or an S3-compatible server's), a GCS bucket
//! or an Azure container (`cassette-object`). Files an earlier backup uploaded are referenced,
//! not uploaded again; the manifest is put create-only; progress journals are kept in the local
//! state directory, since objects cannot be appended to.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use cassette_object::{PutMode, RemoteBackup, RemoteRepo, Transfer};
use cassette_repo::RepositoryFormat;
use cassette_repo::purge::{NodePurge, PurgeOptions};
use cassette_repo::{
    BackupName, BackupState, BackupSummary, BadFile, DeleteSummary, Depth, FileEntry, Manifest, VerifyReport,
};
use futures::StreamExt;
use futures::future::BoxFuture;

use crate::reuse::{FileToStore, Reuse, Stored, StoredIndex};
use crate::{BackupId, BackupReader, BackupWriter, OnFile, Result, Store, StoreError};

/// A repository on object storage (`--backup-dir s3://bucket/prefix`, `gs://`, `az://`).
#[derive(Debug, Clone)]
pub struct BucketStore {
    repo: Arc<RemoteRepo>,
    /// The directory of an encoded directory repository.
    directory: Option<PathBuf>,
}

/// Where a backup on object storage keeps a copy of its journal, as a directory backup does.
const JOURNAL: &str = "cassette-meta/journal.jsonl";

impl BucketStore {
    /// The repository at `url`.
    pub fn open(url: &str, transfer: Transfer) -> Result<BucketStore> {
        Ok(BucketStore { repo: Arc::new(RemoteRepo::open(url, transfer)?), directory: None })
    }

    /// An encoded repository directory, as objects read and written beneath it with no
    /// symbolic link followed (`cassette_object::beneath_store`).
    pub(crate) fn on_directory(root: &Path, transfer: Transfer) -> Result<BucketStore> {
        let fs = cassette_object::beneath_store::BeneathStore::new(root);
        let url = format!("file://{}", root.display());
        let repo = Arc::new(RemoteRepo::with_store(Arc::new(fs), &url, "", transfer));
        Ok(BucketStore { repo, directory: Some(root.to_path_buf()) })
    }

    /// The store of an open repository.
    pub(crate) fn on(repo: Arc<RemoteRepo>) -> BucketStore {
        BucketStore { repo, directory: None }
    }

    /// Refuses a repository a newer cassette format holds, and one whose encryption the key
    /// file disagrees with; sets how new objects are encoded. With `create`, puts a plain
    /// repository's format object into a repository that has none (an encoded one is made
    /// only by [`BucketStore::init`]).
    pub(crate) async fn check_format(&self, create: bool) -> Result<()> {
        let key = self.format_key();
        let format = match self.repo.get_plain(&key).await? {
            Some(bytes) => {
                let f = RepositoryFormat::from_json(&bytes)?;
                f.check()?;
                f
            }
            None if self.repo.transfer().keyring.is_some() => {
                return Err(cassette_seal::SealError::Disagrees {
                    location: self.repo.url().to_string(),
                    detail: "a key file was given, and no encrypted repository is there: make one with `cassette repo init --encrypt --key-file FILE`, or give no key file".into(),
                }
                .into());
            }
            None if create => {
                match self.repo.put_plain(&key, RepositoryFormat::current().to_json(), PutMode::Create).await {
                    // Another writer put it first: it is checked on the next open.
                    Ok(()) | Err(StoreError::AlreadyComplete { .. }) => {}
                    Err(e) => return Err(e),
                }
                return Ok(());
            }
            None => return Ok(()),
        };
        let codec =
            crate::encoding::codec_for(&format.encoding(), self.repo.transfer().keyring.clone(), self.repo.url())?;
        if let Some(codec) = codec {
            self.repo.set_codec(Arc::new(codec));
        }
        Ok(())
    }

    fn format_key(&self) -> object_store::path::Path {
        cassette_object::repo::join(self.repo.root(), cassette_repo::layout::REPOSITORY_FORMAT_FILE)
    }

    /// Makes a new encoded repository: puts its format object (create-only), refusing a
    /// location that already holds a repository.
    pub async fn init(&self, format: &RepositoryFormat) -> Result<()> {
        match self.repo.put_plain(&self.format_key(), format.to_json(), PutMode::Create).await {
            Err(StoreError::AlreadyComplete { .. }) => Err(cassette_seal::SealError::Disagrees {
                location: self.repo.url().to_string(),
                detail: "a repository is already there: `repo init` makes new ones only".into(),
            }
            .into()),
            other => other,
        }
    }

    /// Makes `new_key` (a fingerprint) the key new objects are encrypted for, keeping every
    /// earlier key on record: objects stored under them are never re-encrypted, and need their
    /// key's identity to be read. The transfer's keyring must hold the current key.
    pub async fn rotate_key(&self, new_key: &str) -> Result<RepositoryFormat> {
        self.check_format(false).await?;
        let disagrees =
            |detail: String| cassette_seal::SealError::Disagrees { location: self.repo.url().to_string(), detail };
        let bytes = self.repo.get_plain(&self.format_key()).await?.ok_or_else(|| {
            disagrees("no repository is there: make one with `cassette repo init --encrypt --key-file FILE`".into())
        })?;
        let mut format = RepositoryFormat::from_json(&bytes)?;
        let Some(encryption) = format.encoding.as_mut().and_then(|e| e.encryption.as_mut()) else {
            return Err(disagrees("this repository is not encrypted, so it has no key to rotate".into()).into());
        };
        if encryption.key == new_key {
            return Err(disagrees(format!("{new_key} is already the key new objects are encrypted for")).into());
        }
        encryption.rotate_to(new_key, chrono::Utc::now());
        self.repo.put_plain(&self.format_key(), format.to_json(), PutMode::Overwrite).await?;
        Ok(format)
    }

    fn backup(&self, b: &BackupId) -> Result<RemoteBackup> {
        self.repo.backup(&b.cluster, &b.host_id, &b.name)
    }
}

#[async_trait]
impl Store for BucketStore {
    fn location(&self) -> String {
        self.repo.url().to_string()
    }

    fn local_root(&self) -> Option<&Path> {
        None
    }

    fn local_directory(&self) -> Option<&Path> {
        self.directory.as_deref()
    }

    async fn list(&self, cluster: Option<&str>, host: Option<&str>) -> Result<Vec<BackupSummary>> {
        self.check_format(false).await?;
        cassette_object::list_backups(&self.repo, cluster, host).await
    }

    async fn manifest(&self, b: &BackupSummary) -> Result<Manifest> {
        self.repo.read_manifest(&self.backup(&BackupId::of(b)?)?).await
    }

    async fn verify(
        &self,
        b: &BackupSummary,
        depth: Depth,
        _parallel: usize,
        on_file: OnFile<'_>,
    ) -> Result<VerifyReport> {
        cassette_object::verify::verify_backup(&self.repo, &self.backup(&BackupId::of(b)?)?, depth, on_file).await
    }

    async fn delete(&self, b: &BackupSummary) -> Result<DeleteSummary> {
        cassette_object::gc::delete_backup(&self.repo, &b.cluster, &b.host_id, &BackupName::parse(&b.name)?).await
    }

    async fn purge(&self, cluster: Option<&str>, host: Option<&str>, opts: &PurgeOptions) -> Result<Vec<NodePurge>> {
        cassette_object::gc::purge(&self.repo, cluster, host, opts).await
    }

    async fn rebuild_indexes(&self, _cluster: Option<&str>, _host: Option<&str>) -> Result<usize> {
        // A listing checks every index entry against the manifest object's size and time, and
        // reads the manifests it lacks: there is nothing to rebuild by hand.
        Ok(0)
    }

    async fn open_backup(&self, b: &BackupId) -> Result<Box<dyn BackupWriter>> {
        self.check_format(true).await?;
        let backup = self.backup(b)?;
        let journal_path =
            cassette_repo::state::dir_for("uploads", &self.repo.url_of(&backup.prefix))?.join("journal.jsonl");
        // Object stores have no lock; the node-wide job lock keeps this node's jobs apart, and
        // the create-only manifest makes a second writer of the same backup fail.
        Ok(Box::new(BucketWriter { repo: self.repo.clone(), backup, id: b.clone(), journal_path }))
    }

    fn segments(&self, cluster: &str, host_id: &str) -> Result<Box<dyn crate::SegmentArchive>> {
        Ok(Box::new(crate::segments::bucket(&self.repo, cluster, host_id)?))
    }

    fn open_restore(&self, b: &BackupId) -> Result<Box<dyn BackupReader>> {
        Ok(Box::new(BucketReader { repo: self.repo.clone(), backup: self.backup(b)? }))
    }
}

struct BucketWriter {
    repo: Arc<RemoteRepo>,
    backup: RemoteBackup,
    id: BackupId,
    /// The local progress journal of an upload (object stores cannot append): resuming needs
    /// the same machine, else the backup is uploaded again from the start.
    journal_path: PathBuf,
}

#[async_trait]
impl BackupWriter for BucketWriter {
    fn location(&self) -> PathBuf {
        PathBuf::from(self.repo.url_of(&self.backup.prefix))
    }

    async fn state(&self) -> Result<BackupState> {
        if self.repo.exists(&self.backup.tombstone()).await? {
            return Err(StoreError::NameInUse {
                url: self.repo.url_of(&self.backup.prefix),
                name: self.backup.name.clone(),
            });
        }
        let state = self.repo.state(&self.backup).await?;
        if let Some(lock) = self.repo.object_lock()
            && state != BackupState::Complete
        {
            check_lock_taken(&self.repo, &self.backup, lock).await?;
        }
        Ok(state)
    }

    fn journal_path(&self) -> PathBuf {
        self.journal_path.clone()
    }

    fn begin(&self, resumed: bool) {
        if !resumed {
            let _ = std::fs::remove_file(&self.journal_path);
        }
        // The node index of an object store is rewritten whole by `put_manifest` and by
        // deletes; an entry without its manifest is dropped by the next listing's check.
    }

    async fn earlier_copies(&self, resumed: bool, _keyspaces: &[String]) -> Result<(StoredIndex, StoredIndex)> {
        let resume = if resumed {
            StoredIndex::from_remote_journal(&self.repo, &self.backup, &self.journal_path).await
        } else {
            StoredIndex::default()
        };
        let previous =
            StoredIndex::from_previous_remote(&self.repo, &self.id.cluster, &self.id.host_id, self.id.name.as_str())
                .await;
        let (key, lock) = (self.repo.encryption_key(), self.repo.object_lock());
        let usable = |copies: StoredIndex| copies.only_under_key(key.as_deref()).only_locked_as_long(lock);
        Ok((usable(resume), usable(previous)))
    }

    fn parallel_files(&self, _requested: usize) -> usize {
        self.repo.transfer().parallel_files
    }

    fn available_bytes(&self) -> Result<Option<u64>> {
        Ok(None)
    }

    fn store_files(&self, files: Vec<FileToStore>) -> Vec<BoxFuture<'static, Vec<Stored>>> {
        files
            .into_iter()
            .map(|f| {
                let (repo, backup) = (self.repo.clone(), self.backup.clone());
                Box::pin(async move { vec![upload_one(repo, backup, f).await] }) as BoxFuture<'static, Vec<Stored>>
            })
            .collect()
    }

    async fn put_meta(&self, relative: &str, bytes: &[u8]) -> Result<()> {
        self.repo.put_backup_small(&self.backup.key(relative), bytes.to_vec(), PutMode::Overwrite).await
    }

    async fn make_durable(&self) -> Result<()> {
        Ok(()) // an acknowledged object is durable
    }

    async fn remove_strays(&self, manifest: &Manifest) -> Result<()> {
        let backup = &self.backup;
        let listed: std::collections::HashSet<_> = manifest.files().map(|f| backup.key(&f.path)).collect();
        let mut strays = Vec::new();
        for ks in &manifest.keyspaces {
            for o in self.repo.objects(&backup.key(&ks.name)).await? {
                if !listed.contains(&o.location) {
                    strays.push(o.location);
                }
            }
        }
        cassette_object::gc::delete_many(&self.repo, strays).await
    }

    async fn check_stored(&self, manifest: &Manifest) -> Result<Vec<BadFile>> {
        let files: Vec<_> = manifest.files().collect();
        let bad = cassette_object::verify::check_files(&self.repo, &self.backup, &files, Depth::Quick, &|_| {}).await?;
        if bad.is_empty() && self.journal_path.exists() {
            // Streamed from the file like any upload: with 50,000 files the journal is 17 MB.
            self.repo.upload_file(&self.journal_path, &self.backup.key(JOURNAL), None).await?;
        }
        Ok(bad)
    }

    async fn put_manifest(&self, manifest: &Manifest) -> Result<()> {
        self.repo.write_manifest(&self.backup, manifest).await?;
        cassette_repo::fault::point("manifest-written");
        // Stamped with the manifest object's size and time, so that listings trust it.
        let stamp = self.repo.stamp(&self.backup.manifest()).await.ok().flatten();
        let entry = cassette_repo::IndexEntry::stamped(manifest, stamp);
        if let Err(e) = self
            .repo
            .update_index(&self.backup.node, |entries| {
                entries.insert(entry.name.clone(), entry);
            })
            .await
        {
            tracing::warn!(error = %e, "could not update the node index");
        }
        let _ = std::fs::remove_file(&self.journal_path);
        Ok(())
    }
}

/// Where a locked backup records its lock, the first object it puts (once its state is known):
/// a bucket without Object Lock refuses it before anything else is stored.
const LOCK_RECORD: &str = "cassette-meta/object-lock.json";

async fn check_lock_taken(repo: &RemoteRepo, backup: &RemoteBackup, lock: &cassette_repo::LockRequest) -> Result<()> {
    match repo.put_backup_small(&backup.key(LOCK_RECORD), lock.put.to_json(), PutMode::Overwrite).await {
        Err(StoreError::Store { source, .. }) => Err(StoreError::LockUnsupported {
            url: repo.url().to_string(),
            detail: format!(
                "the bucket refused a locked object ({source}): make the bucket with Object Lock enabled (aws s3api create-bucket --object-lock-enabled-for-bucket), or back up without --object-lock-days"
            ),
        }),
        other => other,
    }
}

/// Stores one file: kept (uploaded by the interrupted run), referenced (an earlier backup's
/// upload: `path` of the copy holds its object reference), or uploaded.
async fn upload_one(repo: Arc<RemoteRepo>, backup: RemoteBackup, f: FileToStore) -> Stored {
    let path = f.path;
    match f.reuse {
        Reuse::Kept(copy) => Ok((FileEntry { path, ..copy.entry }, false)),
        Reuse::Earlier(copy) => {
            let object = copy.path.to_string_lossy().into_owned();
            Ok((FileEntry { path, object: Some(object), reused_from: copy.backup.clone(), ..copy.entry }, false))
        }
        Reuse::None => {
            let up =
                repo.upload_file(&f.source, &backup.key(&path), f.expected_crc32).await.map_err(|e| e.to_string())?;
            let (encoded, lock) = (up.encoded.clone(), repo.object_lock().map(|l| l.put));
            Ok((FileEntry { encoded, lock, ..up.to_entry(path, f.expected_crc32) }, true))
        }
    }
}

struct BucketReader {
    repo: Arc<RemoteRepo>,
    backup: RemoteBackup,
}

#[async_trait]
impl BackupReader for BucketReader {
    fn location(&self) -> PathBuf {
        PathBuf::from(self.repo.url_of(&self.backup.prefix))
    }

    fn local_dir(&self) -> Option<&Path> {
        None
    }

    async fn read_manifest(&self) -> Result<Manifest> {
        BucketStore::on(self.repo.clone()).check_format(false).await?;
        self.repo.read_manifest(&self.backup).await
    }

    async fn mark_restoring(&self, host_id: &str) {
        // In a directory repository the restore journal, in the backup, does this. A store that
        // refuses the write (read-only credentials) is warned about, not fatal.
        if let Err(e) = cassette_object::gc::mark_restoring(&self.repo, &self.backup, host_id).await {
            tracing::warn!(
                error = %e,
                "cannot mark the backup as being restored: a purge on another machine could delete it during this restore"
            );
        }
    }

    fn restore_journal_path(&self, host_id: &str) -> PathBuf {
        cassette_repo::state::dir_path_for("restores", &self.repo.url_of(&self.backup.prefix))
            .join(format!("restore-{host_id}.jsonl"))
    }

    fn cluster_restore_journals(&self) -> Vec<(String, PathBuf)> {
        Vec::new() // each node keeps its restore journal on its own machine
    }

    fn default_staging_dir(&self, data_root: Option<&Path>) -> PathBuf {
        // Beside the data directories: `nodetool import --copy-data` then copies on one disk.
        match data_root {
            Some(root) => root.join("cassette-restore-staging"),
            None => cassette_repo::state::state_dir_path().join("restore-staging"),
        }
    }

    async fn verify_files(&self, files: &[&FileEntry], _parallel: usize, on_file: OnFile<'_>) -> Result<Vec<BadFile>> {
        // Every object is streamed through the hashes without being stored.
        cassette_object::verify::check_files(&self.repo, &self.backup, files, Depth::Full, on_file).await
    }

    fn fetch_verifies(&self) -> bool {
        true // download_verified: hashed as it arrives, renamed into place only when it matches
    }

    async fn fetch_table(&self, files: &[&FileEntry], dir: &Path) -> Result<()> {
        crate::directory::empty_dir(dir)?;
        let repo = &self.repo;
        let jobs: Vec<_> = files
            .iter()
            .map(|f| {
                let file_name = f.path.rsplit('/').next().unwrap_or(&f.path).to_string();
                let dest = dir.join(file_name);
                let key = self.backup.data_key(f);
                async move { repo.download_verified(&key, f, &dest).await }
            })
            .collect();
        let mut results = futures::stream::iter(jobs).buffer_unordered(repo.transfer().parallel_files.max(1));
        while let Some(r) = results.next().await {
            r?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_new_repository_gets_the_format_file_and_a_newer_format_is_refused() {
        let store = BucketStore::open("memory://", Transfer::default()).unwrap();
        let id = BackupId { cluster: "c".into(), host_id: "h".into(), name: BackupName::parse("b").unwrap() };
        drop(store.open_backup(&id).await.unwrap());
        let key = cassette_object::repo::join(store.repo.root(), cassette_repo::layout::REPOSITORY_FORMAT_FILE);
        let written = RepositoryFormat::from_json(&store.repo.get_small(&key).await.unwrap().unwrap()).unwrap();
        assert_eq!(written.version, RepositoryFormat::current().version);

        let newer = RepositoryFormat { version: cassette_format::repository::REPOSITORY_VERSION + 1, ..written };
        store.repo.put_small(&key, newer.to_json(), PutMode::Overwrite).await.unwrap();
        let listed = store.list(None, None).await.unwrap_err().to_string();
        assert!(listed.contains("upgrade cassette"), "{listed}");
        let reader = store.open_restore(&id).unwrap();
        let read = reader.read_manifest().await.unwrap_err().to_string();
        assert!(read.contains("upgrade cassette"), "{read}");
    }
}
