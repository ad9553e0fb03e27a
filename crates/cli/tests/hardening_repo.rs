//! Whoever can write a repository must not be able to turn cassette against the node: on a real
//! node, real symbolic links into a live keyspace directory (or to a canary file outside the
//! repository), FIFOs and tampered manifests, and each time a check that nothing outside the
//! repository changed (the canary's bytes, the live files, the live rows). Also: damaged
//! manifests shown alike by list, verify and purge, and locks in cassette's own state directory.

// Tests hold the node's turn (`serial()`) across awaits on purpose: one job per node.
#![allow(clippy::await_holding_lock)]

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use cassette_testkit::{Cluster, Node, dataset, unique_name};
use common::*;
use scylla::client::session::Session;

fn tiny() -> dataset::Shape {
    dataset::Shape { rounds: 1, rows_per_round: 30, payload_bytes: 16 }
}

async fn host_id(node: &Node) -> String {
    node.cql().await.local_node().await.unwrap().host_id.to_string()
}

async fn node_dir(root: &Path) -> PathBuf {
    root.join("solo").join(host_id(&solo().nodes[0]).await)
}

async fn dump_all(session: &Session, ks: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for t in dataset::TABLES {
        out.push(dataset::dump(session, ks, t).await);
    }
    out
}

/// Every file below `dir` with its bytes (no link followed): what "nothing changed" compares.
fn snapshot_tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let t = e.file_type().unwrap();
            if t.is_dir() {
                stack.push(e.path());
            } else if t.is_file() {
                out.push((e.path(), std::fs::read(e.path()).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// A canary file outside any repository, with its content.
fn canary(dir: &Path) -> (PathBuf, Vec<u8>) {
    let p = dir.join("canary");
    let body = b"canary: must never be read, written, truncated or removed by cassette\n".to_vec();
    std::fs::write(&p, &body).unwrap();
    (p, body)
}

/// `cassette ARGS` with a deadline: a hang (say, opening a FIFO) is killed and reported.
fn cassette_within(node: &Node, env: &[(&str, &str)], args: &[&str], limit: Duration) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cassette"))
        .args(args)
        .env("CASSETTE_CQL_HOST", &node.ip)
        .env("CASSETTE_JMX_PORT", node.jmx_port.to_string())
        .env("CASSETTE_NODETOOL", cassette_testkit::nodetool_launcher())
        .env_remove("CASSETTE_FAULT_KILL_AT")
        .env_remove("CASSANDRA_BACKUP_DIRECTORY")
        .env_remove("CASSANDRA_HOME")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run cassette");
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("cassette {args:?} hung for more than {limit:?}:\n{}", stderr(&out));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn run(node: &Node, args: &[&str]) -> Output {
    cassette_within(node, &[], args, Duration::from_secs(120))
}

fn refused(out: &Output, what: &str) {
    assert!(!out.status.success(), "{what}: expected a refusal, got success:\n{}\n{}", stdout(out), stderr(out));
    assert!(
        stderr(out).contains("symbolic link") || stdout(out).contains("symbolic link"),
        "{what}: the error must name the link:\n{}\n{}",
        stdout(out),
        stderr(out)
    );
}

/// 21.1: `<backup-dir>/.restore-staging/<host-id>` is a link to a live keyspace directory. A
/// restore of one table must not remove anything through it: every live file stays, every row.
#[tokio::test(flavor = "multi_thread")]
async fn a_staging_directory_linked_into_a_live_keyspace_is_refused_and_nothing_live_is_removed() {
    let cluster: &Cluster = solo();
    let node = &cluster.nodes[0];
    let session = cluster.session().await;
    let ks = unique_name("hr_stage");
    let victim = unique_name("hr_victim");
    dataset::load(&session, cluster, &ks, 1, &tiny()).await;
    dataset::load(&session, cluster, &victim, 1, &tiny()).await;
    let root = other_disk_dir();
    let _turn = serial();
    backup_ok(node, root.path(), "b1", &["-k", &ks]);
    let live_ks_dir = node.data_dirs[0].join(&victim);
    let live_before = snapshot_tree(&live_ks_dir);
    assert!(!live_before.is_empty());
    let rows_before = dump_all(&session, &victim).await;
    let staging = root.path().join(".restore-staging");
    std::fs::create_dir_all(&staging).unwrap();
    symlink(&live_ks_dir, staging.join(host_id(node).await)).unwrap();

    let out = run(
        node,
        &["restore", "--name", "b1", "-t", &format!("{ks}.sessions"), "--backup-dir", root.path().to_str().unwrap()],
    );
    refused(&out, "restore through a linked staging directory");
    assert_eq!(snapshot_tree(&live_ks_dir), live_before, "no live file of {victim} may be removed or changed");
    assert_eq!(dump_all(&session, &victim).await, rows_before);
}

/// 21.3: a backup name that is a link to a directory outside; a resume through a linked table
/// directory; the repository's `.lock`, an interrupted backup's `journal.jsonl` and
/// `manifest.json.partial`, and `.index.json.partial`, each a link to a canary. Refused, and
/// nothing outside written or removed.
#[tokio::test(flavor = "multi_thread")]
async fn backups_never_write_or_remove_through_links_in_the_repository() {
    let cluster: &Cluster = solo();
    let node = &cluster.nodes[0];
    let session = cluster.session().await;
    let ks = unique_name("hr_links");
    dataset::load(&session, cluster, &ks, 1, &tiny()).await;
    let root = other_disk_dir();
    let r = root.path().to_str().unwrap();
    let outside = other_disk_dir();
    let (canary_path, canary_body) = canary(outside.path());
    let foreign = outside.path().join("foreign");
    std::fs::create_dir_all(&foreign).unwrap();
    std::fs::write(foreign.join("keep-me"), b"not cassette's").unwrap();
    let outside_before = snapshot_tree(outside.path());
    let _turn = serial();
    backup_ok(node, root.path(), "first", &["-k", &ks]);
    let node_dir = node_dir(root.path()).await;

    // A backup name linked to a directory outside.
    symlink(&foreign, node_dir.join("linked-name")).unwrap();
    refused(&run(node, &["backup", "--name", "linked-name", "-k", &ks, "--backup-dir", r]), "backup name link");

    // A resume through a linked table directory.
    std::fs::create_dir_all(node_dir.join("resumed").join(&ks)).unwrap();
    symlink(&foreign, node_dir.join("resumed").join(&ks).join("sessions")).unwrap();
    refused(&run(node, &["backup", "--name", "resumed", "-k", &ks, "--backup-dir", r]), "resume through a link");

    // An interrupted backup whose journal and partial manifest are links to the canary.
    for (name, rel) in [("journaled", "cassette-meta/journal.jsonl"), ("partial", "manifest.json.partial")] {
        let p = node_dir.join(name).join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        symlink(&canary_path, &p).unwrap();
        refused(&run(node, &["backup", "--name", name, "-k", &ks, "--backup-dir", r]), rel);
    }

    // The node's index, written through `.index.json.partial`: the backup completes (the index
    // is a cache), the link is not written through.
    symlink(&canary_path, node_dir.join(".index.json.partial")).unwrap();
    backup_ok(node, root.path(), "indexed", &["-k", &ks]);
    let _ = std::fs::remove_file(node_dir.join(".index.json.partial")); // the failed write removed the link itself

    // The repository's lock.
    std::fs::remove_file(node_dir.join(".lock")).unwrap();
    symlink(&canary_path, node_dir.join(".lock")).unwrap();
    refused(&run(node, &["backup", "--name", "locked", "-k", &ks, "--backup-dir", r]), "lock link");

    assert_eq!(std::fs::read(&canary_path).unwrap(), canary_body, "the canary must be untouched");
    assert_eq!(snapshot_tree(outside.path()), outside_before, "nothing outside the repository may change");
}

/// 21.3: the restore journal (`cassette-meta/restore-<host>.jsonl`) a link to a canary: the
/// restore stops before any TRUNCATE, the canary and the rows unchanged.
#[tokio::test(flavor = "multi_thread")]
async fn a_restore_journal_linked_outside_is_refused_before_anything_live_changes() {
    let cluster: &Cluster = solo();
    let node = &cluster.nodes[0];
    let session = cluster.session().await;
    let ks = unique_name("hr_rjournal");
    dataset::load(&session, cluster, &ks, 1, &tiny()).await;
    let root = other_disk_dir();
    let outside = other_disk_dir();
    let (canary_path, canary_body) = canary(outside.path());
    let _turn = serial();
    backup_ok(node, root.path(), "b1", &["-k", &ks]);
    dataset::write_round(&session, &ks, 7, &tiny()).await;
    let rows_before = dump_all(&session, &ks).await;
    let host = host_id(node).await;
    let journal = node_dir(root.path()).await.join("b1/cassette-meta").join(format!("restore-{host}.jsonl"));
    symlink(&canary_path, &journal).unwrap();
    let out = run(node, &["restore", "--name", "b1", "-k", &ks, "--backup-dir", root.path().to_str().unwrap()]);
    refused(&out, "restore journal link");
    assert_eq!(std::fs::read(&canary_path).unwrap(), canary_body);
    assert_eq!(dump_all(&session, &ks).await, rows_before, "no TRUNCATE may have run");
}

/// The manifest of backup `name` in the repository, as JSON.
async fn manifest_of(root: &Path, name: &str) -> (PathBuf, serde_json::Value) {
    let p = node_dir(root).await.join(name).join("manifest.json");
    let v = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    (p, v)
}

/// 21.4: manifest entries whose paths leave the backup, with the right size and hash, are refused
/// on parse by verify and restore; a stored Data.db that is a link to the live SSTable is
/// refused by verify, and restore refuses it before any TRUNCATE.
#[tokio::test(flavor = "multi_thread")]
async fn verify_and_restore_read_nothing_outside_the_backup() {
    let cluster: &Cluster = solo();
    let node = &cluster.nodes[0];
    let session = cluster.session().await;
    let ks = unique_name("hr_outside");
    dataset::load(&session, cluster, &ks, 1, &tiny()).await;
    let root = other_disk_dir();
    let r = root.path().to_str().unwrap();
    let outside = other_disk_dir();
    let (canary_path, _) = canary(outside.path());
    let canary_hash = cassette_repo::hash_file(&canary_path).unwrap();
    let _turn = serial();
    backup_ok(node, root.path(), "b1", &["-k", &ks]);
    let (manifest_path, original) = manifest_of(root.path(), "b1").await;
    let backup_dir = manifest_path.parent().unwrap().to_path_buf();
    let depth = backup_dir.components().count();
    let up = "../".repeat(depth);
    let canary_rel = canary_path.to_str().unwrap().trim_start_matches('/');
    for path in [
        format!("{up}{canary_rel}"),
        canary_path.to_str().unwrap().to_string(),
        format!("{ks}/sessions/{up}{canary_rel}"),
    ] {
        let mut m = original.clone();
        let ks_entry = m["keyspaces"].as_array_mut().unwrap().iter_mut().find(|k| k["name"] == ks.as_str()).unwrap();
        let table = ks_entry["tables"].as_array_mut().unwrap().iter_mut().find(|t| t["name"] == "sessions").unwrap();
        table["files"].as_array_mut().unwrap().push(serde_json::json!({
            "path": path, "size": canary_hash.size, "blake3": canary_hash.blake3, "mtime_ns": 0
        }));
        std::fs::write(&manifest_path, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
        let out = run(node, &["verify", "--name", "b1", "--backup-dir", r]);
        assert_eq!(out.status.code(), Some(1), "verify must refuse {path}:\n{}\n{}", stdout(&out), stderr(&out));
        assert!(stdout(&out).contains("stay inside it"), "{path}:\n{}", stdout(&out));
        let out = run(node, &["restore", "--name", "b1", "-k", &ks, "--dry-run", "--backup-dir", r]);
        assert!(!out.status.success(), "restore --dry-run must refuse {path}:\n{}", stdout(&out));
        assert!(stderr(&out).contains("stay inside it"), "{path}:\n{}", stderr(&out));
    }
    std::fs::write(&manifest_path, serde_json::to_vec_pretty(&original).unwrap()).unwrap();

    // A stored Data.db replaced by a link to the live SSTable it was copied from (same bytes).
    let table = original["keyspaces"].as_array().unwrap().iter().find(|k| k["name"] == ks.as_str()).unwrap()["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "sessions")
        .unwrap()
        .clone();
    let live = live_table_files(node, &ks, "sessions", table["id"].as_str().unwrap());
    let (rel, live_path) = live.iter().find(|(rel, _)| rel.ends_with("Data.db")).unwrap().clone();
    let stored = backup_dir.join(&ks).join("sessions").join(&rel);
    assert!(stored.is_file(), "{}", stored.display());
    std::fs::remove_file(&stored).unwrap();
    symlink(&live_path, &stored).unwrap();
    let out = run(node, &["verify", "--name", "b1", "--backup-dir", r]);
    assert_eq!(out.status.code(), Some(1), "{}\n{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("symbolic link"), "{}", stdout(&out));
    dataset::write_round(&session, &ks, 5, &tiny()).await;
    let rows_before = dump_all(&session, &ks).await;
    let live_before = snapshot_tree(&node.data_dirs[0].join(&ks));
    let out = run(node, &["restore", "--name", "b1", "-k", &ks, "--backup-dir", r]);
    assert_eq!(out.status.code(), Some(1), "{}\n{}", stdout(&out), stderr(&out));
    assert!(stderr(&out).contains("symbolic link"), "{}", stderr(&out));
    assert_eq!(dump_all(&session, &ks).await, rows_before, "no TRUNCATE may have run");
    assert_eq!(snapshot_tree(&node.data_dirs[0].join(&ks)), live_before);
}

/// 21.7: a FIFO named manifest.json: list and verify report it and go on.
#[tokio::test(flavor = "multi_thread")]
async fn a_fifo_as_manifest_is_reported_not_waited_on() {
    let cluster: &Cluster = solo();
    let node = &cluster.nodes[0];
    let session = cluster.session().await;
    let ks = unique_name("hr_fifo");
    dataset::load(&session, cluster, &ks, 1, &tiny()).await;
    let root = other_disk_dir();
    let r = root.path().to_str().unwrap();
    let _turn = serial();
    backup_ok(node, root.path(), "good", &["-k", &ks]);
    backup_ok(node, root.path(), "piped", &["-k", &ks]);
    let manifest = node_dir(root.path()).await.join("piped/manifest.json");
    std::fs::remove_file(&manifest).unwrap();
    let status = Command::new("mkfifo").arg(&manifest).status().unwrap();
    assert!(status.success());
    let limit = Duration::from_secs(60);
    let out = cassette_within(node, &[], &["--json", "list", "--backup-dir", r], limit);
    assert!(out.status.success(), "{}", stderr(&out));
    let list: Vec<serde_json::Value> = serde_json::from_str(&stdout(&out)).unwrap();
    let piped = list.iter().find(|b| b["name"] == "piped").unwrap();
    assert_eq!(piped["damaged"], true, "{piped}");
    assert!(piped["error"].as_str().unwrap().contains("FIFO"), "{piped}");
    assert!(list.iter().any(|b| b["name"] == "good" && b["complete"] == true));
    let out = cassette_within(node, &[], &["verify", "--backup-dir", r], limit);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("OK       ") && stdout(&out).contains("DAMAGED"), "{}", stdout(&out));
    // A stored file replaced by a FIFO of the size the manifest says (0): reported, not read.
    backup_ok(node, root.path(), "stored-fifo", &["-k", &ks]);
    let dir = node_dir(root.path()).await.join("stored-fifo");
    let (_, m) = manifest_of(root.path(), "stored-fifo").await;
    let victim = m["keyspaces"][0]["tables"][0]["files"][0]["path"].as_str().unwrap().to_string();
    let mut m2 = m.clone();
    m2["keyspaces"][0]["tables"][0]["files"][0]["size"] = 0.into();
    m2["keyspaces"][0]["tables"][0]["files"][0]["blake3"] = blake3::hash(b"").to_hex().to_string().into();
    std::fs::write(dir.join("manifest.json"), serde_json::to_vec(&m2).unwrap()).unwrap();
    std::fs::remove_file(dir.join(&victim)).unwrap();
    assert!(Command::new("mkfifo").arg(dir.join(&victim)).status().unwrap().success());
    let out = cassette_within(node, &[], &["verify", "--name", "stored-fifo", "--backup-dir", r], limit);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("FIFO"), "{}", stdout(&out));
}

/// 21.2: the node-wide job lock lives in cassette's state directory. A link planted where the
/// lock used to be (`/tmp/cassette-node-<host ID>/.lock`) or in the state directory never gets
/// its target truncated; a state directory owned by another user, or writable by others, is
/// refused.
#[tokio::test(flavor = "multi_thread")]
async fn the_node_lock_is_in_a_private_state_directory_and_never_written_through_a_link() {
    let cluster: &Cluster = solo();
    let node = &cluster.nodes[0];
    let session = cluster.session().await;
    let ks = unique_name("hr_lock");
    dataset::load(&session, cluster, &ks, 1, &tiny()).await;
    let root = other_disk_dir();
    let r = root.path().to_str().unwrap();
    let outside = other_disk_dir();
    let (canary_path, canary_body) = canary(outside.path());
    let state_parent = tempfile::tempdir().unwrap();
    let state = state_parent.path().join("state");
    let env = [("CASSETTE_STATE_DIR", state.to_str().unwrap())];
    let host = host_id(node).await;
    let _turn = serial();

    // The old place, as a local user could prepare it.
    let old = std::env::temp_dir().join(format!("cassette-node-{host}"));
    let _ = std::fs::remove_dir_all(&old);
    std::fs::create_dir_all(&old).unwrap();
    symlink(&canary_path, old.join(".lock")).unwrap();
    let out = cassette_within(
        node,
        &env,
        &["backup", "--name", "b1", "-k", &ks, "--backup-dir", r],
        Duration::from_secs(120),
    );
    let _ = std::fs::remove_dir_all(&old);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read(&canary_path).unwrap(), canary_body, "the old lock place must not be used");
    let meta = std::fs::metadata(&state).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o700, "the state directory is private");
    assert!(state.join("locks").join(format!("node-{host}.lock")).is_file());

    // A link in the state directory: refused, not followed.
    let lock = state.join("locks").join(format!("node-{host}.lock"));
    std::fs::remove_file(&lock).unwrap();
    symlink(&canary_path, &lock).unwrap();
    let out = cassette_within(
        node,
        &env,
        &["backup", "--name", "b2", "-k", &ks, "--backup-dir", r],
        Duration::from_secs(120),
    );
    refused(&out, "lock link in the state directory");
    assert_eq!(std::fs::read(&canary_path).unwrap(), canary_body);
    std::fs::remove_file(&lock).unwrap();

    // Writable by others: refused, naming it.
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = cassette_within(
        node,
        &env,
        &["backup", "--name", "b3", "-k", &ks, "--backup-dir", r],
        Duration::from_secs(120),
    );
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("writable by group or others") && stderr(&out).contains(state.to_str().unwrap()),
        "{}",
        stderr(&out)
    );
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();

    // Owned by another user (nobody): refused.
    let status = Command::new("chown").arg("nobody").arg(&state).status().unwrap();
    assert!(status.success());
    let out = cassette_within(
        node,
        &env,
        &["backup", "--name", "b4", "-k", &ks, "--backup-dir", r],
        Duration::from_secs(120),
    );
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("owned by uid 65534"), "{}", stderr(&out));
}

