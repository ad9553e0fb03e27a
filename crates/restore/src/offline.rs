//! The offline restore (`--offline`): seed 001's procedure for one node, done safely.
//!
//! locate → verify → schema (the online restore's stages: nothing is touched before every file
//! of the backup is verified) → `nodetool drain` → the operator's stop command → wait until the
//! node's CQL and JMX ports no longer answer → move the files of the commitlog and saved caches
//! directories, and the live SSTables of every restored table (every data directory), into a
//! **quarantine** directory (renames on the same filesystem, same relative layout, nothing
//! deleted) → place the backed-up files into the live table directory (first data directory;
//! hard links when the backup is on the same filesystem, verified copies otherwise) → the
//! operator's start command → wait for CQL and `UN`.
//!
//! Every step is journaled (see [`crate::journal`]); a rerun after a crash continues where the
//! last one stopped, even with the node down (the plan, with directories and table ids, is in
//! the journal). Quarantined files are kept until `cassette quarantine purge` removes them.
//!
//! ```text
//! <quarantine>/                          default: <first data dir>/../cassette-quarantine/<time>-<backup>/
//!     cassette-quarantine.json           what was moved from where (see QuarantineInfo)
//!     commitlog/...                      the files of commitlog_directory
//!     saved_caches/...                   the files of saved_caches_directory
//!     data1/<keyspace>/<table>-<id>/...  the live SSTables of data directory 1 (data2/ ...)
//!     stop-command.log, start-command.log
//! ```
//! A directory on another filesystem than the default quarantine gets its own quarantine
//! beside it (`<dir>/../cassette-quarantine/<time>-<backup>/`), so every move is a rename.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cassette_cassandra::{Cql, CqlTarget, Nodetool, port_answers, status_shows_up_normal};
use cassette_repo::{FileEntry, LinkOutcome, Manifest, RepoError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::journal::{self, Journal, OfflineState, Record, RunState};
use crate::locate::{Located, locate};
use crate::schema::{creation_statements, live_tables, missing};
use crate::select::{Planned, Rename, select};
use crate::stage::REWRITTEN;
use crate::verify::verify_files;
use crate::{Progress, RestoreError, RestoreRequest, Stage};

/// The file in each quarantine directory that describes it.
pub const QUARANTINE_INFO: &str = "cassette-quarantine.json";
/// The directory, beside a data (or commitlog) directory, that holds quarantines by default.
pub const QUARANTINE_DIR_NAME: &str = "cassette-quarantine";

/// What only an offline restore needs.
#[derive(Debug, Clone)]
pub struct OfflineOptions {
    /// Stops the node after the drain (run with `sh -c`), e.g. `systemctl stop cassandra`.
    pub stop_command: String,
    /// Starts the node once the files are in place (`sh -c`); must return once the node is
    /// launched (not run Cassandra in the foreground).
    pub start_command: String,
    /// The node's data directories; empty: ask the node (`data_file_directories`).
    pub data_dirs: Vec<PathBuf>,
    /// The commitlog directory; `None`: ask the node (`commitlog_directory`).
    pub commitlog_dir: Option<PathBuf>,
    /// The saved caches directory; `None`: ask the node (`saved_caches_directory`).
    pub saved_caches_dir: Option<PathBuf>,
    /// Where to move the replaced files; `None`: `<first data dir>/../cassette-quarantine/<time>-<backup>`.
    pub quarantine_dir: Option<PathBuf>,
    /// How long the stop command and the node's shutdown may take.
    pub stop_timeout: Duration,
    /// How long the start command and the node's start-up (CQL and `UN`) may take.
    pub start_timeout: Duration,
}

impl OfflineOptions {
    /// Options with the given commands and the defaults (120 s to stop, 300 s to start).
    pub fn new(stop_command: impl Into<String>, start_command: impl Into<String>) -> Self {
        OfflineOptions {
            stop_command: stop_command.into(),
            start_command: start_command.into(),
            data_dirs: Vec::new(),
            commitlog_dir: None,
            saved_caches_dir: None,
            quarantine_dir: None,
            stop_timeout: Duration::from_secs(120),
            start_timeout: Duration::from_secs(300),
        }
    }
}

/// A directory whose files move into the quarantine: `source` → `dest` (same filesystem).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantineMove {
    /// The live directory.
    pub source: PathBuf,
    /// Where its files go, with the same relative paths.
    pub dest: PathBuf,
}

/// A table an offline restore replaces.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfflineTable {
    /// Live keyspace.
    pub keyspace: String,
    /// Live table.
    pub table: String,
    /// The live table id (32 hex): its directory is `<table>-<id>`.
    pub id_hex: String,
    /// Keyspace in the backup.
    pub backup_keyspace: String,
    /// Table in the backup.
    pub backup_table: String,
}

impl OfflineTable {
    /// `keyspace.table`, live names.
    pub fn live_name(&self) -> String {
        format!("{}.{}", self.keyspace, self.table)
    }

    fn dir_in(&self, root: &Path) -> PathBuf {
        root.join(&self.keyspace).join(cassette_cassandra::disk::table_dir_name(&self.table, &self.id_hex))
    }
}

/// What an offline restore does, decided while the node is up and journaled before it is
/// drained, so a rerun can continue with the node down.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfflinePlan {
    /// The node's CQL `host:port` as given (how a rerun with the node down finds this plan).
    pub cql_address: String,
    /// The node's host ID.
    pub host_id: String,
    /// The node's address as `nodetool status` shows it.
    pub node_address: String,
    /// Its data directories; backed-up files are placed in the first.
    pub data_dirs: Vec<PathBuf>,
    /// The commitlog directory's move.
    pub commitlog: QuarantineMove,
    /// The saved caches directory's move.
    pub saved_caches: QuarantineMove,
    /// One move per data directory, in order.
    pub data: Vec<QuarantineMove>,
    /// The quarantine directories (one per filesystem involved, the first is the main one).
    pub quarantine_dirs: Vec<PathBuf>,
    /// The tables replaced.
    pub tables: Vec<OfflineTable>,
}

