//! The `copy` stage for one table: every file of its snapshot (in every data directory) into
//! `<backup>/<keyspace>/<table>/`, verified and journaled.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use cassette_cassandra::TableInfo;
use cassette_cassandra::disk::{self, DataFile, SstableName};
use cassette_repo::{FileContext, Journal, JournalRecord, RepoError, RepoLayout, TableEntry};
use cassette_store::{BackupWriter, FileToStore, Reuse, StoredIndex};
use futures::StreamExt;

use crate::{Progress, Status, TableError, TableOutcome};

pub(crate) struct TableCopy<'a> {
    pub table: &'a TableInfo,
    /// How many SSTables Cassandra's snapshot manifest lists (all of them found).
    pub snapshot_sstables: u64,
    pub backup: &'a dyn BackupWriter,
    pub resume: &'a StoredIndex,
    pub previous: &'a StoredIndex,
    pub journal: &'a Mutex<Journal>,
    pub progress: &'a dyn Progress,
    pub parallel: usize,
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
        files.iter().filter(|f| matches!(self.plan(f), Reuse::None)).map(|f| f.size).sum()
    }

    /// Which stored copy stands for `f`: this backup's own from before an interruption, else
    /// the previous backup's.
    fn plan(&self, f: &DataFile) -> Reuse {
        let (ks, id) = (&self.table.keyspace, self.table.id_hex());
        if let Some(c) = self.resume.find(ks, &id, &f.relative, f.size, f.mtime_ns) {
            return Reuse::Kept(c.clone());
        }
        if let Some(c) = self.previous.find(ks, &id, &f.relative, f.size, f.mtime_ns) {
            return Reuse::Earlier(c.clone());
        }
        Reuse::None
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
                    Ok(rel) => self.backup.put_meta(&rel, schema.as_bytes()).await.map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                },
                Err(e) => Err(e.to_string()),
            };
            if let Err(e) = stored {
                error = Some(TableError::Schema(e));
            }
        }
        let to_store = files
            .into_iter()
            .map(|f| {
                let path = format!("{}/{}/{}", t.keyspace, t.name, f.relative);
                let reuse = self.plan(&f);
                let expected_crc32 = match reuse {
                    // Only a copy reads the file: only then is Cassandra's digest needed.
                    Reuse::None => expected_crc32(&f),
                    _ => Ok(None),
                };
                (f, path, reuse, expected_crc32)
            })
            .collect::<Vec<_>>();
        let mut files_to_store = Vec::new();
        for (f, path, reuse, expected) in to_store {
            match expected {
                Ok(expected_crc32) => {
                    files_to_store.push(FileToStore { source: f.path, path, expected_crc32, reuse });
                }
                Err(e) => {
                    error.get_or_insert(TableError::Store(e.to_string()));
                }
            }
        }
        let jobs = self.backup.store_files(files_to_store);
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
                        error.get_or_insert(TableError::Journal(e.to_string()));
                    }
                    cassette_repo::fault::point("file-journaled");
                    self.progress.file_stored(entry.size, copied);
                    if copied {
                        bytes_copied += entry.size;
                    }
                    entries.push(entry);
                }
                Err(e) => {
                    error.get_or_insert(TableError::Store(e));
                }
            }
        }
        // One flush for the table's files, then the journal may vouch for them (a resumed
        // backup trusts only what a `synced` line covers).
        if error.is_none() && !entries.is_empty() {
            let synced = match self.backup.make_durable().await {
                Ok(()) => self
                    .journal
                    .lock()
                    .expect("journal lock")
                    .append(&JournalRecord::Synced)
                    .map_err(|e| TableError::Journal(e.to_string())),
                Err(e) => Err(TableError::Store(e.to_string())),
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
            error_kind: error.as_ref().map(TableError::kind),
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
    pub fn failed(&self, error: TableError) -> (TableEntry, TableOutcome) {
        let t = self.table;
        let outcome = TableOutcome {
            keyspace: t.keyspace.clone(),
            table: t.name.clone(),
            status: Status::Failure,
            error_kind: Some(error.kind()),
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