/// 20.3: each damage of a manifest (truncated, not JSON, an unknown version, another backup's):
/// list shows DAMAGED (and `"damaged": true`), verify reports it, purge keeps it.
#[tokio::test(flavor = "multi_thread")]
async fn list_verify_and_purge_agree_on_a_damaged_manifest() {
    let cluster: &Cluster = solo();
    let node = &cluster.nodes[0];
    let session = cluster.session().await;
    let ks = unique_name("hr_damaged");
    dataset::load(&session, cluster, &ks, 1, &tiny()).await;
    let root = other_disk_dir();
    let r = root.path().to_str().unwrap();
    let _turn = serial();
    let names = ["b1", "truncated", "not-json", "version", "swapped", "b6"];
    for n in names {
        backup_ok(node, root.path(), n, &["-k", &ks]);
    }
    // Listed once, so that the node index describes every backup.
    assert!(list_json(node, root.path()).iter().all(|b| b["complete"] == true));
    let node_dir = node_dir(root.path()).await;
    let m = |n: &str| node_dir.join(n).join("manifest.json");
    let full = std::fs::read(m("truncated")).unwrap();
    std::fs::write(m("truncated"), &full[..full.len() / 2]).unwrap();
    std::fs::write(m("not-json"), b"this is not a manifest at all").unwrap();
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(m("version")).unwrap()).unwrap();
    v["format_version"] = 99.into();
    std::fs::write(m("version"), serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    std::fs::copy(m("b1"), m("swapped")).unwrap();
    let damaged = ["truncated", "not-json", "version", "swapped"];

    let list = list_json(node, root.path());
    for b in &list {
        let name = b["name"].as_str().unwrap();
        let is_damaged = damaged.contains(&name);
        assert_eq!(b["complete"], !is_damaged, "{b}");
        assert_eq!(b["damaged"], is_damaged, "{b}");
    }
    let human = stdout(&run(node, &["list", "--backup-dir", r]));
    for n in damaged {
        assert!(human.lines().any(|l| l.contains(n) && l.contains("DAMAGED")), "{n}:\n{human}");
    }
    let swapped = list.iter().find(|b| b["name"] == "swapped").unwrap();
    assert!(swapped["error"].as_str().unwrap().contains("names the backup \"b1\""), "{swapped}");

    for n in damaged {
        let out = run(node, &["verify", "--name", n, "--backup-dir", r]);
        assert_eq!(out.status.code(), Some(1), "{n}: {}", stdout(&out));
        assert!(stdout(&out).contains("DAMAGED"), "{n}: {}", stdout(&out));
    }

    let out = run(node, &["--json", "purge", "--keep-last", "1", "--backup-dir", r]);
    assert_eq!(out.status.code(), Some(0), "{}\n{}", stdout(&out), stderr(&out));
    let left: Vec<String> =
        list_json(node, root.path()).iter().map(|b| b["name"].as_str().unwrap().to_string()).collect();
    for n in damaged {
        assert!(left.contains(&n.to_string()), "purge must keep the damaged {n}: {left:?}\n{}", stdout(&out));
    }
    assert!(left.contains(&"b6".to_string()) && !left.contains(&"b1".to_string()), "{left:?}");
}

