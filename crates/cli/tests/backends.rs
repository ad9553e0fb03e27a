//! The same behaviour on every kind of repository: a backup directory, S3 (s3s-fs and moto),
//! Google Cloud Storage (fake-gcs-server) and Azure Blob (Azurite), against the real Cassandra
//! test node. Each behaviour is one body that never asks which kind it runs on: a
//! [`Backend`] gives it the `--backup-dir` location, the environment, and what is stored. The
//! only branches are checks one kind alone can make (moto's request log), marked as such.
//!
//! Behaviours: a round trip brings every row back; a corrupted stored file is named by
//! `verify` and refused by `restore` before any truncate; a purge keeping the last two leaves
//! what they still use; a backup killed mid-copy resumes, storing only what was missing.
// The job turn (a std mutex) is held for the whole test, across awaits, on purpose.
#![allow(clippy::await_holding_lock)]

mod common;

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::process::Output;

use cassette_testkit::backend::{Backend, BackendKind, StoredFile};
use cassette_testkit::s3::StoreKind;
use cassette_testkit::{Cluster, Node, dataset, unique_name};
use common::*;
use scylla::client::session::Session;

const DIRECTORY: BackendKind = BackendKind::Directory;
const S3S_FS: BackendKind = BackendKind::Store(StoreKind::S3sFs);
const MOTO: BackendKind = BackendKind::Store(StoreKind::Moto);
const FAKE_GCS: BackendKind = BackendKind::Store(StoreKind::FakeGcs);
const AZURITE: BackendKind = BackendKind::Store(StoreKind::Azurite);

/// `cassette ARGS` with the backend's environment (and `extra_env`, such as a fault hook).
fn run(node: &Node, backend: &Backend, extra_env: &[(&str, &str)], args: &[&str]) -> Output {
    let env = backend.env();
    let mut all: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    all.extend_from_slice(extra_env);
    cassette_with_env(node, &all, args)
}

/// The JSON report of a run that must succeed.
fn json_ok(out: Output, what: &str) -> serde_json::Value {
    assert!(out.status.success(), "{what} failed ({:?}):\n{}\n{}", out.status, stdout(&out), stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{what}: not JSON ({e}):\n{}", stdout(&out)))
}

fn backup(node: &Node, backend: &Backend, name: &str, ks: &str) -> serde_json::Value {
    let at = backend.location();
    json_ok(
        run(node, backend, &[], &["--json", "backup", "--name", name, "--backup-dir", &at, "-k", ks]),
        &format!("backup {name} on {}", backend.kind.name()),
    )
}

fn restore(node: &Node, backend: &Backend, name: &str, ks: &str) -> Output {
    let at = backend.location();
    run(node, backend, &[], &["--json", "restore", "--name", name, "--backup-dir", &at, "-k", ks])
}

/// `cassette --json verify` of every backup: the exit code and the report.
fn verify(node: &Node, backend: &Backend) -> (Option<i32>, serde_json::Value) {
    let out = run(node, backend, &[], &["--json", "verify", "--backup-dir", &backend.location()]);
    let report = serde_json::from_str(&stdout(&out))
        .unwrap_or_else(|e| panic!("verify --json: {e}\n{}\n{}", stdout(&out), stderr(&out)));
    (out.status.code(), report)
}

fn listed(node: &Node, backend: &Backend) -> Vec<(String, bool)> {
    let list = json_ok(run(node, backend, &[], &["--json", "list", "--backup-dir", &backend.location()]), "list");
    list.as_array()
        .unwrap()
        .iter()
        .map(|b| (b["name"].as_str().unwrap().to_string(), b["complete"].as_bool().unwrap()))
        .collect()
}

/// Every row of every table, compared table by table and row by row with what was written.
async fn assert_rows(session: &Session, ks: &str, expected: &[(String, Vec<String>)], what: &str) {
    let now = dataset::dump_all(session, ks).await;
    assert_eq!(now.len(), expected.len(), "{what}: the same tables");
    for ((table, rows), (_, want)) in now.iter().zip(expected) {
        assert_eq!(rows.len(), want.len(), "{what}: {table} has as many rows as written");
        for (row, wanted) in rows.iter().zip(want) {
            assert_eq!(row, wanted, "{what}: a row of {table}");
        }
    }
}

/// Changes every table after a backup: new rows, a partition deleted, an update, a TRUNCATE,
/// some of it flushed and some only in the memtable.
async fn scribble(session: &Session, cluster: &Cluster, ks: &str) {
    dataset::write_round(session, ks, 9, &dataset::Shape { rounds: 1, rows_per_round: 50, payload_bytes: 8 }).await;
    dataset::exec(session, &format!("DELETE FROM {ks}.readings WHERE sensor = 3")).await;
    dataset::exec(session, &format!("UPDATE {ks}.profiles SET name = 'changed' WHERE id = 5")).await;
    dataset::exec(session, &format!("TRUNCATE {ks}.sessions")).await;
    cluster.flush(ks);
    dataset::exec(session, &format!("UPDATE {ks}.page_views SET views = views + 100 WHERE page = '/page/1'")).await;
    dataset::exec(session, &format!("INSERT INTO {ks}.sessions (id, user_name) VALUES (99999, 'late')")).await;
}

/// The stored path of backup `name`'s manifest (`<cluster>/<host id>/<name>/manifest.json`).
fn manifest_path(stored: &BTreeMap<String, StoredFile>, name: &str) -> Option<String> {
    stored.keys().find(|k| k.ends_with(&format!("/{name}/manifest.json"))).cloned()
}

/// The stored data files of `ks` in backup `name`.
fn data_files<'a>(
    stored: &'a BTreeMap<String, StoredFile>,
    name: &str,
    ks: &str,
) -> BTreeMap<&'a String, &'a StoredFile> {
    stored.iter().filter(|(k, _)| k.contains(&format!("/{name}/{ks}/"))).collect()
}

