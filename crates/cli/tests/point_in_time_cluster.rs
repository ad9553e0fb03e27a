//! A cluster restored to a point in time through the Cassandra-Mesos-compatible API, on three
//! real Cassandra 5.0 nodes of their own (cluster `pitr3`, 1 MiB commitlog segments) at
//! replication factor 3: each node archives its commitlog (`cassette commitlog install`), its
//! agent ships the segments, and `POST /cluster/restore/start?until=T` verifies every node,
//! then restores them one by one, offline, each replaying its own segments up to T. The rows
//! are read at CONSISTENCY ALL.
// The job turn (a std mutex) is held for the whole test, across awaits, on purpose.
#![allow(clippy::await_holding_lock)]

mod common;

use std::path::PathBuf;
use std::time::Duration;

use cassette_testkit::{Cluster, dataset, unique_name};
use chrono::{DateTime, SubsecRound, Utc};
use common::services::Services;
use common::*;
use serde_json::Value;

/// Each node's spool and archiving properties, set up once per cluster: `commitlog install`,
/// then a restart (one node at a time) so that Cassandra reads the file.
fn set_up(cluster: &'static Cluster) -> Vec<(PathBuf, PathBuf)> {
    let mut out = Vec::new();
    for (i, node) in cluster.nodes.iter().enumerate() {
        let spool = node.dir.join("cassette-spool");
        let properties = node.dir.join("conf/commitlog_archiving.properties");
        let installed = std::fs::read_to_string(&properties).unwrap_or_default().contains("commitlog archive --spool");
        if !installed {
            let out = cassette(
                node,
                &[
                    "commitlog",
                    "install",
                    "--spool",
                    spool.to_str().unwrap(),
                    "--commitlog-archiving-properties",
                    properties.to_str().unwrap(),
                ],
            );
            assert!(out.status.success(), "commitlog install on node {}: {}", i + 1, stderr(&out));
            for cmd in [cluster.stop_node_command(i as u32 + 1), cluster.start_node_command(i as u32 + 1)] {
                let run = std::process::Command::new("sh").arg("-c").arg(&cmd).output().unwrap();
                assert!(run.status.success(), "{cmd}: {}", String::from_utf8_lossy(&run.stderr));
            }
        }
        out.push((spool, properties));
    }
    out
}

fn time(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str().map(|s| DateTime::parse_from_rfc3339(s).unwrap().to_utc())
}

