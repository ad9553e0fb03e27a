//! Running one agent job on the node: the backup and restore engines, nodetool repair and
//! cleanup. Each job connects to the node afresh, so a restarted Cassandra is found again.

use std::time::Instant;

use cassette_backup::{BackupRequest, Node, run_backup, take_snapshot};
use cassette_cassandra::{Cql, keyspaces};
use cassette_restore::{OfflineOptions, PointInTime, RestoreRequest, run_offline_restore, run_restore};

use super::AgentConfig;
use super::live::Live;
use crate::model::{AgentJobRequest, AgentJobState};

/// Runs `request` to its end, writing progress and the outcome into `live`.
pub async fn run_job(config: &AgentConfig, request: AgentJobRequest, live: Live) {
    let outcome = match Cql::connect(&config.cql).await {
        Ok(cql) => {
            let node = Node { cql, nodetool: config.nodetool.clone() };
            run_on(config, &node, request, &live).await
        }
        Err(e) => {
            Err(format!("cannot reach Cassandra at {}:{}: {e}; is the node up?", config.cql.host, config.cql.port))
        }
    };
    live.update(|v| {
        v.finished = Some(chrono::Utc::now().timestamp_millis());
        match outcome {
            Ok(()) if v.error.is_none() => v.state = AgentJobState::Succeeded,
            Ok(()) => v.state = AgentJobState::Failed,
            Err(e) => {
                v.state = AgentJobState::Failed;
                v.error = Some(e);
            }
        }
    });
}

/// Runs the job; `Err` for a job stopped before or between its stages. Failures of single
/// keyspaces or tables are recorded in `live` (`error` set, job failed).
async fn run_on(config: &AgentConfig, node: &Node, request: AgentJobRequest, live: &Live) -> Result<(), String> {
    match request {
        AgentJobRequest::Backup { name, keyspaces, snapshot_tag, object_lock } => {
            let mut req = backup_request(config, &name, keyspaces);
            req.snapshot_tag = snapshot_tag;
            req.transfer.object_lock = object_lock;
            let report = run_backup(node, &req, live).await.map_err(|e| e.to_string())?;
            let error = (!report.complete).then(|| {
                let failed = report.keyspaces.iter().find_map(|k| k.error.clone().map(|e| format!("{}: {e}", k.name)));
                format!(
                    "backup incomplete (no manifest written): {}",
                    failed.unwrap_or_else(|| "see the report".into())
                )
            });
            finish(live, serde_json::to_value(&report).ok(), error);
            Ok(())
        }
        AgentJobRequest::Snapshot { name, keyspaces } => {
            let req = backup_request(config, &name, keyspaces);
            let tag = take_snapshot(node, &req).await.map_err(|e| e.to_string())?;
            live.update(|v| v.snapshot_tag = Some(tag));
            Ok(())
        }
        AgentJobRequest::Restore { name, keyspaces, mode, dry_run, from_node, new_restore } => {
            let mut req = RestoreRequest::new(name, &config.backup_root);
            req.transfer = config.transfer.clone();
            req.keyspaces = keyspaces;
            req.mode = mode;
            req.dry_run = dry_run;
            req.from_node = from_node;
            req.new_restore = new_restore;
            req.clear_truncate_snapshots = false;
            let report = run_restore(node, &req, live).await.map_err(|e| e.to_string())?;
            if dry_run {
                for k in &report.keyspaces {
                    live.keyspace_done(&k.name, true, 0, None);
                }
            }
            let error = (!report.complete).then(|| {
                let failed = report
                    .tables
                    .iter()
                    .find_map(|t| t.error.clone().map(|e| format!("table {}.{}: {e}", t.keyspace, t.table)));
                format!("restore incomplete: {}", failed.unwrap_or_else(|| "see the report".into()))
            });
            finish(live, serde_json::to_value(&report).ok(), error);
            Ok(())
        }
        AgentJobRequest::PointInTimeRestore { name, until, keyspaces, dry_run } => {
            point_in_time_restore(config, node, name, &until, keyspaces, dry_run, live).await
        }
        AgentJobRequest::Repair { keyspaces } => {
            for_each_keyspace(node, keyspaces, live, "repair", |ks| async move { node.nodetool.repair(&ks).await })
                .await
        }
        AgentJobRequest::Verify { name } => verify(config, node, name, live).await,
        AgentJobRequest::Purge { names, retention } => purge(config, node, names, retention, live).await,
        AgentJobRequest::Cleanup { keyspaces } => {
            for_each_keyspace(node, keyspaces, live, "cleanup", |ks| async move { node.nodetool.cleanup(&ks).await })
                .await
        }
    }
}

