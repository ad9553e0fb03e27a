//! `cassette restore`: restore the node cassette runs beside from a backup, online.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};

use cassette_cassandra::LoadTarget;
use cassette_restore::{
    Mode, OfflineOptions, PointInTime, Progress, RestoreRequest, Stage, Status, TableOutcome, run_offline_restore,
    run_restore, run_topology_restore,
};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::RestoreArgs;
use crate::exit;

pub async fn run(mut args: RestoreArgs, json: bool) -> anyhow::Result<ExitCode> {
    let name = match (&args.name, args.offline.until) {
        (Some(name), _) => name.clone(),
        (None, Some(until)) => backup_before(&args, until).await?,
        (None, None) => {
            return Err(exit::InvalidInput(
                "give the backup to restore with --name NAME (`cassette list` shows them), or a point in time with --offline --until TIME".into(),
            )
            .into());
        }
    };
    cassette_repo::BackupName::parse(&name)?;
    args.name = Some(name);
    if args.offline.offline {
        return run_offline(args, json).await;
    }
    if args.to_topology {
        return run_to_topology(args, json).await;
    }
    let node = super::connect(&args.node).await?;
    let mode = if args.truncate_only {
        Mode::TruncateOnly
    } else if args.no_truncate {
        Mode::LoadOnly
    } else {
        Mode::TruncateAndLoad
    };
    let request = request_of(args, mode);
    let progress = RestoreBar::new(!json && std::io::stderr().is_terminal());
    let report = run_restore(&node, &request, &progress).await;
    progress.finish();
    let report = report?;
    if json {
        super::print_json(&report);
        return Ok(if report.complete { ExitCode::SUCCESS } else { ExitCode::from(exit::FAILED) });
    }
    print_header(Header {
        name: &report.name,
        host_id: &report.source_host_id,
        cluster: &report.source_cluster,
        files: report.verified_files,
        bytes: report.verified_bytes,
        schema_created: &report.schema_created,
        dry_run: report.dry_run,
    });
    for t in &report.tables {
        let status = if t.status == Status::Success { "SUCCESS" } else { "FAILURE" };
        let renamed =
            if (t.backup_keyspace.as_str(), t.backup_table.as_str()) != (t.keyspace.as_str(), t.table.as_str()) {
                format!(" (from {}.{})", t.backup_keyspace, t.backup_table)
            } else {
                String::new()
            };
        let mut notes: Vec<String> = Vec::new();
        if t.truncated {
            notes.push("truncated".into());
        }
        if t.loaded {
            notes.push(format!("loaded {} files, {}", t.files, super::human_bytes(t.bytes)));
        }
        if let Some(s) = &t.truncate_snapshot {
            notes.push(format!("pre-restore snapshot {s} kept"));
        }
        if let Some(s) = &t.skipped {
            notes.push(s.clone());
        }
        if let Some(e) = &t.error {
            notes.push(e.to_string());
        }
        println!(
            "table {:<40} {status:<8} {:>7} ms  {}",
            format!("{}.{}{renamed}", t.keyspace, t.table),
            t.duration_ms,
            notes.join("; ")
        );
    }
    for ks in &report.keyspaces {
        let status = if ks.status == Status::Success { "SUCCESS" } else { "FAILURE" };
        println!(
            "keyspace {:<37} {status:<8} {:>7} ms{}",
            ks.name,
            ks.duration_ms,
            ks.error.as_deref().map(|e| format!("  {e}")).unwrap_or_default()
        );
    }
    if report.dry_run {
        println!("dry run: nothing was changed");
    } else if report.complete {
        let files: u64 = report.tables.iter().map(|t| t.files).sum();
        let bytes: u64 = report.tables.iter().map(|t| t.bytes).sum();
        println!(
            "restore of '{}' complete{}: {} tables, {files} files, {} loaded in {:.1} s (journal {})",
            report.name,
            if report.resumed { " (resumed)" } else { "" },
            report.tables.len(),
            super::human_bytes(bytes),
            report.duration_ms as f64 / 1000.0,
            report.journal.display()
        );
        if report.mode == Mode::TruncateOnly {
            println!("next: run `cassette restore --name {} --no-truncate` on every node of the cluster", report.name);
        }
    } else {
        eprintln!(
            "restore of '{}' FAILED for some tables (above). Fix the cause and run the same command again: tables already loaded are skipped, and no table is truncated twice.",
            report.name
        );
    }
    Ok(if report.complete { ExitCode::SUCCESS } else { ExitCode::from(exit::FAILED) })
}