impl OfflinePlan {
    fn all_done(&self, state: &OfflineState) -> bool {
        state.quarantined.contains(COMMITLOG)
            && state.quarantined.contains(SAVED_CACHES)
            && self
                .tables
                .iter()
                .all(|t| state.quarantined.contains(&t.live_name()) && state.placed.contains(&t.live_name()))
    }
}

/// `cassette-quarantine.json`: what a quarantine directory holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantineInfo {
    /// The backup restored.
    pub backup: String,
    /// Its directory.
    pub backup_path: PathBuf,
    /// The node restored.
    pub host_id: String,
    /// When the offline restore planned it.
    pub created_at: DateTime<Utc>,
    /// When the node was up again with the restored files (`None`: unfinished).
    pub finished_at: Option<DateTime<Utc>>,
    /// What moved here from where (move the files back by hand to undo the restore).
    pub moves: Vec<QuarantineMove>,
    /// The tables whose live files are here.
    pub tables: Vec<String>,
}

/// One step of an offline restore, as done (or planned, in a dry run).
#[derive(Debug, Clone, Serialize)]
pub struct OfflineStep {
    /// `verify`, `drain`, `stop`, `quarantine`, `place`, `start`, `repair`.
    pub step: String,
    /// What it did (or would do), or why it was skipped.
    pub detail: String,
}