/// Restores the node offline to `until`: the backup named (or the node's newest complete one
/// before `until`), then its archived commitlog replayed up to it. Nothing is touched before
/// the backup and the segments verify; `dry_run` stops there.
async fn point_in_time_restore(
    config: &AgentConfig,
    node: &Node,
    name: Option<String>,
    until: &str,
    keyspaces: Vec<String>,
    dry_run: bool,
    live: &Live,
) -> Result<(), String> {
    let Some(offline) = &config.offline else {
        return Err("a restore to a point in time stops and starts the node: start this agent with --stop-command and --start-command".into());
    };
    let until = chrono::DateTime::parse_from_rfc3339(until)
        .map_err(|e| format!("until={until} is not a time ({e})"))?
        .with_timezone(&chrono::Utc);
    let name = match name {
        Some(n) => n,
        None => {
            let local = node.cql.local_node().await.map_err(|e| e.to_string())?;
            let store = config.repository()?;
            let recovery = cassette_commitlog::node_recovery(&*store, &local.cluster_name, &local.host_id.to_string())
                .await
                .map_err(|e| e.to_string())?;
            recovery.plan(until, None).map_err(|e| e.to_string())?.backup
        }
    };
    let mut req = RestoreRequest::new(name, &config.backup_root);
    req.transfer = config.transfer.clone();
    req.keyspaces = keyspaces;
    req.dry_run = dry_run;
    let opts = OfflineOptions {
        data_dirs: config.data_dirs.clone().unwrap_or_default(),
        point_in_time: Some(PointInTime {
            until,
            properties: offline.commitlog_archiving_properties.clone(),
            system_log: offline.cassandra_log.clone(),
        }),
        ..OfflineOptions::new(offline.stop_command.clone(), offline.start_command.clone())
    };
    let report =
        run_offline_restore(&config.cql, &config.nodetool, &req, &opts, live).await.map_err(|e| e.to_string())?;
    let mut keyspaces: Vec<&str> = report.tables.iter().map(|t| t.keyspace.as_str()).collect();
    keyspaces.dedup();
    for ks in keyspaces {
        live.keyspace_done(ks, report.complete, 0, None);
    }
    let error = (!report.complete).then(|| {
        format!(
            "restore to {} incomplete: {}",
            until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            report.error.clone().unwrap_or_else(|| "see the report".into())
        )
    });
    finish(live, serde_json::to_value(&report).ok(), error);
    Ok(())
}

/// Purges this node's backups among `names` by `retention` (the newest complete one of them is
/// always kept; a purge never waits for or breaks a running job's lock). Backups not named are
/// neither touched nor counted, whatever their names look like.
async fn purge(
    config: &AgentConfig,
    node: &Node,
    names: Vec<String>,
    retention: crate::model::Retention,
    live: &Live,
) -> Result<(), String> {
    if retention.keep_last.is_none() && retention.keep_days.is_none() {
        return Err("a retention policy needs keepLast or keepDays".into());
    }
    let host_id = node.cql.local_node().await.map_err(|e| e.to_string())?.host_id.to_string();
    let opts = cassette_repo::purge::PurgeOptions {
        policy: cassette_repo::retention::Policy {
            keep_last: retention.keep_last.map(|n| n as usize),
            keep_days: retention.keep_days,
            grace: std::time::Duration::from_secs(3600),
        },
        dry_run: false,
        now: chrono::Utc::now(),
        name_prefix: None,
        names: Some(names.into_iter().collect()),
    };
    live.update(|v| v.progress.stage = "purge".into());
    let nodes = config.repository()?.purge(None, Some(&host_id), &opts).await.map_err(|e| e.to_string())?;
    let deleted: Vec<String> =
        nodes.iter().flat_map(|n| n.doomed()).filter(|b| b.deleted.is_some()).map(|b| b.name.clone()).collect();
    let problem = nodes.iter().find_map(|n| n.skipped.clone().or_else(|| n.error.clone()));
    live.update(|v| {
        v.report = Some(serde_json::json!({ "deleted": deleted }));
        v.error = problem;
    });
    Ok(())
}