/// Every node's newest recoverable window, as `GET /v1/cluster` shows it (the dashboard's).
async fn windows(s: &Services) -> Vec<Option<(DateTime<Utc>, DateTime<Utc>)>> {
    let nodes = s.get("/v1/cluster").await;
    nodes
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            let w = n["commitlog"]["windows"].as_array().and_then(|w| w.last().cloned())?;
            Some((time(&w["from"])?, time(&w["until"])?))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn three_nodes_at_rf3_restore_to_a_point_in_time_through_the_api() {
    let _turn = serial();
    let cluster = Cluster::pitr3();
    let archiving = set_up(cluster);
    let root = other_disk_dir();
    let each: Vec<Vec<String>> = cluster
        .nodes
        .iter()
        .zip(&archiving)
        .enumerate()
        .map(|(i, (node, (spool, properties)))| {
            let n = i as u32 + 1;
            [
                "--commitlog-spool",
                spool.to_str().unwrap(),
                "--commitlog-ship-interval",
                "1",
                "--stop-command",
                &cluster.stop_node_command(n),
                "--start-command",
                &cluster.start_node_command(n),
                "--commitlog-archiving-properties",
                properties.to_str().unwrap(),
                "--cassandra-log",
                node.log.to_str().unwrap(),
            ]
            .map(String::from)
            .to_vec()
        })
        .collect();
    let s = Services::start_each(cluster, root.path(), Vec::new(), Vec::new(), Vec::new(), each);

    let session = cluster.session().await;
    let ks = unique_name("pitr3");
    dataset::exec_schema(
        &session,
        &format!("CREATE KEYSPACE {ks} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 3}}"),
    )
    .await;
    dataset::exec_schema(&session, &format!("CREATE TABLE {ks}.t (id int PRIMARY KEY, v text)")).await;
    dataset::exec_schema(&session, &format!("CREATE TABLE {ks}.filler (id int PRIMARY KEY, payload text)")).await;

    // A: in the cluster backup.
    for i in 0..30 {
        dataset::exec(&session, &format!("INSERT INTO {ks}.t (id, v) VALUES ({i}, 'a{i}')")).await;
    }
    let (code, body) = s.post(&format!("/cluster/backup/start?name=base&keyspaces={ks}")).await;
    assert_eq!(code, 200, "{body}");
    let backup = s.wait("backup", |_| {}).await;
    assert_eq!(backup["backup"]["state"], "succeeded", "{backup:#}\n{}", s.logs());

    // B: after the backup, before T: inserts, an update and a delete.
    for i in 30..50 {
        dataset::exec(&session, &format!("INSERT INTO {ks}.t (id, v) VALUES ({i}, 'b{i}')")).await;
    }
    dataset::exec(&session, &format!("UPDATE {ks}.t SET v = 'b-updated' WHERE id = 3")).await;
    dataset::exec(&session, &format!("DELETE FROM {ks}.t WHERE id = 4")).await;
    let at_t = dataset::dump(&session, &ks, "t").await;
    assert_eq!(at_t.len(), 49);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let t = Utc::now().trunc_subsecs(0);
    tokio::time::sleep(Duration::from_millis(1100)).await;

    // C: after T; then writes until every node's archive reaches past T.
    for i in 50..70 {
        dataset::exec(&session, &format!("INSERT INTO {ks}.t (id, v) VALUES ({i}, 'c{i}')")).await;
    }
    dataset::exec(&session, &format!("UPDATE {ks}.t SET v = 'c-updated' WHERE id = 40")).await;
    let blob = "x".repeat(100 * 1024);
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    let mut filled = 0;
    let reached = loop {
        let w = windows(&s).await;
        if w.iter().all(|w| w.is_some_and(|(from, until)| from < t && t < until)) {
            break w;
        }
        assert!(std::time::Instant::now() < deadline, "not every node's window reaches past {t}: {w:?}\n{}", s.logs());
        for _ in 0..10 {
            dataset::exec(&session, &format!("INSERT INTO {ks}.filler (id, payload) VALUES ({filled}, '{blob}')"))
                .await;
            filled += 1;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let newest_until = reached.iter().flatten().map(|(_, until)| *until).min().unwrap();
    drop(session);
    // The dashboard shows each node's window.
    dashboard_page(&s.url("/"), &[("MODE", "point-in-time"), ("BACKUP_NAME", "base")]);

    // A time past every window is refused by the verify phase: no node is stopped.
    let too_late = (newest_until + chrono::Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (code, body) = s.post(&format!("/cluster/restore/start?until={too_late}&keyspaces={ks}")).await;
    assert_eq!(code, 200, "{body}");
    let refused = s.wait("restore", |_| {}).await;
    let job = &refused["restore"];
    assert_eq!(job["state"], "failed", "{job:#}");
    let verify = job["phases"].as_array().unwrap().iter().find(|p| p["name"] == "verify").cloned().unwrap();
    assert_eq!(verify["status"], "FAILURE", "{job:#}");
    assert!(verify["message"].as_str().unwrap().contains("recoverable windows"), "{job:#}");
    assert!(!job["phases"].as_array().unwrap().iter().any(|p| p["name"] == "restore"), "{job:#}");
    for node in &cluster.nodes {
        assert!(cassette_cassandra::port_answers(&node.ip, 9042).await, "{} is still up", node.ip);
    }

    // The restore to T, node by node: A and B as they were at T, nothing of C, on every node.
    let until = t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (code, body) = s.post(&format!("/cluster/restore/start?until={until}&keyspaces={ks}")).await;
    assert_eq!(code, 200, "{body}");
    let done = s.wait("restore", |_| {}).await;
    let job = &done["restore"];
    assert_eq!(job["state"], "succeeded", "{job:#}\n{}", s.logs());
    let phases: Vec<&str> = job["phases"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(phases, ["verify", "restore"], "{job:#}");
    assert_eq!(job["completedNodes"].as_array().unwrap().len(), 3, "{job:#}");
    for n in job["completedNodes"].as_array().unwrap() {
        assert_eq!(n["processedKeyspaces"][&ks]["status"], "SUCCESS", "{job:#}");
    }
    let session = cluster.session().await;
    assert_eq!(dataset::dump(&session, &ks, "t").await, at_t, "the rows at T, read at CONSISTENCY ALL");

    // Each node's restore settings are gone (the next start does not replay again).
    for (_, properties) in &archiving {
        let props = std::fs::read_to_string(properties).unwrap();
        assert!(!props.contains("restore_point_in_time"), "{props}");
        assert!(props.contains("commitlog archive --spool"), "{props}");
    }
}