// ---------------------------------------------------------------------------------------------
// 1. Round trip.

/// Backup, rows changed in every table, restore: every row is as it was written.
async fn round_trip(kind: BackendKind) {
    let cluster = solo();
    let node = &cluster.nodes[0];
    let session = cluster.session().await;
    let ks = unique_name("be_trip");
    dataset::load(&session, cluster, &ks, 1, &dataset::Shape::small()).await;
    let written = dataset::dump_all(&session, &ks).await;
    let backend = Backend::start(kind);
    let _turn = serial();

    let report = backup(node, &backend, "b1", &ks);
    assert_eq!(report["complete"], true, "{report}");
    assert!(manifest_path(&backend.stored().await, "b1").is_some(), "the manifest is stored");
    assert_eq!(listed(node, &backend), vec![("b1".to_string(), true)]);

    scribble(&session, cluster, &ks).await;
    assert_ne!(dataset::dump_all(&session, &ks).await, written, "the rows changed after the backup");
    let restored = json_ok(restore(node, &backend, "b1", &ks), "restore b1");
    assert_eq!(restored["complete"], true, "{restored}");
    assert_rows(&session, &ks, &written, "after the restore").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn round_trip_brings_every_row_back_on_a_directory() {
    round_trip(DIRECTORY).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn round_trip_brings_every_row_back_on_s3s_fs() {
    round_trip(S3S_FS).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn round_trip_brings_every_row_back_on_moto() {
    round_trip(MOTO).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn round_trip_brings_every_row_back_on_fake_gcs() {
    round_trip(FAKE_GCS).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn round_trip_brings_every_row_back_on_azurite() {
    round_trip(AZURITE).await;
}

// ---------------------------------------------------------------------------------------------
// 2. A corrupted stored file.

/// One flipped bit in a stored Data.db (same size): verify names that file and exits non-zero;
/// restore refuses before truncating anything, and the live rows are unchanged.
async fn corrupted_file(kind: BackendKind) {
    let cluster = solo();
    let node = &cluster.nodes[0];
    let session = cluster.session().await;
    let ks = unique_name("be_bad");
    dataset::load(&session, cluster, &ks, 1, &dataset::Shape::small()).await;
    let backend = Backend::start(kind);
    let _turn = serial();
    backup(node, &backend, "b", &ks);
    let stored = backend.stored().await;
    let victim = data_files(&stored, "b", &ks)
        .into_keys()
        .find(|k| k.contains(&format!("/{ks}/readings")) && k.ends_with("Data.db"))
        .expect("a stored Data.db of readings")
        .clone();
    backend.corrupt(&victim).await;
    assert_eq!(backend.stored().await[&victim].size, stored[&victim].size, "the size stays the same");
    // Rows changed after the backup: a restore would replace them.
    scribble(&session, cluster, &ks).await;
    let live = dataset::dump_all(&session, &ks).await;

    let (code, report) = verify(node, &backend);
    assert_eq!(code, Some(1), "verify fails: {report}");
    let bad = report[0]["report"]["bad"].as_array().unwrap();
    assert_eq!(bad.len(), 1, "one bad file: {report}");
    let file_name = victim.rsplit('/').next().unwrap();
    assert!(bad[0]["path"].as_str().unwrap().ends_with(file_name), "verify names {file_name}: {report}");
    assert!(bad[0]["problem"].as_str().unwrap().contains("content"), "{report}");

    let out = restore(node, &backend, "b", &ks);
    assert_eq!(out.status.code(), Some(1), "restore refuses: {}\n{}", stdout(&out), stderr(&out));
    assert!(stderr(&out).contains("failed verification, nothing was truncated"), "{}", stderr(&out));
    assert_rows(&session, &ks, &live, "after the refused restore").await;

    // A backup that does not exist is named as such, with the ones that do.
    let out = run(node, &backend, &[], &["restore", "--name", "nope", "--backup-dir", &backend.location(), "-k", &ks]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no backup named 'nope'") && stderr(&out).contains("The backups of this node are: b"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_corrupted_file_is_named_by_verify_and_refused_by_restore_before_any_truncate_on_a_directory() {
    corrupted_file(DIRECTORY).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_corrupted_file_is_named_by_verify_and_refused_by_restore_before_any_truncate_on_s3s_fs() {
    corrupted_file(S3S_FS).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_corrupted_file_is_named_by_verify_and_refused_by_restore_before_any_truncate_on_moto() {
    corrupted_file(MOTO).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_corrupted_file_is_named_by_verify_and_refused_by_restore_before_any_truncate_on_fake_gcs() {
    corrupted_file(FAKE_GCS).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_corrupted_file_is_named_by_verify_and_refused_by_restore_before_any_truncate_on_azurite() {
    corrupted_file(AZURITE).await;
}

// ---------------------------------------------------------------------------------------------
// 3. Purge.

/// Where the bytes of each file of a backup live, by stored path (relative to the location),
/// with their size, for the files reused from one of `from` (a hard link to, or a reference to
/// an object of, an older backup).
fn reused_from(manifest_at: &str, manifest: &serde_json::Value, from: &[&str]) -> BTreeMap<String, u64> {
    let backup_dir = manifest_at.strip_suffix("/manifest.json").unwrap();
    let node_dir = backup_dir.rsplit_once('/').unwrap().0;
    let mut out = BTreeMap::new();
    for ks in manifest["keyspaces"].as_array().unwrap() {
        for table in ks["tables"].as_array().unwrap() {
            for f in table["files"].as_array().unwrap() {
                let older = f["reused_from"].as_str().or_else(|| f["object"].as_str()?.split('/').next());
                if older.is_some_and(|b| from.contains(&b)) {
                    let at = match f["object"].as_str() {
                        Some(object) => format!("{node_dir}/{object}"),
                        None => format!("{backup_dir}/{}", f["path"].as_str().unwrap()),
                    };
                    out.insert(at, f["size"].as_u64().unwrap());
                }
            }
        }
    }
    out
}

/// Five backups, new rows between each; purge keeping the last two deletes the three oldest,
/// keeps the files the kept ones reuse from them, and the kept ones verify and restore.
async fn purge(kind: BackendKind) {
    let cluster = solo();
    let node = &cluster.nodes[0];
    let session = cluster.session().await;
    let ks = unique_name("be_purge");
    let round = dataset::Shape { rounds: 1, rows_per_round: 20, payload_bytes: 16 };
    dataset::load(&session, cluster, &ks, 1, &round).await;
    // No compaction may rewrite the SSTables the backups share meanwhile.
    node.nodetool(&["disableautocompaction", &ks]);
    let backend = Backend::start(kind);
    let _turn = serial();
    let mut rows_at_n4 = Vec::new();
    for i in 1..=5 {
        dataset::write_round(&session, &ks, 10 + i, &round).await;
        cluster.flush(&ks);
        let name = format!("n{i}");
        // Moto only (it logs requests): a later backup uploads the new files, none of the others.
        let requests_before = backend.server().filter(|_| kind == MOTO).map(|s| s.request_log().len());
        let report = backup(node, &backend, &name, &ks);
        let (added, files) =
            (report["totals"]["files_added"].as_u64().unwrap(), report["totals"]["files"].as_u64().unwrap());
        if i > 1 {
            assert!(added > 0 && added < files, "{name} stores only the new files: {report}");
        }
        if let (Some(n), Some(moto)) = (requests_before, backend.server()) {
            let data_puts = moto
                .request_log()
                .into_iter()
                .skip(n)
                .filter(|r| {
                    r.method == "PUT" && r.path.contains(&format!("/{name}/{ks}/")) && !r.path.ends_with(".cql")
                })
                .count() as u64;
            assert_eq!(data_puts, added, "moto: one PUT per new file of {name}, none for the reused ones");
        }
        if i == 4 {
            rows_at_n4 = dataset::dump_all(&session, &ks).await;
        }
    }
    let before = backend.stored().await;
    let mut still_used = BTreeMap::new();
    for kept in ["n4", "n5"] {
        let at = manifest_path(&before, kept).unwrap_or_else(|| panic!("{kept}'s manifest"));
        let manifest: serde_json::Value = serde_json::from_slice(&backend.read(&at).await).unwrap();
        still_used.extend(reused_from(&at, &manifest, &["n1", "n2", "n3"]));
    }
    assert!(!still_used.is_empty(), "n4 and n5 reuse files the three oldest stored");

    let at = backend.location();
    let requests_before = backend.server().filter(|_| kind == MOTO).map(|s| s.request_log().len());
    let purged =
        json_ok(run(node, &backend, &[], &["--json", "purge", "--keep-last", "2", "--backup-dir", &at]), "purge");
    assert_eq!((purged["deleted_backups"].as_u64(), purged["failed"].as_bool()), (Some(3), Some(false)), "{purged}");
    if let (Some(n), Some(moto)) = (requests_before, backend.server()) {
        // Moto only: S3 objects are deleted in DeleteObjects batches, not one request each.
        let batches =
            moto.request_log().into_iter().skip(n).filter(|r| r.method == "POST" && r.path.contains("?delete")).count();
        assert!(batches > 0, "moto: the purge deleted objects with DeleteObjects batches");
    }
    assert_eq!(listed(node, &backend), vec![("n4".to_string(), true), ("n5".to_string(), true)]);
    let after = backend.stored().await;
    for gone in ["n1", "n2", "n3"] {
        assert!(manifest_path(&after, gone).is_none(), "{gone}'s manifest is deleted");
        // An object store keeps a tombstone in a deleted backup whose objects are still in use
        // (so that no new backup takes its name meanwhile).
        let left: Vec<&String> = after
            .keys()
            .filter(|k| k.contains(&format!("/{gone}/")) && !still_used.contains_key(*k))
            .filter(|k| !k.ends_with(&format!("/{gone}/cassette-meta/deleted.json")))
            .collect();
        assert!(left.is_empty(), "only what n4 and n5 use is left of {gone}: {left:?}");
    }
    for (path, size) in &still_used {
        assert_eq!(after.get(path).map(|f| f.size), Some(*size), "{path}, which a kept backup uses, stays");
    }
    let (code, report) = verify(node, &backend);
    assert_eq!(code, Some(0), "{report}");
    for v in report.as_array().unwrap() {
        assert_eq!(v["report"]["bad"].as_array().unwrap().len(), 0, "{v}");
    }

    // The older kept backup restores the rows as they were then (more were written since).
    scribble(&session, cluster, &ks).await;
    json_ok(restore(node, &backend, "n4", &ks), "restore n4");
    assert_rows(&session, &ks, &rows_at_n4, "n4 after the purge").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn purge_keeping_the_last_two_keeps_the_files_they_use_on_a_directory() {
    purge(DIRECTORY).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn purge_keeping_the_last_two_keeps_the_files_they_use_on_s3s_fs() {
    purge(S3S_FS).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn purge_keeping_the_last_two_keeps_the_files_they_use_on_moto() {
    purge(MOTO).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn purge_keeping_the_last_two_keeps_the_files_they_use_on_fake_gcs() {
    purge(FAKE_GCS).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn purge_keeping_the_last_two_keeps_the_files_they_use_on_azurite() {
    purge(AZURITE).await;
}

// ---------------------------------------------------------------------------------------------
// 4. Resume after kill -9.

/// A backup killed (abort, as kill -9) right after its 5th file is journaled: listed as
/// incomplete and not restorable; run again, it completes, stores only what was missing (the
/// files already stored are not written again), and verifies.
async fn killed_and_resumed(kind: BackendKind) {
    let cluster = solo();
    let node = &cluster.nodes[0];
    let session = cluster.session().await;
    let ks = unique_name("be_kill");
    dataset::load(&session, cluster, &ks, 1, &dataset::Shape::small()).await;
    let backend = Backend::start(kind);
    let at = backend.location();
    let _turn = serial();
    let args = ["--json", "backup", "--name", "nightly", "--backup-dir", &at, "-k", &ks, "--transfers", "1"];
    let killed = run(node, &backend, &[("CASSETTE_FAULT_KILL_AT", "file-journaled:5")], &args);
    assert_eq!(killed.status.signal(), Some(6), "the fault hook aborted the backup: {}", stderr(&killed));
    let after_kill = backend.stored().await;
    assert!(manifest_path(&after_kill, "nightly").is_none(), "no manifest after the kill");
    let stored_by_killed_run = data_files(&after_kill, "nightly", &ks);
    assert!(stored_by_killed_run.len() >= 5, "the killed run stored {} files", stored_by_killed_run.len());
    assert_eq!(listed(node, &backend), vec![("nightly".to_string(), false)], "listed as incomplete");
    let out = run(node, &backend, &[], &["restore", "--name", "nightly", "--backup-dir", &at, "-k", &ks]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("incomplete backup, cannot be restored"), "{}", stderr(&out));

    let requests_before = backend.server().filter(|_| kind == MOTO).map(|s| s.request_log().len());
    let report = json_ok(run(node, &backend, &[], &args), "the backup run again");
    assert_eq!((report["complete"].as_bool(), report["resumed"].as_bool()), (Some(true), Some(true)), "{report}");
    let after = backend.stored().await;
    let rewritten: Vec<&&String> =
        stored_by_killed_run.iter().filter(|(k, v)| after.get(k.as_str()) != Some(**v)).map(|(k, _)| k).collect();
    let kept = stored_by_killed_run.len() - rewritten.len();
    assert!(kept >= 5, "at least the 5 journaled files were kept, not stored again (rewritten: {rewritten:?})");
    let copied: u64 = report["tables"].as_array().unwrap().iter().map(|t| t["bytes_copied"].as_u64().unwrap()).sum();
    assert!(copied < report["totals"]["bytes"].as_u64().unwrap(), "the rerun stored less than the whole backup");
    if let (Some(n), Some(moto)) = (requests_before, backend.server()) {
        // Moto only: one PUT per data file the rerun stored, none for the ones already there.
        let newly_stored = data_files(&after, "nightly", &ks)
            .into_iter()
            .filter(|(k, v)| stored_by_killed_run.get(k) != Some(v))
            .count();
        let data_puts = moto
            .request_log()
            .into_iter()
            .skip(n)
            .filter(|r| r.method == "PUT" && r.path.contains(&format!("/nightly/{ks}/")))
            .count();
        assert_eq!(data_puts, newly_stored, "moto: the rerun PUT only the files that were missing");
    }
    let (code, verified) = verify(node, &backend);
    assert_eq!(code, Some(0), "{verified}");
    assert_eq!(verified[0]["report"]["bad"].as_array().unwrap().len(), 0, "{verified}");
    assert!(node.nodetool(&["listsnapshots"]).lines().all(|l| !l.contains("cassette-")), "no snapshot is left");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_killed_mid_copy_stores_only_what_was_missing_when_run_again_on_a_directory() {
    killed_and_resumed(DIRECTORY).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_killed_mid_copy_stores_only_what_was_missing_when_run_again_on_s3s_fs() {
    killed_and_resumed(S3S_FS).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_killed_mid_copy_stores_only_what_was_missing_when_run_again_on_moto() {
    killed_and_resumed(MOTO).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_killed_mid_copy_stores_only_what_was_missing_when_run_again_on_fake_gcs() {
    killed_and_resumed(FAKE_GCS).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_killed_mid_copy_stores_only_what_was_missing_when_run_again_on_azurite() {
    killed_and_resumed(AZURITE).await;
}
