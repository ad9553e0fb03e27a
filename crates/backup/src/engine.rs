//! The backup job: its stages in order (see the crate documentation).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use cassette_cassandra::{LocalNode, Nodetool, TableInfo, disk};
use cassette_repo::fault::point as fault_point;
use cassette_repo::{
    BackupName, BackupState, Journal, JournalRecord, KeyspaceEntry, MANIFEST_FORMAT, MANIFEST_VERSION, Manifest,
    NodeInfo, NodeLock, RepoError, RepoLayout,
};
use cassette_store::{BackupId, BackupWriter, Store, StoredIndex};
use chrono::Utc;

use crate::safety;
use crate::select::{KeyspaceSelection, select};
use crate::table_copy::{TableCopy, snapshot_contents};
use crate::{
    BackupError, BackupReport, BackupRequest, KeyspaceOutcome, Node, Progress, SNAPSHOT_TAG_PREFIX, Stage, Status,
    TableError, TableOutcome,
};

/// Backs up the node: see the crate documentation for the stages. Returns a report whose
/// `complete` says whether the manifest was written; per-table failures are in the report,
/// while errors that stop the job before or between stages are `Err`.
pub async fn run_backup(
    node: &Node,
    req: &BackupRequest,
    progress: &dyn Progress,
) -> Result<BackupReport, BackupError> {
    let started = Instant::now();
    progress.stage(Stage::Prepare, "");
    let job = prepare(node, req).await?;
    let (backup, resumed, _node_lock) = open_backup(node, req, &job).await?;
    let keyspace_names: Vec<String> = job.selection.iter().map(|k| k.name.clone()).collect();
    let (resume, previous) = backup.earlier_copies(resumed, &keyspace_names).await?;
    let (journal, started_at, tag) = start_journal(req, &job, &*backup)?;
    tracing::info!(backup = %backup.location().display(), %tag, resumed, previous = !previous.is_empty(), "backup started");

    progress.stage(Stage::Schema, "");
    let mut keyspace_entries =
        store_schema(node, &job, &*backup).await.map_err(BackupError::in_stage(Stage::Schema))?;

    let ctx = KeyspaceContext {
        req,
        data_dirs: &job.data_dirs,
        backup: &*backup,
        tag: &tag,
        resume: &resume,
        previous: &previous,
        journal: &journal,
        progress,
    };
    progress.keyspaces_selected(&keyspace_names);
    let copied = snapshot_and_copy(node, &ctx, &job.selection, &mut keyspace_entries).await;
    // What earlier copies were indexed is no longer needed: free it before the manifest.
    drop((resume, previous));
    // The snapshot is cleared whatever happened; a failure here only leaves it for the next
    // run's `prepare` stage to clear.
    progress.stage(Stage::Clear, "");
    if let Err(e) = node.nodetool.clear_snapshot(&tag, &keyspace_names).await {
        tracing::error!(%tag, error = %e, "could not clear the snapshot; the next cassette run clears it");
    }
    fault_point("snapshot-cleared");
    let (keyspace_outcomes, table_outcomes) = copied.map_err(BackupError::in_stage(Stage::Copy))?;

    progress.stage(Stage::Config, "");
    let (config_dirs, config_error) = copy_config(req, &*backup, &journal).await;

    let all_ok = keyspace_outcomes.iter().all(|k| k.status == Status::Success) && config_error.is_none();
    let mut report = BackupReport {
        name: job.name.to_string(),
        path: backup.location(),
        complete: false,
        resumed,
        keyspaces: keyspace_outcomes,
        tables: table_outcomes,
        manifest: None,
        totals: Default::default(),
        duration_ms: 0,
    };
    if let Some(e) = config_error {
        report.keyspaces.push(KeyspaceOutcome {
            name: "(configuration)".into(),
            status: Status::Failure,
            duration_ms: 0,
            error: Some(e),
        });
    }
    if all_ok {
        progress.stage(Stage::Manifest, "");
        let manifest = Manifest {
            format: MANIFEST_FORMAT.to_string(),
            format_version: MANIFEST_VERSION,
            backup_name: job.name.to_string(),
            cluster_name: job.local.cluster_name.clone(),
            node: node_info(&job.local, node.cql.address(), req.alias.clone()),
            snapshot_tag: tag.clone(),
            started_at,
            finished_at: Utc::now(),
            keyspaces: keyspace_entries,
            config_dirs,
            totals: Default::default(),
            object_lock: None,
        };
        let manifest =
            Manifest { object_lock: req.transfer.object_lock.map(|l| l.lock_of(manifest.files())), ..manifest };
        let manifest = write_manifest(manifest, resumed, &*backup, &journal)
            .await
            .map_err(BackupError::in_stage(Stage::Manifest))?;
        report.totals = manifest.totals;
        report.complete = true;
        report.manifest = Some(manifest);
    } else {
        report.totals = cassette_repo::Totals {
            files: report.tables.iter().map(|t| t.files).sum(),
            bytes: report.tables.iter().map(|t| t.bytes).sum(),
            files_added: 0,
            bytes_added: report.tables.iter().map(|t| t.bytes_added).sum(),
        };
    }
    report.duration_ms = started.elapsed().as_millis() as u64;
    tracing::info!(
        complete = report.complete,
        files = report.totals.files,
        bytes = report.totals.bytes,
        "backup finished"
    );
    Ok(report)
}

