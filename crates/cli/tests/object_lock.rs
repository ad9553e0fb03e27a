//! Locked backups (`backup --object-lock-days` / `--object-lock-until`), against the real `solo`
//! node and moto's S3 server, which implements S3 Object Lock: every object a locked backup
//! writes carries its retention, `delete` and `purge` refuse the backup until the lock ends
//! (and the server refuses to delete a locked object version whatever tool asks), a locked
//! backup reuses only objects locked at least as long, and once the lock has passed the backup
//! is deleted as any other. Repositories that cannot lock (a directory, Azure Blob, GCS) are
//! refused before anything is stored.

// One job per node: the job turn is held across awaits on purpose.
#![allow(clippy::await_holding_lock)]

mod common;

use std::time::Duration;

use cassette_testkit::s3::{StoreKind, StoreServer};
use cassette_testkit::{dataset, unique_name};
use chrono::{DateTime, Utc};
use common::*;

const LOCKED_BUCKET: &str = "cassette-locked";

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The objects of backup `name` in the locked bucket, by key, with their sizes.
async fn objects_of(s3: &StoreServer, name: &str) -> Vec<(String, u64)> {
    // <prefix>/<cluster>/<host ID>/<backup>/...
    let objects = s3.objects_of(LOCKED_BUCKET).await;
    objects.into_iter().filter(|(k, _)| k.split('/').nth(3) == Some(name)).map(|(k, m)| (k, m.size)).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_locked_backup_survives_delete_and_purge_until_its_lock_ends() {
    let cluster = solo();
    let session = cluster.session().await;
    let ks = unique_name("locked");
    dataset::load(&session, cluster, &ks, 1, &dataset::Shape::small()).await;
    // One SSTable above the 5 MiB part size, so that a multipart upload is locked too.
    dataset::exec_schema(&session, &format!("ALTER TABLE {ks}.readings WITH compression = {{'enabled': 'false'}}"))
        .await;
    dataset::write_round(&session, &ks, 7, &dataset::Shape { rounds: 1, rows_per_round: 3000, payload_bytes: 4096 })
        .await;
    cluster.flush(&ks);
    let rows = dataset::dump_all(&session, &ks).await;

    let s3 = StoreServer::start(StoreKind::Moto);
    s3.create_locked_bucket(LOCKED_BUCKET);
    let url = format!("s3://{LOCKED_BUCKET}/lk");
    let state = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| on_store(&s3, state.path(), args);
    // `cassette --json backup ARGS -k <ks> --backup-dir <url>`, which must succeed.
    let backup = |args: &[&str]| {
        let mut all = vec!["--json", "backup", "-k", &ks, "--backup-dir", &url];
        all.extend_from_slice(args);
        json_of(&run(&all), &format!("backup {args:?}"))
    };
    let list_json = || json_of(&run(&["--json", "list", "--backup-dir", &url]), "list");
    let _turn = serial();

    // Where no lock can be kept, nothing is stored: a bucket without Object Lock, a directory,
    // Azure Blob and GCS.
    let plain_bucket = s3.url("plain");
    let out = run(&["backup", "--name", "nolock", "-k", &ks, "--backup-dir", &plain_bucket, "--object-lock-days", "1"]);
    assert_eq!(out.status.code(), Some(2), "{}{}", stdout(&out), stderr(&out));
    assert!(stderr(&out).contains("Object Lock enabled"), "{}", stderr(&out));
    let stored = s3.objects().await;
    assert!(!stored.keys().any(|k| k.ends_with("manifest.json")), "{stored:?}");
    let dir = other_disk_dir();
    for location in [dir.path().to_str().unwrap(), "az://container/p", "gs://bucket/p"] {
        let out = run(&["backup", "--name", "nolock", "-k", &ks, "--backup-dir", location, "--object-lock-days", "1"]);
        assert_eq!(out.status.code(), Some(2), "{location}: {}{}", stdout(&out), stderr(&out));
        assert!(stderr(&out).contains("cannot lock backups"), "{location}: {}", stderr(&out));
    }
    assert!(manifests_under(dir.path()).is_empty());
    let out = run(&[
        "backup",
        "--name",
        "past",
        "-k",
        &ks,
        "--backup-dir",
        &url,
        "--object-lock-until",
        "2001-01-01T00:00:00Z",
    ]);
    assert_eq!(out.status.code(), Some(2), "a lock in the past: {}{}", stdout(&out), stderr(&out));

    // b1 is locked for a short while, b2 for longer, b3 as long as b1.
    let t0 = Utc::now();
    let (short, long) = (t0 + chrono::Duration::seconds(40), t0 + chrono::Duration::hours(1));
    let b1 = backup(&["--name", "b1", "--object-lock-until", &rfc3339(short)]);
    assert!(bytes_copied(&b1) > 0, "{b1}");

    // Every object of b1 put whole (SSTables, schema, manifest) is under GOVERNANCE retention
    // until `short`, as the server reports it. The one above the part size went up as a
    // multipart upload, locked too (moto 5.2 accepts it, but drops the lock headers of
    // CreateMultipartUpload, which AWS S3 and MinIO keep: its retention is not checked here).
    let objects = objects_of(&s3, "b1").await;
    let part_size = 5 << 20;
    assert!(
        objects.iter().any(|(k, size)| k.ends_with("Data.db") && *size > part_size),
        "a multipart object: {objects:?}"
    );
    assert!(objects.iter().any(|(k, _)| k.ends_with("manifest.json")), "{objects:?}");
    for (key, _) in objects.iter().filter(|(_, size)| *size <= part_size) {
        let (mode, until) = s3.retention(LOCKED_BUCKET, key).unwrap_or_else(|| panic!("{key} has no retention"));
        assert_eq!(mode, "GOVERNANCE", "{key}");
        let until: DateTime<Utc> = until.parse().unwrap_or_else(|e| panic!("{key}: retain-until {until}: {e}"));
        assert_eq!(until.timestamp(), short.timestamp(), "{key}");
    }
    // The server itself refuses to delete a locked version, whoever asks.
    let manifest_key = objects.iter().find(|(k, _)| k.ends_with("manifest.json")).unwrap().0.clone();
    let version = s3.versions(LOCKED_BUCKET, &manifest_key).remove(0);
    assert_eq!(s3.delete_version(LOCKED_BUCKET, &manifest_key, &version), 403, "a locked version cannot be deleted");

    // `list` shows the lock; `delete` refuses, exit 3, and removes nothing.
    let listed = list_json();
    let entry = listed.as_array().unwrap().iter().find(|b| b["name"] == "b1").unwrap().clone();
    assert_eq!(entry["object_lock"]["mode"], "governance", "{entry}");
    assert_eq!(entry["object_lock"]["until"], rfc3339(short), "{entry}");
    let text = stdout(&run(&["list", "--backup-dir", &url]));
    assert!(text.contains(&format!("locked until {}", rfc3339(short))), "{text}");
    let out = run(&["delete", "--name", "b1", "--backup-dir", &url]);
    assert_eq!(out.status.code(), Some(3), "{}{}", stdout(&out), stderr(&out));
    assert!(stderr(&out).contains(&format!("locked until {}", rfc3339(short))), "{}", stderr(&out));
    assert_eq!(objects_of(&s3, "b1").await, objects, "the refused delete removed nothing");

    // b2's lock is longer than b1's: it reuses none of b1's objects. b3's is no longer than
    // b2's: it stores nothing new.
    let b2 = backup(&["--name", "b2", "--object-lock-until", &rfc3339(long)]);
    assert_eq!(bytes_copied(&b2), bytes_copied(&b1), "a longer lock stores every file again: {b2}");
    let b3 = backup(&["--name", "b3", "--object-lock-until", &rfc3339(short)]);
    assert_eq!(bytes_copied(&b3), 0, "b2's objects are locked long enough for b3: {b3}");
    // b3 is locked until its earliest object: its own (manifest, schema) end with `short`.
    assert_eq!(b3["resumed"], false, "{b3}");
    let listed = list_json();
    let lock_of =
        |name: &str| listed.as_array().unwrap().iter().find(|b| b["name"] == name).unwrap()["object_lock"].clone();
    assert_eq!(lock_of("b3")["until"], rfc3339(short), "{listed}");
    assert_eq!(lock_of("b2")["until"], rfc3339(long), "{listed}");

    // Purge keeps what the policy would delete while it is locked, and says why.
    let purged = json_of(&run(&["--json", "purge", "--keep-last", "1", "--backup-dir", &url]), "purge");
    let planned: Vec<serde_json::Value> =
        purged["nodes"].as_array().unwrap().iter().flat_map(|n| n["backups"].as_array().unwrap().clone()).collect();
    assert_eq!(purged["deleted_backups"], 0, "{purged}");
    for name in ["b1", "b2"] {
        let b = planned.iter().find(|b| b["name"] == name).unwrap_or_else(|| panic!("{name} in {purged}"));
        assert_eq!((b["keep"].as_bool(), b["reason"].as_str()), (Some(true), Some("locked")), "{b}");
        assert!(b["why"].as_str().unwrap().contains("locked until"), "{b}");
    }
    assert_eq!(objects_of(&s3, "b1").await, objects, "purge removed nothing of b1");

    // The locked backup restores as any other.
    let out = run(&["restore", "--name", "b3", "-k", &ks, "--backup-dir", &url]);
    assert!(out.status.success(), "restore b3: {}{}", stdout(&out), stderr(&out));
    assert_eq!(dataset::dump_all(&session, &ks).await, rows, "restore b3: its rows");

    // Once b1's lock has passed, it is deleted as any other backup; b2 still is not.
    let wait = (short - Utc::now()).to_std().unwrap_or_default() + Duration::from_secs(2);
    tokio::time::sleep(wait).await;
    let out = run(&["delete", "--name", "b1", "--backup-dir", &url]);
    assert!(out.status.success(), "delete b1 after its lock: {}{}", stdout(&out), stderr(&out));
    let listed = list_json();
    // (moto's delimited listing still names b1's prefix, from its delete markers, where AWS S3
    // names none: only complete backups are compared.)
    let complete: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["complete"] == true)
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    assert_eq!(complete, ["b2", "b3"], "{listed}");
    assert_eq!(objects_of(&s3, "b1").await, [], "b1's objects are deleted");
    let out = run(&["delete", "--name", "b2", "--backup-dir", &url]);
    assert_eq!(out.status.code(), Some(3), "b2 is still locked: {}{}", stdout(&out), stderr(&out));

    // --object-lock-days 1: new objects are locked a day longer than asked, so that the next
    // day's backups reference them rather than store them again.
    let day = chrono::Duration::days(1);
    let before = Utc::now();
    let b4 = backup(&["--name", "b4", "--object-lock-days", "1"]);
    let table_bytes: u64 = b4["tables"].as_array().unwrap().iter().map(|t| t["bytes"].as_u64().unwrap()).sum();
    assert_eq!(bytes_copied(&b4), table_bytes, "the stored copies are locked for less than a day: {b4}");
    let listed = list_json();
    let b4_lock = listed.as_array().unwrap().iter().find(|b| b["name"] == "b4").unwrap()["object_lock"].clone();
    let until: DateTime<Utc> = b4_lock["until"].as_str().unwrap().parse().unwrap();
    assert!(until >= before + day * 2 - chrono::Duration::seconds(1) && until <= Utc::now() + day * 2, "{until}");
    let b5 = backup(&["--name", "b5", "--object-lock-days", "1"]);
    assert_eq!(bytes_copied(&b5), 0, "b4's objects are locked long enough for b5: {b5}");
}

