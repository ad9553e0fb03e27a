//! `restore --to-topology`: a backup of N nodes restored into a cluster of M nodes with other
//! tokens, through Cassandra's bulk loader ([`cassette_cassandra::BulkLoader`]).
//!
//! Every source node's backup of the name is located and every file of the selection verified
//! before anything live is touched (as the engine does). Then, per table: one cluster-wide
//! `TRUNCATE` (unless `--no-truncate`), then every source node's SSTables of it staged
//! (`<staging>/<source host>/...`), gathered under the live names (`<staging>/load/<keyspace>/
//! <table>/`, renumbered so that no two nodes' SSTables collide: [`crate::combine`]) and streamed
//! by one loader run to the replicas owning each row. Nothing outside a node's ranges is ever
//! sent to it, so no `nodetool cleanup` is needed.
//!
//! Journal: each source backup's restore journal (`restore-<target host ID>.jsonl`) records the
//! truncation and that source's load of each table, so a rerun truncates nothing again and loads
//! no source twice. A load that fails or is killed is recorded for none of its sources: the rerun
//! streams them all again (rows already streamed are the same cells, so nothing doubles).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use cassette_cassandra::{BulkLoader, LoadTarget};
use cassette_repo::RepoError;
use cassette_store::BackupReader;
use cassette_store::locate::Located;
use chrono::Utc;

use crate::combine::Combined;
use crate::engine::{ensure_schema, node_lock, prepare_staging, refuse_truncating_for_nothing};
use crate::journal::{self, ClusterRef, Journal, Record, RunState};
use crate::locate::{locate, open_store};
use crate::schema::{live_tables, missing};
use crate::select::{Planned, Rename, select_tables};
use crate::stage::importable;
use crate::verify::verify_plan;
use crate::{Node, Progress, RestoreError, RestoreRequest, Stage, TableError};

/// What one source node's part of a topology restore did.
#[derive(Debug, serde::Serialize)]
pub struct SourceOutcome {
    /// The source node's host ID.
    pub host_id: String,
    /// Tables whose SSTables of this node were loaded by this run.
    pub loaded: Vec<String>,
    /// Tables skipped: already loaded (journal).
    pub skipped: Vec<String>,
    /// Files and bytes streamed.
    pub files: u64,
    /// Bytes streamed.
    pub bytes: u64,
}

/// The outcome of [`run_topology_restore`].
#[derive(Debug, serde::Serialize)]
pub struct TopologyReport {
    /// The backup's name.
    pub name: String,
    /// The cluster the backup was taken from.
    pub source_cluster: String,
    /// The node cassette ran against (its host ID: the journals are named after it).
    pub host_id: String,
    /// The source nodes (host IDs) whose backups are restored.
    pub source_hosts: Vec<String>,
    /// Files verified (every source node's).
    pub verified_files: u64,
    /// Bytes verified.
    pub verified_bytes: u64,
    /// Schema statements run by `--create-schema`.
    pub schema_created: Vec<String>,
    /// Tables truncated by this run (live names).
    pub truncated: Vec<String>,
    /// Per source node.
    pub sources: Vec<SourceOutcome>,
    /// Per table that failed: its error.
    pub errors: BTreeMap<String, String>,
    /// Every table of every source loaded.
    pub complete: bool,
    /// Wall time.
    pub duration_ms: u64,
}

/// One source node's located, verified backup, its plan and its journal.
struct Source {
    host_id: String,
    reader: Box<dyn BackupReader>,
    manifest: cassette_repo::Manifest,
    run: RunState,
    journal_path: PathBuf,
}

