//! `cassette delete --name NAME`: one backup removed; what other backups share stays.

use std::process::ExitCode;

use crate::cli::RepoArgs;

pub async fn run(name: &str, repo: &RepoArgs, host: Option<&str>, json: bool) -> anyhow::Result<ExitCode> {
    let name = cassette_repo::BackupName::parse(name)?;
    let backup = super::find_one_backup(repo, &name, host).await?;
    let summary = repo.open()?.delete(&backup).await?;
    if json {
        super::print_json(
            &serde_json::json!({"deleted": backup.path, "files": summary.files, "bytes_freed": summary.bytes_freed}),
        );
    } else {
        println!(
            "deleted backup '{name}' of host {} ({} files; {} freed, the rest is shared with other backups)",
            backup.host_id,
            summary.files,
            super::human_bytes(summary.bytes_freed)
        );
    }
    Ok(ExitCode::SUCCESS)
}
