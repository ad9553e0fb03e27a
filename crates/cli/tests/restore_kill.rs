//! A restore killed (`kill -9`) while `nodetool import` runs (the import's process dies with
//! cassette instead of running on), or whose import fails (reported as a load failure): the same
//! command run again finishes the restore.

// One job per node: the job turn is held across awaits on purpose.
#![allow(clippy::await_holding_lock)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use cassette_testkit::backend::{Backend, BackendKind};
use cassette_testkit::s3::StoreKind;
use cassette_testkit::{Node, dataset, unique_name};
use common::*;

/// Whether process `pid` still runs (a zombie has ended).
fn running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Runs `cassette ARGS` (with `env`) under a nodetool whose import hangs (as a long one does),
/// calls `at_import` with cassette's process ID once the first import runs, kills cassette
/// (SIGKILL: no destructor of it runs) and returns the import's process ID, after checking that
/// it died with cassette. Every other nodetool call is the real nodetool.
fn kill_at_first_import(node: &Node, args: &[&str], env: &[(String, String)], at_import: impl FnOnce(u32)) -> u32 {
    let tools = tempfile::tempdir().unwrap();
    let pidfile = tools.path().join("import.pid");
    let wrapper = tools.path().join("nodetool");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/bash\nfor a in \"$@\"; do\n  if [ \"$a\" = import ]; then echo $$ > {}; exec sleep 300; fi\ndone\nexec {} \"$@\"\n",
            pidfile.display(),
            cassette_testkit::nodetool_launcher().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();

    let mut restore = std::process::Command::new(env!("CARGO_BIN_EXE_cassette"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("CASSETTE_CQL_HOST", &node.ip)
        .env("CASSETTE_JMX_PORT", node.jmx_port.to_string())
        .env("CASSETTE_NODETOOL", &wrapper)
        .env("CASSETTE_JMX_CLIENT", "nodetool")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !pidfile.exists() {
        assert!(started.elapsed() < Duration::from_secs(180), "the restore never reached its first import");
        assert!(restore.try_wait().unwrap().is_none(), "the restore ended before its first import");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(200));
    let import_pid: u32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    assert!(running(import_pid), "the import runs");
    at_import(restore.id());
    restore.kill().unwrap();
    restore.wait().unwrap();

    let killed = Instant::now();
    while running(import_pid) && killed.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let left = running(import_pid);
    if left {
        // Do not leave it behind, whatever the outcome.
        let _ = std::process::Command::new("kill").arg("-9").arg(import_pid.to_string()).status();
    }
    assert!(!left, "the nodetool import (pid {import_pid}) of the killed restore still runs");
    import_pid
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_restore_leaves_no_import_running_and_resumes() {
    let cluster = solo();
    let node = &cluster.nodes[0];
    let session = cluster.session().await;
    let ks = unique_name("killimp");
    dataset::load(&session, cluster, &ks, 1, &dataset::Shape::small()).await;
    let mut before = Vec::new();
    for t in dataset::TABLES {
        before.push(dataset::dump(&session, &ks, t).await);
    }
    let root = other_disk_dir();
    let r = root.path().to_str().unwrap();
    let _turn = serial();
    backup_ok(node, root.path(), "killed", &["-k", &ks]);

    let import_pid =
        kill_at_first_import(node, &["restore", "--name", "killed", "--backup-dir", r, "-k", &ks], &[], |_| {});
    let staging = root.path().join(".restore-staging");
    assert!(
        cassette_cassandra::children::running_with_arg_under(&staging).is_empty(),
        "no process works in the staging directory"
    );

    // The same command again, with the real nodetool: it continues and loads every table.
    let out = cassette(node, &["--json", "restore", "--name", "killed", "--backup-dir", r, "-k", &ks]);
    assert!(out.status.success(), "the resumed restore: {}{}", stdout(&out), stderr(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["resumed"], true, "{report}");
    for (t, rows) in dataset::TABLES.iter().zip(&before) {
        assert_eq!(&dataset::dump(&session, &ks, t).await, rows, "{ks}.{t} after the resumed restore");
    }
    assert!(!Path::new(&format!("/proc/{import_pid}")).exists() || !running(import_pid));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_import_is_reported_as_a_load_failure_and_the_rerun_loads_without_truncating_again() {
    let cluster = solo();
    let node = &cluster.nodes[0];
    let session = cluster.session().await;
    let ks = unique_name("failimp");
    dataset::load(&session, cluster, &ks, 1, &dataset::Shape::small()).await;
    let before = dataset::dump(&session, &ks, "readings").await;
    let root = other_disk_dir();
    let r = root.path().to_str().unwrap();
    let table = format!("{ks}.readings");
    let _turn = serial();
    backup_ok(node, root.path(), "failed", &["-k", &ks, "-t", &table]);

    // A nodetool whose import fails; every other call is the real nodetool.
    let tools = tempfile::tempdir().unwrap();
    let wrapper = tools.path().join("nodetool");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/bash\nfor a in \"$@\"; do\n  if [ \"$a\" = import ]; then echo 'error: import refused by the test' >&2; exit 1; fi\ndone\nexec {} \"$@\"\n",
            cassette_testkit::nodetool_launcher().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let args = ["--json", "restore", "--name", "failed", "--backup-dir", r, "-k", &ks, "-t", &table];
    let out = cassette_with_nodetool(node, &wrapper, &args);
    assert_eq!(out.status.code(), Some(1), "a failed table fails the restore: {}{}", stdout(&out), stderr(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let readings = &report["tables"][0];
    assert_eq!((&readings["status"], &readings["error_kind"]), (&"FAILURE".into(), &"load".into()), "{readings}");
    assert!(readings["error"].as_str().unwrap().contains("import refused by the test"), "{readings}");
    assert_eq!(readings["truncated"], true, "{readings}");

    // Again with the real nodetool: not truncated twice, loaded, every row back.
    let out = cassette(node, &args);
    assert!(out.status.success(), "the rerun: {}{}", stdout(&out), stderr(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let readings = &report["tables"][0];
    assert_eq!((&readings["truncated"], &readings["loaded"]), (&false.into(), &true.into()), "{readings}");
    assert!(readings.get("error_kind").is_none(), "{readings}");
    assert_eq!(dataset::dump(&session, &ks, "readings").await, before, "{ks}.readings after the rerun");
}

/// From an object store, every table is staged (each file checked as it arrives) before the
/// first truncate: when the first import runs, every table's SSTables are in the staging
/// directory. Killed there, the same command again stages again and loads every table. (A
/// damaged object makes the restore verify every file first: `backends.rs` shows it refused.)
#[tokio::test(flavor = "multi_thread")]
async fn from_an_object_store_every_table_is_staged_before_the_first_import_and_a_kill_there_resumes() {
    let cluster = solo();
    let node = &cluster.nodes[0];
    let session = cluster.session().await;
    let ks = unique_name("killone");
    dataset::load(&session, cluster, &ks, 1, &dataset::Shape::small()).await;
    let mut before = Vec::new();
    for t in dataset::TABLES {
        before.push(dataset::dump(&session, &ks, t).await);
    }
    let backend = Backend::start(BackendKind::Store(StoreKind::S3sFs));
    let at = backend.location();
    let env = backend.env();
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let _turn = serial();
    let out = cassette_with_env(node, &env_refs, &["backup", "--name", "one-read", "--backup-dir", &at, "-k", &ks]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));

    // The default staging directory of an object store: beside the node's data directories.
    let staging = node.data_dirs[0].parent().unwrap().join("cassette-restore-staging");
    let staged_tables = |staging: &Path| -> Vec<String> {
        let mut found = Vec::new();
        for run in std::fs::read_dir(staging).into_iter().flatten().flatten() {
            for host_run in std::fs::read_dir(run.path()).into_iter().flatten().flatten() {
                let ks_dir = host_run.path().join(&ks);
                for t in std::fs::read_dir(&ks_dir).into_iter().flatten().flatten() {
                    if std::fs::read_dir(t.path()).is_ok_and(|mut d| d.next().is_some()) {
                        found.push(t.file_name().to_string_lossy().into_owned());
                    }
                }
            }
        }
        found.sort();
        found
    };
    let mut at_first_import = Vec::new();
    kill_at_first_import(node, &["restore", "--name", "one-read", "--backup-dir", &at, "-k", &ks], &env, |_| {
        at_first_import = staged_tables(&staging);
    });
    assert_eq!(at_first_import, dataset::TABLES, "every table staged before the first import");

    let args = ["--json", "restore", "--name", "one-read", "--backup-dir", &at, "-k", &ks];
    let out = cassette_with_env(node, &env_refs, &args);
    assert!(out.status.success(), "the resumed restore: {}{}", stdout(&out), stderr(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!((&report["resumed"], &report["staged_first"]), (&true.into(), &true.into()), "{report}");
    for (t, rows) in dataset::TABLES.iter().zip(&before) {
        assert_eq!(&dataset::dump(&session, &ks, t).await, rows, "{ks}.{t} after the resumed restore");
    }
    assert!(staged_tables(&staging).is_empty(), "nothing is left staged");
}