/// What happened to one table.
#[derive(Debug, Clone, Serialize)]
pub struct OfflineTableOutcome {
    /// Live keyspace.
    pub keyspace: String,
    /// Live table.
    pub table: String,
    /// Keyspace in the backup.
    pub backup_keyspace: String,
    /// Table in the backup.
    pub backup_table: String,
    /// The live directory the backup's files went to.
    pub live_dir: PathBuf,
    /// Live files moved into the quarantine by this run (a dry run: that would be).
    pub quarantined_files: u64,
    /// Backed-up files placed by this run (a dry run: that would be).
    pub placed_files: u64,
    /// Their bytes.
    pub placed_bytes: u64,
    /// Steps skipped because an interrupted run did them (journal).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

/// The outcome of [`run_offline_restore`].
#[derive(Debug, Serialize)]
pub struct OfflineReport {
    /// The backup's name.
    pub name: String,
    /// Its directory.
    pub backup_path: PathBuf,
    /// The cluster the backup was taken from.
    pub source_cluster: String,
    /// The host ID the backup was taken from.
    pub source_host_id: String,
    /// The host ID of the node restored.
    pub host_id: String,
    /// Nothing was touched.
    pub dry_run: bool,
    /// An interrupted offline restore was continued.
    pub resumed: bool,
    /// The node is up with the restored tables.
    pub complete: bool,
    /// Files verified.
    pub verified_files: u64,
    /// Bytes verified.
    pub verified_bytes: u64,
    /// Schema statements executed (or that would be) by `create_schema`.
    pub schema_created: Vec<String>,
    /// The node's data directories.
    pub data_dirs: Vec<PathBuf>,
    /// Its commitlog directory.
    pub commitlog_dir: PathBuf,
    /// Its saved caches directory.
    pub saved_caches_dir: PathBuf,
    /// Where the replaced files are kept (until `cassette quarantine purge`).
    pub quarantine: Vec<PathBuf>,
    /// The steps, in order.
    pub steps: Vec<OfflineStep>,
    /// Per table.
    pub tables: Vec<OfflineTableOutcome>,
    /// Why `complete` is false (a repair failure; the restore itself is done).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The restore journal.
    pub journal: PathBuf,
    /// Wall time.
    pub duration_ms: u64,
}

const COMMITLOG: &str = "commitlog";
const SAVED_CACHES: &str = "saved_caches";

fn refused(msg: impl Into<String>) -> RestoreError {
    RestoreError::OfflineRefused(msg.into())
}

fn failed(step: &str, msg: impl Into<String>) -> RestoreError {
    RestoreError::Offline { step: step.into(), message: msg.into() }
}

/// Restores the node offline: see the module documentation. The node may be down when this
/// continues an interrupted offline restore; otherwise it must be up (schema, directories,
/// drain). Errors before the drain leave the node as it was.
pub async fn run_offline_restore(
    target: &CqlTarget,
    nodetool: &Nodetool,
    req: &RestoreRequest,
    opts: &OfflineOptions,
    progress: &dyn Progress,
) -> Result<OfflineReport, RestoreError> {
    let started = Instant::now();
    let address = format!("{}:{}", target.host, target.port);
    let renames: Vec<Rename> = req.renames.iter().map(|r| Rename::parse(r)).collect::<Result<_, _>>()?;
    progress.stage(Stage::Locate, &req.name);
    let cql_up = port_answers(&target.host, target.port).await;

    // Who the node is, which backup, and what an interrupted run already did.
    let cql;
    let (host_id, backup_dir, manifest, mut state, node_address) = if cql_up {
        let c = Cql::connect(target).await?;
        let local = c.local_node().await?;
        let host_id = local.host_id.to_string();
        let cluster = req.from_cluster.clone().unwrap_or_else(|| local.cluster_name.clone());
        let source_host = req.from_node.clone().unwrap_or_else(|| host_id.clone());
        let Located { dir, manifest } = locate(&req.backup_root, &cluster, &source_host, &req.name)?;
        let run = if req.new_restore {
            RunState::default()
        } else {
            RunState::of(&journal::load(&journal::journal_path(&dir, &host_id)))
        };
        let node_address =
            local.broadcast_address.or(local.rpc_address).map(|a| a.to_string()).unwrap_or_else(|| target.host.clone());
        cql = Some(c);
        (host_id, dir, manifest, run.offline, node_address)
    } else {
        if req.new_restore {
            return Err(refused(format!(
                "the node does not answer CQL at {address}: a new offline restore reads the schema and drains the node, so start it first"
            )));
        }
        let Some((dir, host_id, state)) = find_unfinished(&req.backup_root, &req.name, &address)? else {
            return Err(refused(format!(
                "the node does not answer CQL at {address}, and no unfinished offline restore of backup '{}' for it is journaled in {}: \
                 start the node (cassette reads its schema and drains it before stopping it), or check --cql-host/--cql-port",
                req.name,
                req.backup_root.display()
            )));
        };
        let manifest = Manifest::read(&dir)?;
        let node_address = state.plan.node_address.clone();
        cql = None;
        (host_id, dir, manifest, Some(state), node_address)
    };
    let journal_path = journal::journal_path(&backup_dir, &host_id);
    let _node_lock = if req.dry_run { None } else { Some(crate::engine::node_lock(&host_id)?) };
    // A journaled plan binds once files moved (or the node is down): otherwise plan afresh.
    let touched = state.as_ref().is_some_and(|s| !s.quarantined.is_empty());
    if cql_up && !touched {
        state = None;
    }
    let resumed = state.is_some();

    let plan = select(&manifest, req)?;
    if plan.is_empty() {
        return Err(RestoreError::InvalidInput(format!(
            "backup '{}' has no tables to restore with this selection (system keyspaces are restored only when named with --keyspace)",
            req.name
        )));
    }
    if let Some(s) = &state {
        let want: BTreeSet<String> = plan.iter().map(Planned::live_name).collect();
        let had: BTreeSet<String> = s.plan.tables.iter().map(OfflineTable::live_name).collect();
        if want != had {
            return Err(RestoreError::InvalidInput(format!(
                "an unfinished offline restore of '{}' on this node replaces {}: run it again with the same selection to finish it (journal {})",
                req.name,
                had.into_iter().collect::<Vec<_>>().join(", "),
                journal_path.display()
            )));
        }
    }
    tracing::info!(backup = %backup_dir.display(), tables = plan.len(), resumed, dry_run = req.dry_run, "offline restore started");

    // Verify before anything else (every run: the backup may have changed since).
    progress.stage(Stage::Verify, &req.name);
    let files: Vec<&FileEntry> = plan.iter().flat_map(|p| p.entry.files.iter()).collect();
    let verified_bytes: u64 = files.iter().map(|f| f.size).sum();
    progress.add_total(files.len() as u64, verified_bytes);
    let bad = verify_files(&backup_dir, &files, req.parallel_files, progress);
    if !bad.is_empty() {
        return Err(RestoreError::Corrupt { path: backup_dir.display().to_string(), files: bad });
    }

    let mut schema_created = Vec::new();
    let mut steps = vec![OfflineStep {
        step: "verify".into(),
        detail: format!("{} files, {} bytes of {} verified", files.len(), verified_bytes, backup_dir.display()),
    }];
    let mut state = match state {
        Some(s) => s,
        None => {
            let cql = cql.as_ref().expect("a fresh plan is made with the node up");
            progress.stage(Stage::Schema, "");
            let mut live = live_tables(cql, &plan).await?;
            let absent = missing(&plan, &live);
            if !absent.is_empty() {
                if !req.create_schema {
                    return Err(RestoreError::SchemaMissing { missing: absent });
                }
                let statements = creation_statements(&manifest, &plan, &absent, &renames);
                if req.dry_run {
                    schema_created = statements;
                } else {
                    for s in statements {
                        if cql.execute_schema(&s).await? {
                            schema_created.push(s);
                        }
                    }
                    cql.await_schema_agreement().await?;
                    live = live_tables(cql, &plan).await?;
                    let still = missing(&plan, &live);
                    if !still.is_empty() {
                        return Err(RestoreError::SchemaMissing { missing: still });
                    }
                }
            }
            let tables = plan
                .iter()
                .map(|p| OfflineTable {
                    keyspace: p.live_keyspace.clone(),
                    table: p.live_table.clone(),
                    // In a dry run with --create-schema, a table to create has no id yet.
                    id_hex: live.get(&p.live_name()).map(|t| t.id_hex()).unwrap_or_else(|| "<new table id>".into()),
                    backup_keyspace: p.backup_keyspace.clone(),
                    backup_table: p.entry.name.clone(),
                })
                .collect();
            let dirs = node_dirs(cql, opts).await?;
            let offline_plan = make_plan(&address, &host_id, &node_address, dirs, opts, &req.name, tables)?;
            OfflineState { plan: offline_plan, ..Default::default() }
        }
    };
    let p = state.plan.clone();
    let by_live: BTreeMap<String, &Planned<'_>> = plan.iter().map(|x| (x.live_name(), x)).collect();
    let mut report = OfflineReport {
        name: req.name.clone(),
        backup_path: backup_dir.clone(),
        source_cluster: manifest.cluster_name.clone(),
        source_host_id: manifest.node.host_id.clone(),
        host_id: host_id.clone(),
        dry_run: req.dry_run,
        resumed,
        complete: false,
        verified_files: files.len() as u64,
        verified_bytes,
        schema_created,
        data_dirs: p.data_dirs.clone(),
        commitlog_dir: p.commitlog.source.clone(),
        saved_caches_dir: p.saved_caches.source.clone(),
        quarantine: p.quarantine_dirs.clone(),
        steps: Vec::new(),
        tables: Vec::new(),
        error: None,
        journal: journal_path.clone(),
        duration_ms: 0,
    };
    let table_files = |t: &OfflineTable| -> Vec<(&FileEntry, String)> {
        let prefix = format!("{}/{}/", t.backup_keyspace, t.backup_table);
        by_live[&t.live_name()]
            .entry
            .files
            .iter()
            .filter_map(|f| f.path.strip_prefix(&prefix).map(|rel| (f, rel.to_string())))
            .collect()
    };

    if req.dry_run {
        steps.push(step(
            "drain",
            if state.drained {
                "skip: already drained (journal)".into()
            } else {
                format!("nodetool drain (JMX {}:{})", nodetool.jmx_address().0, nodetool.jmx_address().1)
            },
        ));
        steps.push(step(
            "stop",
            if state.stopped {
                "skip: already stopped (journal)".into()
            } else {
                format!("sh -c '{}', then wait until CQL {address} and JMX stop answering", opts.stop_command)
            },
        ));
        for (item, mv) in [(COMMITLOG, &p.commitlog), (SAVED_CACHES, &p.saved_caches)] {
            let detail = if state.quarantined.contains(item) {
                "skip: already quarantined (journal)".into()
            } else {
                format!(
                    "move {} files of {} to {}",
                    count_files(&mv.source, &[]),
                    mv.source.display(),
                    mv.dest.display()
                )
            };
            steps.push(step("quarantine", detail));
        }
        for t in &p.tables {
            let (mut quarantined, mut notes) = (0, Vec::new());
            if state.quarantined.contains(&t.live_name()) {
                notes.push("already quarantined (journal)");
            } else {
                quarantined = p.data.iter().map(|mv| count_files(&t.dir_in(&mv.source), TABLE_SKIP)).sum();
            }
            let placed = table_files(t);
            report.tables.push(OfflineTableOutcome {
                keyspace: t.keyspace.clone(),
                table: t.table.clone(),
                backup_keyspace: t.backup_keyspace.clone(),
                backup_table: t.backup_table.clone(),
                live_dir: t.dir_in(&p.data_dirs[0]),
                quarantined_files: quarantined,
                placed_files: if state.placed.contains(&t.live_name()) { 0 } else { placed.len() as u64 },
                placed_bytes: if state.placed.contains(&t.live_name()) {
                    0
                } else {
                    placed.iter().map(|(f, _)| f.size).sum()
                },
                skipped: if state.placed.contains(&t.live_name()) {
                    notes.push("already placed (journal)");
                    Some(format!("dry run: {}", notes.join(", ")))
                } else {
                    Some(format!(
                        "dry run: would {}place {} backed-up files in {}",
                        if notes.is_empty() {
                            format!("quarantine {quarantined} live files, then ")
                        } else {
                            String::new()
                        },
                        placed.len(),
                        t.dir_in(&p.data_dirs[0]).display()
                    ))
                },
            });
        }
        steps.push(step(
            "start",
            format!("sh -c '{}', then wait for CQL {address} and UN {}", opts.start_command, p.node_address),
        ));
        if req.repair {
            steps.push(step("repair", "nodetool repair -pr --full, per keyspace".into()));
        }
        report.steps = steps;
        report.complete = true;
        report.duration_ms = started.elapsed().as_millis() as u64;
        return Ok(report);
    }

    let mut journal = Journal::open(&journal_path)?;
    if req.new_restore {
        journal.append(&Record::Reset { at: Utc::now() })?;
    }
    if !resumed {
        journal.append(&Record::OfflinePlanned { at: Utc::now(), plan: p.clone() })?;
        write_quarantine_info(&p, &req.name, &backup_dir, None)?;
    }
    let (jmx_host, jmx_port) = nodetool.jmx_address();
    let running =
        || async move { port_answers(&target.host, target.port).await || port_answers(jmx_host, jmx_port).await };
    let main_q = p.quarantine_dirs[0].clone();

    // Drain and stop (or see that an interrupted run did).
    if !state.stopped {
        if state.drained {
            steps.push(step("drain", "skipped: already drained by the interrupted run (journal)".into()));
        } else if cql_up {
            progress.stage(Stage::Drain, &address);
            nodetool.drain().await.map_err(|e| failed("drain", format!("{e}; nothing was moved: the node may be partly drained, restart it before running the restore again")))?;
            journal.append(&Record::Drained { at: Utc::now() })?;
            state.drained = true;
            steps.push(step("drain", "nodetool drain".into()));
        } else {
            return Err(refused(format!(
                "the node does not answer CQL at {address} and this restore has not drained it (journal {}): its commitlog may hold writes that are in no SSTable. \
                 Start the node and run the same restore again: cassette drains it before stopping it",
                journal_path.display()
            )));
        }
        progress.stage(Stage::Stop, &opts.stop_command);
        if running().await {
            run_command("stop", &opts.stop_command, &main_q.join("stop-command.log"), opts.stop_timeout).await?;
            steps.push(step("stop", format!("sh -c '{}'", opts.stop_command)));
        } else {
            steps.push(step("stop", "skipped: the node was already down".into()));
        }
        let deadline = Instant::now() + opts.stop_timeout;
        while running().await {
            if Instant::now() >= deadline {
                return Err(failed(
                    "stop",
                    format!(
                        "the node still answers on CQL {address} or JMX {jmx_host}:{jmx_port} {} s after `{}`; nothing was moved (the node is drained: it accepts no writes). \
                         Stop it, then run the same restore again: it continues",
                        opts.stop_timeout.as_secs(),
                        opts.stop_command
                    ),
                ));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        journal.append(&Record::NodeStopped { at: Utc::now() })?;
        state.stopped = true;
    } else if !p.all_done(&state) && running().await {
        return Err(refused(format!(
            "the node is running, but the offline restore that stopped it has not finished (journal {}): it was started during the restore, with some tables partly replaced. \
             Stop it and run the same restore again to finish; the files moved so far are in {}",
            journal_path.display(),
            main_q.display()
        )));
    } else {
        steps.push(step("stop", "skipped: stopped by the interrupted run (journal)".into()));
    }

    // Quarantine the commitlog and saved caches.
    for (item, mv) in [(COMMITLOG, &p.commitlog), (SAVED_CACHES, &p.saved_caches)] {
        if state.quarantined.contains(item) {
            steps.push(step("quarantine", format!("{item}: skipped, already quarantined (journal)")));
            continue;
        }
        progress.stage(Stage::Quarantine, item);
        let n = move_tree(&mv.source, &mv.dest, &[])?;
        journal.append(&Record::Quarantined { at: Utc::now(), item: item.into(), files: n })?;
        state.quarantined.insert(item.into());
        steps.push(step(
            "quarantine",
            format!("{item}: moved {n} files of {} to {}", mv.source.display(), mv.dest.display()),
        ));
    }

    // Per table: quarantine the live files, place the backup's.
    for t in &p.tables {
        let name = t.live_name();
        let live_dir = t.dir_in(&p.data_dirs[0]);
        let mut out = OfflineTableOutcome {
            keyspace: t.keyspace.clone(),
            table: t.table.clone(),
            backup_keyspace: t.backup_keyspace.clone(),
            backup_table: t.backup_table.clone(),
            live_dir: live_dir.clone(),
            quarantined_files: 0,
            placed_files: 0,
            placed_bytes: 0,
            skipped: None,
        };
        let mut skipped = Vec::new();
        if state.quarantined.contains(&name) {
            skipped.push("already quarantined (journal): the files there now are the restored ones");
        } else {
            progress.stage(Stage::Quarantine, &name);
            for mv in &p.data {
                out.quarantined_files += move_tree(&t.dir_in(&mv.source), &t.dir_in(&mv.dest), TABLE_SKIP)?;
            }
            journal.append(&Record::Quarantined {
                at: Utc::now(),
                item: name.clone(),
                files: out.quarantined_files,
            })?;
            state.quarantined.insert(name.clone());
        }
        if state.placed.contains(&name) {
            skipped.push("already placed (journal)");
        } else {
            progress.stage(Stage::Place, &name);
            let files = table_files(t);
            place_files(&backup_dir, &files, &live_dir)?;
            out.placed_files = files.len() as u64;
            out.placed_bytes = files.iter().map(|(f, _)| f.size).sum();
            journal.append(&Record::Placed {
                at: Utc::now(),
                keyspace: t.keyspace.clone(),
                table: t.table.clone(),
                files: out.placed_files,
                bytes: out.placed_bytes,
            })?;
            state.placed.insert(name.clone());
        }
        if !skipped.is_empty() {
            out.skipped = Some(skipped.join("; "));
        }
        report.tables.push(out);
    }

    // Start, and wait for the node.
    progress.stage(Stage::Start, &opts.start_command);
    if running().await {
        steps.push(step("start", "skipped: the node is already running".into()));
    } else {
        run_command("start", &opts.start_command, &main_q.join("start-command.log"), opts.start_timeout).await?;
        steps.push(step("start", format!("sh -c '{}'", opts.start_command)));
    }
    let deadline = Instant::now() + opts.start_timeout;
    loop {
        if port_answers(&target.host, target.port).await
            && let Ok(status) = nodetool.status().await
            && status_shows_up_normal(&status, &p.node_address)
        {
            break;
        }
        if Instant::now() >= deadline {
            return Err(failed(
                "start",
                format!(
                    "the node is not up (CQL {address} and UN {} in `nodetool status`) {} s after `{}`: check its log. The restored files are in place; \
                     the replaced ones are in {}. Once it is up, run the same restore again to finish",
                    p.node_address,
                    opts.start_timeout.as_secs(),
                    opts.start_command,
                    main_q.display()
                ),
            ));
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    journal.append(&Record::NodeStarted { at: Utc::now() })?;
    steps.push(step("start", format!("node up: CQL {address} answers, {} is UN", p.node_address)));

    if req.repair {
        let mut keyspaces: Vec<&str> = p.tables.iter().map(|t| t.keyspace.as_str()).collect();
        keyspaces.dedup();
        for ks in keyspaces {
            progress.stage(Stage::Repair, ks);
            match nodetool.repair(ks).await {
                Ok(_) => steps.push(step("repair", format!("nodetool repair -pr --full {ks}"))),
                Err(e) => {
                    report.error = Some(format!(
                        "repair of {ks} failed (the restore is done; run `nodetool repair -pr --full {ks}` again): {e}"
                    ));
                    break;
                }
            }
        }
    }
    journal.append(&Record::Finished { at: Utc::now() })?;
    if let Err(e) = write_quarantine_info(&p, &req.name, &backup_dir, Some(Utc::now())) {
        tracing::warn!(error = %e, "could not mark the quarantine finished");
    }
    report.steps = steps;
    report.complete = report.error.is_none();
    report.duration_ms = started.elapsed().as_millis() as u64;
    tracing::info!(complete = report.complete, "offline restore finished");
    Ok(report)
}

fn step(step: &str, detail: String) -> OfflineStep {
    OfflineStep { step: step.into(), detail }
}

/// What a table directory holds besides live SSTables: never quarantined.
const TABLE_SKIP: &[&str] = &["snapshots", "backups"];

struct NodeDirs {
    data: Vec<PathBuf>,
    commitlog: PathBuf,
    saved_caches: PathBuf,
}

async fn node_dirs(cql: &Cql, opts: &OfflineOptions) -> Result<NodeDirs, RestoreError> {
    let data = if opts.data_dirs.is_empty() { cql.data_file_directories().await? } else { opts.data_dirs.clone() };
    let commitlog = match &opts.commitlog_dir {
        Some(d) => d.clone(),
        None => cql.commitlog_directory().await?,
    };
    let saved_caches = match &opts.saved_caches_dir {
        Some(d) => d.clone(),
        None => cql.saved_caches_directory().await?,
    };
    for d in data.iter().chain([&commitlog, &saved_caches]) {
        if !d.is_dir() {
            return Err(RestoreError::InvalidInput(format!(
                "{} is not a directory on this machine: an offline restore runs on the node's own machine (check --data-dir, --commitlog-dir, --saved-caches-dir)",
                d.display()
            )));
        }
    }
    Ok(NodeDirs { data, commitlog, saved_caches })
}

/// Decides every move: one quarantine per filesystem, the main one first.
fn make_plan(
    address: &str,
    host_id: &str,
    node_address: &str,
    dirs: NodeDirs,
    opts: &OfflineOptions,
    backup: &str,
    tables: Vec<OfflineTable>,
) -> Result<OfflinePlan, RestoreError> {
    let stamp_name = format!("{}-{backup}", Utc::now().format("%Y%m%dT%H%M%SZ"));
    let beside = |d: &Path| d.parent().unwrap_or(d).join(QUARANTINE_DIR_NAME).join(&stamp_name);
    let main = opts.quarantine_dir.clone().unwrap_or_else(|| beside(&dirs.data[0]));
    let mut roots = vec![main.clone()];
    let mut quarantine_for = |source: &Path, sub: &str| -> Result<QuarantineMove, RestoreError> {
        for live in dirs.data.iter().chain([&dirs.commitlog, &dirs.saved_caches]) {
            if main.starts_with(live) {
                return Err(RestoreError::InvalidInput(format!(
                    "the quarantine directory {} is inside {}, a directory Cassandra uses: choose another --quarantine-dir",
                    main.display(),
                    live.display()
                )));
            }
        }
        let same = |a: &Path, b: &Path| cassette_repo::same_filesystem(a, b).map_err(|e| RepoError::io("stat", a, e));
        let root = if same(source, &main)? {
            main.clone()
        } else if opts.quarantine_dir.is_some() {
            return Err(RestoreError::InvalidInput(format!(
                "--quarantine-dir {} is not on the filesystem of {}: files are moved by rename, never copied; leave --quarantine-dir out (each filesystem then gets its own quarantine beside the directory)",
                main.display(),
                source.display()
            )));
        } else {
            let r = beside(source);
            if !roots.contains(&r) {
                roots.push(r.clone());
            }
            r
        };
        Ok(QuarantineMove { source: source.to_path_buf(), dest: root.join(sub) })
    };
    let commitlog = quarantine_for(&dirs.commitlog, COMMITLOG)?;
    let saved_caches = quarantine_for(&dirs.saved_caches, SAVED_CACHES)?;
    let data = dirs
        .data
        .iter()
        .enumerate()
        .map(|(i, d)| quarantine_for(d, &format!("data{}", i + 1)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(OfflinePlan {
        cql_address: address.into(),
        host_id: host_id.into(),
        node_address: node_address.into(),
        data_dirs: dirs.data,
        commitlog,
        saved_caches,
        data,
        quarantine_dirs: roots,
        tables,
    })
}

/// Writes `cassette-quarantine.json` into every quarantine directory of the plan.
fn write_quarantine_info(
    p: &OfflinePlan,
    backup: &str,
    backup_path: &Path,
    finished_at: Option<DateTime<Utc>>,
) -> Result<(), RestoreError> {
    let moves: Vec<&QuarantineMove> = [&p.commitlog, &p.saved_caches].into_iter().chain(p.data.iter()).collect();
    for root in &p.quarantine_dirs {
        let file = root.join(QUARANTINE_INFO);
        let created_at = read_quarantine_info(root).map(|i| i.created_at).unwrap_or_else(Utc::now);
        let info = QuarantineInfo {
            backup: backup.into(),
            backup_path: backup_path.into(),
            host_id: p.host_id.clone(),
            created_at,
            finished_at,
            moves: moves.iter().filter(|m| m.dest.starts_with(root)).map(|m| (*m).clone()).collect(),
            tables: p.tables.iter().map(OfflineTable::live_name).collect(),
        };
        cassette_repo::write_file_atomically(&file, &serde_json::to_vec_pretty(&info).expect("serializable"))?;
    }
    Ok(())
}

/// Reads a quarantine directory's `cassette-quarantine.json`.
pub fn read_quarantine_info(dir: &Path) -> Option<QuarantineInfo> {
    serde_json::from_slice(&std::fs::read(dir.join(QUARANTINE_INFO)).ok()?).ok()
}

/// Moves every file below `src` to the same relative path below `dest` (renames: same
/// filesystem), except the top-level directories named in `skip`. Returns the files moved.
/// Refuses to replace a file in `dest`. A missing `src` moves nothing.
fn move_tree(src: &Path, dest: &Path, skip: &[&str]) -> Result<u64, RepoError> {
    let entries = match std::fs::read_dir(src) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(RepoError::io("read directory", src, e)),
    };
    let mut moved = 0;
    for entry in entries {
        let entry = entry.map_err(|e| RepoError::io("read directory", src, e))?;
        let name = entry.file_name();
        let from = entry.path();
        let to = dest.join(&name);
        let kind = entry.file_type().map_err(|e| RepoError::io("stat", &from, e))?;
        if kind.is_dir() {
            if skip.iter().any(|s| name == *s) {
                continue;
            }
            moved += move_tree(&from, &to, &[])?;
            continue;
        }
        std::fs::create_dir_all(dest).map_err(|e| RepoError::io("create directory", dest, e))?;
        if to.symlink_metadata().is_ok() {
            return Err(RepoError::io(
                "move into the quarantine (a file of that name is already there; nothing is replaced)",
                &to,
                std::io::Error::from(std::io::ErrorKind::AlreadyExists),
            ));
        }
        std::fs::rename(&from, &to).map_err(|e| RepoError::io("move into the quarantine", &from, e))?;
        moved += 1;
    }
    if moved > 0 {
        cassette_repo::sync_dir(src)?;
        if dest.is_dir() {
            cassette_repo::sync_dir(dest)?;
        }
    }
    Ok(moved)
}

/// Files below `dir` that [`move_tree`] would move.
fn count_files(dir: &Path, skip: &[&str]) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => {
                if skip.iter().any(|s| e.file_name() == *s) {
                    0
                } else {
                    count_files(&e.path(), &[])
                }
            }
            _ => 1,
        })
        .sum()
}

/// Puts the backup's files (`(entry, path relative to the table)`) into `live_dir`: hard links
/// when possible, except the components Cassandra may rewrite in place, which are copied (the
/// backup's files must never change); every copy is checked against the manifest's BLAKE3.
/// Files get the owner of `live_dir` (when cassette runs as root).
fn place_files(backup_dir: &Path, files: &[(&FileEntry, String)], live_dir: &Path) -> Result<(), RestoreError> {
    use std::os::unix::fs::MetadataExt;
    std::fs::create_dir_all(live_dir).map_err(|e| RepoError::io("create directory", live_dir, e))?;
    remove_partials(live_dir);
    let owner = std::fs::metadata(live_dir).map(|m| (m.uid(), m.gid())).ok();
    for (entry, rel) in files {
        let src = backup_dir.join(&entry.path);
        let dst = live_dir.join(rel);
        let name = rel.rsplit('/').next().unwrap_or(rel);
        let stored = if REWRITTEN.iter().any(|c| name.ends_with(c)) {
            Some(cassette_repo::copy_verified(&src, &dst, None)?)
        } else {
            match cassette_repo::link_or_copy(&src, &dst)? {
                LinkOutcome::Linked => None,
                LinkOutcome::Copied(s) => Some(s),
            }
        };
        if let Some(s) = stored
            && s.blake3 != entry.blake3
        {
            let _ = std::fs::remove_file(&dst);
            return Err(failed(
                "place",
                format!(
                    "the copy of {} differs from the manifest (BLAKE3): the backup changed during the restore; run the restore again",
                    src.display()
                ),
            ));
        }
        if let Some((uid, gid)) = owner
            && let Ok(m) = std::fs::metadata(&dst)
            && (m.uid(), m.gid()) != (uid, gid)
            && let Err(e) = std::os::unix::fs::chown(&dst, Some(uid), Some(gid))
        {
            tracing::warn!(path = %dst.display(), error = %e, "could not give the restored file the table directory's owner");
        }
    }
    Ok(())
}

/// Removes `*.partial` files a crashed placement left (below `dir`, not in snapshots).
fn remove_partials(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            if !TABLE_SKIP.iter().any(|s| e.file_name() == *s) {
                remove_partials(&p);
            }
        } else if p.extension().is_some_and(|x| x == "partial") {
            let _ = std::fs::remove_file(&p);
        }
    }
}

/// Runs `sh -c command`, its output to `log`; fails on a non-zero exit or after `timeout`.
async fn run_command(what: &str, command: &str, log: &Path, timeout: Duration) -> Result<(), RestoreError> {
    if let Some(parent) = log.parent() {
        std::fs::create_dir_all(parent).map_err(|e| RepoError::io("create directory", parent, e))?;
    }
    let out = std::fs::File::create(log).map_err(|e| RepoError::io("create", log, e))?;
    let err = out.try_clone().map_err(|e| RepoError::io("open", log, e))?;
    tracing::info!(command, what, "running the {what} command");
    // Output to a file, not a pipe: a daemon the command starts may keep its output open.
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(std::process::Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| failed(what, format!("cannot run `sh -c {command}`: {e}")))?;
    let tail = || {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        lines[lines.len().saturating_sub(5)..].join(" | ")
    };
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) if status.success() => Ok(()),
        Ok(Ok(status)) => {
            Err(failed(what, format!("`{command}` failed ({status}): {} (output: {})", tail(), log.display())))
        }
        Ok(Err(e)) => Err(failed(what, format!("waiting for `{command}`: {e}"))),
        Err(_) => {
            let _ = child.start_kill();
            Err(failed(
                what,
                format!("`{command}` did not finish in {} s (output: {})", timeout.as_secs(), log.display()),
            ))
        }
    }
}

