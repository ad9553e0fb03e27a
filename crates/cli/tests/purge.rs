//! `cassette purge` on real backups of a real node: retention leaves exactly what the policy
//! keeps, and what it keeps still verifies and restores; interrupted backups go once the grace
//! period is over; a dry run deletes nothing; a node whose lock a job holds is left alone.

// Tests hold the node's turn (`serial()`) across awaits on purpose: one job per node.
#![allow(clippy::await_holding_lock)]

mod common;

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};

use cassette_testkit::{Cluster, dataset, unique_name};
use common::*;
use scylla::client::session::Session;

/// A keyspace with one small round of rows: quick to snapshot, copy and restore.
fn tiny() -> dataset::Shape {
    dataset::Shape { rounds: 1, rows_per_round: 40, payload_bytes: 16 }
}

async fn dump_all(session: &Session, ks: &str) -> BTreeMap<&'static str, Vec<String>> {
    let mut out = BTreeMap::new();
    for t in dataset::TABLES {
        out.insert(*t, dataset::dump(session, ks, t).await);
    }
    out
}

async fn node_dir(root: &Path) -> PathBuf {
    let host = solo().nodes[0].cql().await.local_node().await.unwrap().host_id.to_string();
    root.join("solo").join(host)
}

fn names(list: &[serde_json::Value]) -> Vec<String> {
    list.iter().map(|b| b["name"].as_str().unwrap().to_string()).collect()
}

