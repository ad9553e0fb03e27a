//! Crash safety: `cassette backup` killed at 16 points spread through its run (the engine's
//! `CASSETTE_FAULT_KILL_AT` hook aborts the process there, as `kill -9` would), each followed by
//! the same command again; then `delete` and `purge` killed between their renames and removals.
//! After every kill: no listing shows a backup as complete unless its manifest exists, the rerun
//! completes, no `cassette-` snapshot is left on the node, and every backup verifies.

// Tests hold the node's turn (`serial()`) across awaits on purpose: one job per node.
#![allow(clippy::await_holding_lock)]

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::Path;

use cassette_testkit::{dataset, unique_name};
use common::*;

/// Where the backup is killed (`<point>:<n>`: the nth time it passes there), in run order, and
/// whether its manifest is in place by then.
const KILL_POINTS: &[(&str, bool)] = &[
    ("prepared:1", false),           // locks taken, leftover snapshots cleared; nothing written
    ("journal-started:1", false),    // the backup directory and its journal exist
    ("schema-written:1", false),     // schema.cql stored
    ("snapshot-taken:1", false),     // every keyspace snapshotted, nothing copied
    ("file-partial:3", false),       // a copy written as *.partial, not renamed
    ("file-stored:10", false),       // a file in place but not journaled
    ("file-journaled:25", false),    // a file journaled
    ("keyspace-copied:1", false),    // first keyspace copied
    ("keyspace-copied:2", false),    // both keyspaces copied, the snapshot not cleared
    ("snapshot-cleared:1", false),   // snapshot cleared, no manifest yet
    ("config-file-stored:2", false), // in the configuration directory copy
    ("before-manifest:1", false),    // every file stored and journaled
    ("manifest-partial:1", false),   // manifest.json.partial fsynced, not renamed
    ("manifest-written:1", true),    // complete, the node index not yet updated
    ("index-written:1", true),       // complete and indexed
    ("file-journaled:1", false),     // killed early again, right after a backup that succeeded
];

/// Every listed backup is complete exactly when its manifest exists.
fn check_listing(node: &cassette_testkit::Node, root: &Path) -> Vec<serde_json::Value> {
    let listed = list_json(node, root);
    for b in &listed {
        let has_manifest = Path::new(b["path"].as_str().unwrap()).join("manifest.json").is_file();
        assert_eq!(b["complete"], has_manifest, "listed as complete without a manifest (or the reverse): {b}");
    }
    listed
}

fn cassette_snapshots(node: &cassette_testkit::Node) -> Vec<String> {
    node.nodetool(&["listsnapshots"]).lines().filter(|l| l.contains("cassette-")).map(str::to_string).collect()
}

fn verify_all(node: &cassette_testkit::Node, root: &Path) {
    let out = cassette(node, &["verify", "--backup-dir", root.to_str().unwrap()]);
    assert!(out.status.success(), "verify after a kill:\n{}{}", stdout(&out), stderr(&out));
}

fn killed(out: &std::process::Output, point: &str) {
    assert_eq!(
        out.status.signal(),
        Some(6),
        "expected an abort at {point}, got {:?}:\n{}{}",
        out.status,
        stdout(out),
        stderr(out)
    );
    assert!(stderr(out).contains("aborting here (test hook)"), "{}", stderr(out));
}

