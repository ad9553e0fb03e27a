//! The restore job: its stages in order (see the crate documentation).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use cassette_cassandra::{ImportOptions, TableInfo};
use cassette_repo::{NodeLock, RepoError};
use chrono::Utc;

use crate::dc_map::DcMap;
use crate::journal::{self, ClusterRef, Journal, Record, RunState};
use crate::locate::locate;
use crate::prestage::{Prestaged, stage_all};
use crate::schema::{TableIds, creation_statements, live_tables, missing};
use crate::select::{Planned, Rename, select_tables};
use crate::stage::{clear_leftovers, importable, table_staging_dir};
use crate::verify::verify_unstaged;
use crate::{
    KeyspaceOutcome, Mode, Node, Progress, RestoreError, RestoreReport, RestoreRequest, Stage, Status, TableError,
    TableOutcome,
};
use cassette_store::BackupReader;
use cassette_store::locate::Located;

/// Prefix of the snapshots `TRUNCATE` takes with `auto_snapshot: true`.
const TRUNCATE_SNAPSHOT_PREFIX: &str = "truncated-";

/// Restores the node: see the crate documentation for the stages. Errors that stop the job
/// before anything is truncated (not found, incomplete, corrupt, schema, a truncation that
/// would wipe restored data) are `Err`; per-table failures while loading are in the report.
pub async fn run_restore(
    node: &Node,
    req: &RestoreRequest,
    progress: &dyn Progress,
) -> Result<RestoreReport, RestoreError> {
    let started = Instant::now();
    progress.stage(Stage::Locate, &req.name);
    node.nodetool.warm_up();
    let local = node.cql.local_node().await?;
    cassette_cassandra::version::check_supported(&local.release_version)?;
    let host_id = local.host_id.to_string();
    let source_cluster = req.from_cluster.clone().unwrap_or_else(|| local.cluster_name.clone());
    let source_host = req.from_node.clone().unwrap_or_else(|| host_id.clone());
    let renames: Vec<Rename> = req.renames.iter().map(|r| Rename::parse(r)).collect::<Result<_, _>>()?;
    // One cassette job per Cassandra node (the same lock as the backup engine's).
    let _node_lock = if req.dry_run { None } else { Some(node_lock(&host_id)?) };
    let Located { reader: source, manifest } = locate(req, &source_cluster, &source_host).await?;
    let backup_dir = source.location();
    if !req.dry_run {
        source.mark_restoring(&host_id).await;
    }
    let plan = select_tables(&manifest, req)?;
    tracing::info!(backup = %backup_dir.display(), tables = plan.len(), mode = ?req.mode, dry_run = req.dry_run, "restore started");
    let journal_path = source.restore_journal_path(&host_id);
    let run = if req.new_restore { RunState::default() } else { RunState::of(&journal::load(&journal_path)) };
    // Stage (one read, where the store checks as it stages) and verify before anything else: a
    // bad backup must not cost the live data.
    let data_dirs = node.cql.data_file_directories().await?;
    let mut run_dir = None;
    let mut prestaged = None;
    if !req.dry_run && source.fetch_verifies() && req.mode.loads() {
        let dir = RunDir(prepare_staging(req, &*source, &data_dirs, &host_id).await?);
        prestaged = stage_all(&*source, req, &plan, &run, &dir.0, progress).await;
        run_dir = Some(dir);
    }
    let verified = verify_unstaged(&*source, req, &plan, prestaged.as_ref(), progress).await?;

    progress.stage(Stage::Schema, "");
    let (live, schema_created) = ensure_schema(node, req, &manifest, &plan, &renames).await?;
    if let Some(offline) = &run.offline
        && !offline.quarantined.is_empty()
    {
        return Err(RestoreError::OfflineRefused(format!(
            "an offline restore of '{}' on this node has not finished (journal {}): run it again with --offline to finish it, or pass --new-restore",
            req.name,
            journal_path.display()
        )));
    }
    let resumed = !run.is_empty();
    // The cluster restored into: only its nodes' restore journals count (TRUNCATE is cluster-wide).
    let mut ring = vec![host_id.clone()];
    ring.extend(node.cql.peers().await?.into_iter().map(|p| p.host_id.to_string()));
    let cluster = ClusterRef { name: local.cluster_name.clone(), host_ids: ring };
    check_truncation_safe(node, req, &*source, &plan, &live, &run, &cluster).await?;
    // `nodetool import` loads what TRUNCATE removes: a node whose JMX refuses this login, or
    // does not answer, is found now, before anything is truncated.
    node.nodetool.check_reachable().await?;

    let mut report = RestoreReport {
        name: req.name.clone(),
        backup_path: backup_dir.clone(),
        source_cluster,
        source_host_id: source_host,
        host_id: host_id.clone(),
        mode: req.mode,
        dry_run: req.dry_run,
        resumed,
        complete: false,
        verified_files: verified.files,
        verified_bytes: verified.bytes,
        staged_first: prestaged.is_some(),
        schema_created,
        keyspaces: Vec::new(),
        tables: Vec::new(),
        journal: journal_path.clone(),
        duration_ms: 0,
    };
    if req.dry_run {
        report.tables = plan.iter().map(|p| dry_run_outcome(p, req.mode, &run)).collect();
        report.keyspaces = keyspace_groups(&plan)
            .into_iter()
            .map(|(ks, _)| KeyspaceOutcome { name: ks, status: Status::Success, duration_ms: 0, error: None })
            .collect();
        report.complete = true;
        report.duration_ms = started.elapsed().as_millis() as u64;
        return Ok(report);
    }

    if let Some(parent) = journal_path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| RepoError::io("create journal directory", parent, e))?;
    }
    let mut journal = Journal::open(&journal_path)?;
    if req.new_restore {
        journal.append(&Record::Reset { at: Utc::now() })?;
    }
    journal.append(&Record::Started { at: Utc::now(), mode: req.mode, cluster: Some(cluster) })?;
    // Truncate snapshots are found on disk (`data_dirs`): a `nodetool listsnapshots` per table
    // cost a JVM start each (7 s of a 26 s restore in the benchmark).
    let run_dir = match run_dir {
        Some(dir) => dir,
        None => RunDir(prepare_staging(req, &*source, &data_dirs, &host_id).await?),
    };
    let prestaged = prestaged.unwrap_or_default();
    let mut ctx = TableContext {
        node,
        req,
        source: &*source,
        run: &run,
        run_dir: &run_dir.0,
        prestaged: &prestaged,
        journal: &mut journal,
        data_dirs: &data_dirs,
        progress,
    };

    let groups = keyspace_groups(&plan);
    progress.keyspaces_selected(&groups.iter().map(|(ks, _)| ks.clone()).collect::<Vec<_>>());
    for (ks, tables) in groups {
        let (outcome, tables) = ctx.restore_keyspace(ks, tables, &live, &host_id).await?;
        report.tables.extend(tables);
        report.keyspaces.push(outcome);
    }
    drop(run_dir);
    report.complete = report.keyspaces.iter().all(|k| k.status == Status::Success);
    if report.complete {
        journal.append(&Record::Finished { at: Utc::now() })?;
    }
    report.duration_ms = started.elapsed().as_millis() as u64;
    tracing::info!(complete = report.complete, "restore finished");
    Ok(report)
}

