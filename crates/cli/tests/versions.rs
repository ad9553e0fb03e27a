//! `cassette backup`, an online and (on 4.x) an offline `cassette restore` on every supported
//! Cassandra version (4.0, 4.1 and 5.0), on real nodes, checked as an operator would: the rows at
//! backup time come back, no snapshot is left, and the long-lived JMX client did the snapshot and
//! its clear (a fallback to nodetool is logged as a warning, which a user sees on every backup).
//! 5.0's offline restore has its own tests (`restore_offline.rs`).

mod common;

use std::process::{Command, Output};

use cassette_testkit::{Cluster, Node, dataset, unique_name};
use common::*;
use scylla::client::session::Session;

/// `cassette ARGS` against `node` with its own version's nodetool, the JMX client allowed, and
/// cassette's debug logs on stderr (they say which calls went through the JMX client).
fn cassette_logged(node: &Node, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cassette"))
        .args(args)
        .env("CASSETTE_CQL_HOST", &node.ip)
        .env("CASSETTE_JMX_PORT", node.jmx_port.to_string())
        .env("CASSETTE_NODETOOL", &node.nodetool)
        .env("CASSETTE_LOG", "warn,cassette_cassandra=debug")
        .env_remove("CASSETTE_JMX_CLIENT")
        .env_remove("CASSETTE_FAULT_KILL_AT")
        .env_remove("CASSANDRA_BACKUP_DIRECTORY")
        .env_remove("CASSANDRA_HOME")
        .output()
        .expect("run cassette")
}

/// Fails when the job's log shows that a snapshot or clear fell back to nodetool.
fn assert_no_nodetool_fallback(what: &str, version: &str, err: &str) {
    let fallbacks: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("running nodetool") || l.contains("go through nodetool") || l.contains("using nodetool"))
        .collect();
    assert!(fallbacks.is_empty(), "{what} on Cassandra {version} fell back to nodetool:\n{}", fallbacks.join("\n"));
}

/// Changes every table after a backup: new rows, a delete, an update, a TRUNCATE, flushed.
async fn scribble(session: &Session, cluster: &Cluster, ks: &str) {
    dataset::write_round(session, ks, 9, &dataset::Shape { rounds: 1, rows_per_round: 50, payload_bytes: 8 }).await;
    dataset::exec(session, &format!("DELETE FROM {ks}.readings WHERE sensor = 3")).await;
    dataset::exec(session, &format!("UPDATE {ks}.profiles SET name = 'changed' WHERE id = 5")).await;
    dataset::exec(session, &format!("TRUNCATE {ks}.sessions")).await;
    cluster.flush(ks);
}

