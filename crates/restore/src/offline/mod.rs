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
//!
//! Code map: `resume` finds the node, the backup and what an interrupted run did; `plan`
//! decides every move; `dry_run` describes it; `node_control` drains, stops and starts the
//! node; `quarantine` moves the live files and describes the quarantine; `place` puts the
//! backup's files in place; `run` journals each step as it is done; `purge` lists and
//! removes old quarantines.

mod download;
mod dry_run;
mod node_control;
mod options;
mod place;
mod plan;
mod point_in_time;
mod purge;
mod quarantine;
mod report;
mod resume;
mod run;

use std::path::Path;
use std::time::Instant;

use cassette_cassandra::{CqlTarget, Nodetool};
use chrono::Utc;

pub use options::OfflineOptions;
pub use plan::{OfflinePlan, OfflineTable, QuarantineMove};
pub use point_in_time::{PointInTime, ReplayOutcome};
pub use purge::{PurgeOutcome, QuarantineEntry, list_quarantines, purge_quarantines, purge_refusal};
pub use quarantine::{QUARANTINE_DIR_NAME, QUARANTINE_INFO, QuarantineInfo, read_quarantine_info};
pub use report::{OfflineReport, OfflineStep, OfflineTableOutcome};

use crate::journal::{OfflineState, Record};
use crate::schema::TableIds;
use crate::select::{Planned, Rename, select_tables};
use crate::verify::verify_plan;
use crate::{Progress, RestoreError, RestoreRequest, Stage};
use node_control::NodeControl;
use report::step;
use resume::Subject;
use run::Run;

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
    let node = NodeControl::new(target, nodetool, opts);
    let renames: Vec<Rename> = req.renames.iter().map(|r| Rename::parse(r)).collect::<Result<_, _>>()?;
    progress.stage(Stage::Locate, &req.name);
    // `cql` stays open until the end, as a session to the node.
    let Subject { cql, host_id, backup, backup_dir, journal_path, manifest, node_address, state } =
        resume::identify(target, &node.address, req).await?;
    let location = backup.location();
    let _node_lock = if req.dry_run { None } else { Some(crate::engine::node_lock(&host_id)?) };
    let resumed = state.is_some();

    let planned = select_tables(&manifest, req)?;
    if let Some(s) = &state {
        resume::check_same_tables(s, &planned, &req.name, &journal_path)?;
    }
    tracing::info!(backup = %location.display(), tables = planned.len(), resumed, dry_run = req.dry_run, "offline restore started");

    // Verify before anything else (every run: the backup may have changed since). A backup
    // on object storage is verified as it is downloaded into the quarantine, once planned.
    let download = backup_dir.is_none() && !req.dry_run;
    let mut verified = crate::verify::Verified { files: 0, bytes: 0 };
    let mut steps = Vec::new();
    if !download {
        verified = verify_plan(&*backup, req, &planned, progress).await?;
        steps.push(step(
            "verify",
            format!("{} files, {} bytes of {} verified", verified.files, verified.bytes, location.display()),
        ));
    }

    let mut schema_created = Vec::new();
    let state = match state {
        Some(s) => s,
        None => {
            let cql = cql.as_ref().expect("a fresh plan is made with the node up");
            progress.stage(Stage::Schema, "");
            let tables;
            // A restore to a point in time recreates a dropped table with its old id: replay
            // skips the mutations of ids the node does not know.
            let ids = if opts.point_in_time.is_some() { TableIds::AsBackedUp } else { TableIds::New };
            (tables, schema_created) =
                plan::live_tables_to_replace(cql, req, &manifest, &planned, &renames, ids).await?;
            let dirs = plan::node_dirs(cql, opts).await?;
            let plan = plan::make_plan(&node.address, &host_id, &node_address, dirs, opts, &req.name, tables)?;
            OfflineState { plan, ..Default::default() }
        }
    };
    let p = state.plan.clone();
    let files_dir = match &backup_dir {
        Some(d) => d.clone(),
        None => download::files_dir(p.main_quarantine()),
    };
    if download {
        backup.mark_restoring(&host_id).await;
        let placed = state.placed.clone();
        (verified.files, verified.bytes) =
            download::download_tables(&*backup, &planned, &placed, &files_dir, progress).await?;
        steps.push(step(
            "verify",
            format!(
                "{} files, {} bytes of {} downloaded into {}, each verified as it arrived",
                verified.files,
                verified.bytes,
                location.display(),
                files_dir.display()
            ),
        ));
    }

    // A point in time: the segments that bring the backup forward, verified before anything is touched.
    let replay = match &opts.point_in_time {
        None => None,
        Some(pit) => {
            let store = crate::locate::open_store(req)?;
            let (cluster, source) = (&manifest.cluster_name, &manifest.node.host_id);
            let plan = point_in_time::plan(&*store, cluster, source, &req.name, pit).await?;
            let dir = point_in_time::staging_dir(p.main_quarantine());
            let bytes =
                point_in_time::stage_segments(&*store, cluster, source, &plan, &dir, req.dry_run, progress).await?;
            steps.push(step(
                "verify",
                format!(
                    "{} archived commitlog segments, {bytes} bytes, verified{}: mutations up to {} are replayed after the backup {} (finished {})",
                    plan.segments.len(),
                    if req.dry_run { String::new() } else { format!(" into {}", dir.display()) },
                    plan.until,
                    plan.backup,
                    plan.backup_finished_at
                ),
            ));
            Some(ReplayOutcome {
                until: plan.until,
                segments: plan.segments.iter().map(|s| s.name.clone()).collect(),
                bytes,
                staged_in: dir,
                replayed_mutations: None,
                skipped_unknown_table: None,
            })
        }
    };
    let mut report = OfflineReport {
        name: req.name.clone(),
        backup_path: location.clone(),
        source_cluster: manifest.cluster_name.clone(),
        source_host_id: manifest.node.host_id.clone(),
        host_id: host_id.clone(),
        dry_run: req.dry_run,
        resumed,
        complete: false,
        verified_files: verified.files,
        verified_bytes: verified.bytes,
        schema_created,
        data_dirs: p.data_dirs.clone(),
        commitlog_dir: p.commitlog.source.clone(),
        saved_caches_dir: p.saved_caches.source.clone(),
        quarantine: p.quarantine_dirs.clone(),
        steps: Vec::new(),
        tables: Vec::new(),
        replay,
        error: None,
        journal: journal_path.clone(),
        duration_ms: 0,
    };

    if req.dry_run {
        let (more, tables) = dry_run::describe(&state, &planned, &node, req.repair);
        steps.extend(more);
        report.steps = steps;
        report.tables = tables;
        report.complete = true;
        report.duration_ms = started.elapsed().as_millis() as u64;
        return Ok(report);
    }

    let mut run = Run::open(&journal_path, state, steps, progress)?;
    if req.new_restore {
        run.record(Record::Reset { at: Utc::now() })?;
    }
    if !resumed {
        run.record(Record::OfflinePlanned { at: Utc::now(), plan: p.clone() })?;
        quarantine::write_quarantine_info(&p, &req.name, &location, None)?;
    }
    node.drain_and_stop(&mut run, &p, cql.is_some()).await?;
    quarantine::quarantine_node_dirs(&mut run, &p)?;
    for t in &p.tables {
        report.tables.push(replace_table(&mut run, &p, t, &planned, &files_dir)?);
    }
    let pit = opts.point_in_time.as_ref().filter(|_| report.replay.is_some());
    let log_offset = match (pit, &report.replay) {
        (Some(pit), Some(replay)) => {
            point_in_time::write_settings(pit, &replay.staged_in)?;
            run.step("replay", format!("restore settings written to {}", pit.properties.display()));
            point_in_time::log_offset(pit)
        }
        _ => 0,
    };
    node.start(&mut run, &p).await?;
    if let (Some(pit), Some(replay)) = (pit, report.replay.as_mut()) {
        point_in_time::remove_settings(pit)?;
        (replay.replayed_mutations, replay.skipped_unknown_table) = point_in_time::replayed(pit, log_offset);
        let replayed =
            replay.replayed_mutations.map_or("an unknown number of (no --cassandra-log)".into(), |n| n.to_string());
        run.step(
            "replay",
            format!(
                "{replayed} mutations replayed up to {}; restore settings removed from {}",
                replay.until,
                pit.properties.display()
            ),
        );
    }
    if req.repair {
        report.error = node.repair(&mut run, &p).await;
    }
    run.record(Record::Finished { at: Utc::now() })?;
    if let Err(e) = quarantine::write_quarantine_info(&p, &req.name, &location, Some(Utc::now())) {
        tracing::warn!(error = %e, "could not mark the quarantine finished");
    }
    report.steps = run.steps;
    report.complete = report.error.is_none();
    report.duration_ms = started.elapsed().as_millis() as u64;
    tracing::info!(complete = report.complete, "offline restore finished");
    Ok(report)
}

