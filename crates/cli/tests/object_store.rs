//! Backups on object storage, against the real Cassandra node and real object-storage servers
//! started on loopback by the test: S3 (s3s-fs, which checks signatures and conditional writes,
//! and moto, whose request log lets the tests count what was uploaded on the server side), Azure
//! Blob (Azurite, `az://`) and Google Cloud Storage (fake-gcs-server, `gs://`). Each scenario is
//! one body run on several servers; what the tests look at on the server side they read through
//! the server's own API.
// The job turn (a std mutex) is held for the whole test, across awaits, on purpose.
#![allow(clippy::await_holding_lock)]

mod common;

use std::collections::BTreeMap;
use std::process::Output;

use cassette_testkit::s3::{StoreKind, StoreServer};
use cassette_testkit::{Node, dataset, unique_name};
use common::*;

/// `cassette ARGS` with the server's credentials and endpoint, and a state directory of its own.
fn run(node: &Node, s3: &StoreServer, state: &std::path::Path, extra_env: &[(&str, &str)], args: &[&str]) -> Output {
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

/// The objects of the bucket, listed through the server's API: key → what changes when an
/// object is written again (ETag, generation or version, last-modified time, size).
async fn stored_objects(s3: &StoreServer) -> BTreeMap<String, String> {
    s3.objects()
        .await
        .into_iter()
        .map(|(k, m)| (k, format!("{:?} {:?} {} {}", m.e_tag, m.version, m.last_modified, m.size)))
        .collect()
}

/// Backup, a deduplicated second backup, list, verify, restore, delete: the same checks as on
/// a backup directory, on each server.
async fn round_trip(kind: StoreKind) {
    let cluster = solo();
    let node = &cluster.nodes[0];
    let session = cluster.session().await;
    let ks = unique_name("s3_trip");
    dataset::load(&session, cluster, &ks, 1, &dataset::Shape::small()).await;
    let s3 = StoreServer::start(kind);
    let state = tempfile::tempdir().unwrap();
    let url = s3.url("backups");
    let _turn = serial();

    let first = json_ok(
        run(node, &s3, state.path(), &[], &["--json", "backup", "--name", "b1", "--backup-dir", &url, "-k", &ks]),
        "backup b1",
    );
    assert_eq!(first["complete"], true, "{first}");
    assert!(first["path"].as_str().unwrap().starts_with(&format!("{url}/")), "{first}");
    let files = first["totals"]["files"].as_u64().unwrap();
    assert!(files > 10 && first["totals"]["bytes_added"] == first["totals"]["bytes"], "{first}");

    // New rows, flushed: the second backup uploads only the new SSTables (no compaction may
    // rewrite the old ones meanwhile).
    node.nodetool(&["disableautocompaction", &ks]);
    dataset::write_round(&session, &ks, 7, &dataset::Shape { rounds: 1, rows_per_round: 100, payload_bytes: 32 }).await;
    cluster.flush(&ks);
    let before = dataset::dump_all(&session, &ks).await;
    let puts_before = (kind == StoreKind::Moto).then(|| s3.requests("PUT"));
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
    round_trip(StoreKind::S3sFs).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn backup_and_restore_round_trip_on_moto() {
    round_trip(StoreKind::Moto).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn backup_and_restore_round_trip_on_azurite() {
    round_trip(StoreKind::Azurite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn backup_and_restore_round_trip_on_fake_gcs() {
    round_trip(StoreKind::FakeGcs).await;
}

/// One flipped bit in a stored Data.db: verify names it, restore refuses before any truncate;
/// a missing backup and an unfinished one are named as such.
async fn corrupted_object(kind: StoreKind) {
    let cluster = solo();
    let node = &cluster.nodes[0];
    let session = cluster.session().await;
    let ks = unique_name("s3_bad");
    dataset::load(&session, cluster, &ks, 1, &dataset::Shape::small()).await;
    let s3 = StoreServer::start(kind);
    let state = tempfile::tempdir().unwrap();
    let url = s3.url("");
    let _turn = serial();
    json_ok(
        run(node, &s3, state.path(), &[], &["--json", "backup", "--name", "b", "--backup-dir", &url, "-k", &ks]),
        "backup",
    );
    // One flipped bit in a stored Data.db, written back through the server's API; the size
    // stays the same.
    let objects = s3.objects().await;
    let victim = objects
        .keys()
        .find(|k| k.contains("/readings/") && k.ends_with("Data.db"))
        .expect("a stored Data.db of readings");
    let mut bytes = s3.get(victim).await;
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x10;
    s3.put(victim, bytes).await;
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
    let manifest = objects.keys().find(|k| k.ends_with("/b/manifest.json")).expect("b's manifest");
    s3.delete(manifest).await;
    let out = run(node, &s3, state.path(), &[], &["restore", "--name", "b", "--backup-dir", &url, "-k", &ks]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("incomplete backup, cannot be restored"), "{}", stderr(&out));
    let no_bucket = format!("{}:///nobucket", kind.scheme());
    let bad_url = run(node, &s3, state.path(), &[], &["list", "--backup-dir", &no_bucket]);
    assert_eq!(bad_url.status.code(), Some(2), "{}", stderr(&bad_url));
    assert!(stderr(&bad_url).contains("no bucket"), "{}", stderr(&bad_url));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_corrupted_object_is_named_by_verify_and_refused_by_restore_before_any_truncate_on_s3s_fs() {
    corrupted_object(StoreKind::S3sFs).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_corrupted_object_is_named_by_verify_and_refused_by_restore_before_any_truncate_on_azurite() {
    corrupted_object(StoreKind::Azurite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_corrupted_object_is_named_by_verify_and_refused_by_restore_before_any_truncate_on_fake_gcs() {
    corrupted_object(StoreKind::FakeGcs).await;
}

/// kill -9 after the 5th stored file; the rerun resumes and uploads only what is missing.
async fn killed_and_resumed(kind: StoreKind) {
    let cluster = solo();
    let node = &cluster.nodes[0];
    let session = cluster.session().await;
    let ks = unique_name("s3_kill");
    dataset::load(&session, cluster, &ks, 1, &dataset::Shape::small()).await;
    let s3 = StoreServer::start(kind);
    let state = tempfile::tempdir().unwrap();
    let url = s3.url("k");
    let _turn = serial();
    // kill -9 (abort) right after the 5th stored file is journaled.
    let args = ["--json", "backup", "--name", "nightly", "--backup-dir", &url, "-k", &ks, "--transfers", "1"];
    let killed = run(node, &s3, state.path(), &[("CASSETTE_FAULT_KILL_AT", "file-journaled:5")], &args);
    assert!(!killed.status.success(), "the fault hook killed the backup");
    let after_kill = stored_objects(&s3).await;
    assert!(!after_kill.keys().any(|k| k.ends_with("manifest.json")), "no manifest: {after_kill:?}");
    let data: BTreeMap<_, _> = after_kill.iter().filter(|(k, _)| k.contains(&format!("/{ks}/"))).collect();
    assert!(data.len() >= 5, "the killed run uploaded {} objects", data.len());
    let list = json_ok(run(node, &s3, state.path(), &[], &["--json", "list", "--backup-dir", &url]), "list");
    assert_eq!(list[0]["complete"], false, "an interrupted backup is listed as incomplete: {list}");

    let report = json_ok(run(node, &s3, state.path(), &[], &args), "resumed backup");
    assert_eq!((report["complete"].as_bool(), report["resumed"].as_bool()), (Some(true), Some(true)), "{report}");
    let after = stored_objects(&s3).await;
    // Server side: the objects the killed run had journaled were not written again (same ETag,
    // generation and time). Everything else is there now.
    let kept = data.iter().filter(|(k, v)| after.get(k.as_str()) == Some(v)).count();
    assert!(kept >= 5, "at least the 5 journaled uploads were kept, not re-sent ({kept} kept)");
    let copied: u64 = report["tables"].as_array().unwrap().iter().map(|t| t["bytes_copied"].as_u64().unwrap()).sum();
    assert!(copied < report["totals"]["bytes"].as_u64().unwrap(), "the rerun uploaded less than the whole backup");
    let verified = json_ok(run(node, &s3, state.path(), &[], &["--json", "verify", "--backup-dir", &url]), "verify");
    assert_eq!(verified[0]["report"]["bad"].as_array().unwrap().len(), 0, "{verified}");
    assert!(node.nodetool(&["listsnapshots"]).lines().all(|l| !l.contains("cassette-")), "no snapshot is left");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_killed_mid_upload_uploads_only_the_missing_objects_when_run_again_on_s3s_fs() {
    killed_and_resumed(StoreKind::S3sFs).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_killed_mid_upload_uploads_only_the_missing_objects_when_run_again_on_azurite() {
    killed_and_resumed(StoreKind::Azurite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_killed_mid_upload_uploads_only_the_missing_objects_when_run_again_on_fake_gcs() {
    killed_and_resumed(StoreKind::FakeGcs).await;
}

/// Five backups, purge keeping the last two: the three oldest go, and the objects the kept ones
/// reference stay (both verify in full, the newest restores every row).
async fn purge(kind: StoreKind) {
    let cluster = solo();
    let node = &cluster.nodes[0];
    let session = cluster.session().await;
    let ks = unique_name("s3_purge");
    dataset::load(&session, cluster, &ks, 1, &dataset::Shape { rounds: 1, rows_per_round: 50, payload_bytes: 16 })
        .await;
    node.nodetool(&["disableautocompaction", &ks]);
    let s3 = StoreServer::start(kind);
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

    // Moto logs its requests: S3 deletes go in DeleteObjects batches.
    let delete_batches =
        || s3.request_log().iter().filter(|r| r.method == "POST" && r.path.contains("?delete")).count();
    let deletes_before = (kind == StoreKind::Moto).then(delete_batches);
    let objects_before = s3.objects().await.len();
    let purged = json_ok(
        run(node, &s3, state.path(), &[], &["--json", "purge", "--keep-last", "2", "--backup-dir", &url]),
        "purge",
    );
    assert_eq!((purged["deleted_backups"].as_u64(), purged["failed"].as_bool()), (Some(3), Some(false)), "{purged}");
    if let Some(n) = deletes_before {
        assert!(delete_batches() > n, "objects are deleted with DeleteObjects batches");
    }
    let objects_after = s3.objects().await;
    assert!(objects_after.len() < objects_before, "the purge deleted objects on the server");
    assert!(
        !objects_after
            .keys()
            .any(|k| ["/n1/", "/n2/", "/n3/"].iter().any(|n| k.contains(n) && k.ends_with("manifest.json"))),
        "the purged backups' manifests are gone: {:?}",
        objects_after.keys().collect::<Vec<_>>()
    );
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

#[tokio::test(flavor = "multi_thread")]
async fn purge_keeps_the_last_two_and_deletes_the_rest_in_batches_keeping_what_they_reference_on_moto() {
    purge(StoreKind::Moto).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn purge_keeps_the_last_two_and_deletes_the_rest_keeping_what_they_reference_on_azurite() {
    purge(StoreKind::Azurite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn purge_keeps_the_last_two_and_deletes_the_rest_keeping_what_they_reference_on_fake_gcs() {
    purge(StoreKind::FakeGcs).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_azure_key_is_an_environment_error_naming_the_answer_once_and_never_the_key() {
    let cluster = solo();
    let node = &cluster.nodes[0];
    let s3 = StoreServer::start(StoreKind::Azurite);
    let state = tempfile::tempdir().unwrap();
    // Azurite checks Shared Key signatures: a key other than the account's is refused.
    let wrong_key = "d3Jvbmcta2V5LW9mLWEtdGVzdC13cm9uZy1rZXk=";
    let out = run(
        node,
        &s3,
        state.path(),
        &[("AZURE_STORAGE_ACCOUNT_KEY", wrong_key)],
        &["list", "--backup-dir", &s3.url("x")],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(4), "wrong credentials are an environment error: {err}");
    assert!(err.contains("cannot list az://cassette/x") && err.contains("check the credentials"), "{err}");
    assert_eq!(err.matches("<Code>AuthorizationFailure</Code>").count(), 1, "the server's answer, once: {err}");
    assert!(!err.contains(wrong_key) && !err.contains(&s3.secret_key), "no key is printed: {err}");
}
