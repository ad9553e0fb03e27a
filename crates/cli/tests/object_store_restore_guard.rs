//! Purge on object storage keeps a backup that a restore read within the grace period, as it
//! does on a backup directory: the restore marks the backup in the store (any machine's purge
//! sees it), and the mark expires with the grace period. Real node, real S3 server (s3s-fs).
// The job turn (a std mutex) is held for the whole test, across awaits, on purpose.
#![allow(clippy::await_holding_lock)]

mod common;

use std::process::Output;

use cassette_testkit::s3::{S3Kind, S3Server};
use cassette_testkit::{Node, dataset, unique_name};
use common::*;

fn run(node: &Node, s3: &S3Server, state: &std::path::Path, args: &[&str]) -> serde_json::Value {
    let env = s3.env();
    let mut all: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    all.push(("CASSETTE_STATE_DIR", state.to_str().unwrap()));
    let out: Output = cassette_with_env(node, &all, args);
    assert!(out.status.success(), "{args:?} failed ({:?}):\n{}\n{}", out.status, stdout(&out), stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}):\n{}", stdout(&out)))
}

fn plan_of<'a>(purge: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    purge["nodes"][0]["backups"].as_array().unwrap().iter().find(|b| b["name"] == name).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn purge_keeps_a_backup_a_restore_read_within_the_grace_period() {
    let cluster = solo();
    let node = &cluster.nodes[0];
    let session = cluster.session().await;
    let ks = unique_name("s3_guard");
    let shape = dataset::Shape { rounds: 1, rows_per_round: 30, payload_bytes: 16 };
    dataset::load(&session, cluster, &ks, 1, &shape).await;
    let s3 = S3Server::start(S3Kind::S3sFs);
    let state = tempfile::tempdir().unwrap();
    let url = s3.url("guard");
    let _turn = serial();
    let mut first_rows = Vec::new();
    for i in 1..=3 {
        if i > 1 {
            dataset::write_round(&session, &ks, 10 + i, &shape).await;
            cluster.flush(&ks);
        }
        if i == 1 {
            first_rows = dataset::dump_all(&session, &ks).await;
        }
        let name = format!("g{i}");
        run(node, &s3, state.path(), &["--json", "backup", "--name", &name, "--backup-dir", &url, "-k", &ks]);
    }

    // The oldest backup is restored: its rows come back, and it is now in use.
    run(node, &s3, state.path(), &["--json", "restore", "--name", "g1", "--backup-dir", &url, "-k", &ks]);
    assert_eq!(dataset::dump_all(&session, &ks).await, first_rows, "g1 restores the rows of its time");

    // A purge from another machine (its own state directory) keeps g1, deletes g2.
    let elsewhere = tempfile::tempdir().unwrap();
    let purge = run(
        node,
        &s3,
        elsewhere.path(),
        &["--json", "purge", "--keep-last", "1", "--grace", "1h", "--backup-dir", &url],
    );
    assert_eq!(plan_of(&purge, "g1")["keep"], true, "{purge:#}");
    assert_eq!(plan_of(&purge, "g1")["reason"], "restore_active", "{purge:#}");
    assert_eq!(plan_of(&purge, "g2")["keep"], false, "{purge:#}");
    let names: Vec<String> = run(node, &s3, state.path(), &["--json", "list", "--backup-dir", &url])
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["g1", "g3"]);

    // Once the grace period has passed since the restore, g1 goes like any other.
    std::thread::sleep(std::time::Duration::from_secs(3));
    let purge = run(
        node,
        &s3,
        elsewhere.path(),
        &["--json", "purge", "--keep-last", "1", "--grace", "2s", "--backup-dir", &url],
    );
    assert_eq!(plan_of(&purge, "g1")["keep"], false, "{purge:#}");
    assert_eq!(purge["deleted_backups"], 1, "{purge:#}");
    // The kept backup still restores in full.
    run(node, &s3, state.path(), &["--json", "restore", "--name", "g3", "--backup-dir", &url, "-k", &ks]);
    node.nodetool(&["clearsnapshot", "--all", &ks]);
}