/// Backup, changes, online restore (and with `offline`, changes again and an offline restore
/// that stops and starts the node): every table equals its state at backup time, and no
/// cassette snapshot is left on the node.
async fn round_trip(cluster: &Cluster, major: &str, offline: bool) {
    let node = &cluster.nodes[0];
    let version = node.cql().await.local_node().await.unwrap().release_version;
    assert!(version.starts_with(major), "cluster {} runs Cassandra {version}, not {major}.x", cluster.name);
    let out = cassette_logged(node, &["--json", "node"]);
    assert!(out.status.success(), "cassette node on Cassandra {version} failed:\n{}", stderr(&out));
    let view: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("node --json prints the node");
    assert_eq!(view["node"]["release_version"], version.as_str(), "{view}");
    assert_eq!(view["cassandra_supported"], true, "cassette supports Cassandra {version}: {view}");
    let out = cassette_logged(node, &["node"]);
    assert!(
        stdout(&out).contains(&format!("{version} (supported")),
        "cassette node says Cassandra {version} is supported:\n{}",
        stdout(&out)
    );
    let session = cluster.session().await;
    let ks = unique_name("ver");
    dataset::load(&session, cluster, &ks, 1, &dataset::Shape::small()).await;
    let before = dataset::dump_all(&session, &ks).await;
    let root = other_disk_dir();
    let root_s = root.path().to_str().unwrap();

    let out = cassette_logged(node, &["--json", "backup", "--name", "b1", "--backup-dir", root_s, "-k", &ks]);
    let err = stderr(&out);
    assert!(out.status.success(), "backup on Cassandra {version} failed ({:?}):\n{}\n{err}", out.status, stdout(&out));
    assert_no_nodetool_fallback("the backup", &version, &err);
    for request in ["snapshot", "clearsnapshot"] {
        assert!(
            err.lines().any(|l| l.contains("done through the JMX client") && l.contains(&format!("\"{request}\""))),
            "the backup's {request} on Cassandra {version} did not go through the JMX client:\n{err}"
        );
    }
    let snapshots = node.nodetool(&["listsnapshots"]);
    assert!(!snapshots.contains("cassette-"), "the backup's snapshot is left on Cassandra {version}:\n{snapshots}");

    scribble(&session, cluster, &ks).await;
    assert_ne!(dataset::dump_all(&session, &ks).await, before, "the data changed after the backup");

    let out = cassette_logged(node, &["--json", "restore", "--name", "b1", "--backup-dir", root_s, "-k", &ks]);
    let err = stderr(&out);
    assert!(out.status.success(), "restore on Cassandra {version} failed ({:?}):\n{}\n{err}", out.status, stdout(&out));
    assert_no_nodetool_fallback("the restore", &version, &err);
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("restore --json prints a report");
    assert_eq!(report["complete"], true, "{report}");
    assert_eq!(
        dataset::dump_all(&session, &ks).await,
        before,
        "on Cassandra {version} every table equals its backup-time state"
    );
    let snapshots = node.nodetool(&["listsnapshots"]);
    assert!(!snapshots.contains("cassette-"), "a cassette snapshot is left on Cassandra {version}:\n{snapshots}");
    if offline {
        offline_restore(cluster, &ks, root_s, &before, &version).await;
    }
    // The restores' TRUNCATEs left their own snapshots (auto_snapshot): not cassette's to keep.
    node.nodetool(&["clearsnapshot", "--all", &ks]);
}

/// Changes the data again, then `restore --offline` (the harness stops and starts the node):
/// every table equals `before`.
async fn offline_restore(cluster: &Cluster, ks: &str, root_s: &str, before: &[(String, Vec<String>)], version: &str) {
    let node = &cluster.nodes[0];
    let session = cluster.session().await;
    scribble(&session, cluster, ks).await;
    assert_ne!(dataset::dump_all(&session, ks).await, before, "the data changed after the online restore");
    drop(session);
    let (stop, start) = (cluster.stop_node_command(1), cluster.start_node_command(1));
    let out = cassette_logged(
        node,
        &[
            "--json",
            "restore",
            "--offline",
            "--name",
            "b1",
            "--backup-dir",
            root_s,
            "-k",
            ks,
            "--stop-command",
            &stop,
            "--start-command",
            &start,
        ],
    );
    let err = stderr(&out);
    assert!(
        out.status.success(),
        "offline restore on Cassandra {version} failed ({:?}):\n{}\n{err}\n{}",
        out.status,
        stdout(&out),
        node.log_tail(30)
    );
    assert_no_nodetool_fallback("the offline restore", version, &err);
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("restore --json prints a report");
    assert_eq!(report["complete"], true, "{report}");
    let session = cluster.session().await;
    assert_eq!(
        dataset::dump_all(&session, ks).await,
        before,
        "after the offline restore on Cassandra {version} every table equals its backup-time state"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn backup_and_restores_on_cassandra_4_1() {
    round_trip(Cluster::solo_v41(), "4.1.", true).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn backup_and_restores_on_cassandra_4_0() {
    round_trip(Cluster::solo_v40(), "4.0.", true).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn backup_and_restores_on_cassandra_5_0() {
    round_trip(Cluster::solo(), "5.0.", false).await;
}
