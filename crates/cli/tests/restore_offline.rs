//! `cassette restore --offline` on a real Cassandra 5.0 node of its own (cluster `offline`,
//! which these tests stop and start): seed 001's procedure, with the replaced files kept in a
//! quarantine, a bad backup refused before the node is stopped, and a rerun that continues an
//! interrupted restore while the node is down.
// The job turn (a std mutex) is held for the whole test, across awaits, on purpose: the tests
// of this binary share one node that they stop and start.
#![allow(clippy::await_holding_lock)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use cassette_testkit::{Cluster, Node, dataset, unique_name};
use common::*;

fn offline() -> &'static Cluster {
    Cluster::offline()
}

/// `cassette --json restore --offline --name NAME --backup-dir ROOT --stop-command ... EXTRA...`;
/// `start` replaces the harness start command when given.
fn offline_restore(cluster: &Cluster, root: &Path, name: &str, start: Option<&str>, extra: &[&str]) -> Output {
    let stop = cluster.stop_node_command(1);
    let start = start.map(String::from).unwrap_or_else(|| cluster.start_node_command(1));
    let mut args = vec![
        "--json",
        "restore",
        "--offline",
        "--name",
        name,
        "--backup-dir",
        root.to_str().unwrap(),
        "--stop-command",
        &stop,
        "--start-command",
        &start,
    ];
    args.extend_from_slice(extra);
    cassette(&cluster.nodes[0], &args)
}

fn report_of(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "offline restore failed ({:?}):\n{}\n{}", out.status, stdout(out), stderr(out));
    serde_json::from_str(&stdout(out)).expect("restore --json prints a report")
}

/// Every live SSTable file of every table of `ks`: `<table>-<id>/<relative path>` → BLAKE3.
async fn live_files(node: &Node, ks: &str) -> BTreeMap<String, String> {
    let cql = node.cql().await;
    let mut out = BTreeMap::new();
    for t in cql.tables(ks).await.unwrap() {
        for (rel, path) in live_table_files(node, ks, &t.name, &t.id_hex()) {
            out.insert(format!("{}-{}/{rel}", t.name, t.id_hex()), digest(&path));
        }
    }
    out
}

fn digest(path: &Path) -> String {
    blake3::hash(&std::fs::read(path).unwrap()).to_hex().to_string()
}

/// Every file below `dir`: relative path → BLAKE3.
fn files_below(dir: &Path) -> BTreeMap<String, String> {
    files_under(dir)
        .into_iter()
        .map(|p| (p.strip_prefix(dir).unwrap().to_string_lossy().into_owned(), digest(&p)))
        .collect()
}

fn is_up_normal(node: &Node) -> bool {
    node.nodetool(&["status"])
        .lines()
        .any(|l| l.starts_with("UN") && l.split_whitespace().nth(1) == Some(node.ip.as_str()))
}