/// What the `prepare` stage found: the backup's name, the node, its data directories and the
/// tables selected.
struct Job {
    name: BackupName,
    local: LocalNode,
    host_id: String,
    data_dirs: Vec<PathBuf>,
    selection: Vec<KeyspaceSelection>,
    store: Arc<dyn Store>,
}

/// Stage `prepare`, before the repository is touched: the name, the node and its version, the
/// data directories, the selection, and where the backup may go.
async fn prepare(node: &Node, req: &BackupRequest) -> Result<Job, BackupError> {
    let name = BackupName::parse(&req.name).map_err(|e| BackupError::InvalidInput(e.to_string()))?;
    if let Some(tag) = &req.snapshot_tag {
        safety::check_given_snapshot(tag, &name)?;
    }
    // The JMX client's JVM starts while the job prepares (a no-op when it already runs).
    node.nodetool.warm_up();
    let local = node.cql.local_node().await?;
    cassette_cassandra::version::check_supported(&local.release_version)?;
    let data_dirs = match &req.data_dirs {
        Some(dirs) => {
            if !req.data_dirs_override {
                safety::check_node_data_dirs(dirs, node.cql.data_file_directories().await)?;
            }
            dirs.clone()
        }
        None => node.cql.data_file_directories().await?,
    };
    let selection = select(&node.cql, req).await?;
    let host_id = local.host_id.to_string();
    let store = cassette_store::open(&req.backup_root, req.transfer.clone())?;
    if let Some(root) = store.local_directory() {
        let node_dir = RepoLayout::new(root).node_dir(&local.cluster_name, &host_id)?;
        safety::check_outside_data_dirs(root, &node_dir, &data_dirs)?;
        if !req.allow_same_disk {
            safety::check_other_disk(root, &data_dirs)?;
        }
    }
    // A JMX login the node refuses is found before the repository is touched.
    node.nodetool.check_reachable().await?;
    Ok(Job { name, local, host_id, data_dirs, selection, store })
}

/// Opens the backup in the repository (its lock taken), refuses a complete one of the same
/// name, takes the node-wide job lock and clears snapshots an interrupted run left. Returns
/// the backup, whether this run resumes an interrupted one, and the job lock.
async fn open_backup(
    node: &Node,
    req: &BackupRequest,
    job: &Job,
) -> Result<(Box<dyn BackupWriter>, bool, NodeLock), BackupError> {
    let id = BackupId { cluster: job.local.cluster_name.clone(), host_id: job.host_id.clone(), name: job.name.clone() };
    let backup = job.store.open_backup(&id).await?;
    let resumed = match backup.state().await? {
        BackupState::Complete => {
            return Err(BackupError::AlreadyExists {
                name: job.name.to_string(),
                path: backup.location().display().to_string(),
            });
        }
        BackupState::Incomplete => {
            tracing::info!(backup = %backup.location().display(), "resuming an interrupted backup of the same name");
            true
        }
        BackupState::Absent => false,
    };
    backup.begin(resumed);
    // One cassette job per Cassandra node, whatever its backup directory: only then can
    // snapshots with cassette's prefix be told to be leftovers.
    let node_lock = NodeLock::acquire_host(&job.host_id)?;
    clear_leftover_snapshots(&node.nodetool, &job.data_dirs, req.snapshot_tag.as_deref()).await?;
    if let Some(tag) = &req.snapshot_tag
        && !disk::snapshot_tags_with_prefix(&job.data_dirs, tag).iter().any(|t| t == tag)
    {
        return Err(BackupError::InvalidInput(format!(
            "snapshot '{tag}' is not on this node (cleared, or taken on another node); run the backup again without it"
        )));
    }
    fault_point("prepared");
    Ok((backup, resumed, node_lock))
}

