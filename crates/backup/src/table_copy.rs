//! The `copy` stage for one table: every file of its snapshot (in every data directory) into
//! `<backup>/<keyspace>/<table>/`, verified and journaled.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use cassette_cassandra::TableInfo;
use cassette_cassandra::disk::{self, DataFile, SstableName};
use cassette_object::{RemoteBackup, RemoteRepo};
use cassette_repo::{
    Durability, FileContext, FileEntry, Journal, JournalRecord, LinkOutcome, RepoError, RepoLayout, TableEntry,
};
use futures::StreamExt;

use crate::dedup::{StoredCopy, StoredIndex};
use crate::dest::Dest;
use crate::{Progress, Status, TableOutcome};

pub(crate) struct TableCopy<'a> {
    pub table: &'a TableInfo,
    /// How many SSTables Cassandra's snapshot manifest lists (all of them found).
    pub snapshot_sstables: u64,
    pub dest: &'a Dest,
    pub resume: &'a StoredIndex,
    pub previous: &'a StoredIndex,
    pub journal: &'a Mutex<Journal>,
    pub progress: &'a dyn Progress,
    pub parallel: usize,
}

/// What to do with one snapshot file.
enum Plan {
    /// Stored by this backup before an interruption, unchanged: keep it.
    Keep(StoredCopy),
    /// Stored by an earlier backup, unchanged: hard-link that copy.
    Link(StoredCopy),
    /// Copy it from the snapshot.
    Copy,
}

/// The files of a table's snapshot across data directories, with Cassandra's own snapshot
/// metadata (`schema.cql`) returned apart.
pub(crate) fn snapshot_contents(snapshot_dirs: &[PathBuf]) -> Result<(Vec<DataFile>, Option<String>), String> {
    let mut files = Vec::new();
    let mut schema = None;
    for dir in snapshot_dirs {
        files.extend(disk::snapshot_files(dir).map_err(|e| e.to_string())?);
        if schema.is_none() {
            schema = std::fs::read_to_string(dir.join("schema.cql")).ok();
        }
    }
    files.sort_by(|a, b| a.relative.cmp(&b.relative));
    Ok((files, schema))
}

impl TableCopy<'_> {
    /// Files whose bytes would be copied (not kept or linked): for the free-space check.
    pub fn bytes_to_copy(&self, files: &[DataFile]) -> u64 {
        files.iter().filter(|f| matches!(self.plan(f), Plan::Copy)).map(|f| f.size).sum()
    }

    fn plan(&self, f: &DataFile) -> Plan {
        let (ks, id) = (&self.table.keyspace, self.table.id_hex());
        if let Some(c) = self.resume.find(ks, &id, &f.relative, f.size, f.mtime_ns) {
            return Plan::Keep(c.clone());
        }
        if let Some(c) = self.previous.find(ks, &id, &f.relative, f.size, f.mtime_ns) {
            return Plan::Link(c.clone());
        }
        Plan::Copy
    }

    pub async fn run(&self, files: Vec<DataFile>, schema_cql: Option<String>) -> (TableEntry, TableOutcome) {
        let started = Instant::now();
        let t = self.table;
        let mut entries = Vec::new();
        let mut bytes_copied = 0;
        let mut error = None;
        if let Some(schema) = &schema_cql {
            let base = Path::new("/backup");
            let stored = match RepoLayout::table_schema_path(base, &t.keyspace, &t.name) {
                Ok(p) => match cassette_repo::relative_path(base, &p) {
                    Ok(rel) => self.dest.write_meta(&rel, schema.as_bytes()).await.map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                },
                Err(e) => Err(e.to_string()),
            };
            if let Err(e) = stored {
                error = Some(e);
            }
        }
        // Files whose earlier copy is linked or kept are metadata work: done in batches on one
        // blocking thread each, not a task per file (8,000 hand-offs cost more than the links).
        let mut batch = Vec::new();
        let mut jobs: Vec<futures::future::BoxFuture<'static, Vec<Stored>>> = Vec::new();
        for f in files {
            let plan = self.plan(&f);
            let path = format!("{}/{}/{}", t.keyspace, t.name, f.relative);
            match self.dest {
                Dest::Local { backup_dir, .. } => {
                    let dest = backup_dir.join(&path);
                    if matches!(plan, Plan::Copy) {
                        jobs.push(Box::pin(in_blocking(vec![(f, plan, dest, path)])));
                    } else {
                        batch.push((f, plan, dest, path));
                        if batch.len() == LINK_BATCH {
                            jobs.push(Box::pin(in_blocking(std::mem::take(&mut batch))));
                        }
                    }
                }
                Dest::Remote { repo, backup, .. } => {
                    let job = upload_one(repo.clone(), backup.clone(), f, plan, path);
                    jobs.push(Box::pin(async move { vec![job.await] }));
                }
            }
        }
        if !batch.is_empty() {
            jobs.push(Box::pin(in_blocking(batch)));
        }
        let mut results =
            futures::stream::iter(jobs).buffer_unordered(self.parallel.max(1)).flat_map(futures::stream::iter);
        while let Some(result) = results.next().await {
            match result {
                Ok((entry, copied)) => {
                    cassette_repo::fault::point("file-stored");
                    let context = FileContext::Table {
                        keyspace: t.keyspace.clone(),
                        table: t.name.clone(),
                        table_id: t.id_hex(),
                    };
                    if let Err(e) = self.journal.lock().expect("journal lock").append_file(&context, &entry) {
                        error.get_or_insert(e.to_string());
                    }
                    cassette_repo::fault::point("file-journaled");
                    self.progress.file_stored(entry.size, copied);
                    if copied {
                        bytes_copied += entry.size;
                    }
                    entries.push(entry);
                }
                Err(e) => {
                    error.get_or_insert(e);
                }
            }
        }
        // One flush for the table's files, then the journal may vouch for them (a resumed
        // backup trusts only what a `synced` line covers).
        if error.is_none() && !entries.is_empty() {
            let synced = match self.dest.make_durable().await {
                Ok(()) => {
                    self.journal.lock().expect("journal lock").append(&JournalRecord::Synced).map_err(|e| e.to_string())
                }
                Err(e) => Err(e.to_string()),
            };
            if let Err(e) = synced {
                error = Some(e);
            }
        }
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        let totals = cassette_repo::Totals::of(&entries);
        let outcome = TableOutcome {
            keyspace: t.keyspace.clone(),
            table: t.name.clone(),
            status: if error.is_none() { Status::Success } else { Status::Failure },
            error,
            files: totals.files,
            bytes: totals.bytes,
            bytes_added: totals.bytes_added,
            bytes_copied,
            duration_ms: started.elapsed().as_millis() as u64,
        };
        let entry = TableEntry {
            name: t.name.clone(),
            id: t.id_hex(),
            schema_cql,
            files: entries,
            snapshot_sstables: Some(self.snapshot_sstables),
        };
        (entry, outcome)
    }

    /// The outcome of a table that failed before any copy (its snapshot is not what Cassandra
    /// says it holds).
    pub fn failed(&self, error: String) -> (TableEntry, TableOutcome) {
        let t = self.table;
        let outcome = TableOutcome {
            keyspace: t.keyspace.clone(),
            table: t.name.clone(),
            status: Status::Failure,
            error: Some(error),
            files: 0,
            bytes: 0,
            bytes_added: 0,
            bytes_copied: 0,
            duration_ms: 0,
        };
        let entry = TableEntry {
            name: t.name.clone(),
            id: t.id_hex(),
            schema_cql: None,
            files: Vec::new(),
            snapshot_sstables: None,
        };
        (entry, outcome)
    }
}

