//! Finding files that are already stored, in an earlier complete backup of this node
//! (deduplication) or in this backup before it was interrupted (resume), and what a writer is
//! asked to store.
//!
//! SSTable files are immutable once written, so a snapshot file with the same table id,
//! name, size and modification time as a stored one is that same file: its stored copy and
//! hash are reused without reading it again. Cassandra rewrites `Statistics.db` in place on
//! some operations (repair status); that changes its mtime, so it is copied again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use cassette_object::{RemoteBackup, RemoteRepo};
use cassette_repo::{FileContext, FileEntry, Journal, JournalRecord, Manifest, ManifestFile, RepoLayout};

/// (keyspace, table id, path relative to the table directory)
type Key = (String, String, String);

/// A stored copy that can stand for a snapshot file.
#[derive(Debug, Clone)]
pub struct StoredCopy {
    /// Absolute path of the stored copy.
    pub path: PathBuf,
    /// Its manifest entry (hash, size, mtime).
    pub entry: FileEntry,
    /// The backup that stored it (`None`: this backup, before an interruption).
    pub backup: Option<String>,
}

/// Stored copies by (keyspace, table id, file): see the module documentation.
#[derive(Default)]
pub struct StoredIndex {
    by_key: HashMap<Key, StoredCopy>,
    /// The stored paths of `by_key` (a resumed backup removes its files that are not here).
    paths: std::collections::HashSet<PathBuf>,
    /// Local repositories: a stored copy counts only while its file is there with its size.
    /// Remote indexes are checked against a listing when built.
    check_local: bool,
}

impl StoredIndex {
    /// Indexes the newest complete backup of the node (by finish time), other than `except`.
    /// The node index says which one it is: one manifest is read, not every one.
    pub(crate) fn from_previous_backup(node_dir: &Path, except: &str) -> StoredIndex {
        let mut index = StoredIndex::default();
        let mut complete: Vec<_> = cassette_repo::list_node(node_dir)
            .unwrap_or_default()
            .into_iter()
            .filter(|b| b.complete && b.name != except)
            .collect();
        complete.sort_by(|a, b| (b.finished_at, &b.name).cmp(&(a.finished_at, &a.name)));
        let mut newest: Option<(Manifest, PathBuf)> = None;
        for b in complete {
            match Manifest::read(&b.path) {
                Ok(m) => {
                    newest = Some((m, b.path));
                    break;
                }
                Err(e) => {
                    tracing::warn!(backup = %b.path.display(), error = %e, "skipping unreadable manifest for deduplication")
                }
            }
        }
        if let Some((manifest, dir)) = newest {
            // A reused entry points at the first copy; follow `object` when set.
            index.add_manifest(manifest, |f| match &f.object {
                Some(object) => node_dir.join(object),
                None => dir.join(&f.path),
            });
        }
        index.check_local = true;
        index
    }