/// The cluster API locks a backup (`objectLockDays`, `objectLockMode`) the same on every node,
/// and so does a schedule on each of its runs; options that cannot lock are refused before
/// anything runs.
#[tokio::test(flavor = "multi_thread")]
async fn cluster_backups_and_scheduled_ones_are_locked_through_the_api() {
    use common::services::{Services, TOKEN};
    let cluster = solo();
    let session = cluster.session().await;
    let ks = unique_name("apilock");
    dataset::load(&session, cluster, &ks, 1, &dataset::Shape::small()).await;
    cluster.flush(&ks);
    let s3 = StoreServer::start(StoreKind::Moto);
    s3.create_locked_bucket(LOCKED_BUCKET);
    let url = format!("s3://{LOCKED_BUCKET}/api");
    let state = tempfile::tempdir().unwrap();
    let mut env = s3.env();
    env.push(("CASSETTE_STATE_DIR".into(), state.path().to_str().unwrap().into()));
    let _turn = serial();
    let s = Services::start_on(cluster, std::path::Path::new(&url), Vec::new(), env, Vec::new());
    let lock_of = |name: &str| -> serde_json::Value {
        let listed = json_of(&on_store(&s3, state.path(), &["--json", "list", "--backup-dir", &url]), "list");
        listed.as_array().unwrap().iter().find(|b| b["name"] == name).unwrap_or_else(|| panic!("{name}: {listed}"))
            ["object_lock"]
            .clone()
    };

    for (query, says) in [
        ("backup/start?name=x&objectLockDays=0", "objectLockDays=0"),
        ("backup/start?name=x&objectLockMode=compliance", "without objectLockDays"),
        ("restore/start?name=x&objectLockDays=3", "option of a backup"),
    ] {
        let (code, body) = s.post(&format!("/cluster/{query}")).await;
        assert_eq!(code, 400, "{query}: {body}");
        assert!(body.to_string().contains(says), "{query}: {body}");
    }

    let before = Utc::now();
    let (code, body) = s
        .post(&format!(
            "/cluster/backup/start?name=apilocked&keyspaces={ks}&objectLockDays=2&objectLockMode=compliance"
        ))
        .await;
    assert_eq!(code, 200, "{body}");
    let _ = s.wait("backup", |_| {}).await;
    let jobs = s.get("/v1/jobs").await;
    assert_eq!(jobs[0]["state"], "succeeded", "{jobs:#}");
    assert_eq!(jobs[0]["params"]["objectLockDays"], 2, "the job records its lock: {jobs:#}");
    // Two days, and up to two more so that the next days' backups reference its objects.
    let lock = lock_of("apilocked");
    assert_eq!(lock["mode"], "compliance", "{lock}");
    let until: DateTime<Utc> = lock["until"].as_str().unwrap().parse().unwrap();
    let days = chrono::Duration::days(4);
    assert!(until >= before + days - chrono::Duration::seconds(1) && until <= Utc::now() + days, "{until}");
    let out = on_store(&s3, state.path(), &["delete", "--name", "apilocked", "--backup-dir", &url]);
    assert_eq!(out.status.code(), Some(3), "a locked backup is refused: {}{}", stdout(&out), stderr(&out));

    let add = |body: serde_json::Value| {
        let req = s.http.post(s.url("/v1/schedules")).bearer_auth(TOKEN).json(&body);
        async move {
            let resp = req.send().await.unwrap();
            (resp.status().as_u16(), resp.text().await.unwrap())
        }
    };
    let (code, body) = add(serde_json::json!({"name": "l", "cron": "0 2 * * *", "objectLockDays": 40000})).await;
    assert!(code == 400 && body.contains("objectLockDays=40000"), "{code} {body}");
    let (code, body) =
        add(serde_json::json!({"name": "locked", "cron": "*/5 * * * * *", "keyspaces": [ks], "objectLockDays": 1}))
            .await;
    assert_eq!(code, 201, "{body}");
    let run = s.first_scheduled_run("locked", Duration::from_secs(90)).await;
    let id = serde_json::from_str::<serde_json::Value>(&body).unwrap()["id"].as_i64().unwrap();
    let gone = s.http.delete(s.url(&format!("/v1/schedules/{id}"))).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(gone.status().as_u16(), 204);
    assert_eq!(run["state"], "succeeded", "{run:#}");
    let lock = lock_of(run["backupName"].as_str().unwrap());
    assert_eq!(lock["mode"], "governance", "the default mode: {lock}");
    let until: DateTime<Utc> = lock["until"].as_str().unwrap().parse().unwrap();
    assert!(until >= before + chrono::Duration::days(2) - chrono::Duration::seconds(1), "{until}");
}