/// This run's staging directory, `<staging root>/<host ID>/<run>`: what earlier runs left is
/// removed first, once no import of theirs still reads it.
pub(crate) async fn prepare_staging(
    req: &RestoreRequest,
    source: &dyn BackupReader,
    data_dirs: &[PathBuf],
    host_id: &str,
) -> Result<PathBuf, RestoreError> {
    let default_staging = source.default_staging_dir(data_dirs.first().and_then(|d| d.parent()));
    let host_staging = req.staging_dir.clone().unwrap_or(default_staging).join(host_id);
    wait_for_leftover_imports(&host_staging).await?;
    clear_leftovers(&host_staging)?;
    Ok(host_staging.join(Utc::now().timestamp_millis().to_string()))
}

/// Stage `schema`: the live tables the plan restores into, created from the backup's schema
/// when missing and `--create-schema` is given (only listed in a dry run). Returns the live
/// tables and the statements run.
pub(crate) async fn ensure_schema(
    node: &Node,
    req: &RestoreRequest,
    manifest: &cassette_repo::Manifest,
    plan: &[Planned<'_>],
    renames: &[Rename],
) -> Result<(BTreeMap<String, TableInfo>, Vec<String>), RestoreError> {
    let mut live = live_tables(&node.cql, plan).await?;
    let mut schema_created = Vec::new();
    let absent = missing(plan, &live);
    if !absent.is_empty() {
        if !req.create_schema {
            return Err(RestoreError::SchemaMissing { missing: absent });
        }
        let creation =
            creation_statements(manifest, plan, &absent, renames, &DcMap::parse(&req.dc_map)?, TableIds::New)?;
        crate::dc_map::check_target(&node.cql, &creation.data_centres).await?;
        let statements = creation.statements;
        if req.dry_run {
            schema_created = statements;
        } else {
            for s in statements {
                if node.cql.execute_schema(&s).await? {
                    schema_created.push(s);
                }
            }
            node.cql.await_schema_agreement().await?;
            live = live_tables(&node.cql, plan).await?;
            let still = missing(plan, &live);
            if !still.is_empty() {
                return Err(RestoreError::SchemaMissing { missing: still });
            }
        }
    }
    Ok((live, schema_created))
}

/// Before any TRUNCATE: none may wipe what a restore of this backup on another node of the
/// cluster already loaded (TRUNCATE is cluster-wide), and none may replace live rows with a
/// table the backup holds less of than its snapshot listed.
async fn check_truncation_safe(
    node: &Node,
    req: &RestoreRequest,
    source: &dyn BackupReader,
    plan: &[Planned<'_>],
    live: &BTreeMap<String, TableInfo>,
    run: &RunState,
    cluster: &ClusterRef,
) -> Result<(), RestoreError> {
    if !req.mode.truncates() {
        return Ok(());
    }
    let pending =
        |p: &&Planned<'_>| !run.truncated.contains_key(&p.live_name()) && !run.loaded.contains(&p.live_name());
    if !req.new_restore {
        // Other nodes' journals are read from a shared repository; where each node keeps its
        // restore journal locally, only this node's is known.
        let host_id = cluster.host_ids.first().map(String::as_str).unwrap_or_default();
        let journals: Vec<_> =
            source.cluster_restore_journals().into_iter().map(|(host, path)| (host, journal::load(&path))).collect();
        let wiped = journal::loads_a_truncation_would_wipe(&journals, host_id, cluster);
        for p in plan.iter().filter(pending) {
            if let Some(detail) = wiped.get(&p.live_name()) {
                return Err(RestoreError::WouldWipeRestoredData { table: p.live_name(), detail: detail.clone() });
            }
        }
    }
    // A table a dry run would create has no rows to lose.
    let pending: Vec<&Planned<'_>> =
        plan.iter().filter(pending).filter(|p| live.contains_key(&p.live_name())).collect();
    refuse_truncating_for_nothing(&node.cql, &source.location(), &pending).await
}

/// This run's staging directory, removed when the run ends, however it ends (what an error
/// left staged would otherwise wait for the next run's clearing).
struct RunDir(PathBuf);

impl Drop for RunDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.0.display(), error = %e, "could not remove the staging directory");
        }
    }
}