/// Opens the backup's journal and records this run's start. Returns the journal, when the
/// backup first started (an interrupted run's start, when resumed) and the snapshot tag.
fn start_journal(
    req: &BackupRequest,
    job: &Job,
    backup: &dyn BackupWriter,
) -> Result<(Mutex<Journal>, chrono::DateTime<Utc>, String), BackupError> {
    let journal_path = backup.journal_path();
    if let Some(parent) = journal_path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| RepoError::io("create journal directory", parent, e))?;
    }
    let started_at = first_start(&journal_path).unwrap_or_else(Utc::now);
    let tag = req.snapshot_tag.clone().unwrap_or_else(|| new_snapshot_tag(&job.name));
    let mut journal = Journal::open(&journal_path)?;
    journal.append(&JournalRecord::Started {
        backup_name: job.name.to_string(),
        snapshot_tag: tag.clone(),
        started_at,
    })?;
    fault_point("journal-started");
    Ok((Mutex::new(journal), started_at, tag))
}

/// Stage `schema`: the CQL schema of every selected keyspace, in the manifest's keyspace
/// entries and in `cassette-meta/schema.cql`.
async fn store_schema(node: &Node, job: &Job, backup: &dyn BackupWriter) -> Result<Vec<KeyspaceEntry>, BackupError> {
    let mut keyspace_entries = Vec::new();
    let mut schema = String::new();
    for ks in &job.selection {
        let cql = node.cql.describe_keyspace(&ks.name).await?;
        schema.push_str(&cql);
        keyspace_entries.push(KeyspaceEntry { name: ks.name.clone(), schema_cql: cql, tables: Vec::new() });
    }
    backup.put_meta(&in_backup(RepoLayout::schema_path), schema.as_bytes()).await?;
    fault_point("schema-written");
    Ok(keyspace_entries)
}

/// Stages `snapshot` and `copy`: one snapshot of every selected keyspace (one point in time for
/// the whole node, and one nodetool run instead of one per keyspace), then each keyspace's
/// tables copied. A failed snapshot fails every keyspace; only a fatal error (no space) is `Err`.
async fn snapshot_and_copy(
    node: &Node,
    ctx: &KeyspaceContext<'_>,
    selection: &[KeyspaceSelection],
    keyspace_entries: &mut [KeyspaceEntry],
) -> Result<(Vec<KeyspaceOutcome>, Vec<TableOutcome>), BackupError> {
    let mut keyspace_outcomes = Vec::new();
    let mut table_outcomes = Vec::new();
    ctx.progress.stage(Stage::Snapshot, "");
    let snapshot = match &ctx.req.snapshot_tag {
        Some(_) => Ok(()), // taken before the job, for every selected keyspace
        None => snapshot_selection(&node.nodetool, ctx.tag, selection).await,
    };
    if let Err(e) = snapshot {
        for ks in selection {
            let outcome = KeyspaceOutcome {
                name: ks.name.clone(),
                status: Status::Failure,
                duration_ms: 0,
                error: Some(format!("snapshot failed: {e}")),
            };
            ctx.progress.keyspace_finished(&outcome);
            keyspace_outcomes.push(outcome);
        }
        return Ok((keyspace_outcomes, table_outcomes));
    }
    fault_point("snapshot-taken");
    for (ks, entry) in selection.iter().zip(keyspace_entries.iter_mut()) {
        let (outcome, tables) = ctx.back_up_keyspace(ks, entry).await?;
        ctx.progress.keyspace_finished(&outcome);
        keyspace_outcomes.push(outcome);
        table_outcomes.extend(tables);
    }
    Ok((keyspace_outcomes, table_outcomes))
}