/// Restores every source node's backup of `req.name` (of cluster `req.from_cluster`, default
/// the target's) into the cluster `node` belongs to, whatever its topology. `target` is how the
/// loader reaches that cluster (the node's CQL address and port, and its login).
pub async fn run_topology_restore(
    node: &Node,
    req: &RestoreRequest,
    target: &LoadTarget,
    progress: &dyn Progress,
) -> Result<TopologyReport, RestoreError> {
    let started = Instant::now();
    progress.stage(Stage::Locate, &req.name);
    let local = node.cql.local_node().await?;
    cassette_cassandra::version::check_supported(&local.release_version)?;
    let host_id = local.host_id.to_string();
    let source_cluster = req.from_cluster.clone().unwrap_or_else(|| local.cluster_name.clone());
    let renames: Vec<Rename> = req.renames.iter().map(|r| Rename::parse(r)).collect::<Result<_, _>>()?;
    let _node_lock = if req.dry_run { None } else { Some(node_lock(&host_id)?) };

    // Every node of the source cluster with a complete backup of that name (or --from-node).
    let store = open_store(req)?;
    let mut hosts: Vec<String> = match &req.from_node {
        Some(h) => vec![h.clone()],
        None => store
            .list(Some(&source_cluster), None)
            .await?
            .into_iter()
            .filter(|b| b.name == req.name && b.complete)
            .map(|b| b.host_id)
            .collect(),
    };
    hosts.sort();
    hosts.dedup();
    if hosts.is_empty() {
        return Err(RestoreError::NotFound {
            name: req.name.clone(),
            cluster: source_cluster.clone(),
            host_id: "any".into(),
            path: req.backup_root.display().to_string(),
            hint:
                "no node of that cluster has a complete backup of that name: check --from-cluster and `cassette list`"
                    .into(),
        });
    }
    let mut sources = Vec::new();
    for h in &hosts {
        let Located { reader, manifest } = locate(req, &source_cluster, h).await?;
        let journal_path = reader.restore_journal_path(&host_id);
        let run = if req.new_restore { RunState::default() } else { RunState::of(&journal::load(&journal_path)) };
        sources.push(Source { host_id: h.clone(), reader, manifest, run, journal_path });
    }
    // Verify every source node's files before anything else.
    let (mut files, mut bytes) = (0, 0);
    for s in &sources {
        let plan = select_tables(&s.manifest, req)?;
        let v = verify_plan(&*s.reader, req, &plan, progress).await?;
        files += v.files;
        bytes += v.bytes;
    }

    progress.stage(Stage::Schema, "");
    let first_plan = select_tables(&sources[0].manifest, req)?;
    // A table this run creates is empty: it is never truncated (a TRUNCATE right after the
    // CREATE can fail on a replica still applying the schema).
    let created: std::collections::BTreeSet<String> =
        missing(&first_plan, &live_tables(&node.cql, &first_plan).await?).into_iter().collect();
    let (live, schema_created) = ensure_schema(node, req, &sources[0].manifest, &first_plan, &renames).await?;

    let mut ring = vec![host_id.clone()];
    ring.extend(node.cql.peers().await?.into_iter().map(|p| p.host_id.to_string()));
    let cluster = ClusterRef { name: local.cluster_name.clone(), host_ids: ring };
    let truncated_before = |name: &str| sources.iter().any(|s| s.run.truncated.contains_key(name));
    let loaded_by_all = |name: &str| sources.iter().all(|s| s.run.loaded.contains(name));
    if req.mode.truncates() {
        for s in &sources {
            let plan = select_tables(&s.manifest, req)?;
            let pending: Vec<&Planned<'_>> = plan
                .iter()
                .filter(|p| !truncated_before(&p.live_name()) && live.contains_key(&p.live_name()))
                .collect();
            refuse_truncating_for_nothing(&node.cql, &s.reader.location(), &pending).await?;
            if !req.new_restore {
                let journals: Vec<_> = s
                    .reader
                    .cluster_restore_journals()
                    .into_iter()
                    .map(|(host, path)| (host, journal::load(&path)))
                    .collect();
                let wiped = journal::loads_a_truncation_would_wipe(&journals, &host_id, &cluster);
                for p in &pending {
                    if let Some(detail) = wiped.get(&p.live_name()) {
                        return Err(RestoreError::WouldWipeRestoredData {
                            table: p.live_name(),
                            detail: detail.clone(),
                        });
                    }
                }
            }
        }
    }
    let mut report = TopologyReport {
        name: req.name.clone(),
        source_cluster,
        host_id: host_id.clone(),
        source_hosts: hosts.clone(),
        verified_files: files,
        verified_bytes: bytes,
        schema_created,
        truncated: Vec::new(),
        sources: Vec::new(),
        errors: BTreeMap::new(),
        complete: false,
        duration_ms: 0,
    };
    if req.dry_run {
        report.complete = true;
        report.duration_ms = started.elapsed().as_millis() as u64;
        return Ok(report);
    }
    let loader = BulkLoader::of_nodetool(node.nodetool.program()).await?;

    let mut journals = Vec::new();
    for s in &sources {
        s.reader.mark_restoring(&host_id).await;
        if let Some(parent) = s.journal_path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| RepoError::io("create journal directory", parent, e))?;
        }
        let mut j = Journal::open(&s.journal_path)?;
        if req.new_restore {
            j.append(&Record::Reset { at: Utc::now() })?;
        }
        j.append(&Record::Started { at: Utc::now(), mode: req.mode, cluster: Some(cluster.clone()) })?;
        journals.push(j);
    }
    let data_dirs = node.cql.data_file_directories().await?;
    let run_dir = prepare_staging(req, &*sources[0].reader, &data_dirs, &host_id).await?;

    // Truncate each table once, cluster-wide, before any source loads into it.
    for p in &first_plan {
        let name = p.live_name();
        if !req.mode.truncates() || truncated_before(&name) || loaded_by_all(&name) || created.contains(&name) {
            continue;
        }
        progress.stage(Stage::Truncate, &name);
        if let Err(e) = node.cql.truncate(&p.live_keyspace, &p.live_table).await {
            report.errors.insert(name, format!("TRUNCATE failed (every node must be up): {e}"));
            continue;
        }
        for j in &mut journals {
            j.append(&Record::Truncated {
                at: Utc::now(),
                keyspace: p.live_keyspace.clone(),
                table: p.live_table.clone(),
                snapshot: None,
            })?;
        }
        report.truncated.push(name);
    }
    if req.mode.loads() {
        let mut outcomes: Vec<SourceOutcome> = sources
            .iter()
            .map(|s| SourceOutcome { host_id: s.host_id.clone(), loaded: vec![], skipped: vec![], files: 0, bytes: 0 })
            .collect();
        let plans: Vec<Vec<Planned<'_>>> =
            sources.iter().map(|s| select_tables(&s.manifest, req)).collect::<Result<_, _>>()?;
        let mut tables: Vec<String> = Vec::new();
        for p in plans.iter().flatten() {
            if !tables.contains(&p.live_name()) {
                tables.push(p.live_name());
            }
        }
        for name in tables {
            if report.errors.contains_key(&name) {
                continue;
            }
            // This table's part of every source node that has not loaded it yet.
            let mut pending = Vec::new();
            for (i, s) in sources.iter().enumerate() {
                let Some(p) = plans[i].iter().find(|p| p.live_name() == name) else { continue };
                if s.run.loaded.contains(&name) {
                    outcomes[i].skipped.push(name.clone());
                } else {
                    pending.push((i, p));
                }
            }
            let Some((_, first)) = pending.first() else { continue };
            let (keyspace, table) = (first.live_keyspace.clone(), first.live_table.clone());
            progress.stage(Stage::Load, &format!("{name} from {} node(s)", pending.len()));
            if let Err(e) = load_table(&sources, &pending, &run_dir, &loader, target).await {
                report.errors.insert(name, e.to_string());
                continue;
            }
            for (i, p) in &pending {
                let table_files = importable(&format!("{}/{}/", p.backup_keyspace, p.entry.name), &p.entry.files);
                let (f, b) = (table_files.len() as u64, table_files.iter().map(|f| f.size).sum::<u64>());
                journals[*i].append(&Record::Loaded {
                    at: Utc::now(),
                    keyspace: keyspace.clone(),
                    table: table.clone(),
                    mode: req.mode,
                    files: f,
                    bytes: b,
                })?;
                outcomes[*i].files += f;
                outcomes[*i].bytes += b;
                outcomes[*i].loaded.push(name.clone());
            }
        }
        report.sources = outcomes;
    }
    if let Err(e) = std::fs::remove_dir_all(&run_dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %run_dir.display(), error = %e, "could not remove the staging directory");
    }
    report.complete = report.errors.is_empty();
    if report.complete {
        for j in &mut journals {
            j.append(&Record::Finished { at: Utc::now() })?;
        }
    }
    report.duration_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