struct TableContext<'a> {
    node: &'a Node,
    req: &'a RestoreRequest,
    source: &'a dyn BackupReader,
    run: &'a RunState,
    run_dir: &'a Path,
    /// Tables the `fetch` stage staged: imported by move, not staged again.
    prestaged: &'a Prestaged,
    journal: &'a mut Journal,
    data_dirs: &'a [PathBuf],
    progress: &'a dyn Progress,
}

impl TableContext<'_> {
    /// Restores one keyspace's tables in turn, then repairs it when asked. Only journal failures
    /// are `Err`.
    async fn restore_keyspace(
        &mut self,
        ks: String,
        tables: Vec<&Planned<'_>>,
        live: &BTreeMap<String, TableInfo>,
        host_id: &str,
    ) -> Result<(KeyspaceOutcome, Vec<TableOutcome>), RestoreError> {
        let ks_started = Instant::now();
        let mut failure = None;
        let mut outcomes = Vec::new();
        for p in tables {
            let outcome = self.restore_table(p, live).await?;
            self.source.mark_restoring(host_id).await;
            self.progress.table_finished(&outcome);
            if let Some(e) = &outcome.error {
                failure.get_or_insert(format!("table {}: {e}", outcome.table));
            }
            outcomes.push(outcome);
        }
        if self.req.repair && self.req.mode.loads() && failure.is_none() {
            self.progress.stage(Stage::Repair, &ks);
            if let Err(e) = self.node.nodetool.repair(&ks).await {
                failure = Some(format!(
                    "repair failed (the data is loaded; run `nodetool repair -pr --full {ks}` again): {e}"
                ));
            }
        }
        let outcome = KeyspaceOutcome {
            name: ks,
            status: if failure.is_some() { Status::Failure } else { Status::Success },
            duration_ms: ks_started.elapsed().as_millis() as u64,
            error: failure,
        };
        self.progress.keyspace_finished(&outcome);
        Ok((outcome, outcomes))
    }

    /// truncate → stage → import for one table, skipping what the journal says is done.
    /// Only journal failures are `Err` (the job cannot record progress safely).
    async fn restore_table(
        &mut self,
        p: &Planned<'_>,
        live: &BTreeMap<String, TableInfo>,
    ) -> Result<TableOutcome, RestoreError> {
        let started = Instant::now();
        let name = p.live_name();
        debug_assert!(live.contains_key(&name));
        let (ks, table) = (p.live_keyspace.as_str(), p.live_table.as_str());
        let mut out = outcome(p);
        let finish = |mut out: TableOutcome, error: Option<TableError>| {
            out.status = if error.is_some() { Status::Failure } else { Status::Success };
            out.error_kind = error.as_ref().map(TableError::kind);
            out.error = error;
            out.duration_ms = started.elapsed().as_millis() as u64;
            Ok(out)
        };
        if self.run.loaded.contains(&name) {
            out.skipped = Some("already loaded by an interrupted run of this restore (journal)".into());
            if self.req.clear_truncate_snapshots
                && let Err(e) = self.clear_truncate_snapshots(ks, table, live).await
            {
                return finish(
                    out,
                    Some(TableError::ClearSnapshots(format!("clearing the truncate snapshots failed: {e}"))),
                );
            }
            return finish(out, None);
        }
        let mode = self.req.mode;
        if mode.truncates() {
            if let Some(snapshot) = self.run.truncated.get(&name) {
                out.skipped = Some(
                    "already truncated by an interrupted run of this restore (journal): not truncated again".into(),
                );
                out.truncate_snapshot = snapshot.clone();
            } else {
                self.progress.stage(Stage::Truncate, &name);
                let before = self.truncate_snapshot_tags(ks, table, live);
                if let Err(e) = self.node.cql.truncate(ks, table).await {
                    return finish(
                        out,
                        Some(TableError::Truncate(format!("TRUNCATE failed (every node must be up): {e}"))),
                    );
                }
                // The snapshot TRUNCATE just took (auto_snapshot): the one that was not there before.
                let snapshot = self.truncate_snapshot_tags(ks, table, live).difference(&before).last().cloned();
                self.journal.append(&Record::Truncated {
                    at: Utc::now(),
                    keyspace: ks.into(),
                    table: table.into(),
                    snapshot: snapshot.clone(),
                })?;
                out.truncated = true;
                out.truncate_snapshot = snapshot;
            }
        }
        if mode.loads() {
            self.progress.stage(Stage::Load, &name);
            let prefix = format!("{}/{}/", p.backup_keyspace, p.entry.name);
            let files = importable(&prefix, &p.entry.files);
            if !files.is_empty() {
                let dir = table_staging_dir(self.run_dir, ks, table);
                let staged = self.prestaged.has_table(&name);
                if !staged && let Err(e) = self.source.fetch_table(&files, &dir).await {
                    return finish(out, Some(TableError::Stage(format!("staging the SSTables failed: {e}"))));
                }
                // Files the fetch stage downloaded are this run's own: moved in, not copied. Hard
                // links into a directory repository are copied (the backup's files stay as they are).
                let opts = ImportOptions { copy_data: !staged, ..Default::default() };
                let imported = self.node.nodetool.import(ks, table, std::slice::from_ref(&dir), &opts).await;
                let _ = std::fs::remove_dir_all(&dir);
                match imported {
                    Ok(text) if text.to_lowercase().contains("failed") => {
                        return finish(
                            out,
                            Some(TableError::Load(format!("nodetool import reported a failure: {}", text.trim()))),
                        );
                    }
                    Ok(_) => {}
                    Err(e) => {
                        return finish(
                            out,
                            Some(TableError::Load(format!(
                                "loading failed (run the same restore again to retry; the table stays truncated): {e}"
                            ))),
                        );
                    }
                }
            }
            out.files = files.len() as u64;
            out.bytes = files.iter().map(|f| f.size).sum();
            self.journal.append(&Record::Loaded {
                at: Utc::now(),
                keyspace: ks.into(),
                table: table.into(),
                mode,
                files: out.files,
                bytes: out.bytes,
            })?;
            out.loaded = true;
        }
        if self.req.clear_truncate_snapshots && (out.loaded || mode == Mode::TruncateOnly) {
            if let Err(e) = self.clear_truncate_snapshots(ks, table, live).await {
                return finish(
                    out,
                    Some(TableError::ClearSnapshots(format!("clearing the truncate snapshots failed: {e}"))),
                );
            }
            out.truncate_snapshot = None;
        }
        finish(out, None)
    }

    /// The `truncated-*` snapshot of the table that the truncation just took, if any.
    /// The table's `truncated-*` snapshots on this node, read from its directories.
    fn truncate_snapshot_tags(&self, ks: &str, table: &str, live: &BTreeMap<String, TableInfo>) -> BTreeSet<String> {
        match live.get(&format!("{ks}.{table}")) {
            Some(info) => cassette_cassandra::disk::table_snapshot_tags(
                self.data_dirs,
                ks,
                table,
                &info.id_hex(),
                TRUNCATE_SNAPSHOT_PREFIX,
            ),
            None => BTreeSet::new(),
        }
    }

    /// Clears every `truncated-*` snapshot of the table on this node.
    async fn clear_truncate_snapshots(
        &self,
        ks: &str,
        table: &str,
        live: &BTreeMap<String, TableInfo>,
    ) -> Result<(), RestoreError> {
        for tag in self.truncate_snapshot_tags(ks, table, live) {
            self.node.nodetool.clear_snapshot(&tag, &[ks.to_string()]).await?;
        }
        Ok(())
    }
}