/// The unfinished offline restore of backup `name` whose node answers at `address`: its
/// backup directory, restored host ID and state (read from the journals, the node being down).
fn find_unfinished(
    root: &Path,
    name: &str,
    address: &str,
) -> Result<Option<(PathBuf, String, OfflineState)>, RestoreError> {
    let mut found = Vec::new();
    let subdirs = |d: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(d)
            .map(|rd| rd.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect())
            .unwrap_or_default()
    };
    for cluster in subdirs(root) {
        for host in subdirs(&cluster) {
            let backup = host.join(name);
            let Ok(entries) = std::fs::read_dir(cassette_repo::RepoLayout::meta_dir(&backup)) else { continue };
            for e in entries.flatten() {
                let file = e.file_name().to_string_lossy().into_owned();
                let Some(restored) = file.strip_prefix("restore-").and_then(|f| f.strip_suffix(".jsonl")) else {
                    continue;
                };
                if let Some(state) = RunState::of(&journal::load(&e.path())).offline
                    && state.plan.cql_address == address
                {
                    found.push((backup.clone(), restored.to_string(), state));
                }
            }
        }
    }
    if found.len() > 1 {
        let dirs: Vec<String> = found.iter().map(|(d, _, _)| d.display().to_string()).collect();
        return Err(RestoreError::InvalidInput(format!(
            "several unfinished offline restores of '{name}' for the node at {address}: {}; start the node and pass --new-restore, or finish them one by one",
            dirs.join(", ")
        )));
    }
    Ok(found.pop())
}

