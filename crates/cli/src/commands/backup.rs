//! `cassette backup`: back up the node cassette runs beside.

use std::io::IsTerminal;
use std::process::ExitCode;

use cassette_backup::{BackupRequest, Status, run_backup};

use crate::cli::BackupArgs;
use crate::exit;
use crate::progress::BarProgress;

pub async fn run(args: BackupArgs, json: bool) -> anyhow::Result<ExitCode> {
    // Check the name before touching anything (the engine checks it again).
    cassette_repo::BackupName::parse(&args.name)?;
    let object_lock = args.object_lock(chrono::Utc::now()).map_err(exit::InvalidInput)?;
    let node = {
        // The JMX client's JVM starts while CQL connects: the snapshot needs it first.
        let (target, nodetool) = super::node_target(&args.node)?;
        nodetool.warm_up();
        let cql = cassette_cassandra::Cql::connect(&target).await?;
        cassette_backup::Node { cql, nodetool }
    };
    let mut config_dirs = args.config_dirs.clone();
    if config_dirs.is_empty()
        && let Some(home) = std::env::var_os("CASSANDRA_HOME")
    {
        let conf = std::path::Path::new(&home).join("conf");
        if conf.is_dir() {
            config_dirs.push(conf);
        }
    }
    let request = BackupRequest {
        keyspaces: args.keyspaces,
        tables: args.tables,
        include_system: args.include_system,
        config_dirs,
        alias: args.alias,
        allow_same_disk: args.allow_same_disk,
        data_dirs: (!args.node.data_dirs.is_empty()).then_some(args.node.data_dirs),
        data_dirs_override: args.data_dir_override,
        parallel_files: args.parallel,
        transfer: cassette_store::Transfer { object_lock, ..args.repo.transfer() },
        ..BackupRequest::new(args.name, args.repo.backup_dir)
    };
    let progress = BarProgress::new(!json && std::io::stderr().is_terminal());
    let report = run_backup(&node, &request, &progress).await;
    progress.finish();
    let report = report?;
    if json {
        super::print_json(&report);
    } else {
        for ks in &report.keyspaces {
            let status = if ks.status == Status::Success { "SUCCESS" } else { "FAILURE" };
            println!(
                "keyspace {:<30} {status:<8} {:>7} ms{}",
                ks.name,
                ks.duration_ms,
                ks.error.as_deref().map(|e| format!("  {e}")).unwrap_or_default()
            );
        }
        let t = &report.totals;
        if report.complete {
            let reused = t.bytes - t.bytes_added;
            println!(
                "backup '{}' complete{}: {} files, {} in {:.1} s ({} copied{})\n  {}",
                report.name,
                if report.resumed { " (resumed)" } else { "" },
                t.files,
                super::human_bytes(t.bytes),
                report.duration_ms as f64 / 1000.0,
                super::human_bytes(t.bytes_added),
                if reused > 0 {
                    format!(", {} hard-linked from earlier backups", super::human_bytes(reused))
                } else {
                    String::new()
                },
                report.path.display()
            );
        } else {
            eprintln!(
                "backup '{}' is INCOMPLETE: some tables failed (above). Nothing was marked restorable; fix the cause and run the same command again to resume.",
                report.name
            );
        }
    }
    Ok(if report.complete { ExitCode::SUCCESS } else { ExitCode::from(exit::FAILED) })
}