fn outcome(p: &Planned<'_>) -> TableOutcome {
    TableOutcome {
        keyspace: p.live_keyspace.clone(),
        table: p.live_table.clone(),
        backup_keyspace: p.backup_keyspace.clone(),
        backup_table: p.entry.name.clone(),
        status: Status::Success,
        error: None,
        error_kind: None,
        truncated: false,
        loaded: false,
        skipped: None,
        truncate_snapshot: None,
        files: 0,
        bytes: 0,
        duration_ms: 0,
    }
}

fn dry_run_outcome(p: &Planned<'_>, mode: Mode, run: &RunState) -> TableOutcome {
    let name = p.live_name();
    let mut out = outcome(p);
    let files = importable(&format!("{}/{}/", p.backup_keyspace, p.entry.name), &p.entry.files);
    out.files = files.len() as u64;
    out.bytes = files.iter().map(|f| f.size).sum();
    let mut steps = Vec::new();
    if run.loaded.contains(&name) {
        steps.push("skip: already loaded (journal)".to_string());
    } else {
        if mode.truncates() {
            steps.push(if run.truncated.contains_key(&name) {
                "skip truncate: already truncated (journal)".into()
            } else {
                format!("TRUNCATE {name}")
            });
        }
        if mode.loads() {
            steps.push(format!("stage {} files and nodetool import them into {name}", out.files));
        }
    }
    out.skipped = Some(format!("dry run: would {}", steps.join(", then ")));
    out
}