/// A tiny deterministic generator (xorshift): the mutations are the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The value at a JSON pointer, if the manifest still has that shape (earlier mutations may have
/// changed it).
fn at<'a>(m: &'a mut serde_json::Value, pointer: &str) -> Option<&'a mut serde_json::Value> {
    m.pointer_mut(pointer)
}

/// Sets `field` of the object at `pointer`, if there is one.
fn set(m: &mut serde_json::Value, pointer: &str, field: &str, v: serde_json::Value) {
    if let Some(o) = at(m, pointer).and_then(|o| o.as_object_mut()) {
        o.insert(field.into(), v);
    }
}

/// One random change of a manifest: a path, size, type, nesting or hash, often aimed at
/// `canary` (absolute, `..`, through a link the test planted in the backup).
fn mutate(m: &mut serde_json::Value, rng: &mut Rng, canary: &str, up: &str, ks: &str) {
    use serde_json::json;
    let canary_rel = canary.trim_start_matches('/');
    let paths = [
        canary.to_string(),
        format!("{up}{canary_rel}"),
        format!("{ks}/sessions/{up}{canary_rel}"),
        format!("{ks}/sessions/link-to-canary"),
        format!("{ks}/sessions/fifo"),
        format!("{ks}/sessions"),
        "".into(),
        "a//b".into(),
        format!("{ks}/sessions/nul\u{0}byte"),
        format!("{ks}/sessions/{}", "x".repeat(300)),
        format!("{ks}/sessions/{}", "d/".repeat(200)),
        format!("{ks}/sessions/./x"),
        "cassette-meta/schema.cql".into(),
        "manifest.json".into(),
        format!("{ks}/sessions/\u{e9}\u{202e}.db"),
    ];
    let path = paths[rng.below(paths.len())].clone();
    // A file entry of the first table (the one restore --dry-run is asked about).
    let n = at(m, "/keyspaces/0/tables/0/files").and_then(|f| f.as_array()).map_or(0, |f| f.len());
    let f = format!("/keyspaces/0/tables/0/files/{}", rng.below(n.max(1)));
    match rng.below(16) {
        0..=3 => set(m, &f, "path", path.into()),
        4 => {
            let sizes = [0u64, 1, u64::MAX, u64::MAX / 2, 1 << 40];
            set(m, &f, "size", sizes[rng.below(sizes.len())].into())
        }
        5 => {
            let hashes = [String::new(), "zz".into(), "\u{e9}".repeat(40), "0".repeat(64), "A".repeat(65)];
            set(m, &f, "blake3", hashes[rng.below(hashes.len())].clone().into())
        }
        6 => set(m, &f, "object", path.into()),
        7 => {
            let values = [json!(null), json!(7), json!("x"), json!({}), json!([[]])];
            let keys = ["keyspaces", "config_dirs", "totals", "node", "backup_name", "format_version", "started_at"];
            set(m, "", keys[rng.below(keys.len())], values[rng.below(values.len())].clone())
        }
        8 => set(m, "/keyspaces/0/tables/0", "name", ["..", "/etc", "", "a/b", ".", "ok_name"][rng.below(6)].into()),
        9 => set(m, "/keyspaces/0", "name", ["..", "/etc", "", "a/b", "system"][rng.below(5)].into()),
        10 => {
            let stored = ["/etc", "../..", "", "cassette-meta/conf/0-x/../../.."][rng.below(4)];
            let dir = json!({"source": "/etc", "stored_as": stored,
                "files": [{"path": format!("{stored}/{path}"), "size": 1, "blake3": "0".repeat(64), "mtime_ns": 0}]});
            set(m, "", "config_dirs", json!([dir]))
        }
        11 => {
            // Nesting: a path that is an array of arrays, a table inside a file list.
            let deep = (0..rng.below(200) + 1).fold(json!(1), |v, _| json!([v]));
            set(m, &f, "path", deep)
        }
        12 => {
            if let Some(entry) = at(m, &f).cloned()
                && let Some(files) = at(m, "/keyspaces/0/tables/0/files").and_then(|v| v.as_array_mut())
            {
                for _ in 0..rng.below(50) {
                    files.push(entry.clone());
                }
                let table = json!({"name": "sessions", "id": "0".repeat(32), "files": []});
                files.push(table);
            }
        }
        13 => {
            let v = [json!(0), json!(2), json!(-1), json!("1"), json!(1.5)];
            set(m, "", "format_version", v[rng.below(v.len())].clone())
        }
        14 => set(
            m,
            "/keyspaces/0/tables/0",
            "id",
            ["", "../x", "zz", "ffffffffffffffffffffffffffffffff"][rng.below(4)].into(),
        ),
        _ => {
            set(m, &f, "digest_crc32", (rng.next() as u32).into());
            set(m, &f, "mtime_ns", json!(rng.next() as i64));
        }
    }
}