/// Stages one table's SSTables of every `pending` source node (index into `sources`, its part of
/// the plan), gathers them in one directory ([`Combined`]) and streams them with one loader run.
async fn load_table(
    sources: &[Source],
    pending: &[(usize, &Planned<'_>)],
    run_dir: &std::path::Path,
    loader: &BulkLoader,
    target: &LoadTarget,
) -> Result<(), TableError> {
    let Some((_, first)) = pending.first() else { return Ok(()) };
    let stage_err = |e: RepoError| TableError::Stage(format!("staging the SSTables failed: {e}"));
    let mut combined =
        Combined::new(run_dir.join("load").join(&first.live_keyspace).join(&first.live_table)).map_err(stage_err)?;
    let mut any = 0;
    for (i, p) in pending {
        let s = &sources[*i];
        let table_files = importable(&format!("{}/{}/", p.backup_keyspace, p.entry.name), &p.entry.files);
        if table_files.is_empty() {
            continue;
        }
        let dir = run_dir.join(&s.host_id).join(&p.live_keyspace).join(&p.live_table);
        s.reader
            .fetch_table(&table_files, &dir)
            .await
            .map_err(|e| TableError::Stage(format!("staging the SSTables of {} failed: {e}", s.host_id)))?;
        any += combined.take(&dir).map_err(stage_err)?;
        let _ = std::fs::remove_dir_all(&dir);
    }
    let loaded = if any == 0 { Ok(String::new()) } else { loader.load(target, combined.dir()).await };
    let _ = std::fs::remove_dir_all(combined.dir());
    loaded.map(|_| ()).map_err(|e| TableError::Load(e.to_string()))
}