/// `--until` without `--name`: the newest complete backup of the node (or of `--from-node`)
/// that finished before that time and that its archived segments bring forward to it.
async fn backup_before(args: &RestoreArgs, until: chrono::DateTime<chrono::Utc>) -> anyhow::Result<String> {
    let node = super::connect(&args.node).await.map_err(|e| {
        exit::InvalidInput(format!(
            "--until without --name needs the node up, to find its backups ({e}); give --name (an interrupted restore's report names the backup it chose)"
        ))
    })?;
    let local = node.cql.local_node().await?;
    let cluster = args.from_cluster.clone().unwrap_or(local.cluster_name);
    let host = args.from_node.clone().unwrap_or_else(|| local.host_id.to_string());
    let store = args.repo.open()?;
    let recovery = cassette_commitlog::node_recovery(&*store, &cluster, &host).await?;
    Ok(recovery.plan(until, None)?.backup)
}

/// The restore the arguments ask for, in `mode`.
fn request_of(args: RestoreArgs, mode: Mode) -> RestoreRequest {
    RestoreRequest {
        from_cluster: args.from_cluster,
        from_node: args.from_node,
        keyspaces: args.keyspaces,
        tables: args.tables,
        renames: args.renames,
        create_schema: args.create_schema,
        dc_map: args.dc_map,
        mode,
        new_restore: args.new_restore,
        clear_truncate_snapshots: args.clear_truncate_snapshots,
        staging_dir: args.staging_dir,
        dry_run: args.dry_run,
        repair: args.repair,
        parallel_files: args.parallel,
        transfer: args.repo.transfer(),
        ..RestoreRequest::new(args.name.expect("resolved above"), args.repo.backup_dir)
    }
}

/// `restore --to-topology`: every source node's backup streamed by the bulk loader.
async fn run_to_topology(args: RestoreArgs, json: bool) -> anyhow::Result<ExitCode> {
    let (cql_target, _) = super::node_target(&args.node)?;
    if cql_target.tls.is_some() {
        return Err(exit::InvalidInput(
            "--to-topology does not load over CQL TLS yet: restore from a machine the target's native port accepts without TLS, or use a same-topology restore".into(),
        )
        .into());
    }
    let node = super::connect(&args.node).await?;
    let target = LoadTarget {
        hosts: vec![args.node.cql_host.clone()],
        port: args.node.cql_port,
        credentials: cql_target.credentials.clone(),
    };
    let mode = if args.no_truncate { Mode::LoadOnly } else { Mode::TruncateAndLoad };
    let request = request_of(args, mode);
    let progress = RestoreBar::new(!json && std::io::stderr().is_terminal());
    let report = run_topology_restore(&node, &request, &target, &progress).await;
    progress.finish();
    let report = report?;
    let code = if report.complete { ExitCode::SUCCESS } else { ExitCode::from(exit::FAILED) };
    if json {
        super::print_json(&report);
        return Ok(code);
    }
    println!(
        "backup '{}' of {} node(s) of cluster '{}': {} files, {} verified",
        report.name,
        report.source_hosts.len(),
        report.source_cluster,
        report.verified_files,
        super::human_bytes(report.verified_bytes)
    );
    for s in &report.schema_created {
        println!("created   {}", s.lines().next().unwrap_or_default());
    }
    for t in &report.truncated {
        println!("truncated {t}");
    }
    for s in &report.sources {
        println!(
            "source {}: loaded {} table(s), {} files, {}{}",
            s.host_id,
            s.loaded.len(),
            s.files,
            super::human_bytes(s.bytes),
            if s.skipped.is_empty() {
                String::new()
            } else {
                format!("; already loaded (journal): {}", s.skipped.join(", "))
            }
        );
    }
    for (table, e) in &report.errors {
        eprintln!("table {table} FAILED: {e}");
    }
    if report.complete {
        println!(
            "restore of '{}' onto this topology complete in {:.1} s",
            report.name,
            report.duration_ms as f64 / 1000.0
        );
    } else {
        eprintln!(
            "restore of '{}' FAILED for some tables (above). Fix the cause and run the same command again: what was loaded is not loaded twice, and nothing is truncated twice.",
            report.name
        );
    }
    Ok(code)
}