    /// Indexes the newest complete backup of a node on object storage, other than `except`.
    /// Its files are reused by reference: `object` says where their bytes are.
    pub(crate) async fn from_previous_remote(
        repo: &RemoteRepo,
        cluster: &str,
        host_id: &str,
        except: &str,
    ) -> StoredIndex {
        let mut index = StoredIndex::default();
        let mut complete: Vec<_> = cassette_object::list_node(repo, cluster, host_id)
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|b| b.complete && b.name != except)
            .collect();
        complete.sort_by(|a, b| (b.finished_at, &b.name).cmp(&(a.finished_at, &a.name)));
        for b in complete {
            let Ok(name) = cassette_repo::BackupName::parse(&b.name) else { continue };
            let Ok(rb) = repo.backup(cluster, host_id, &name) else { continue };
            match repo.read_manifest(&rb).await {
                Ok(m) => {
                    index
                        .add_manifest(m, |f| PathBuf::from(f.object.clone().unwrap_or_else(|| rb.object_ref(&f.path))));
                    break;
                }
                Err(e) => {
                    tracing::warn!(backup = %b.path.display(), error = %e, "skipping unreadable manifest for deduplication")
                }
            }
        }
        index
    }

    /// Takes the manifest's entries (moved, not cloned: with 50,000 files, a copy of them
    /// was a third of the job's peak memory).
    fn add_manifest(&mut self, manifest: Manifest, locate: impl Fn(&FileEntry) -> PathBuf) {
        let backup = manifest.backup_name;
        for ks in manifest.keyspaces {
            for table in ks.tables {
                for f in table.files {
                    let Some(relative) = table_relative(&f.path, &ks.name, &table.name) else { continue };
                    let key = (ks.name.clone(), table.id.clone(), relative.to_string());
                    self.by_key.insert(key, StoredCopy { path: locate(&f), entry: f, backup: Some(backup.clone()) });
                }
            }
        }
    }

    /// Indexes what an interrupted run of a remote backup journaled as uploaded, keeping only
    /// the objects a listing of the backup shows with their size.
    pub(crate) async fn from_remote_journal(repo: &RemoteRepo, backup: &RemoteBackup, journal: &Path) -> StoredIndex {
        // Acknowledged objects are durable: every journaled upload counts (no `synced` needed).
        let mut index = StoredIndex::from_journal_records(Path::new(""), Journal::load(journal));
        let Ok(objects) = repo.objects(&backup.prefix).await else { return StoredIndex::default() };
        let sizes: HashMap<_, _> = objects.into_iter().map(|o| (o.location, o.size)).collect();
        index.by_key.retain(|_, c| sizes.get(&backup.key(&c.entry.path)) == Some(&c.entry.size));
        index.check_local = false;
        index
    }

    /// Indexes what an interrupted run of this backup journaled as stored. Local copies count
    /// once a filesystem flush covered them (a `synced` line). Those journaled after the last
    /// flush (the table being copied when the run died or its disk filled up) count too if,
    /// after a flush now, they still hash as journaled: they need not be copied again.
    pub(crate) fn from_journal(backup_dir: &Path) -> StoredIndex {
        let path = RepoLayout::journal_path(backup_dir);
        let records = Journal::load(&path);
        let covered = records
            .as_ref()
            .ok()
            .and_then(|r| r.iter().rposition(|r| matches!(r, JournalRecord::Synced)))
            .map_or(0, |i| i + 1);
        let unsynced = records.as_ref().map(|r| r.len() > covered).unwrap_or(false);
        if unsynced && let Err(e) = cassette_repo::sync_filesystem(backup_dir) {
            tracing::warn!(backup = %backup_dir.display(), error = %e, "cannot flush the interrupted run's files; copying them again");
            return StoredIndex::from_journal_records(backup_dir, Journal::load_durable(&path)).checked_locally();
        }
        let records = records.map(|records| {
            records
                .into_iter()
                .enumerate()
                .filter(|(i, r)| match r {
                    JournalRecord::File { file, .. } if *i >= covered => {
                        cassette_repo::check_file(backup_dir, file, cassette_repo::Depth::Full).is_none()
                    }
                    _ => true,
                })
                .map(|(_, r)| r)
                .collect()
        });
        StoredIndex::from_journal_records(backup_dir, records).checked_locally()
    }

    fn checked_locally(mut self) -> StoredIndex {
        self.check_local = true;
        self
    }

    /// Whether a stored file of this backup (absolute path) is one the index vouches for.
    pub fn vouches_for(&self, path: &Path) -> bool {
        self.paths.contains(path)
    }

    fn from_journal_records(backup_dir: &Path, records: cassette_repo::Result<Vec<JournalRecord>>) -> StoredIndex {
        let mut index = StoredIndex::default();
        let Ok(records) = records else { return index };
        for record in records {
            if let JournalRecord::File { context: FileContext::Table { keyspace, table, table_id }, file } = record {
                let Some(relative) = table_relative(&file.path, &keyspace, &table) else { continue };
                // The journal is a repository file like the manifest: a path leaving the backup
                // is never used (see `cassette_repo::beneath`).
                if cassette_repo::beneath::check_relative(&file.path).is_some() {
                    tracing::warn!(path = %file.path, "ignoring a journal entry whose path leaves the backup");
                    continue;
                }
                index.paths.insert(backup_dir.join(&file.path));
                index.by_key.insert(
                    (keyspace, table_id, relative.to_string()),
                    StoredCopy { path: backup_dir.join(&file.path), entry: file, backup: None },
                );
            }
        }
        index
    }

    /// Keeps only the copies stored under the encryption key `key` (`None`: not encrypted): a
    /// file stored under an older key is stored again under the new one, so a rotation leaves
    /// no new backup depending on the old identity.
    pub(crate) fn only_under_key(mut self, key: Option<&str>) -> StoredIndex {
        self.by_key.retain(|_, c| c.entry.encoded.as_ref().and_then(|e| e.key.as_deref()) == key);
        self
    }

    /// Keeps only the copies locked long enough for `lock` (`None`: every copy): a locked
    /// backup references no object the store could delete before the lock it asks for ends.
    pub(crate) fn only_locked_as_long(mut self, lock: Option<&cassette_format::LockRequest>) -> StoredIndex {
        self.by_key.retain(|_, c| cassette_format::lock::covers(c.entry.lock.as_ref(), lock));
        self
    }

    /// Whether no stored copy is known.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// The stored copy of a snapshot file, if one exists and is unchanged.
    pub fn find(
        &self,
        keyspace: &str,
        table_id: &str,
        relative: &str,
        size: u64,
        mtime_ns: i64,
    ) -> Option<&StoredCopy> {
        let copy = self.by_key.get(&(keyspace.to_string(), table_id.to_string(), relative.to_string()))?;
        let same = copy.entry.size == size && copy.entry.mtime_ns == mtime_ns;
        // Not through a link: a stored copy must be a regular file of the repository.
        let present =
            !self.check_local || std::fs::symlink_metadata(&copy.path).is_ok_and(|m| m.is_file() && m.len() == size);
        (same && present).then_some(copy)
    }
}

fn table_relative<'a>(path: &'a str, keyspace: &str, table: &str) -> Option<&'a str> {
    path.strip_prefix(keyspace)?.strip_prefix('/')?.strip_prefix(table)?.strip_prefix('/')
}

/// A file for [`crate::BackupWriter::store_files`].
#[derive(Debug)]
pub struct FileToStore {
    /// The file to read (a snapshot file, a configuration file).
    pub source: PathBuf,
    /// Where it goes, relative to the backup (`<keyspace>/<table>/<file>`).
    pub path: String,
    /// For a `Data.db`: the CRC32 Cassandra's `Digest.crc32` holds, checked while copying.
    pub expected_crc32: Option<u32>,
    /// An earlier copy that stands for it, if any.
    pub reuse: Reuse,
}

/// Which stored copy stands for a file.
#[derive(Debug)]
pub enum Reuse {
    /// Stored by this backup before an interruption, unchanged: kept.
    Kept(StoredCopy),
    /// Stored by an earlier backup, unchanged: that copy is used (a hard link in a directory,
    /// a reference on an object store).
    Earlier(StoredCopy),
    /// None: the file is copied.
    None,
}

/// A stored file's manifest entry and whether its bytes were copied, or what went wrong.
pub type Stored = Result<(FileEntry, bool), String>;
