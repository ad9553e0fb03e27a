//! Backups on object storage, against the real Cassandra node and real S3-compatible servers
//! started on loopback by the test (s3s-fs, which checks signatures and conditional writes, and
//! moto, whose request log lets the tests count what was uploaded on the server side).
// The job turn (a std mutex) is held for the whole test, across awaits, on purpose.
#![allow(clippy::await_holding_lock)]

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::Output;

use cassette_testkit::s3::{S3Kind, S3Server};
use cassette_testkit::{Node, dataset, unique_name};
use common::*;

/// `cassette ARGS` with the server's credentials and endpoint, and a state directory of its own.
fn run(node: &Node, s3: &S3Server, state: &std::path::Path, extra_env: &[(&str, &str)], args: &[&str]) -> Output {
    let env = s3.env();
    let mut all: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    all.push(("CASSETTE_STATE_DIR", state.to_str().unwrap()));
    all.extend_from_slice(extra_env);
    cassette_with_env(node, &all, args)
}

fn json_ok(out: Output, what: &str) -> serde_json::Value {
    assert!(out.status.success(), "{what} failed ({:?}):\n{}\n{}", out.status, stdout(&out), stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{what}: not JSON ({e}):\n{}", stdout(&out)))
}

/// The objects under the bucket of an s3s-fs server: key → (inode, size).
fn stored_objects(s3: &S3Server) -> BTreeMap<String, (u64, u64)> {
    let bucket = s3.root.join(&s3.bucket);
    s3.object_files()
        .into_iter()
        .map(|p| {
            let m = std::fs::metadata(&p).unwrap();
            (p.strip_prefix(&bucket).unwrap().to_string_lossy().into_owned(), (m.ino(), m.len()))
        })
        .collect()
}

/// Backup, a deduplicated second backup, list, verify, restore, delete: the same checks as on
/// a backup directory, on each server.
async fn round_trip(kind: S3Kind) {
    let cluster = solo();
    let node = &cluster.nodes[0];
    let session = cluster.session().await;
    let ks = unique_name("s3_trip");
    dataset::load(&session, cluster, &ks, 1, &dataset::Shape::small()).await;
    let s3 = S3Server::start(kind);
    let state = tempfile::tempdir().unwrap();
    let url = s3.url("backups");
    let _turn = serial();

    let first = json_ok(
        run(node, &s3, state.path(), &[], &["--json", "backup", "--name", "b1", "--backup-dir", &url, "-k", &ks]),
        "backup b1",
    );
    assert_eq!(first["complete"], true, "{first}");
    assert!(first["path"].as_str().unwrap().starts_with("s3://cassette/backups/"), "{first}");
    let files = first["totals"]["files"].as_u64().unwrap();
    assert!(files > 10 && first["totals"]["bytes_added"] == first["totals"]["bytes"], "{first}");

    // New rows, flushed: the second backup uploads only the new SSTables (no compaction may
    // rewrite the old ones meanwhile).
    node.nodetool(&["disableautocompaction", &ks]);
    dataset::write_round(&session, &ks, 7, &dataset::Shape { rounds: 1, rows_per_round: 100, payload_bytes: 32 }).await;
    cluster.flush(&ks);
    let before = dataset::dump_all(&session, &ks).await;
    let puts_before = (kind == S3Kind::Moto).then(|| s3.requests("PUT"));
    let second = json_ok(
        run(node, &s3, state.path(), &[], &["--json", "backup", "--name", "b2", "--backup-dir", &url, "-k", &ks]),
        "backup b2",
    );
    let (added, total) =
        (second["totals"]["files_added"].as_u64().unwrap(), second["totals"]["files"].as_u64().unwrap());
    assert!(added > 0 && added < total, "only new files are uploaded: {second}");
    if let Some(n) = puts_before {
        let data_puts = s3
            .request_log()
            .into_iter()
            .skip(n)
            .filter(|r| r.method == "PUT" && r.path.contains(&format!("/b2/{ks}/")) && !r.path.ends_with(".cql"))
            .count() as u64;
        assert_eq!(data_puts, added, "the server received one PUT per new file, none for the reused ones");
    }

    let list = json_ok(run(node, &s3, state.path(), &[], &["--json", "list", "--backup-dir", &url]), "list");
    let names: Vec<(&str, bool)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["name"].as_str().unwrap(), b["complete"].as_bool().unwrap()))
        .collect();
    assert_eq!(names, vec![("b1", true), ("b2", true)]);

    // Everything goes; the restore brings back the rows of b2 from the store.
    dataset::exec(&session, &format!("TRUNCATE {ks}.readings")).await;
    dataset::exec(&session, &format!("DELETE FROM {ks}.profiles WHERE id = 5")).await;
    assert_ne!(dataset::dump_all(&session, &ks).await, before);
    let restored = json_ok(
        run(node, &s3, state.path(), &[], &["--json", "restore", "--name", "b2", "--backup-dir", &url, "-k", &ks]),
        "restore b2",
    );
    assert_eq!(restored["complete"], true, "{restored}");
    assert_eq!(dataset::dump_all(&session, &ks).await, before, "every table as it was at backup time");
    let staging = node.data_dirs[0].parent().unwrap().join("cassette-restore-staging");
    assert!(files_under(&staging).is_empty(), "staging is emptied after each table");

    // b2 references b1's objects: deleting b1 keeps them, and b2 still verifies and restores.
    let deleted = json_ok(
        run(node, &s3, state.path(), &[], &["--json", "delete", "--name", "b1", "--backup-dir", &url]),
        "delete b1",
    );
    assert!(deleted["files"].as_u64().unwrap() < files, "objects b2 references are kept: {deleted}");
    let again = run(node, &s3, state.path(), &[], &["backup", "--name", "b1", "--backup-dir", &url, "-k", &ks]);
    assert_eq!(
        again.status.code(),
        Some(2),
        "the deleted name is not reused while its files serve b2: {}",
        stderr(&again)
    );
    assert!(stderr(&again).contains("choose another name"), "{}", stderr(&again));
    let verified = json_ok(run(node, &s3, state.path(), &[], &["--json", "verify", "--backup-dir", &url]), "verify");
    assert_eq!(verified.as_array().unwrap().len(), 1, "{verified}");
    assert_eq!(verified[0]["name"], "b2");
    assert_eq!(verified[0]["report"]["bad"].as_array().unwrap().len(), 0, "{verified}");
    assert_eq!(verified[0]["report"]["files"].as_u64().unwrap(), total);
    let names: Vec<String> =
        json_ok(run(node, &s3, state.path(), &[], &["--json", "list", "--backup-dir", &url]), "list")
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["name"].as_str().unwrap().to_string())
            .collect();
    assert_eq!(names, vec!["b2"]);
    let out = run(
        node,
        &s3,
        state.path(),
        &[],
        &["--json", "restore", "--name", "b2", "--backup-dir", &url, "-k", &ks, "--dry-run"],
    );
    assert!(out.status.success(), "b2 still restores after b1 is gone: {}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn backup_and_restore_round_trip_on_s3s_fs() {
    round_trip(S3Kind::S3sFs).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn backup_and_restore_round_trip_on_moto() {
    round_trip(S3Kind::Moto).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_corrupted_object_is_named_by_verify_and_refused_by_restore_before_any_truncate() {
    let cluster = solo();
    let node = &cluster.nodes[0];
    let session = cluster.session().await;
    let ks = unique_name("s3_bad");
    dataset::load(&session, cluster, &ks, 1, &dataset::Shape::small()).await;
    let s3 = S3Server::start(S3Kind::S3sFs);
    let state = tempfile::tempdir().unwrap();
    let url = s3.url("");
    let _turn = serial();
    json_ok(
        run(node, &s3, state.path(), &[], &["--json", "backup", "--name", "b", "--backup-dir", &url, "-k", &ks]),
        "backup",
    );
    // One flipped bit in a stored Data.db, on the server's disk; the size stays the same.
    let victim: PathBuf = s3
        .object_files()
        .into_iter()
        .find(|p| p.to_string_lossy().contains("/readings/") && p.to_string_lossy().ends_with("Data.db"))
        .expect("a stored Data.db of readings");
    let mut bytes = std::fs::read(&victim).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x10;
    std::fs::write(&victim, &bytes).unwrap();
    let rows = dataset::dump_all(&session, &ks).await;

    let out = run(node, &s3, state.path(), &[], &["--json", "verify", "--backup-dir", &url]);
    assert_eq!(out.status.code(), Some(1), "verify fails: {}", stdout(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let bad = report[0]["report"]["bad"].as_array().unwrap();
    assert_eq!(bad.len(), 1, "{report}");
    assert!(
        bad[0]["path"].as_str().unwrap().ends_with("Data.db")
            && bad[0]["problem"].as_str().unwrap().contains("content")
    );
    // Quick verification sees presence and size only: the same-size change goes unseen.
    let quick = run(node, &s3, state.path(), &[], &["--json", "verify", "--quick", "--backup-dir", &url]);
    assert!(quick.status.success(), "{}", stdout(&quick));

    let out = run(node, &s3, state.path(), &[], &["--json", "restore", "--name", "b", "--backup-dir", &url, "-k", &ks]);
    assert_eq!(out.status.code(), Some(1), "restore refuses: {}\n{}", stdout(&out), stderr(&out));
    assert!(stderr(&out).contains("failed verification, nothing was truncated"), "{}", stderr(&out));
    assert_eq!(dataset::dump_all(&session, &ks).await, rows, "the live data is untouched");

    // A backup that does not exist, and one that never finished, are named as such.
    let out = run(node, &s3, state.path(), &[], &["restore", "--name", "nope", "--backup-dir", &url, "-k", &ks]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no backup named 'nope'") && stderr(&out).contains("The backups of this node are: b"),
        "{}",
        stderr(&out)
    );
    let manifest = s3.object_files().into_iter().find(|p| p.ends_with("b/manifest.json")).unwrap();
    std::fs::remove_file(manifest).unwrap();
    let out = run(node, &s3, state.path(), &[], &["restore", "--name", "b", "--backup-dir", &url, "-k", &ks]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("incomplete backup, cannot be restored"), "{}", stderr(&out));
    let bad_url = run(node, &s3, state.path(), &[], &["list", "--backup-dir", "s3:///nobucket"]);
    assert_eq!(bad_url.status.code(), Some(2), "{}", stderr(&bad_url));
    assert!(stderr(&bad_url).contains("no bucket"), "{}", stderr(&bad_url));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_killed_mid_upload_uploads_only_the_missing_objects_when_run_again() {
    let cluster = solo();
    let node = &cluster.nodes[0];
    let session = cluster.session().await;
    let ks = unique_name("s3_kill");
    dataset::load(&session, cluster, &ks, 1, &dataset::Shape::small()).await;
    let s3 = S3Server::start(S3Kind::S3sFs);
    let state = tempfile::tempdir().unwrap();
    let url = s3.url("k");
    let _turn = serial();
    // kill -9 (abort) right after the 5th stored file is journaled.
    let args = ["--json", "backup", "--name", "nightly", "--backup-dir", &url, "-k", &ks, "--transfers", "1"];
    let killed = run(node, &s3, state.path(), &[("CASSETTE_FAULT_KILL_AT", "file-journaled:5")], &args);
    assert!(!killed.status.success(), "the fault hook killed the backup");
    let after_kill = stored_objects(&s3);
    assert!(!after_kill.keys().any(|k| k.ends_with("manifest.json")), "no manifest: {after_kill:?}");
    let data: BTreeMap<_, _> = after_kill.iter().filter(|(k, _)| k.contains(&format!("/{ks}/"))).collect();
    assert!(data.len() >= 5, "the killed run uploaded {} objects", data.len());
    let list = json_ok(run(node, &s3, state.path(), &[], &["--json", "list", "--backup-dir", &url]), "list");
    assert_eq!(list[0]["complete"], false, "an interrupted backup is listed as incomplete: {list}");

    let report = json_ok(run(node, &s3, state.path(), &[], &args), "resumed backup");
    assert_eq!((report["complete"].as_bool(), report["resumed"].as_bool()), (Some(true), Some(true)), "{report}");
    let after = stored_objects(&s3);
    // Server side: the objects the killed run had journaled are the same files (same inode):
    // not uploaded again. Everything else is there now.
    let kept = data.iter().filter(|(k, v)| after.get(k.as_str()) == Some(v)).count();
    assert!(kept >= 5, "at least the 5 journaled uploads were kept, not re-sent ({kept} kept)");
    let copied: u64 = report["tables"].as_array().unwrap().iter().map(|t| t["bytes_copied"].as_u64().unwrap()).sum();
    assert!(copied < report["totals"]["bytes"].as_u64().unwrap(), "the rerun uploaded less than the whole backup");
    let verified = json_ok(run(node, &s3, state.path(), &[], &["--json", "verify", "--backup-dir", &url]), "verify");
    assert_eq!(verified[0]["report"]["bad"].as_array().unwrap().len(), 0, "{verified}");
    assert!(node.nodetool(&["listsnapshots"]).lines().all(|l| !l.contains("cassette-")), "no snapshot is left");
}

#[tokio::test(flavor = "multi_thread")]
async fn purge_keeps_the_last_two_and_deletes_the_rest_in_batches_keeping_what_they_reference() {
    let cluster = solo();
    let node = &cluster.nodes[0];
    let session = cluster.session().await;
    let ks = unique_name("s3_purge");
    dataset::load(&session, cluster, &ks, 1, &dataset::Shape { rounds: 1, rows_per_round: 50, payload_bytes: 16 })
        .await;
    node.nodetool(&["disableautocompaction", &ks]);
    let s3 = S3Server::start(S3Kind::Moto);
    let state = tempfile::tempdir().unwrap();
    let url = s3.url("p");
    let _turn = serial();
    for i in 1..=5 {
        dataset::write_round(
            &session,
            &ks,
            10 + i,
            &dataset::Shape { rounds: 1, rows_per_round: 20, payload_bytes: 16 },
        )
        .await;
        cluster.flush(&ks);
        let name = format!("n{i}");
        json_ok(
            run(node, &s3, state.path(), &[], &["--json", "backup", "--name", &name, "--backup-dir", &url, "-k", &ks]),
            &name,
        );
    }
    let before = dataset::dump_all(&session, &ks).await;
    let dry = json_ok(
        run(node, &s3, state.path(), &[], &["--json", "purge", "--keep-last", "2", "--dry-run", "--backup-dir", &url]),
        "dry run",
    );
    assert_eq!(dry["deleted_backups"], 3, "{dry}");
    assert_eq!(
        json_ok(run(node, &s3, state.path(), &[], &["--json", "list", "--backup-dir", &url]), "list")
            .as_array()
            .unwrap()
            .len(),
        5
    );

    let deletes_before = s3.request_log().iter().filter(|r| r.method == "POST" && r.path.contains("?delete")).count();
    let purged = json_ok(
        run(node, &s3, state.path(), &[], &["--json", "purge", "--keep-last", "2", "--backup-dir", &url]),
        "purge",
    );
    assert_eq!((purged["deleted_backups"].as_u64(), purged["failed"].as_bool()), (Some(3), Some(false)), "{purged}");
    let batches =
        s3.request_log().iter().filter(|r| r.method == "POST" && r.path.contains("?delete")).count() - deletes_before;
    assert!(batches >= 1, "objects are deleted with DeleteObjects batches");
    let names: Vec<String> =
        json_ok(run(node, &s3, state.path(), &[], &["--json", "list", "--backup-dir", &url]), "list")
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["name"].as_str().unwrap().to_string())
            .collect();
    assert_eq!(names, vec!["n4", "n5"]);
    // n4 and n5 reference the SSTables n1..n3 uploaded: those stayed, and both verify in full.
    let verified = json_ok(run(node, &s3, state.path(), &[], &["--json", "verify", "--backup-dir", &url]), "verify");
    for v in verified.as_array().unwrap() {
        assert_eq!(v["report"]["bad"].as_array().unwrap().len(), 0, "{v}");
    }
    dataset::exec(&session, &format!("TRUNCATE {ks}.readings")).await;
    json_ok(
        run(node, &s3, state.path(), &[], &["--json", "restore", "--name", "n5", "--backup-dir", &url, "-k", &ks]),
        "restore n5",
    );
    assert_eq!(dataset::dump_all(&session, &ks).await, before, "n5 restores every row after the purge");
}