/// Fuzz-style (21, Must show): 300 seeded random mutations of a real backup's manifest, each run
/// against `verify` and (one in three) `restore --dry-run`. No panic, a clear error or a correct
/// result, and no read outside the repository: a canary outside it (with a link and its hash
/// planted inside the backup) keeps its bytes and its access time, set to the past first
/// (relatime updates an access time older than a day at the first read).
#[tokio::test(flavor = "multi_thread")]
async fn three_hundred_manifest_mutations_never_panic_or_read_outside_the_repository() {
    let cluster: &Cluster = solo();
    let node = &cluster.nodes[0];
    let session = cluster.session().await;
    let ks = unique_name("hr_fuzz");
    dataset::load(&session, cluster, &ks, 1, &tiny()).await;
    let root = other_disk_dir();
    let r = root.path().to_str().unwrap();
    let outside = other_disk_dir();
    let (canary_path, canary_body) = canary(outside.path());
    let canary_hash = cassette_repo::hash_file(&canary_path).unwrap();
    let _turn = serial();
    backup_ok(node, root.path(), "fz", &["-k", &ks]);
    let (manifest_path, original) = manifest_of(root.path(), "fz").await;
    let backup_dir = manifest_path.parent().unwrap().to_path_buf();
    let table_dir = backup_dir.join(&ks).join("sessions");
    symlink(&canary_path, table_dir.join("link-to-canary")).unwrap();
    assert!(Command::new("mkfifo").arg(table_dir.join("fifo")).status().unwrap().success());
    let up = "../".repeat(backup_dir.components().count());
    let rows_before = dump_all(&session, &ks).await;
    // The canary's access time, in the past: any read of it moves it to now.
    let past = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(946_684_800);
    std::fs::File::options()
        .write(true)
        .open(&canary_path)
        .unwrap()
        .set_times(std::fs::FileTimes::new().set_accessed(past).set_modified(past))
        .unwrap();
    let atime = |p: &Path| std::fs::metadata(p).unwrap().atime();
    let atime_before = atime(&canary_path);

    let started = Instant::now();
    let mut rng = Rng(0x5eed_cafe_f00d_d00d);
    let (mut ok, mut refused_count) = (0, 0);
    for i in 0..300 {
        let mut m = original.clone();
        for _ in 0..1 + rng.below(3) {
            mutate(&mut m, &mut rng, canary_path.to_str().unwrap(), &up, &ks);
        }
        // Now and then the mutated entry carries the canary's true size and hash: a reader
        // following its path would find a match.
        if rng.below(3) == 0 {
            set(&mut m, "/keyspaces/0/tables/0/files/0", "size", canary_hash.size.into());
            set(&mut m, "/keyspaces/0/tables/0/files/0", "blake3", canary_hash.blake3.clone().into());
        }
        std::fs::write(&manifest_path, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
        let mut runs = vec![vec!["--json", "verify", "--name", "fz", "--backup-dir", r]];
        if i % 3 == 0 {
            runs.push(vec!["--json", "restore", "--name", "fz", "-k", &ks, "--dry-run", "--backup-dir", r]);
        }
        for args in runs {
            let out = cassette_within(node, &[], &args, Duration::from_secs(60));
            let err = stderr(&out);
            assert!(!err.contains("panicked"), "mutation {i} made cassette {args:?} panic:\n{err}\n{m}");
            let code = out.status.code();
            assert!(matches!(code, Some(0..=4)), "mutation {i}: {args:?} ended with {:?}:\n{err}", out.status);
            if code == Some(0) {
                ok += 1;
            } else {
                refused_count += 1;
                let said = format!("{}{err}", stdout(&out));
                assert!(said.trim().len() > 20, "mutation {i}: {args:?} failed without saying why");
            }
            assert_eq!(
                atime(&canary_path),
                atime_before,
                "mutation {i}: {args:?} read the canary outside the repository\n{m}"
            );
        }
    }
    assert_eq!(std::fs::read(&canary_path).unwrap(), canary_body);
    assert_eq!(dump_all(&session, &ks).await, rows_before);
    assert!(refused_count > 100, "most mutations are refused ({ok} ok, {refused_count} refused)");
    eprintln!("fuzz: {ok} ok, {refused_count} refused in {:?}", started.elapsed());
}
