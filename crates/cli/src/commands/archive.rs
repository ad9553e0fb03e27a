//! `cassette archive NAME`: one complete backup packed into a .tar.zst.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::cli::RepoArgs;

pub async fn run(
    name: &str,
    repo: &RepoArgs,
    host: Option<&str>,
    out: Option<PathBuf>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let name = cassette_repo::BackupName::parse(name)?;
    if repo.open()?.local_root().is_none() {
        let location = repo.backup_dir.display();
        let why = if repo.backup_dir.to_str().is_some_and(cassette_store::is_object_store_url) {
            format!(
                "{location} is not a directory but an object store: a backup there is already off the node; `cassette archive` packs backups of a directory"
            )
        } else {
            format!(
                "{location} is an encrypted or compressed repository: its files are encoded, not SSTables, so an archive of them could not be restored by hand; `cassette archive` packs backups of a plain directory (`cassette restore` reads this one)"
            )
        };
        return Err(crate::exit::InvalidInput(why).into());
    }
    let backup = super::find_one_backup(repo, &name, host).await?;
    let out = out.unwrap_or_else(|| PathBuf::from(format!("{name}.tar.zst")));
    let summary = cassette_repo::archive_backup(&backup.path, &out)?;
    if json {
        super::print_json(
            &serde_json::json!({"archive": out, "files": summary.files, "bytes_in": summary.bytes_in, "bytes_out": summary.bytes_out}),
        );
    } else {
        println!(
            "archived '{name}' ({} files, {}) into {} ({})",
            summary.files,
            super::human_bytes(summary.bytes_in),
            out.display(),
            super::human_bytes(summary.bytes_out)
        );
    }
    Ok(ExitCode::SUCCESS)
}
