//! `cassette list`: backups in the backup directory, complete or not.

use std::process::ExitCode;

use crate::cli::RepoArgs;

pub fn run(repo: &RepoArgs, cluster: Option<&str>, host: Option<&str>, json: bool) -> anyhow::Result<ExitCode> {
    let backups = cassette_repo::list_backups(&repo.backup_dir, cluster, host)?;
    if json {
        super::print_json(&backups);
        return Ok(ExitCode::SUCCESS);
    }
    if backups.is_empty() {
        println!("no backups in {}", repo.backup_dir.display());
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<24} {:<36} {:<28} {:<10} {:>7} {:>10} {:>10}  finished",
        "cluster", "host ID", "name", "state", "files", "size", "added"
    );
    for b in &backups {
        println!(
            "{:<24} {:<36} {:<28} {:<10} {:>7} {:>10} {:>10}  {}",
            b.cluster,
            b.host_id,
            b.name,
            if b.complete { "complete" } else { "INCOMPLETE" },
            b.files,
            super::human_bytes(b.bytes),
            super::human_bytes(b.bytes_added),
            b.finished_at.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string()).unwrap_or_else(|| "-".into())
        );
        if let Some(e) = &b.error {
            println!("  ! {e}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