/// Quarantines the live files of `t`, then places the backup's (each unless the journal says
/// an interrupted run did: quarantining again would quarantine the restored files).
fn replace_table(
    run: &mut Run<'_>,
    p: &OfflinePlan,
    t: &OfflineTable,
    planned: &[Planned<'_>],
    backup_dir: &Path,
) -> Result<OfflineTableOutcome, RestoreError> {
    let name = t.live_name();
    let mut out = OfflineTableOutcome::nothing_yet(t, p.live_dir(t));
    let mut skipped = Vec::new();
    if run.state.quarantined.contains(&name) {
        skipped.push("already quarantined (journal): the files there now are the restored ones");
    } else {
        out.quarantined_files = quarantine::quarantine_table(run, p, t)?;
    }
    if run.state.placed.contains(&name) {
        skipped.push("already placed (journal)");
    } else {
        let files = place::backup_files(planned, t);
        (out.placed_files, out.placed_bytes) = place::place_table(run, t, &files, backup_dir, &out.live_dir)?;
    }
    if !skipped.is_empty() {
        out.skipped = Some(skipped.join("; "));
    }
    Ok(out)
}

fn refused(msg: impl Into<String>) -> RestoreError {
    RestoreError::OfflineRefused(msg.into())
}

fn failed(step: &str, msg: impl Into<String>) -> RestoreError {
    RestoreError::Offline { step: step.into(), message: msg.into() }
}