fn purge(node: &cassette_testkit::Node, root: &Path, extra: &[&str]) -> (Option<i32>, serde_json::Value) {
    let mut args = vec!["--json", "purge", "--backup-dir", root.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = cassette(node, &args);
    let report = serde_json::from_str(&stdout(&out))
        .unwrap_or_else(|e| panic!("purge --json: {e}\n{}\n{}", stdout(&out), stderr(&out)));
    (out.status.code(), report)
}

#[tokio::test(flavor = "multi_thread")]
async fn keep_last_7_of_30_leaves_the_newest_7_and_each_verifies_and_restores() {
    let cluster: &Cluster = solo();
    let node = &cluster.nodes[0];
    let session = cluster.session().await;
    let ks = unique_name("ks_purge");
    dataset::load(&session, cluster, &ks, 1, &tiny()).await;
    let root = other_disk_dir();
    let r = root.path().to_str().unwrap();
    let _turn = serial();
    let mut at_b24 = BTreeMap::new();
    for i in 1..=30u32 {
        // New rows (and SSTables) now and then, so that the backups differ.
        if i % 6 == 0 || i == 25 {
            dataset::write_round(&session, &ks, i, &tiny()).await;
            cluster.flush(&ks);
        }
        backup_ok(node, root.path(), &format!("b{i:02}"), &["-k", &ks]);
        if i == 24 {
            at_b24 = dump_all(&session, &ks).await;
        }
    }
    let all = list_json(node, root.path());
    assert_eq!(all.len(), 30);
    assert!(all.iter().all(|b| b["complete"] == true && b["age_seconds"].as_i64().is_some()));
    let files_before = files_under(root.path()).len();

    // A dry run says what would go and deletes nothing.
    let (code, plan) = purge(node, root.path(), &["--keep-last", "7", "--dry-run"]);
    assert_eq!(code, Some(0), "{plan}");
    assert_eq!(plan["deleted_backups"], 23, "{plan}");
    assert_eq!(files_under(root.path()).len(), files_before, "a dry run deletes nothing");
    assert_eq!(list_json(node, root.path()).len(), 30);

    let (code, report) = purge(node, root.path(), &["--keep-last", "7"]);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["deleted_backups"], 23);
    assert!(report["bytes_freed"].as_u64().unwrap() > 0, "the SSTables only old backups held are gone: {report}");
    let kept = names(&list_json(node, root.path()));
    assert_eq!(kept, (24..=30).map(|i| format!("b{i}")).collect::<Vec<_>>(), "exactly the newest 7 stay");
    // Every file a remaining backup lists is still there with its hash (hard links kept the
    // bytes the deleted backups shared with them).
    let out = cassette(node, &["verify", "--backup-dir", r]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(stdout(&out).matches("OK ").count(), 7, "{}", stdout(&out));
    // Nothing but the kept backups is left in the node directory.
    let node_dir = node_dir(root.path()).await;
    let mut entries: Vec<String> =
        std::fs::read_dir(&node_dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    entries.sort();
    assert_eq!(entries[..3], [".index.json", ".index.lock", ".lock"]);
    assert_eq!(entries[3..], kept[..]);

    // The oldest kept backup restores the data as it was then (rows were written since).
    let now = dump_all(&session, &ks).await;
    assert_ne!(now, at_b24, "rows were written after b24");
    let out = cassette(node, &["restore", "--name", "b24", "--backup-dir", r, "-k", &ks]);
    assert!(out.status.success(), "restore of b24 failed:\n{}{}", stdout(&out), stderr(&out));
    assert_eq!(dump_all(&session, &ks).await, at_b24);

    // Purging again with the same policy finds nothing to do.
    let (code, report) = purge(node, root.path(), &["--keep-last", "7"]);
    assert_eq!((code, report["deleted_backups"].as_u64()), (Some(0), Some(0)), "{report}");
}

#[tokio::test(flavor = "multi_thread")]
async fn interrupted_backups_go_after_the_grace_period_and_a_running_job_stops_purge() {
    let cluster = solo();
    let node = &cluster.nodes[0];
    let session = cluster.session().await;
    let ks = unique_name("ks_purge_grace");
    dataset::load(&session, cluster, &ks, 1, &tiny()).await;
    let root = other_disk_dir();
    let r = root.path().to_str().unwrap();
    let _turn = serial();
    backup_ok(node, root.path(), "done", &["-k", &ks]);
    // Two interrupted backups (killed after their third stored file), a few seconds apart.
    let interrupt = |name: &str| {
        let out = cassette_with_env(
            node,
            &[("CASSETTE_FAULT_KILL_AT", "file-stored:3")],
            &["backup", "--name", name, "--backup-dir", r, "-k", &ks],
        );
        assert_eq!(out.status.signal(), Some(6), "{name} was killed: {}", stderr(&out));
    };
    interrupt("old-interrupted");
    std::thread::sleep(std::time::Duration::from_secs(7));
    interrupt("new-interrupted");
    let listed = list_json(node, root.path());
    assert_eq!(listed.iter().filter(|b| b["complete"] == false).count(), 2, "{listed:?}");

    // Default grace (1h): both are kept.
    let (code, report) = purge(node, root.path(), &["--keep-last", "1"]);
    assert_eq!((code, report["deleted_backups"].as_u64()), (Some(0), Some(0)), "{report}");
    assert_eq!(list_json(node, root.path()).len(), 3);

    // A job holds the node's lock: the node is skipped (exit 3), nothing is deleted.
    let node_dir = node_dir(root.path()).await;
    let held = cassette_repo::NodeLock::acquire(&node_dir).unwrap();
    let (code, report) = purge(node, root.path(), &["--keep-last", "1", "--grace", "5s"]);
    assert_eq!(code, Some(3), "{report}");
    let skipped = report["nodes"][0]["skipped"].as_str().unwrap();
    assert!(skipped.starts_with("skipped, a job is running"), "{skipped}");
    assert_eq!(list_json(node, root.path()).len(), 3);
    drop(held);

    // Grace 5 s: the one untouched for longer goes, the other stays.
    let (code, report) = purge(node, root.path(), &["--keep-last", "1", "--grace", "5s"]);
    assert_eq!(code, Some(0), "{report}");
    let backups = report["nodes"][0]["backups"].as_array().unwrap();
    let reason = |n: &str| backups.iter().find(|b| b["name"] == n).unwrap()["reason"].as_str().unwrap().to_string();
    assert_eq!(reason("old-interrupted"), "abandoned");
    assert_eq!(reason("new-interrupted"), "in_grace");
    assert_eq!(reason("done"), "newest_complete");
    assert_eq!(names(&list_json(node, root.path())), ["done", "new-interrupted"]);

    // The kept one resumes (which also clears the snapshots the killed runs left).
    let report = backup_ok(node, root.path(), "new-interrupted", &["-k", &ks]);
    assert_eq!((report["resumed"].as_bool(), report["complete"].as_bool()), (Some(true), Some(true)));
    assert!(!node.nodetool(&["listsnapshots"]).contains("cassette-"));
    let out = cassette(node, &["verify", "--backup-dir", r]);
    assert!(out.status.success(), "{}", stdout(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn purge_needs_a_policy_and_says_so() {
    let node = &solo().nodes[0];
    let root = other_disk_dir();
    let out = cassette(node, &["purge", "--backup-dir", root.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--keep-last") && stderr(&out).contains("--keep-days"), "{}", stderr(&out));
    let out = cassette(node, &["purge", "--keep-last", "1", "--grace", "soon", "--backup-dir", "/nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("invalid duration"), "{}", stderr(&out));
    // A repository that is not there was named by the user: invalid input, as the README's table says.
    let out = cassette(node, &["purge", "--keep-last", "1", "--backup-dir", "/no/such/repository"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("no backup repository at /no/such/repository"), "{}", stderr(&out));
}