/// One quarantine directory, as `cassette quarantine list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct QuarantineEntry {
    /// The directory.
    pub path: PathBuf,
    /// Its `cassette-quarantine.json` (`None`: not written by cassette, never purged).
    pub info: Option<QuarantineInfo>,
    /// Files it holds.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// The quarantine directories below `roots` (each a `cassette-quarantine` directory), oldest first.
pub fn list_quarantines(roots: &[PathBuf]) -> Vec<QuarantineEntry> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for root in roots {
        let Ok(entries) = std::fs::read_dir(root) else { continue };
        for e in entries.flatten() {
            let path = e.path();
            if !path.is_dir() || !seen.insert(path.clone()) {
                continue;
            }
            let (files, bytes) = size_of(&path);
            out.push(QuarantineEntry { info: read_quarantine_info(&path), path, files, bytes });
        }
    }
    out.sort_by_key(|q| (q.info.as_ref().map(|i| i.created_at), q.path.clone()));
    out
}

fn size_of(dir: &Path) -> (u64, u64) {
    let Ok(entries) = std::fs::read_dir(dir) else { return (0, 0) };
    let mut total = (0, 0);
    for e in entries.flatten() {
        match e.file_type() {
            Ok(t) if t.is_dir() => {
                let (f, b) = size_of(&e.path());
                total = (total.0 + f, total.1 + b);
            }
            Ok(_) if e.file_name() != QUARANTINE_INFO => {
                total.0 += 1;
                total.1 += e.metadata().map(|m| m.len()).unwrap_or(0);
            }
            _ => {}
        }
    }
    total
}