/// Stage `config`: configuration directories (small: copied inline). Returns their entries,
/// and the first error.
async fn copy_config(
    req: &BackupRequest,
    backup: &dyn BackupWriter,
    journal: &Mutex<Journal>,
) -> (Vec<cassette_repo::ConfigDirEntry>, Option<String>) {
    let mut config_dirs = Vec::new();
    let mut config_error = None;
    for (n, dir) in req.config_dirs.iter().enumerate() {
        match crate::config_copy::copy_config_dir(n + 1, dir, backup, journal).await {
            Ok(entry) => config_dirs.push(entry),
            Err(e) => {
                config_error.get_or_insert(e);
            }
        }
    }
    (config_dirs, config_error)
}

/// Stage `manifest`: strays of an interrupted run removed, the journal made durable, every
/// listed file checked stored, then the manifest written last: from here on the backup is
/// complete.
async fn write_manifest(
    mut manifest: Manifest,
    resumed: bool,
    backup: &dyn BackupWriter,
    journal: &Mutex<Journal>,
) -> Result<Manifest, BackupError> {
    manifest.totals = manifest.compute_totals();
    if resumed {
        backup.remove_strays(&manifest).await?;
    }
    journal.lock().expect("journal lock").sync()?;
    let bad = backup.check_stored(&manifest).await?;
    if let Some(b) = bad.first() {
        return Err(BackupError::InvalidInput(format!(
            "{} of {} stored files are not as stored (first: {}: {}); the backup stays incomplete: run it again",
            bad.len(),
            manifest.totals.files,
            b.path,
            b.problem
        )));
    }
    fault_point("before-manifest");
    backup.put_manifest(&manifest).await?;
    fault_point("index-written");
    Ok(manifest)
}

struct KeyspaceContext<'a> {
    req: &'a BackupRequest,
    data_dirs: &'a [PathBuf],
    backup: &'a dyn BackupWriter,
    tag: &'a str,
    resume: &'a StoredIndex,
    previous: &'a StoredIndex,
    journal: &'a Mutex<Journal>,
    progress: &'a dyn Progress,
}