#[tokio::test(flavor = "multi_thread")]
async fn offline_restore_replaces_the_files_keeps_them_in_quarantine_and_resumes_with_the_node_down() {
    let _turn = serial();
    let cluster = offline();
    let node = &cluster.nodes[0];
    let session = cluster.session().await;
    let ks = unique_name("ro_trip");
    dataset::load(&session, cluster, &ks, 1, &dataset::Shape::small()).await;
    let before = dataset::dump_all(&session, &ks).await;
    let by_index = before
        .iter()
        .find(|(t, _)| t == "profiles")
        .unwrap()
        .1
        .iter()
        .filter(|r| r.contains("\"name\": \"user7\""))
        .count();
    let root = other_disk_dir();
    backup_ok(node, root.path(), "b1", &["-k", &ks]);

    // Change every table after the backup, flushed (compaction off, so the live files below
    // are exactly those the restore replaces), and some writes only in the memtable.
    node.nodetool(&["disableautocompaction", &ks]);
    dataset::write_round(&session, &ks, 9, &dataset::Shape { rounds: 1, rows_per_round: 50, payload_bytes: 8 }).await;
    dataset::exec(&session, &format!("DELETE FROM {ks}.readings WHERE sensor = 3")).await;
    dataset::exec(&session, &format!("UPDATE {ks}.profiles SET name = 'changed' WHERE id = 5")).await;
    dataset::exec(&session, &format!("TRUNCATE {ks}.sessions")).await;
    dataset::exec(&session, &format!("INSERT INTO {ks}.sessions (id, user_name) VALUES (99999, 'late')")).await;
    cluster.flush(&ks);
    let replaced = live_files(node, &ks).await;
    assert!(!replaced.is_empty());
    dataset::exec(&session, &format!("UPDATE {ks}.page_views SET views = views + 100 WHERE page = '/page/1'")).await;
    let changed = dataset::dump_all(&session, &ks).await;
    assert_ne!(changed, before, "the data changed after the backup");

    let quarantine_parent = node.dir.join("cassette-quarantine");
    let quarantines = || std::fs::read_dir(&quarantine_parent).map(|d| d.count()).unwrap_or(0);
    let quarantines_before = quarantines();

    // A dry run verifies and prints the plan, and touches nothing.
    let dry = report_of(&offline_restore(cluster, root.path(), "b1", None, &["-k", &ks, "--dry-run"]));
    assert_eq!(dry["dry_run"], true);
    let steps: Vec<&str> = dry["steps"].as_array().unwrap().iter().map(|s| s["step"].as_str().unwrap()).collect();
    assert_eq!(steps, ["verify", "drain", "stop", "quarantine", "quarantine", "start"], "{dry}");
    assert!(dry["tables"].as_array().unwrap().iter().all(|t| t["placed_files"].as_u64().unwrap() > 0), "{dry}");
    assert_eq!(quarantines(), quarantines_before, "a dry run creates no quarantine");
    assert!(is_up_normal(node));
    assert_eq!(dataset::dump_all(&session, &ks).await, changed);
    drop(session);

    // The start command fails: the files are replaced, the node stays down, the job fails.
    let out = offline_restore(cluster, root.path(), "b1", Some("echo cannot start >&2; exit 3"), &["-k", &ks]);
    assert_eq!(out.status.code(), Some(1), "{}\n{}", stdout(&out), stderr(&out));
    assert!(stderr(&out).contains("step start") && stderr(&out).contains("cannot start"), "{}", stderr(&out));
    assert!(!cassette_cassandra::port_answers(&node.ip, 9042).await, "the node is down");

    // Run again with the node down: it continues from the journal (no drain, nothing
    // quarantined again: that would quarantine the restored files) and starts the node.
    let report = report_of(&offline_restore(cluster, root.path(), "b1", None, &["-k", &ks]));
    assert_eq!((report["complete"].as_bool(), report["resumed"].as_bool()), (Some(true), Some(true)), "{report}");
    for t in report["tables"].as_array().unwrap() {
        assert!(
            t["skipped"].as_str().unwrap().contains("already quarantined")
                && t["skipped"].as_str().unwrap().contains("already placed"),
            "{t}"
        );
    }
    let step_details: Vec<String> =
        report["steps"].as_array().unwrap().iter().map(|s| format!("{}: {}", s["step"], s["detail"])).collect();
    assert!(step_details.iter().any(|s| s.contains("stopped by the interrupted run")), "{step_details:?}");
    assert!(is_up_normal(node));

    let session = cluster.session().await;
    assert_eq!(dataset::dump_all(&session, &ks).await, before, "every table equals its state at backup time");
    let rows = session.query_unpaged(format!("SELECT id FROM {ks}.profiles WHERE name = 'user7'"), ()).await.unwrap();
    assert_eq!(rows.into_rows_result().unwrap().rows_num(), by_index, "the secondary index answers as at backup time");

    // The quarantine holds the replaced SSTables, byte for byte, and the commitlog.
    let quarantine = PathBuf::from(report["quarantine"][0].as_str().unwrap());
    assert!(quarantine.starts_with(&quarantine_parent), "{}", quarantine.display());
    let held = files_below(&quarantine.join("data1").join(&ks));
    for (file, hash) in &replaced {
        assert_eq!(
            held.get(file),
            Some(hash),
            "{file}: the quarantine holds every replaced live SSTable, byte for byte"
        );
    }
    // Besides them: only the SSTable the drain flushed (the unflushed page_views update).
    let extra: Vec<&String> = held.keys().filter(|k| !replaced.contains_key(*k)).collect();
    assert!(!extra.is_empty() && extra.iter().all(|k| k.starts_with("page_views-")), "{extra:?}");
    assert!(held.keys().all(|k| !k.contains("/snapshots/")), "snapshots stay in place");
    let commitlog = files_below(&quarantine.join("commitlog"));
    assert!(!commitlog.is_empty() && commitlog.keys().all(|k| k.starts_with("CommitLog")), "{:?}", commitlog.keys());
    assert!(!node.dir.join("commitlog").join(commitlog.keys().next().unwrap()).exists());

    // `quarantine list` shows it; `quarantine purge` removes it.
    let list = cassette(node, &["--json", "quarantine", "list"]);
    assert!(list.status.success(), "{}", stderr(&list));
    let entries: serde_json::Value = serde_json::from_str(&stdout(&list)).unwrap();
    let entry = entries
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["path"] == quarantine.to_str().unwrap())
        .unwrap_or_else(|| panic!("{entries}"));
    assert_eq!(entry["info"]["backup"], "b1");
    assert!(entry["info"]["finished_at"].is_string(), "{entry}");
    let purge = cassette(node, &["--json", "quarantine", "purge"]);
    assert!(purge.status.success(), "{}", stderr(&purge));
    assert!(stdout(&purge).contains(quarantine.to_str().unwrap()), "{}", stdout(&purge));
    assert!(!quarantine.exists(), "purged");
    // The node is fine after all this: writes and flushes work.
    dataset::exec(&session, &format!("INSERT INTO {ks}.sessions (id, user_name) VALUES (123456, 'after')")).await;
    cluster.flush(&ks);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_corrupted_backup_is_refused_before_the_node_is_stopped() {
    let _turn = serial();
    let cluster = offline();
    let node = &cluster.nodes[0];
    let session = cluster.session().await;
    let ks = unique_name("ro_bad");
    dataset::load(&session, cluster, &ks, 1, &dataset::Shape::small()).await;
    let root = other_disk_dir();
    backup_ok(node, root.path(), "b1", &["-k", &ks]);
    dataset::write_round(&session, &ks, 9, &dataset::Shape { rounds: 1, rows_per_round: 20, payload_bytes: 8 }).await;
    let live_before = dataset::dump_all(&session, &ks).await;
    let quarantines_before = std::fs::read_dir(node.dir.join("cassette-quarantine")).map(|d| d.count()).unwrap_or(0);

    let host = node.cql().await.local_node().await.unwrap().host_id.to_string();
    let table_dir = root.path().join(&cluster.name).join(host).join("b1").join(&ks).join("readings");
    let data = std::fs::read_dir(&table_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with("-Data.db"))
        .unwrap();
    let mut bytes = std::fs::read(&data).unwrap();
    std::fs::remove_file(&data).unwrap(); // a stored file may be hard-linked: replace, never write through
    bytes[50] ^= 0xff;
    std::fs::write(&data, bytes).unwrap();

    let out = offline_restore(cluster, root.path(), "b1", None, &["-k", &ks]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{}\n{err}", stdout(&out));
    assert!(
        err.contains(&*data.file_name().unwrap().to_string_lossy()) && err.contains("failed verification"),
        "{err}"
    );
    assert!(is_up_normal(node), "the node was not stopped");
    assert!(cassette_cassandra::port_answers(&node.ip, 9042).await, "the node was not drained");
    assert_eq!(dataset::dump_all(&session, &ks).await, live_before, "rows unchanged");
    assert_eq!(
        std::fs::read_dir(node.dir.join("cassette-quarantine")).map(|d| d.count()).unwrap_or(0),
        quarantines_before,
        "nothing quarantined"
    );
}