/// Why a quarantine is kept by [`purge_quarantines`], or `None` when it is removed.
pub fn purge_refusal(
    q: &QuarantineEntry,
    older_than_days: u64,
    include_unfinished: bool,
    now: DateTime<Utc>,
) -> Option<String> {
    let Some(info) = &q.info else { return Some(format!("no {QUARANTINE_INFO}: not a cassette quarantine")) };
    if info.finished_at.is_none() && !include_unfinished {
        return Some(
            "its offline restore has not finished (run it again to finish it, or pass --include-unfinished)".into(),
        );
    }
    let age_days = (now - info.created_at).num_days().max(0) as u64;
    if age_days < older_than_days {
        return Some(format!("{age_days} day(s) old, younger than --older-than-days {older_than_days}"));
    }
    None
}

/// What [`purge_quarantines`] did.
#[derive(Debug, Default, Serialize)]
pub struct PurgeOutcome {
    /// The quarantine directories removed.
    pub removed: Vec<PathBuf>,
    /// Those kept, with why.
    pub kept: Vec<(PathBuf, String)>,
}

/// Removes the quarantines that [`purge_refusal`] does not keep.
pub fn purge_quarantines(
    entries: &[QuarantineEntry],
    older_than_days: u64,
    include_unfinished: bool,
) -> Result<PurgeOutcome, RepoError> {
    let now = Utc::now();
    let (mut removed, mut kept) = (Vec::new(), Vec::new());
    for q in entries {
        match purge_refusal(q, older_than_days, include_unfinished, now) {
            Some(why) => kept.push((q.path.clone(), why)),
            None => {
                std::fs::remove_dir_all(&q.path).map_err(|e| RepoError::io("remove", &q.path, e))?;
                removed.push(q.path.clone());
            }
        }
    }
    Ok(PurgeOutcome { removed, kept })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn move_tree_keeps_layout_skips_snapshots_and_never_replaces() {
        let d = tempfile::tempdir().unwrap();
        let table = d.path().join("data/ks/t-00");
        std::fs::create_dir_all(table.join(".idx")).unwrap();
        std::fs::create_dir_all(table.join("snapshots/s1")).unwrap();
        for f in ["nb-1-big-Data.db", "nb-1-big-TOC.txt", ".idx/nb-1-big-Data.db", "snapshots/s1/nb-1-big-Data.db"] {
            std::fs::write(table.join(f), f).unwrap();
        }
        assert_eq!(count_files(&table, TABLE_SKIP), 3);
        let q = d.path().join("q/data1/ks/t-00");
        assert_eq!(move_tree(&table, &q, TABLE_SKIP).unwrap(), 3);
        assert_eq!(std::fs::read_to_string(q.join(".idx/nb-1-big-Data.db")).unwrap(), ".idx/nb-1-big-Data.db");
        assert!(table.join("snapshots/s1/nb-1-big-Data.db").exists() && !table.join("nb-1-big-Data.db").exists());
        // Again: nothing left to move. A name already in the quarantine is not replaced.
        assert_eq!(move_tree(&table, &q, TABLE_SKIP).unwrap(), 0);
        std::fs::write(table.join("nb-1-big-TOC.txt"), "new").unwrap();
        assert!(move_tree(&table, &q, TABLE_SKIP).is_err());
        assert_eq!(std::fs::read_to_string(q.join("nb-1-big-TOC.txt")).unwrap(), "nb-1-big-TOC.txt");
        assert_eq!(move_tree(&d.path().join("missing"), &q, &[]).unwrap(), 0);
    }

    #[test]
    fn plan_puts_each_filesystem_in_its_own_quarantine() {
        let d = tempfile::tempdir().unwrap();
        let mk = |p: &str| {
            let p = d.path().join(p);
            std::fs::create_dir_all(&p).unwrap();
            p
        };
        let dirs = NodeDirs {
            data: vec![mk("data1"), mk("data2")],
            commitlog: mk("commitlog"),
            saved_caches: mk("saved_caches"),
        };
        let opts = OfflineOptions::new("stop", "start");
        let p = make_plan("h:9042", "id", "1.2.3.4", dirs, &opts, "b1", vec![]).unwrap();
        assert_eq!(p.quarantine_dirs.len(), 1);
        let q = &p.quarantine_dirs[0];
        assert!(
            q.starts_with(d.path().join(QUARANTINE_DIR_NAME)) && q.to_string_lossy().ends_with("-b1"),
            "{}",
            q.display()
        );
        assert_eq!(p.commitlog.dest, q.join("commitlog"));
        assert_eq!(p.data[1], QuarantineMove { source: d.path().join("data2"), dest: q.join("data2") });
        // A quarantine inside a live directory, or on another filesystem, is refused.
        let dirs = NodeDirs {
            data: vec![d.path().join("data1")],
            commitlog: d.path().join("commitlog"),
            saved_caches: d.path().join("saved_caches"),
        };
        let mut opts = OfflineOptions::new("stop", "start");
        opts.quarantine_dir = Some(d.path().join("data1/q"));
        assert!(make_plan("h:9042", "id", "a", dirs, &opts, "b1", vec![]).unwrap_err().to_string().contains("inside"));
        if Path::new("/dev/shm").is_dir() {
            let dirs = NodeDirs {
                data: vec![d.path().join("data1")],
                commitlog: d.path().join("commitlog"),
                saved_caches: d.path().join("saved_caches"),
            };
            opts.quarantine_dir = Some(PathBuf::from("/dev/shm/cassette-q-test"));
            if !cassette_repo::same_filesystem(d.path(), Path::new("/dev/shm")).unwrap() {
                assert!(
                    make_plan("h:9042", "id", "a", dirs, &opts, "b1", vec![])
                        .unwrap_err()
                        .to_string()
                        .contains("not on the filesystem")
                );
            }
        }
    }

    #[test]
    fn purge_keeps_unfinished_young_and_foreign_quarantines() {
        let info = |days: i64, finished: bool| QuarantineInfo {
            backup: "b".into(),
            backup_path: "/b".into(),
            host_id: "h".into(),
            created_at: Utc::now() - chrono::Duration::days(days),
            finished_at: finished.then(Utc::now),
            moves: vec![],
            tables: vec![],
        };
        let q = |info: Option<QuarantineInfo>| QuarantineEntry { path: "/q".into(), info, files: 0, bytes: 0 };
        let now = Utc::now();
        assert!(purge_refusal(&q(Some(info(10, true))), 7, false, now).is_none());
        assert!(purge_refusal(&q(Some(info(3, true))), 7, false, now).unwrap().contains("younger"));
        assert!(purge_refusal(&q(Some(info(10, false))), 0, false, now).unwrap().contains("not finished"));
        assert!(purge_refusal(&q(Some(info(10, false))), 0, true, now).is_none());
        assert!(purge_refusal(&q(None), 0, true, now).is_some());
    }
}