impl KeyspaceContext<'_> {
    /// Copies one keyspace's tables from the snapshot; a failure fails the keyspace only,
    /// except a fatal one (no space), which stops the job.
    async fn back_up_keyspace(
        &self,
        ks: &KeyspaceSelection,
        entry: &mut KeyspaceEntry,
    ) -> Result<(KeyspaceOutcome, Vec<TableOutcome>), BackupError> {
        let started = Instant::now();
        let copied = self.copy_tables(ks, entry).await;
        fault_point("keyspace-copied");
        let duration_ms = started.elapsed().as_millis() as u64;
        match copied {
            Ok(tables) => {
                let failed = tables.iter().find(|t| t.status == Status::Failure);
                let outcome = KeyspaceOutcome {
                    name: ks.name.clone(),
                    status: if failed.is_some() { Status::Failure } else { Status::Success },
                    duration_ms,
                    error: failed.map(|t| {
                        format!("table {}: {}", t.table, t.error.as_ref().map(ToString::to_string).unwrap_or_default())
                    }),
                };
                Ok((outcome, tables))
            }
            Err(CopyStop::Failed(message)) => {
                let outcome = KeyspaceOutcome {
                    name: ks.name.clone(),
                    status: Status::Failure,
                    duration_ms,
                    error: Some(message),
                };
                Ok((outcome, Vec::new()))
            }
            Err(CopyStop::Fatal(e)) => Err(e),
        }
    }

    async fn copy_tables(
        &self,
        ks: &KeyspaceSelection,
        entry: &mut KeyspaceEntry,
    ) -> Result<Vec<TableOutcome>, CopyStop> {
        self.progress.stage(Stage::Copy, &ks.name);
        // Per table: its copy, the snapshot's files (or why they cannot be trusted), its schema.
        type Planned<'t> = (&'t TableInfo, TableCopy<'t>, Result<Vec<disk::DataFile>, String>, Option<String>);
        let mut planned: Vec<Planned<'_>> = Vec::new();
        for table in &ks.tables {
            let dirs = disk::snapshot_dirs(self.data_dirs, &table.keyspace, &table.name, &table.id_hex(), self.tag);
            let (files, schema) = snapshot_contents(&dirs).map_err(CopyStop::Failed)?;
            // Every file Cassandra's snapshot lists must be here: else the backup would hold
            // less than the table (nothing at all, from a wrong data directory) and look whole.
            let listed = snapshot_listing(table, self.data_dirs, &dirs, self.tag, &files);
            let (files, listed) = match listed {
                Ok(n) => (Ok(files), n),
                Err(e) => (Err(e), 0),
            };
            let copy = TableCopy {
                table,
                snapshot_sstables: listed,
                backup: self.backup,
                resume: self.resume,
                previous: self.previous,
                journal: self.journal,
                progress: self.progress,
                parallel: self.backup.parallel_files(self.req.parallel_files),
            };
            planned.push((table, copy, files, schema));
        }
        // Free space: refuse before copying rather than fill the disk halfway.
        if let Some(available) = self.backup.available_bytes().map_err(|e| CopyStop::Fatal(e.into()))? {
            let needed: u64 =
                planned.iter().filter_map(|(_, c, f, _)| f.as_ref().ok().map(|f| c.bytes_to_copy(f))).sum();
            if needed > available {
                return Err(CopyStop::Fatal(BackupError::NoSpace {
                    path: self.backup.location().display().to_string(),
                    keyspace: ks.name.clone(),
                    needed,
                    available,
                }));
            }
        }
        let found = || planned.iter().filter_map(|(_, _, f, _)| f.as_ref().ok());
        let files: u64 = found().map(|f| f.len() as u64).sum();
        let bytes: u64 = found().map(|f| f.iter().map(|d| d.size).sum::<u64>()).sum();
        self.progress.add_total(files, bytes);
        let mut outcomes = Vec::new();
        for (_table, copy, files, schema) in planned {
            let (table_entry, outcome) = match files {
                Ok(files) => copy.run(files, schema).await,
                Err(e) => copy.failed(TableError::Snapshot(e)),
            };
            self.progress.table_finished(&outcome);
            entry.tables.push(table_entry);
            outcomes.push(outcome);
        }
        Ok(outcomes)
    }
}

enum CopyStop {
    /// The keyspace failed; the job goes on with the next one.
    Failed(String),
    /// The job cannot go on (no space).
    Fatal(BackupError),
}

/// The tag of a new snapshot for backup `name` (see [`safety::snapshot_tag_for`]).
fn new_snapshot_tag(name: &BackupName) -> String {
    safety::snapshot_tag_for(name, Utc::now().timestamp_millis())
}

