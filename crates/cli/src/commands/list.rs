//! `cassette list`: backups in the backup directory, complete or not, with their age.

use std::process::ExitCode;

use cassette_repo::BackupSummary;
use chrono::Utc;
use serde::Serialize;

use crate::cli::RepoArgs;

/// A listed backup: the repository's summary and its age now.
#[derive(Serialize)]
struct Listed<'a> {
    #[serde(flatten)]
    summary: &'a BackupSummary,
    /// Seconds since it finished (complete) or was last written (incomplete).
    age_seconds: Option<i64>,
}

pub async fn run(
    repo: &RepoArgs,
    cluster: Option<&str>,
    host: Option<&str>,
    rebuild_index: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    if rebuild_index {
        let n = repo.open()?.rebuild_indexes(cluster, host).await?;
        if !json && n > 0 {
            eprintln!("indexed {n} complete backups");
        }
    }
    let backups = super::list_backups(repo, cluster, host).await?;
    let now = Utc::now();
    let age = |b: &BackupSummary| b.finished_at.or(b.last_written_at).or(b.started_at).map(|t| now - t);
    if json {
        let listed: Vec<Listed> =
            backups.iter().map(|b| Listed { summary: b, age_seconds: age(b).map(|a| a.num_seconds()) }).collect();
        super::print_json(&listed);
        return Ok(ExitCode::SUCCESS);
    }
    if backups.is_empty() {
        println!("no backups in {}", repo.backup_dir.display());
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<24} {:<36} {:<28} {:<10} {:>7} {:>10} {:>10} {:>7}  finished",
        "cluster", "host ID", "name", "state", "files", "size", "added", "age"
    );
    for b in &backups {
        println!(
            "{:<24} {:<36} {:<28} {:<10} {:>7} {:>10} {:>10} {:>7}  {}",
            b.cluster,
            b.host_id,
            b.name,
            if b.complete {
                "complete"
            } else if b.damaged {
                "DAMAGED"
            } else {
                "INCOMPLETE"
            },
            b.files,
            super::human_bytes(b.bytes),
            super::human_bytes(b.bytes_added),
            age(b).map(cassette_repo::retention::age).unwrap_or_else(|| "-".into()),
            b.finished_at.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string()).unwrap_or_else(|| "-".into())
        );
        if let Some(lock) = b.object_lock.filter(|l| l.holds_at(now)) {
            println!(
                "  locked until {} ({} mode): delete and purge refuse it until then",
                lock.until_rfc3339(),
                lock.mode
            );
        }
        if let Some(e) = &b.error {
            println!("  ! {e}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