/// Defence in depth before any TRUNCATE: a table whose backup holds fewer SSTables than
/// Cassandra's snapshot listed when the backup was taken (none, from a backup that found no
/// files) is refused, since truncating it would replace the live rows with less. A manifest of
/// an older cassette does not record the snapshot's count: a table it holds no SSTable of is
/// refused while the live table has rows (if it really was empty, TRUNCATE it by hand).
pub(crate) async fn refuse_truncating_for_nothing(
    cql: &cassette_cassandra::Cql,
    backup_dir: &Path,
    plan: &[&Planned<'_>],
) -> Result<(), RestoreError> {
    let mut bad = Vec::new();
    for p in plan {
        let held = p.entry.files.iter().filter(|f| f.path.ends_with("-Data.db")).count() as u64;
        let problem = match p.entry.snapshot_sstables {
            Some(listed) if held < listed => Some(format!(
                "the backup holds {held} of the {listed} SSTables Cassandra's snapshot listed when it was taken: a TRUNCATE would replace the live rows with less"
            )),
            Some(_) => None,
            None if held == 0 => match cql.has_rows(&p.live_keyspace, &p.live_table).await {
                Ok(false) => None,
                Ok(true) => Some(
                    "the backup holds no SSTable of it and, written by an older cassette, does not record whether its snapshot had any, while the live table has rows: a TRUNCATE would lose them. If the table was empty when backed up, TRUNCATE it yourself".to_string(),
                ),
                Err(e) => Some(format!(
                    "the backup holds no SSTable of it and does not record whether its snapshot had any; whether the live table has rows cannot be told ({e})"
                )),
            },
            None => None,
        };
        if let Some(problem) = problem {
            bad.push(cassette_repo::BadFile { path: p.live_name(), problem });
        }
    }
    if bad.is_empty() {
        return Ok(());
    }
    Err(RestoreError::Corrupt { path: backup_dir.display().to_string(), files: bad })
}

/// The plan grouped by live keyspace, in plan order.
fn keyspace_groups<'p, 'm>(plan: &'p [Planned<'m>]) -> Vec<(String, Vec<&'p Planned<'m>>)> {
    let mut groups: Vec<(String, Vec<&Planned<'m>>)> = Vec::new();
    for p in plan {
        match groups.iter_mut().find(|(k, _)| *k == p.live_keyspace) {
            Some((_, v)) => v.push(p),
            None => groups.push((p.live_keyspace.clone(), vec![p])),
        }
    }
    groups
}

/// How long a restore waits for the `nodetool import` of an interrupted run to end.
const LEFTOVER_IMPORT_WAIT: std::time::Duration = std::time::Duration::from_secs(600);

/// Waits until no process is still importing from this node's staging directory: a nodetool
/// JVM an interrupted restore left running, or Cassandra itself, whose import of a killed
/// restore goes on inside the node. Its files are about to be removed and loaded again.
async fn wait_for_leftover_imports(host_staging: &Path) -> Result<(), RestoreError> {
    use cassette_cassandra::children::{running_with_arg_under, with_open_file_under};
    // Nothing left by an earlier run: nothing an import could read.
    let leftovers = std::fs::read_dir(host_staging).map(|mut d| d.next().is_some()).unwrap_or(false);
    if !leftovers {
        return Ok(());
    }
    let deadline = Instant::now() + LEFTOVER_IMPORT_WAIT;
    let mut warned = false;
    let mut clear_before = false;
    loop {
        let mut running = running_with_arg_under(host_staging);
        running.extend(with_open_file_under(host_staging));
        if running.is_empty() {
            // An import opens the files one after the other: clear twice, a second apart.
            if clear_before {
                return Ok(());
            }
            clear_before = true;
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            continue;
        }
        clear_before = false;
        let listed: Vec<String> = running.iter().map(|(pid, cmd)| format!("pid {pid}: {cmd}")).collect();
        if Instant::now() >= deadline {
            return Err(RestoreError::OfflineRefused(format!(
                "a process of an interrupted restore still uses the staging directory {} after {} s ({}): wait for it to end, or stop it, then run the restore again",
                host_staging.display(),
                LEFTOVER_IMPORT_WAIT.as_secs(),
                listed.join("; ")
            )));
        }
        if !warned {
            tracing::warn!(staging = %host_staging.display(), processes = %listed.join("; "), "waiting for the import of an interrupted restore to end");
            warned = true;
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

/// The node-wide job lock, shared with the backup engine (in the state directory, see `cassette_repo::state`).
pub(crate) fn node_lock(host_id: &str) -> Result<NodeLock, RestoreError> {
    Ok(NodeLock::acquire_host(host_id)?)
}