#[tokio::test(flavor = "multi_thread")]
async fn backup_killed_at_16_points_then_delete_and_purge_killed_all_recover() {
    let cluster = solo();
    let node = &cluster.nodes[0];
    let session = cluster.session().await;
    let shape = dataset::Shape { rounds: 2, rows_per_round: 60, payload_bytes: 32 };
    let (ks1, ks2) = (unique_name("ks_fault_a"), unique_name("ks_fault_b"));
    dataset::load(&session, cluster, &ks1, 1, &shape).await;
    dataset::load(&session, cluster, &ks2, 1, &shape).await;
    let root = other_disk_dir();
    let r = root.path().to_str().unwrap();
    let conf = node.dir.join("conf");
    let conf = conf.to_str().unwrap();
    let _turn = serial();
    let first = backup_ok(node, root.path(), "ref", &["-k", &ks1, "-k", &ks2, "--config-dir", conf]);
    assert!(first["totals"]["files"].as_u64().unwrap() > 50);

    for (i, (point, complete_after_kill)) in KILL_POINTS.iter().enumerate() {
        // New SSTables in the first keyspace, so that each run copies files (the rest is linked).
        dataset::write_round(&session, &ks1, 10 + i as u32, &shape).await;
        cluster.flush(&ks1);
        let name = format!("k{i:02}-{}", point.split(':').next().unwrap());
        let args =
            ["--json", "backup", "--name", &name, "--backup-dir", r, "-k", &ks1, "-k", &ks2, "--config-dir", conf];
        let out = cassette_with_env(node, &[("CASSETTE_FAULT_KILL_AT", point)], &args);
        killed(&out, point);

        let listed = check_listing(node, root.path());
        let this = listed.iter().find(|b| b["name"] == name.as_str());
        match (point.starts_with("prepared"), this) {
            (true, None) => {} // killed before its directory was made
            (false, Some(b)) => assert_eq!(b["complete"], *complete_after_kill, "{point}: {b}"),
            (_, b) => panic!("{point}: unexpected listing {b:?}"),
        }

        let out = cassette(node, &args);
        if *complete_after_kill {
            assert_eq!(out.status.code(), Some(3), "{point}: a complete backup is not redone: {}", stderr(&out));
            assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
        } else {
            assert!(out.status.success(), "{point}: the rerun failed:\n{}{}", stdout(&out), stderr(&out));
            let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
            assert_eq!(report["complete"], true, "{point}");
            assert_eq!(report["resumed"], !point.starts_with("prepared"), "{point}");
        }
        let listed = check_listing(node, root.path());
        assert!(listed.iter().any(|b| b["name"] == name.as_str() && b["complete"] == true), "{point}");
        assert_eq!(cassette_snapshots(node), Vec::<String>::new(), "{point}: a snapshot was left on the node");
        verify_all(node, root.path());
    }
    let listed = check_listing(node, root.path());
    assert_eq!(listed.len(), 1 + KILL_POINTS.len());

    // delete killed between its rename and the removal: the backup is gone from every listing
    // at once (although the node index still names it), and the next purge removes the rest.
    let host = node.cql().await.local_node().await.unwrap().host_id.to_string();
    let node_dir = root.path().join("solo").join(&host);
    let out = cassette_with_env(
        node,
        &[("CASSETTE_FAULT_KILL_AT", "delete-hidden:1")],
        &["delete", "--name", "ref", "--backup-dir", r],
    );
    killed(&out, "delete-hidden");
    assert!(std::fs::read_to_string(node_dir.join(".index.json")).unwrap().contains("\"name\":\"ref\""));
    let listed = check_listing(node, root.path());
    assert!(!listed.iter().any(|b| b["name"] == "ref"), "a half-deleted backup is not listed");
    let hidden = |d: &Path| -> Vec<String> {
        std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".deleting-"))
            .collect()
    };
    assert_eq!(hidden(&node_dir).len(), 1);

    // purge killed after hiding its second backup, then after its first removal.
    let mut newest: Vec<&serde_json::Value> = listed.iter().collect();
    newest.sort_by_key(|b| std::cmp::Reverse(b["finished_at"].as_str().unwrap().to_string()));
    let expected: Vec<String> = {
        let mut v: Vec<String> = newest[..3].iter().map(|b| b["name"].as_str().unwrap().to_string()).collect();
        v.sort();
        v
    };
    for point in ["purge-hidden:2", "purge-removed:1"] {
        let out = cassette_with_env(
            node,
            &[("CASSETTE_FAULT_KILL_AT", point)],
            &["purge", "--keep-last", "3", "--backup-dir", r],
        );
        killed(&out, point);
        let listed = check_listing(node, root.path());
        assert!(listed.len() < KILL_POINTS.len(), "{point}: the backups it renamed are not listed");
        assert!(!hidden(&node_dir).is_empty(), "{point}: killed with hidden backups left");
        verify_all(node, root.path());
    }
    let out = cassette(node, &["--json", "purge", "--keep-last", "3", "--backup-dir", r]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(report["leftovers_removed"].as_u64().unwrap() >= 1, "the interrupted deletes were collected: {report}");
    assert_eq!(hidden(&node_dir), Vec::<String>::new());
    let mut left: Vec<String> =
        check_listing(node, root.path()).iter().map(|b| b["name"].as_str().unwrap().to_string()).collect();
    left.sort();
    assert_eq!(left, expected, "the newest three stay");
    verify_all(node, root.path());
    // The index agrees with the directories again.
    let index = std::fs::read_to_string(node_dir.join(".index.json")).unwrap();
    assert_eq!(index.matches("\"name\":").count(), 3, "{index}");
}