/// `restore --offline`: the node may be down (continuing an interrupted offline restore).
async fn run_offline(mut args: RestoreArgs, json: bool) -> anyhow::Result<ExitCode> {
    let off = std::mem::take(&mut args.offline);
    let (Some(stop), Some(start)) = (off.stop_command, off.start_command) else {
        return Err(cassette_restore::RestoreError::InvalidInput(
            "--offline needs --stop-command and --start-command (run with `sh -c`), e.g. --stop-command 'systemctl stop cassandra' --start-command 'systemctl start cassandra'".into(),
        )
        .into());
    };
    let (target, nodetool) = super::node_target(&args.node)?;
    let opts = OfflineOptions {
        data_dirs: args.node.data_dirs.clone(),
        commitlog_dir: off.commitlog_dir,
        saved_caches_dir: off.saved_caches_dir,
        quarantine_dir: off.quarantine_dir,
        stop_timeout: std::time::Duration::from_secs(off.stop_timeout),
        start_timeout: std::time::Duration::from_secs(off.start_timeout),
        point_in_time: off.until.map(|until| PointInTime {
            until,
            properties: off.commitlog_archiving_properties.clone(),
            system_log: off.cassandra_log.clone(),
        }),
        ..OfflineOptions::new(stop, start)
    };
    // The online restore's request: its mode, staging directory and truncate snapshots are
    // not used offline.
    let request = request_of(args, Mode::TruncateAndLoad);
    let progress = RestoreBar::new(!json && std::io::stderr().is_terminal());
    let report = run_offline_restore(&target, &nodetool, &request, &opts, &progress).await;
    progress.finish();
    let report = report?;
    let code = if report.complete { ExitCode::SUCCESS } else { ExitCode::from(exit::FAILED) };
    if json {
        super::print_json(&report);
        return Ok(code);
    }
    print_header(Header {
        name: &report.name,
        host_id: &report.source_host_id,
        cluster: &report.source_cluster,
        files: report.verified_files,
        bytes: report.verified_bytes,
        schema_created: &report.schema_created,
        dry_run: report.dry_run,
    });
    for s in &report.steps {
        println!("{:<11} {}", s.step, s.detail);
    }
    for t in &report.tables {
        let mut notes = vec![
            format!("{} live files quarantined", t.quarantined_files),
            format!("{} files placed ({})", t.placed_files, super::human_bytes(t.placed_bytes)),
        ];
        if let Some(s) = &t.skipped {
            notes.push(s.clone());
        }
        println!(
            "table {:<40} {}  -> {}",
            format!("{}.{}", t.keyspace, t.table),
            notes.join("; "),
            t.live_dir.display()
        );
    }
    let quarantine: Vec<String> = report.quarantine.iter().map(|q| q.display().to_string()).collect();
    if report.dry_run {
        println!("dry run: nothing was changed; the replaced files would go to {}", quarantine.join(", "));
    } else {
        println!(
            "offline restore of '{}' {}{} in {:.1} s. The replaced files are kept in {} until `cassette quarantine purge` (journal {})",
            report.name,
            if report.complete { "complete" } else { "done, with an error" },
            if report.resumed { " (resumed)" } else { "" },
            report.duration_ms as f64 / 1000.0,
            quarantine.join(", "),
            report.journal.display()
        );
        if let Some(e) = &report.error {
            eprintln!("{e}");
        }
    }
    Ok(code)
}

/// The terminal progress bar of a restore (verification bytes, then tables), hidden off a terminal.
struct RestoreBar {
    bar: ProgressBar,
    tables_done: AtomicU64,
}

impl RestoreBar {
    fn new(enabled: bool) -> Self {
        let target = if enabled { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() };
        let bar = ProgressBar::with_draw_target(Some(0), target);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} {prefix:>9} {wide_msg}\n  [{bar:40}] {bytes}/{total_bytes} verified {binary_bytes_per_sec}",
            )
            .expect("template")
            .progress_chars("=> "),
        );
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
        RestoreBar { bar, tables_done: AtomicU64::new(0) }
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Progress for RestoreBar {
    fn stage(&self, stage: Stage, detail: &str) {
        self.bar.set_prefix(format!("{stage:?}").to_lowercase());
        self.bar.set_message(format!("{detail} (tables done: {})", self.tables_done.load(Ordering::Relaxed)));
    }
    fn add_total(&self, _files: u64, bytes: u64) {
        self.bar.inc_length(bytes);
    }
    fn file_verified(&self, bytes: u64) {
        self.bar.inc(bytes);
    }
    fn table_finished(&self, outcome: &TableOutcome) {
        self.tables_done.fetch_add(1, Ordering::Relaxed);
        if let Some(e) = &outcome.error {
            self.bar.suspend(|| eprintln!("table {}.{} FAILED: {e}", outcome.keyspace, outcome.table));
        }
    }
}

/// What both restore modes print first: the backup, what was verified, the schema created.
struct Header<'a> {
    name: &'a str,
    host_id: &'a str,
    cluster: &'a str,
    files: u64,
    bytes: u64,
    schema_created: &'a [String],
    dry_run: bool,
}

fn print_header(h: Header<'_>) {
    println!(
        "backup '{}' of host ID {} (cluster '{}'): {} files, {} verified",
        h.name,
        h.host_id,
        h.cluster,
        h.files,
        super::human_bytes(h.bytes)
    );
    for s in h.schema_created {
        let first = s.lines().next().unwrap_or_default();
        println!("{} {first}", if h.dry_run { "would run" } else { "created  " });
    }
}
