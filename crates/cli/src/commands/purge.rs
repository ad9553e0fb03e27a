//! `cassette purge`: backups the retention policy no longer keeps, interrupted backups and the
//! leftovers of killed jobs, removed node by node (the plan alone with `--dry-run`).

use std::process::ExitCode;

use cassette_repo::{NodePurge, Policy, PurgeOptions};
use chrono::Utc;
use serde::Serialize;

use crate::cli::PurgeArgs;
use crate::exit;

#[derive(Serialize)]
struct Report<'a> {
    dry_run: bool,
    policy: &'a Policy,
    nodes: &'a [NodePurge],
    /// Backups deleted (or to delete, with `dry_run`).
    deleted_backups: usize,
    files_deleted: u64,
    bytes_freed: u64,
    leftovers_removed: usize,
    skipped_nodes: usize,
    failed: bool,
}

pub async fn run(args: &PurgeArgs, json: bool) -> anyhow::Result<ExitCode> {
    let opts = PurgeOptions {
        policy: Policy { keep_last: args.keep_last, keep_days: args.keep_days, grace: args.grace },
        dry_run: args.dry_run,
        now: Utc::now(),
        name_prefix: args.name_prefix.clone(),
        names: None,
    };
    let (cluster, host) = (args.cluster.as_deref(), args.host_id.as_deref());
    let nodes = args.repo.open()?.purge(cluster, host, &opts).await?;
    let deleted = || nodes.iter().flat_map(|n| n.doomed()).filter_map(|b| b.deleted.as_ref());
    let report = Report {
        dry_run: args.dry_run,
        policy: &opts.policy,
        nodes: &nodes,
        deleted_backups: nodes.iter().map(|n| n.doomed().filter(|b| b.error.is_none()).count()).sum(),
        files_deleted: deleted().map(|d| d.files).sum(),
        bytes_freed: deleted().map(|d| d.bytes_freed).sum(),
        leftovers_removed: nodes.iter().flat_map(|n| &n.garbage).filter(|g| g.removed).count(),
        skipped_nodes: nodes.iter().filter(|n| n.skipped.is_some()).count(),
        failed: nodes.iter().any(NodePurge::failed),
    };
    if json {
        super::print_json(&report);
    } else {
        print_text(&report, &args.repo.backup_dir);
    }
    Ok(if report.failed {
        ExitCode::from(exit::FAILED)
    } else if report.skipped_nodes > 0 {
        ExitCode::from(exit::CONFLICT)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_text(r: &Report, root: &std::path::Path) {
    if r.nodes.is_empty() {
        println!("no backups in {}", root.display());
        return;
    }
    for n in r.nodes {
        println!("{}/{}:", n.cluster, n.host_id);
        if let Some(why) = &n.skipped {
            println!("  {why}");
            continue;
        }
        if let Some(e) = &n.error {
            println!("  FAILED: {e}");
        }
        for b in &n.backups {
            let action = match (b.keep, r.dry_run, &b.deleted, &b.error) {
                (true, ..) => "keep".to_string(),
                (false, true, ..) => "would delete".to_string(),
                (false, false, _, Some(_)) => "FAILED".to_string(),
                (false, false, Some(d), None) => format!("deleted ({} freed)", super::human_bytes(d.bytes_freed)),
                (false, false, None, None) => "delete".to_string(),
            };
            println!("  {action:<24} {:<28} {}", b.name, b.why);
            if let Some(e) = &b.error {
                println!("    ! {e}");
            }
        }
        for g in &n.garbage {
            let action = match (r.dry_run, g.removed) {
                (true, _) => "would remove",
                (false, true) => "removed",
                (false, false) => "FAILED to remove",
            };
            println!("  {action:<24} {} ({:?})", g.path.display(), g.kind);
            if let Some(e) = &g.error {
                println!("    ! {e}");
            }
        }
    }
    let verb = if r.dry_run { "would delete" } else { "deleted" };
    println!(
        "{verb} {} backups ({} files, {} freed){}{}",
        r.deleted_backups,
        r.files_deleted,
        super::human_bytes(r.bytes_freed),
        if r.leftovers_removed > 0 { format!("; {} leftovers removed", r.leftovers_removed) } else { String::new() },
        if r.skipped_nodes > 0 {
            format!("; {} nodes skipped because a job is running: run purge again later", r.skipped_nodes)
        } else {
            String::new()
        }
    );
}
