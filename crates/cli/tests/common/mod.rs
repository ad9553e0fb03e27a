//! Running the `cassette` binary against the real test node, as an operator would.

#![allow(dead_code)]

pub mod services;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

use cassette_testkit::{Cluster, Node};

/// cassette allows one job per Cassandra node: the tests of a binary that run jobs on the
/// same node take turns.
pub static NODE_JOBS: Mutex<()> = Mutex::new(());

pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    NODE_JOBS.lock().unwrap_or_else(|e| e.into_inner())
}

/// `cassette ARGS` pointed at `node` (CQL, JMX, nodetool launcher).
pub fn cassette(node: &Node, args: &[&str]) -> Output {
    cassette_with_nodetool(node, &cassette_testkit::nodetool_launcher(), args)
}

/// `cassette ARGS` with a nodetool wrapper that acts on its calls: every call goes through it
/// (`CASSETTE_JMX_CLIENT=nodetool`: snapshots would otherwise skip it for the JMX client).
pub fn cassette_with_nodetool(node: &Node, nodetool: &Path, args: &[&str]) -> Output {
    command(node, nodetool, args).env("CASSETTE_JMX_CLIENT", "nodetool").output().expect("run cassette")
}

/// `cassette ARGS` with extra environment variables (such as the `CASSETTE_FAULT_KILL_AT` hook).
pub fn cassette_with_env(node: &Node, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = command(node, &cassette_testkit::nodetool_launcher(), args);
    cmd.envs(env.iter().copied());
    cmd.output().expect("run cassette")
}

fn command(node: &Node, nodetool: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cassette"));
    cmd.args(args)
        .env("CASSETTE_CQL_HOST", &node.ip)
        .env("CASSETTE_JMX_PORT", node.jmx_port.to_string())
        .env("CASSETTE_NODETOOL", nodetool)
        .env_remove("CASSETTE_FAULT_KILL_AT")
        .env_remove("CASSANDRA_BACKUP_DIRECTORY")
        .env_remove("CASSANDRA_HOME");
    cmd
}

/// `cassette --json list` of `root`: every backup, as listed.
pub fn list_json(node: &Node, root: &Path) -> Vec<serde_json::Value> {
    let out = cassette(node, &["--json", "list", "--backup-dir", root.to_str().unwrap()]);
    assert!(out.status.success(), "list failed:\n{}", stderr(&out));
    match serde_json::from_str(&stdout(&out)).expect("list --json prints JSON") {
        serde_json::Value::Array(v) => v,
        other => panic!("list --json printed {other}"),
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs `cassette --json backup ...` and returns its report; panics unless it exits 0.
pub fn backup_ok(node: &Node, root: &Path, name: &str, extra: &[&str]) -> serde_json::Value {
    let root = root.to_str().unwrap();
    let mut args = vec!["--json", "backup", "--name", name, "--backup-dir", root];
    args.extend_from_slice(extra);
    let out = cassette(node, &args);
    assert!(out.status.success(), "backup {name} failed ({:?}):\n{}\n{}", out.status, stdout(&out), stderr(&out));
    serde_json::from_str(&stdout(&out)).expect("backup --json prints a report")
}

/// A backup directory on another filesystem than the node's data (tmpfs), so the same-disk
/// safety check passes without --allow-same-disk.
pub fn other_disk_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    assert!(shm.is_dir(), "these tests need /dev/shm (tmpfs) as a second filesystem");
    tempfile::tempdir_in(shm).expect("tempdir in /dev/shm")
}

/// Every live SSTable file of a table across data directories: relative path → absolute path.
pub fn live_table_files(node: &Node, keyspace: &str, table: &str, id_hex: &str) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for dir in cassette_cassandra::disk::table_dirs(&node.data_dirs, keyspace, table, id_hex) {
        let mut stack = vec![dir.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                if p.is_dir() {
                    if name != "snapshots" && name != "backups" {
                        stack.push(p);
                    }
                } else if cassette_cassandra::disk::SstableName::parse(&name).is_some() {
                    let rel = p.strip_prefix(&dir).unwrap().to_string_lossy().into_owned();
                    out.push((rel, p));
                }
            }
        }
    }
    out.sort();
    out
}

/// Every regular file below `root`, at any depth (unreadable directories are skipped).
pub fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                found.push(p);
            }
        }
    }
    found
}

/// Every `manifest.json` below `root` (a failed backup must leave none).
pub fn manifests_under(root: &Path) -> Vec<PathBuf> {
    files_under(root).into_iter().filter(|p| p.file_name().is_some_and(|n| n == "manifest.json")).collect()
}

pub fn solo() -> &'static Cluster {
    Cluster::solo()
}

/// The browser tests' Python (with Playwright, from `harness/browser/setup.sh`, which installs
/// what is missing) and chromium.
pub fn browser() -> (String, String) {
    let setup = Command::new(cassette_testkit::repo_root().join("harness/browser/setup.sh"))
        .output()
        .expect("run harness/browser/setup.sh");
    assert!(
        setup.status.success(),
        "the browser test needs chromium and Playwright (harness/browser/setup.sh failed):\n{}",
        String::from_utf8_lossy(&setup.stderr)
    );
    let python = String::from_utf8_lossy(&setup.stdout).trim().to_string();
    let chromium = ["chromium", "chromium-browser"]
        .iter()
        .find_map(|b| {
            let out = Command::new("sh").args(["-c", &format!("command -v {b}")]).output().ok()?;
            out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        })
        .expect("chromium (apt install chromium)");
    (python, chromium)
}

/// Runs the dashboard's Playwright script (`tests/browser/dashboard.py`) against `url` with
/// `env` (its MODE and what that mode checks); panics with its output when it fails.
pub fn dashboard_page(url: &str, env: &[(&str, &str)]) {
    let (python, chromium) = browser();
    let shots = cassette_testkit::repo_root().join("target/test-artifacts/dashboard");
    let out = Command::new(&python)
        .arg(cassette_testkit::repo_root().join("crates/cli/tests/browser/dashboard.py"))
        .env("DASHBOARD_URL", url)
        .env("SCREENSHOTS", &shots)
        .env("CHROMIUM", &chromium)
        .envs(env.iter().copied())
        .output()
        .expect("run the Playwright script");
    assert!(
        out.status.success(),
        "the dashboard page check failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `cassette ARGS` on the `solo` node against the object-storage server `s3`, with a state
/// directory of its own.
pub fn on_store(s3: &cassette_testkit::s3::StoreServer, state: &Path, args: &[&str]) -> Output {
    let env = s3.env();
    let mut all: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    all.push(("CASSETTE_STATE_DIR", state.to_str().unwrap()));
    cassette_with_env(&solo().nodes[0], &all, args)
}

/// The `--json` output of a command that must succeed (`what` names it in the failure).
pub fn json_of(out: &Output, what: &str) -> serde_json::Value {
    assert!(out.status.success(), "{what} failed ({:?}):\n{}\n{}", out.status, stdout(out), stderr(out));
    serde_json::from_str(&stdout(out)).unwrap_or_else(|e| panic!("{what}: not JSON ({e}):\n{}", stdout(out)))
}

/// The bytes a backup report says it copied (stored itself, not referenced).
pub fn bytes_copied(report: &serde_json::Value) -> u64 {
    report["tables"].as_array().unwrap().iter().map(|t| t["bytes_copied"].as_u64().unwrap()).sum()
}
