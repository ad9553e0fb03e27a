//! `cassette quarantine list|purge`: the files offline restores replaced.

use std::path::PathBuf;
use std::process::ExitCode;

use cassette_cassandra::Cql;
use cassette_restore::offline::{QUARANTINE_DIR_NAME, list_quarantines, purge_quarantines};

use crate::cli::{QuarantineArgs, QuarantineCommand};

pub async fn run(cmd: QuarantineCommand, json: bool) -> anyhow::Result<ExitCode> {
    match cmd {
        QuarantineCommand::List(args) => {
            let entries = list_quarantines(&roots(&args).await?);
            if json {
                super::print_json(&entries);
                return Ok(ExitCode::SUCCESS);
            }
            if entries.is_empty() {
                println!("no quarantine directories");
            }
            for q in &entries {
                let what = match &q.info {
                    Some(i) => format!(
                        "backup '{}' restored {} ({}), tables {}",
                        i.backup,
                        i.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
                        if i.finished_at.is_some() { "finished" } else { "UNFINISHED" },
                        i.tables.join(", ")
                    ),
                    None => "not a cassette quarantine (no cassette-quarantine.json)".into(),
                };
                println!("{}  {} files, {}  {what}", q.path.display(), q.files, super::human_bytes(q.bytes));
            }
            Ok(ExitCode::SUCCESS)
        }
        QuarantineCommand::Purge { args, older_than_days, include_unfinished } => {
            let entries = list_quarantines(&roots(&args).await?);
            let cassette_restore::offline::PurgeOutcome { removed, kept } =
                purge_quarantines(&entries, older_than_days, include_unfinished)?;
            if json {
                let kept: Vec<serde_json::Value> =
                    kept.iter().map(|(p, why)| serde_json::json!({"path": p, "reason": why})).collect();
                super::print_json(&serde_json::json!({ "removed": removed, "kept": kept }));
                return Ok(ExitCode::SUCCESS);
            }
            for p in &removed {
                println!("removed {}", p.display());
            }
            for (p, why) in &kept {
                println!("kept    {}: {why}", p.display());
            }
            println!("{} quarantine directories removed, {} kept", removed.len(), kept.len());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `--dir`s, or the `cassette-quarantine` directory beside each of the node's directories.
async fn roots(args: &QuarantineArgs) -> anyhow::Result<Vec<PathBuf>> {
    if !args.dirs.is_empty() {
        return Ok(args.dirs.clone());
    }
    let mut dirs = args.node.data_dirs.clone();
    let (target, _) = super::node_target(&args.node)?;
    match Cql::connect(&target).await {
        Ok(cql) => {
            if dirs.is_empty() {
                dirs = cql.data_file_directories().await?;
            }
            dirs.extend(cql.commitlog_directory().await.ok());
            dirs.extend(cql.saved_caches_directory().await.ok());
        }
        Err(e) if dirs.is_empty() => {
            // Keeps the Cassandra error as the cause: exit 4, with what to do first.
            return Err(anyhow::Error::new(e).context(
                "the quarantines are beside the node's data directories, which CQL tells: start Cassandra, or pass --data-dir or --dir",
            ));
        }
        Err(_) => {}
    }
    let mut out: Vec<PathBuf> = dirs.iter().map(|d| d.parent().unwrap_or(d).join(QUARANTINE_DIR_NAME)).collect();
    out.sort();
    out.dedup();
    Ok(out)
}
