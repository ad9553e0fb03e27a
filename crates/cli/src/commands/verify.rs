//! `cassette verify`: every stored file checked against its manifest (hash, or `--quick`: size).

use std::process::ExitCode;

use cassette_repo::{BackupSummary, Depth, VerifyReport};
use serde::Serialize;

use crate::cli::RepoArgs;
use crate::exit;

#[derive(Serialize)]
struct Verified {
    cluster: String,
    host_id: String,
    name: String,
    complete: bool,
    /// Its manifest is there but cannot be read (see `cassette list`).
    damaged: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    report: Option<VerifyReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

pub async fn run(
    repo: &RepoArgs,
    name: Option<&str>,
    host: Option<&str>,
    quick: bool,
    parallel: usize,
    json: bool,
) -> anyhow::Result<ExitCode> {
    if let Some(n) = name {
        cassette_repo::BackupName::parse(n)?;
    }
    let repository = repo.open()?;
    let backups: Vec<BackupSummary> =
        super::list_backups(repo, None, host).await?.into_iter().filter(|b| name.is_none_or(|n| b.name == n)).collect();
    if backups.is_empty() {
        return Err(exit::InvalidInput(format!(
            "no backup{}{} in {}: `cassette list` shows what is there (check --backup-dir)",
            name.map(|n| format!(" named '{n}'")).unwrap_or_default(),
            host.map(|h| format!(" of host {h}")).unwrap_or_default(),
            repo.backup_dir.display()
        ))
        .into());
    }
    let depth = if quick { Depth::Quick } else { Depth::Full };
    let mut results = Vec::new();
    for b in backups {
        let (report, error) = if b.complete {
            match repository.verify(&b, depth, parallel, &|_| {}).await.map_err(|e| e.to_string()) {
                Ok(r) => (Some(r), None),
                Err(e) => (None, Some(e)),
            }
        } else if b.damaged {
            (None, Some(b.error.clone().unwrap_or_else(|| "its manifest cannot be read".into())))
        } else {
            (None, Some("incomplete: no manifest (interrupted or failed); it cannot be restored. Run the same backup again to resume it".to_string()))
        };
        results.push(Verified {
            cluster: b.cluster,
            host_id: b.host_id,
            name: b.name,
            complete: b.complete,
            damaged: b.damaged,
            report,
            error,
        });
    }
    let all_good = results.iter().all(|r| r.error.is_none() && r.report.as_ref().is_some_and(|r| r.bad.is_empty()));
    if json {
        super::print_json(&results);
    } else {
        for r in &results {
            let who = format!("{}/{}/{}", r.cluster, r.host_id, r.name);
            match (&r.report, &r.error) {
                (Some(rep), _) if rep.bad.is_empty() => {
                    println!(
                        "OK       {who}: {} files, {} {}",
                        rep.files,
                        super::human_bytes(rep.bytes),
                        if quick { "present with their sizes" } else { "match their hashes" }
                    )
                }
                (Some(rep), _) => {
                    println!("DAMAGED  {who}: {} of {} files do not match the manifest", rep.bad.len(), rep.files);
                    for bad in &rep.bad {
                        println!("  {}: {}", bad.path, bad.problem);
                    }
                }
                (None, Some(e)) if r.damaged => println!("DAMAGED  {who}: {e}"),
                (None, Some(e)) => println!("BAD      {who}: {e}"),
                (None, None) => unreachable!("a result has a report or an error"),
            }
        }
    }
    Ok(if all_good { ExitCode::SUCCESS } else { ExitCode::from(exit::FAILED) })
}
