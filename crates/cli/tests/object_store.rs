//! What only backups on object storage do, against the real Cassandra node and real
//! object-storage servers started on loopback by the test: S3 (s3s-fs), Azure Blob (Azurite,
//! `az://`) and Google Cloud Storage (fake-gcs-server, `gs://`). The behaviours every kind of
//! repository shares (round trip, corruption, purge, resume after kill -9) run on a directory
//! and on every store in backends.rs; what the tests look at on the server side they read
//! through the server's own API.
// The job turn (a std mutex) is held for the whole test, across awaits, on purpose.
#![allow(clippy::await_holding_lock)]

mod common;

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

/// What only an object store does, on one server per URL scheme (the behaviours every kind of
/// repository shares are in backends.rs): a deleted backup whose objects a later one references
/// keeps them, under a tombstone that keeps its name from being reused; a restore stages next
/// to the node's data and empties the staging area; a quick verify sees presence and size only;
/// a bucket that does not exist is named.
async fn references_staging_and_names(kind: StoreKind) {
    let cluster = solo();
    let node = &cluster.nodes[0];
    let session = cluster.session().await;
    let ks = unique_name("s3_refs");
    dataset::load(&session, cluster, &ks, 1, &dataset::Shape::small()).await;
    let s3 = StoreServer::start(kind);
    let state = tempfile::tempdir().unwrap();
    let url = s3.url("backups");
    let _turn = serial();

    let first = json_ok(
        run(node, &s3, state.path(), &[], &["--json", "backup", "--name", "b1", "--backup-dir", &url, "-k", &ks]),
        "backup b1",
    );
    assert!(first["path"].as_str().unwrap().starts_with(&format!("{url}/")), "{first}");
    let files = first["totals"]["files"].as_u64().unwrap();
    node.nodetool(&["disableautocompaction", &ks]);
    dataset::write_round(&session, &ks, 7, &dataset::Shape { rounds: 1, rows_per_round: 100, payload_bytes: 32 }).await;
    cluster.flush(&ks);
    let before = dataset::dump_all(&session, &ks).await;
    let second = json_ok(
        run(node, &s3, state.path(), &[], &["--json", "backup", "--name", "b2", "--backup-dir", &url, "-k", &ks]),
        "backup b2",
    );
    let total = second["totals"]["files"].as_u64().unwrap();

    // b2 references b1's objects: deleting b1 keeps them, and its name is not reused meanwhile.
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

    // The restore stages next to the node's data, and empties the staging area after each table.
    dataset::exec(&session, &format!("TRUNCATE {ks}.readings")).await;
    let restored = json_ok(
        run(node, &s3, state.path(), &[], &["--json", "restore", "--name", "b2", "--backup-dir", &url, "-k", &ks]),
        "restore b2",
    );
    assert_eq!(restored["complete"], true, "{restored}");
    assert_eq!(dataset::dump_all(&session, &ks).await, before, "b2 restores every row after b1 is gone");
    let staging = node.data_dirs[0].parent().unwrap().join("cassette-restore-staging");
    assert!(files_under(&staging).is_empty(), "staging is emptied after each table");

    // A same-size change goes unseen by a quick verification (presence and size only).
    let objects = s3.objects().await;
    let victim = objects
        .keys()
        .find(|k| k.contains("/b2/") && k.contains("/readings") && k.ends_with("Data.db"))
        .expect("a stored Data.db of readings in b2");
    let mut bytes = s3.get(victim).await;
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x10;
    s3.put(victim, bytes).await;
    let quick = run(node, &s3, state.path(), &[], &["--json", "verify", "--quick", "--backup-dir", &url]);
    assert!(quick.status.success(), "{}", stdout(&quick));

    let no_bucket = format!("{}:///nobucket", kind.scheme());
    let bad_url = run(node, &s3, state.path(), &[], &["list", "--backup-dir", &no_bucket]);
    assert_eq!(bad_url.status.code(), Some(2), "{}", stderr(&bad_url));
    assert!(stderr(&bad_url).contains("no bucket"), "{}", stderr(&bad_url));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_backup_keeps_what_a_later_one_references_and_its_name_on_s3s_fs() {
    references_staging_and_names(StoreKind::S3sFs).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_backup_keeps_what_a_later_one_references_and_its_name_on_fake_gcs() {
    references_staging_and_names(StoreKind::FakeGcs).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_backup_keeps_what_a_later_one_references_and_its_name_on_azurite() {
    references_staging_and_names(StoreKind::Azurite).await;
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
    // The first request (the repository format file, then the listing) is the one refused.
    assert!(err.contains("az://cassette/x") && err.contains("check the credentials"), "{err}");
    assert_eq!(err.matches("<Code>AuthorizationFailure</Code>").count(), 1, "the server's answer, once: {err}");
    assert!(!err.contains(wrong_key) && !err.contains(&s3.secret_key), "no key is printed: {err}");
}