/// Checks the files found in a table's snapshot directories against the `manifest.json`
/// Cassandra wrote into the snapshot, and returns how many SSTables it lists. A table without
/// any snapshot directory, without the manifest, or with a listed file not found fails,
/// naming where it looked.
fn snapshot_listing(
    table: &TableInfo,
    data_dirs: &[PathBuf],
    found_dirs: &[PathBuf],
    tag: &str,
    files: &[disk::DataFile],
) -> Result<u64, String> {
    let looked_in = || {
        data_dirs
            .iter()
            .map(|d| {
                d.join(&table.keyspace)
                    .join(disk::table_dir_name(&table.name, &table.id_hex()))
                    .join("snapshots")
                    .join(tag)
                    .display()
                    .to_string()
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let hint = "are these the node's data directories, all of them, as this machine sees them (--data-dir)?";
    if found_dirs.is_empty() {
        return Err(format!(
            "Cassandra's snapshot '{tag}' of {}.{} is not in any data directory (looked in {}): {hint}",
            table.keyspace,
            table.name,
            looked_in()
        ));
    }
    let listed = disk::snapshot_manifest_files(found_dirs).map_err(|e| e.to_string())?.ok_or_else(|| {
        format!(
            "Cassandra's snapshot '{tag}' of {}.{} has no manifest.json (looked in {}), so which files it holds is unknown: {hint}",
            table.keyspace,
            table.name,
            looked_in()
        )
    })?;
    let present: std::collections::HashSet<&str> = files.iter().map(|f| f.relative.as_str()).collect();
    let missing: Vec<&str> = listed.iter().map(String::as_str).filter(|f| !present.contains(f)).collect();
    if !missing.is_empty() {
        const SHOWN: usize = 5;
        let more = if missing.len() > SHOWN { format!(" and {} more", missing.len() - SHOWN) } else { String::new() };
        return Err(format!(
            "Cassandra's snapshot '{tag}' of {}.{} lists {} SSTables, and {} of them are not in the snapshot directories (looked in {}): {}{more}; {hint}",
            table.keyspace,
            table.name,
            listed.len(),
            missing.len(),
            looked_in(),
            missing[..missing.len().min(SHOWN)].join(", ")
        ));
    }
    Ok(listed.len() as u64)
}

/// Takes the snapshot of a backup ahead of it, of every keyspace the request selects, in one
/// `nodetool snapshot`, and returns its tag for [`BackupRequest::snapshot_tag`]. A cluster
/// backup does this on every node first, so the nodes' backups are close to one point in time.
pub async fn take_snapshot(node: &Node, req: &BackupRequest) -> Result<String, BackupError> {
    let name = BackupName::parse(&req.name).map_err(|e| BackupError::InvalidInput(e.to_string()))?;
    let selection = select(&node.cql, req).await?;
    let tag = new_snapshot_tag(&name);
    snapshot_selection(&node.nodetool, &tag, &selection).await?;
    Ok(tag)
}

/// One `nodetool snapshot` of everything selected: whole keyspaces by name, and `-kt` with
/// every selected table when some keyspace is selected only in part.
async fn snapshot_selection(
    nodetool: &Nodetool,
    tag: &str,
    selection: &[KeyspaceSelection],
) -> Result<(), cassette_cassandra::CassandraError> {
    if selection.iter().any(|ks| ks.partial) {
        let tables: Vec<String> =
            selection.iter().flat_map(|ks| ks.tables.iter().map(|t| format!("{}.{}", t.keyspace, t.name))).collect();
        nodetool.snapshot(tag, &[], &tables).await
    } else {
        let keyspaces: Vec<String> = selection.iter().map(|ks| ks.name.clone()).collect();
        nodetool.snapshot(tag, &keyspaces, &[]).await
    }
}

/// Clears snapshots cassette took (its tags, `cassette-<name>-<ms>`): leftovers of a run that
/// was killed before its `clear` stage. The caller holds the node-wide lock, so no other
/// cassette job owns them; `keep` is the snapshot this job was given to copy. An operator's
/// snapshot is never cleared, even one whose tag starts with `cassette-`.
async fn clear_leftover_snapshots(
    nodetool: &Nodetool,
    data_dirs: &[PathBuf],
    keep: Option<&str>,
) -> Result<(), BackupError> {
    for tag in disk::snapshot_tags_with_prefix(data_dirs, SNAPSHOT_TAG_PREFIX) {
        if Some(tag.as_str()) == keep || safety::backup_of_snapshot_tag(&tag).is_none() {
            continue;
        }
        tracing::warn!(%tag, "clearing a snapshot left by an interrupted cassette run");
        nodetool.clear_snapshot(&tag, &[]).await?;
    }
    Ok(())
}

fn first_start(journal: &Path) -> Option<chrono::DateTime<Utc>> {
    Journal::load(journal).ok()?.into_iter().find_map(|r| match r {
        JournalRecord::Started { started_at, .. } => Some(started_at),
        _ => None,
    })
}

fn node_info(local: &LocalNode, cql_address: &str, alias: Option<String>) -> NodeInfo {
    let address = local
        .broadcast_address
        .or(local.rpc_address)
        .map(|a| a.to_string())
        .unwrap_or_else(|| cql_address.rsplit_once(':').map(|(h, _)| h.to_string()).unwrap_or_default());
    NodeInfo {
        host_id: local.host_id.to_string(),
        address,
        alias,
        datacenter: local.datacenter.clone(),
        rack: local.rack.clone(),
        tokens: local.tokens.clone(),
        cassandra_version: local.release_version.clone(),
    }
}

/// The path of a metadata file relative to any backup directory (`layout` places it).
pub(crate) fn in_backup(layout: impl Fn(&Path) -> PathBuf) -> String {
    let base = Path::new("/backup");
    cassette_repo::relative_path(base, &layout(base)).expect("layout paths are inside the backup")
}
