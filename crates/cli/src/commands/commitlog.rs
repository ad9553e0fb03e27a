//! `cassette commitlog install | archive | ship`, and `cassette list --commitlog`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use cassette_commitlog::{Spool, SpoolIdentity, settings};
use chrono::Utc;
use serde::Serialize;

use crate::cli::{CommitlogCommand, RepoArgs};
use crate::exit;

pub async fn run(cmd: CommitlogCommand, json: bool) -> anyhow::Result<ExitCode> {
    match cmd {
        CommitlogCommand::Install { spool, commitlog_archiving_properties, cassette_path, dry_run, node } => {
            let exe = match cassette_path {
                Some(p) => p,
                None => std::env::current_exe()?,
            };
            let spool = absolute(&spool)?;
            let command = settings::archive_command(&exe, &spool).map_err(|e| exit::InvalidInput(e.to_string()))?;
            let before = settings::read(&commitlog_archiving_properties)?.unwrap_or_default();
            let after = settings::set(&before, &[("archive_command", Some(&command))]);
            let node = super::connect(&node).await?;
            let local = node.cql.local_node().await?;
            let identity = SpoolIdentity {
                cluster: local.cluster_name,
                host_id: local.host_id.to_string(),
                installed_at: Utc::now(),
            };
            let report = Installed {
                properties: &commitlog_archiving_properties,
                archive_command: &command,
                spool: &spool,
                cluster: &identity.cluster,
                host_id: &identity.host_id,
                dry_run,
                changed: before != after,
            };
            if !dry_run {
                Spool::new(&spool).write_identity(&identity)?;
                if report.changed {
                    settings::write(&commitlog_archiving_properties, &after)?;
                }
            }
            if json {
                super::print_json(&report);
            } else if dry_run {
                println!("would write into {}:\narchive_command={command}", commitlog_archiving_properties.display());
                println!(
                    "spool {} for node {} of cluster {}; nothing was changed",
                    spool.display(),
                    report.host_id,
                    report.cluster
                );
            } else {
                println!("archive_command={command}");
                println!(
                    "{} {}; spool {} is node {}'s (cluster {}).",
                    if report.changed { "written into" } else { "already in" },
                    commitlog_archiving_properties.display(),
                    spool.display(),
                    report.host_id,
                    report.cluster
                );
                println!(
                    "Cassandra reads the file at start-up: restart the node, then run `cassette commitlog ship --spool {}` (or `cassette agent --commitlog-spool {}`).",
                    spool.display(),
                    spool.display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        CommitlogCommand::Archive { spool, path, name } => {
            let how = Spool::new(&spool).archive(&path, &name)?;
            tracing::info!(segment = %name, spool = %spool.display(), how = ?how, "commitlog segment spooled");
            Ok(ExitCode::SUCCESS)
        }
        CommitlogCommand::Ship { spool, repo } => {
            let store = repo.open()?;
            let report = cassette_commitlog::ship(&Spool::new(&spool), &*store).await?;
            let code = if report.error.is_some() { ExitCode::from(exit::FAILED) } else { ExitCode::SUCCESS };
            if json {
                super::print_json(&report);
                return Ok(code);
            }
            println!(
                "shipped {} segments ({}) to {}{}; {} waiting in {}",
                report.shipped.len(),
                super::human_bytes(report.bytes),
                report.location,
                if report.already_archived.is_empty() {
                    String::new()
                } else {
                    format!(" ({} were archived already: not stored again)", report.already_archived.len())
                },
                report.waiting.segments,
                spool.display()
            );
            if let Some(e) = &report.error {
                eprintln!(
                    "stopped: {e}\nThe segments wait in the spool; run the same command again once the repository answers."
                );
            }
            Ok(code)
        }
    }
}

#[derive(Serialize)]
struct Installed<'a> {
    properties: &'a Path,
    archive_command: &'a str,
    spool: &'a Path,
    cluster: &'a str,
    host_id: &'a str,
    dry_run: bool,
    changed: bool,
}

fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    Ok(if p.is_absolute() { p.to_owned() } else { std::env::current_dir()?.join(p) })
}

/// `cassette list --commitlog`.
pub async fn list(
    repo: &RepoArgs,
    cluster: Option<&str>,
    host: Option<&str>,
    spool: Option<&Path>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let store = repo.open()?;
    let mut nodes: Vec<(String, String)> =
        store.list(cluster, host).await?.into_iter().map(|b| (b.cluster, b.host_id)).collect();
    let spooled = match spool {
        Some(dir) => {
            let spool = Spool::new(dir);
            let id = spool.identity()?;
            nodes.push((id.cluster.clone(), id.host_id.clone()));
            Some((id, spool.depth()?))
        }
        None => None,
    };
    nodes.sort();
    nodes.dedup();
    let mut out = Vec::new();
    for (c, h) in &nodes {
        out.push(cassette_commitlog::node_recovery(&*store, c, h).await?);
    }
    let now = Utc::now();
    if json {
        #[derive(Serialize)]
        struct Listing<'a> {
            nodes: &'a [cassette_commitlog::NodeRecovery],
            #[serde(skip_serializing_if = "Option::is_none")]
            spool: Option<serde_json::Value>,
        }
        let spool = spooled.as_ref().map(|(id, depth)| {
            serde_json::json!({ "cluster": id.cluster, "host_id": id.host_id, "segments": depth.segments, "bytes": depth.bytes, "oldest_archived_at": depth.oldest_archived_at })
        });
        super::print_json(&Listing { nodes: &out, spool });
        return Ok(ExitCode::SUCCESS);
    }
    for n in &out {
        println!(
            "node {} (cluster {}): {} archived segments, {}",
            n.host_id,
            n.cluster,
            n.segments,
            super::human_bytes(n.bytes)
        );
        if let Some(t) = n.newest_write {
            println!("  newest archived write {t} ({} ago)", cassette_repo::retention::age(now - t));
        }
        if n.windows.is_empty() {
            println!("  no recoverable window: it needs a complete backup and the segments archived after it");
        }
        for w in &n.windows {
            println!("  recoverable from {} to {} (from backup {})", w.from, w.until, w.backup);
        }
        for g in &n.gaps {
            println!(
                "  GAP: segments missing between {} and {} (after {}, before {})",
                g.from, g.until, g.after, g.before
            );
        }
        for (path, why) in &n.damaged {
            println!("  ! unreadable segment record {path}: {why}");
        }
    }
    if let Some((id, depth)) = &spooled {
        println!(
            "spool of node {}: {} segments waiting ({}){}",
            id.host_id,
            depth.segments,
            super::human_bytes(depth.bytes),
            depth
                .oldest_archived_at
                .map(|t| format!(", oldest archived {} ago", cassette_repo::retention::age(now - t)))
                .unwrap_or_default()
        );
    }
    if out.is_empty() {
        println!("no node with backups in {}", repo.backup_dir.display());
    }
    Ok(ExitCode::SUCCESS)
}