/// Re-hashes this node's complete backups (the one named, or all), one "keyspace" per backup.
async fn verify(config: &AgentConfig, node: &Node, name: Option<String>, live: &Live) -> Result<(), String> {
    let local = node.cql.local_node().await.map_err(|e| e.to_string())?;
    let host_id = local.host_id.to_string();
    let repository = config.repository()?;
    let backups = repository.list(None, Some(&host_id)).await.map_err(|e| e.to_string())?;
    let backups: Vec<_> = backups.into_iter().filter(|b| name.as_ref().is_none_or(|n| n == &b.name)).collect();
    if let Some(n) = &name
        && backups.is_empty()
    {
        return Err(format!("no backup named '{n}' of this node in {}", config.backup_root.display()));
    }
    live.update(|v| {
        v.remaining_keyspaces = backups.iter().map(|b| b.name.clone()).collect();
        v.progress.stage = "verify".into();
        v.progress.files_total = backups.iter().map(|b| b.files).sum();
        v.progress.bytes_total = backups.iter().map(|b| b.bytes).sum();
    });
    let mut bad_files = 0u64;
    for b in backups {
        let started = Instant::now();
        live.update(|v| v.progress.detail = b.name.clone());
        let error = if !b.complete {
            Some("incomplete: no manifest (interrupted or failed); run the same backup again to resume it".to_string())
        } else {
            let progress = live.clone();
            let report = repository
                .verify(&b, cassette_repo::verify::Depth::Full, 2, &|bytes| {
                    progress.update(|v| {
                        v.progress.files_done += 1;
                        v.progress.bytes_done += bytes;
                    })
                })
                .await;
            match report {
                Ok(r) if r.bad.is_empty() => None,
                Ok(r) => {
                    bad_files += r.bad.len() as u64;
                    let list: Vec<String> = r.bad.iter().map(|f| format!("{}: {}", f.path, f.problem)).collect();
                    Some(format!("{} bad files: {}", r.bad.len(), list.join("; ")))
                }
                Err(e) => Some(e.to_string()),
            }
        };
        live.keyspace_done(&b.name, error.is_none(), started.elapsed().as_millis() as u64, error.clone());
        if let Some(e) = error {
            live.update(|v| {
                v.error.get_or_insert(format!("backup {}: {e}", b.name));
            });
        }
    }
    live.update(|v| v.report = Some(serde_json::json!({ "badFiles": bad_files })));
    Ok(())
}

fn backup_request(config: &AgentConfig, name: &str, keyspaces: Vec<String>) -> BackupRequest {
    let mut req = BackupRequest::new(name, &config.backup_root);
    req.transfer = config.transfer.clone();
    req.keyspaces = keyspaces;
    req.data_dirs = config.data_dirs.clone();
    req.config_dirs = config.config_dirs.clone();
    req.allow_same_disk = config.allow_same_disk;
    req.alias = config.alias.clone();
    req
}

fn finish(live: &Live, report: Option<serde_json::Value>, error: Option<String>) {
    live.update(|v| {
        v.report = report;
        if error.is_some() {
            v.error = error;
        }
    });
}

/// Runs a nodetool command per keyspace (every non-system keyspace by default), recording each
/// keyspace's outcome; a failed keyspace does not stop the others.
async fn for_each_keyspace<F, Fut>(
    node: &Node,
    selected: Vec<String>,
    live: &Live,
    what: &str,
    run: F,
) -> Result<(), String>
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = Result<String, cassette_cassandra::CassandraError>>,
{
    let live_keyspaces: Vec<String> =
        node.cql.keyspaces().await.map_err(|e| e.to_string())?.into_iter().map(|k| k.name).collect();
    let keyspaces = if selected.is_empty() {
        live_keyspaces.into_iter().filter(|k| !keyspaces::is_system(k)).collect()
    } else {
        if let Some(unknown) = selected.iter().find(|k| !live_keyspaces.contains(k)) {
            return Err(format!("keyspace '{unknown}' does not exist on this node"));
        }
        selected
    };
    live.update(|v| v.remaining_keyspaces = keyspaces.clone());
    for ks in keyspaces {
        live.update(|v| {
            v.progress.stage = what.to_string();
            v.progress.detail = ks.clone();
        });
        let started = Instant::now();
        let result = run(ks.clone()).await;
        let error = result.err().map(|e| format!("{what} of {ks} failed: {e}"));
        live.keyspace_done(&ks, error.is_none(), started.elapsed().as_millis() as u64, error.clone());
        if let Some(e) = error {
            live.update(|v| {
                v.error.get_or_insert(e);
            });
        }
    }
    Ok(())
}