/// A stored file's manifest entry and whether bytes were copied, or what went wrong.
type Stored = Result<(FileEntry, bool), String>;

/// How many linked or kept files one blocking task stores.
const LINK_BATCH: usize = 512;

/// Stores local files one after the other on a blocking thread.
async fn in_blocking(files: Vec<(DataFile, Plan, PathBuf, String)>) -> Vec<Stored> {
    tokio::task::spawn_blocking(move || {
        files.into_iter().map(|(f, plan, dest, path)| store_one(f, plan, dest, path)).collect()
    })
    .await
    .unwrap_or_else(|e| vec![Err(format!("copy task failed: {e}"))])
}

/// Stores one file; returns its manifest entry and whether bytes were copied.
fn store_one(f: DataFile, plan: Plan, dest: PathBuf, path: String) -> Stored {
    match plan {
        Plan::Keep(copy) => Ok((FileEntry { path, ..copy.entry }, false)),
        Plan::Link(copy) => {
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
        Plan::Copy => {
            let expect = expected_crc32(&f).map_err(|e| e.to_string())?;
            let stored = cassette_repo::copy_verified_with(&f.path, &dest, expect, Durability::Deferred)
                .map_err(|e| e.to_string())?;
            Ok((stored.to_entry(path, expect), true))
        }
    }
}

/// Stores one file on object storage: kept (uploaded by the interrupted run), referenced (the
/// previous backup's upload: `path` of the copy holds its object reference), or uploaded.
async fn upload_one(
    repo: Arc<RemoteRepo>,
    backup: RemoteBackup,
    f: DataFile,
    plan: Plan,
    path: String,
) -> Result<(FileEntry, bool), String> {
    match plan {
        Plan::Keep(copy) => Ok((FileEntry { path, ..copy.entry }, false)),
        Plan::Link(copy) => {
            let object = copy.path.to_string_lossy().into_owned();
            Ok((FileEntry { path, object: Some(object), reused_from: copy.backup.clone(), ..copy.entry }, false))
        }
        Plan::Copy => {
            let expect = expected_crc32(&f).map_err(|e| e.to_string())?;
            let up = repo.upload_file(&f.path, &backup.key(&path), expect).await.map_err(|e| e.to_string())?;
            Ok((up.to_entry(path, expect), true))
        }
    }
}

/// For a `Data.db`, the CRC32 Cassandra recorded in the SSTable's `Digest.crc32`.
fn expected_crc32(f: &DataFile) -> Result<Option<u32>, RepoError> {
    let name = f.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let Some(sstable) = SstableName::parse(&name).filter(SstableName::is_data) else { return Ok(None) };
    let digest = f.path.with_file_name(sstable.sibling("Digest.crc32"));
    if !digest.exists() {
        tracing::warn!(file = %f.path.display(), "no Digest.crc32 beside this Data.db; stored with its BLAKE3 hash only");
        return Ok(None);
    }
    cassette_repo::read_digest_crc32(&digest).map(Some)
}
