//! Encrypted and compressed repositories (`cassette repo init --encrypt --compress`), against
//! the real `solo` node and a real S3 server (s3s-fs): the stored bytes hide the rows, a
//! restore brings them back, a missing or wrong key and a damaged object are refused before
//! anything is touched, and a key rotation keeps every backup readable.

// One job per node: the job turn is held across awaits on purpose.
#![allow(clippy::await_holding_lock)]

mod common;

use std::path::Path;

use cassette_testkit::s3::{StoreKind, StoreServer};
use cassette_testkit::{dataset, unique_name};
use common::*;

/// A row value written in plain bytes: its table is stored uncompressed by Cassandra, so a
/// plain backup holds it as it is (checked), and an encrypted one must not.
const MARKER: &str = "plaintext-marker-7f3a9c";

fn holds_marker(root: &Path) -> Vec<String> {
    files_under(root).into_iter().filter(|p| holds_marker_file(p)).map(|p| p.display().to_string()).collect()
}

fn holds_marker_file(p: &Path) -> bool {
    std::fs::read(p).is_ok_and(|b| b.windows(MARKER.len()).any(|w| w == MARKER.as_bytes()))
}

fn key_file(dir: &Path, name: &str) -> (String, String) {
    let path = dir.join(name);
    let node = &solo().nodes[0];
    let out = cassette(node, &["--json", "key", "generate", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    (path.to_str().unwrap().to_owned(), v["fingerprint"].as_str().unwrap().to_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_encrypted_directory_repository_round_trips_is_checked_like_a_plain_one_and_follows_no_link() {
    let cluster = solo();
    let node = &cluster.nodes[0];
    let ks = unique_name("enc");
    let session = cluster.session().await;
    dataset::load(&session, cluster, &ks, 1, &dataset::Shape::small()).await;
    dataset::exec_schema(&session, &format!("ALTER TABLE {ks}.sessions WITH compression = {{'enabled': 'false'}}"))
        .await;
    dataset::exec(&session, &format!("INSERT INTO {ks}.sessions (id, user_name) VALUES (424242, '{MARKER}')")).await;
    cluster.flush(&ks);
    let before = dataset::dump_all(&session, &ks).await;

    let keys = tempfile::tempdir().unwrap();
    let (k1, fp1) = key_file(keys.path(), "k1");
    let (k2, fp2) = key_file(keys.path(), "k2");
    let plain = other_disk_dir();
    let sealed = other_disk_dir();
    let (plain_dir, dir) = (plain.path().to_str().unwrap(), sealed.path().to_str().unwrap());
    let _turn = serial();

    // The control: a plain backup holds the marker as it is.
    backup_ok(node, plain.path(), "plain", &["-k", &ks]);
    assert!(!holds_marker(plain.path()).is_empty(), "the plain backup holds the row value (the check can fail)");
    let _ = plain_dir;

    let out = cassette(node, &["repo", "init", "--encrypt", "--compress", "--key-file", &k1, "--backup-dir", dir]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains(&fp1), "{}", stdout(&out));

    // Without the key, nothing is written and the fingerprint wanted is named.
    let out = cassette(node, &["backup", "--name", "nokey", "-k", &ks, "--backup-dir", dir]);
    assert_eq!(out.status.code(), Some(2), "{}{}", stdout(&out), stderr(&out));
    assert!(stderr(&out).contains(&fp1), "{}", stderr(&out));
    assert!(manifests_under(sealed.path()).is_empty());

    // An encrypted directory on the data's filesystem is refused as a plain one is.
    let same = tempfile::tempdir_in(node.data_dirs[0].parent().unwrap()).unwrap();
    let same_dir = same.path().to_str().unwrap();
    let out = cassette(node, &["repo", "init", "--encrypt", "--key-file", &k1, "--backup-dir", same_dir]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let out = cassette(node, &["backup", "--name", "x", "-k", &ks, "--backup-dir", same_dir, "--key-file", &k1]);
    assert_eq!(out.status.code(), Some(4), "{}{}", stdout(&out), stderr(&out));
    assert!(stderr(&out).contains("--allow-same-disk"), "{}", stderr(&out));

    let first = backup_ok(node, sealed.path(), "enc-1", &["-k", &ks, "--key-file", &k1]);
    assert!(holds_marker(sealed.path()).is_empty(), "row value readable in {:?}", holds_marker(sealed.path()));
    let copied = |r: &serde_json::Value| -> u64 {
        r["tables"].as_array().unwrap().iter().map(|t| t["bytes_copied"].as_u64().unwrap()).sum()
    };
    assert!(copied(&first) > 0);
    // A second backup of unchanged SSTables stores nothing new.
    let second = backup_ok(node, sealed.path(), "enc-2", &["-k", &ks, "--key-file", &k1]);
    assert_eq!(copied(&second), 0, "{second}");

    let verify = cassette(node, &["verify", "--name", "enc-1", "--backup-dir", dir, "--key-file", &k1]);
    assert!(verify.status.success(), "{}{}", stdout(&verify), stderr(&verify));

    // Rows deleted, then restored through the key.
    dataset::exec(&session, &format!("TRUNCATE {ks}.sessions")).await;
    let restore = |extra: &[&str]| {
        let mut args = vec!["restore", "--name", "enc-1", "-k", &ks, "--backup-dir", dir];
        args.extend_from_slice(extra);
        cassette(node, &args)
    };
    // The wrong key, and no key: refused naming the key wanted, the live rows untouched.
    for extra in [vec!["--key-file", k2.as_str()], vec![]] {
        let out = restore(&extra);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {}{}", stdout(&out), stderr(&out));
        assert!(stderr(&out).contains(&fp1), "{extra:?}: {}", stderr(&out));
        assert!(!stderr(&out).contains("AGE-SECRET-KEY"), "a secret in an error");
    }
    let _ = fp2;
    let profiles_before = dataset::dump(&session, &ks, "profiles").await;
    assert!(!profiles_before.is_empty());

    let out = restore(&["--key-file", &k1]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(dataset::dump_all(&session, &ks).await, before, "every row back");

    // A flipped byte, then a cut end, in one stored SSTable: refused naming the object, and
    // the live rows (all back now) untouched.
    let data = files_under(sealed.path())
        .into_iter()
        .find(|p| p.to_string_lossy().contains("/enc-1/") && p.to_string_lossy().ends_with("-Data.db"))
        .expect("enc-1 stores a Data.db");
    let verify = || cassette(node, &["verify", "--name", "enc-1", "--backup-dir", dir, "--key-file", &k1]);
    refused_when_damaged(&data, || restore(&["--key-file", &k1]), verify, &session, &ks, &before).await;

    // A link planted in the repository, towards files outside it: deleting the backup it sits
    // in removes the link, never what it points at.
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("nb-9-big-Data.db"), b"live").unwrap();
    let planted = data.parent().unwrap().join("planted");
    std::os::unix::fs::symlink(outside.path(), &planted).unwrap();
    let out = cassette(node, &["delete", "--name", "enc-1", "--backup-dir", dir, "--key-file", &k1]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(
        std::fs::read(outside.path().join("nb-9-big-Data.db")).unwrap(),
        b"live",
        "the link's target is untouched"
    );
    let listed = cassette(node, &["--json", "list", "--backup-dir", dir, "--key-file", &k1]);
    assert!(listed.status.success(), "{}{}", stdout(&listed), stderr(&listed));
    assert!(!stdout(&listed).contains("\"enc-1\""), "{}", stdout(&listed));
}

/// On S3 (s3s-fs keeps each object as a file, so the bucket can be searched and damaged): the
/// stored bytes hide a row value a plain backup shows, a second backup stores nothing new, a
/// restore brings the rows back; no key, the wrong key, a flipped byte and a cut end are each
/// refused before anything is touched, naming the key or the object.
#[tokio::test(flavor = "multi_thread")]
async fn an_encrypted_compressed_repository_hides_rows_restores_them_and_refuses_other_keys_and_damage() {
    let cluster = solo();
    let ks = unique_name("enc");
    let session = cluster.session().await;
    dataset::load(&session, cluster, &ks, 1, &dataset::Shape::small()).await;
    dataset::exec_schema(&session, &format!("ALTER TABLE {ks}.sessions WITH compression = {{'enabled': 'false'}}"))
        .await;
    dataset::exec(&session, &format!("INSERT INTO {ks}.sessions (id, user_name) VALUES (424242, '{MARKER}')")).await;
    cluster.flush(&ks);
    let before = dataset::dump_all(&session, &ks).await;

    let keys = tempfile::tempdir().unwrap();
    let (k1, fp1) = key_file(keys.path(), "k1");
    let (k2, _) = key_file(keys.path(), "k2");
    let s3 = StoreServer::start(StoreKind::S3sFs);
    let (plain, url) = (s3.url("plain"), s3.url("sealed"));
    let state = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| on_store(&s3, state.path(), args);
    let bucket_files =
        || -> Vec<std::path::PathBuf> { s3.object_files().into_iter().chain(s3.internal_files()).collect() };
    let _turn = serial();

    // The control: a plain backup holds the marker as it is.
    json_of(&run(&["--json", "backup", "--name", "plain", "-k", &ks, "--backup-dir", &plain]), "plain backup");
    let in_plain = bucket_files().into_iter().filter(|p| holds_marker_file(p)).count();
    assert!(in_plain > 0, "the plain backup holds the row value (the check can fail)");

    let out = run(&["repo", "init", "--encrypt", "--compress", "--key-file", &k1, "--backup-dir", &url]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains(&fp1), "{}", stdout(&out));

    // Without the key, nothing is written and the fingerprint wanted is named.
    let out = run(&["backup", "--name", "nokey", "-k", &ks, "--backup-dir", &url]);
    assert_eq!(out.status.code(), Some(2), "{}{}", stdout(&out), stderr(&out));
    assert!(stderr(&out).contains(&fp1), "{}", stderr(&out));
    assert!(!bucket_files().iter().any(|p| p.to_string_lossy().contains("/nokey/")), "nothing stored without the key");

    let first = json_of(
        &run(&["--json", "backup", "--name", "enc-1", "-k", &ks, "--backup-dir", &url, "--key-file", &k1]),
        "backup enc-1",
    );
    assert!(bytes_copied(&first) > 0, "{first}");
    let readable: Vec<_> = bucket_files().into_iter().filter(|p| holds_marker_file(p)).collect();
    assert_eq!(readable.len(), in_plain, "only the plain backup shows the row value: {readable:?}");
    // A second backup of unchanged SSTables stores nothing new.
    let second = json_of(
        &run(&["--json", "backup", "--name", "enc-2", "-k", &ks, "--backup-dir", &url, "--key-file", &k1]),
        "backup enc-2",
    );
    assert_eq!(bytes_copied(&second), 0, "{second}");

    let verify = run(&["verify", "--name", "enc-1", "--backup-dir", &url, "--key-file", &k1]);
    assert!(verify.status.success(), "{}{}", stdout(&verify), stderr(&verify));

    // Rows deleted, then restored through the key.
    dataset::exec(&session, &format!("TRUNCATE {ks}.sessions")).await;
    let truncated = dataset::dump_all(&session, &ks).await;
    let restore = |extra: &[&str]| {
        let mut args = vec!["restore", "--name", "enc-1", "-k", &ks, "--backup-dir", &url];
        args.extend_from_slice(extra);
        run(&args)
    };
    // The wrong key, and no key: refused naming the key wanted, the live rows untouched.
    for extra in [vec!["--key-file", k2.as_str()], vec![]] {
        let out = restore(&extra);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {}{}", stdout(&out), stderr(&out));
        assert!(stderr(&out).contains(&fp1), "{extra:?}: {}", stderr(&out));
        assert!(!stderr(&out).contains("AGE-SECRET-KEY"), "a secret in an error");
        assert_eq!(dataset::dump_all(&session, &ks).await, truncated, "{extra:?}: the live rows are untouched");
    }

    let out = restore(&["--key-file", &k1]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(dataset::dump_all(&session, &ks).await, before, "every row back");

    // A flipped byte, then a cut end, in one stored SSTable: refused naming the object, and
    // the live rows (all back now) untouched.
    let data = s3
        .object_files()
        .into_iter()
        .find(|p| p.to_string_lossy().contains("/enc-1/") && p.to_string_lossy().ends_with("-Data.db"))
        .expect("enc-1 stores a Data.db");
    let verify = || run(&["verify", "--name", "enc-1", "--backup-dir", &url, "--key-file", &k1]);
    refused_when_damaged(&data, || restore(&["--key-file", &k1]), verify, &session, &ks, &before).await;
}

/// On S3 (s3s-fs, which keeps each object as a file, so the bucket can be searched): the
/// round trip, then a key rotation. Backups made before and after it restore with both keys
/// given; with the new key only, the old backup is refused naming the old key, and nothing is
/// touched.
#[tokio::test(flavor = "multi_thread")]
async fn on_s3_an_encrypted_repository_round_trips_and_its_key_rotates() {
    let cluster = solo();
    let session = cluster.session().await;
    let ks = unique_name("enc_s3");
    dataset::load(&session, cluster, &ks, 1, &dataset::Shape::small()).await;
    dataset::exec_schema(&session, &format!("ALTER TABLE {ks}.sessions WITH compression = {{'enabled': 'false'}}"))
        .await;
    dataset::exec(&session, &format!("INSERT INTO {ks}.sessions (id, user_name) VALUES (434343, '{MARKER}')")).await;
    cluster.flush(&ks);
    let before = dataset::dump_all(&session, &ks).await;

    let keys = tempfile::tempdir().unwrap();
    let (k1, fp1) = key_file(keys.path(), "k1");
    let (k2, fp2) = key_file(keys.path(), "k2");
    let s3 = StoreServer::start(StoreKind::S3sFs);
    let url = s3.url("sealed");
    let state = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| on_store(&s3, state.path(), args);
    let _turn = serial();

    let out = run(&["repo", "init", "--encrypt", "--compress", "--key-file", &k1, "--backup-dir", &url]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let b1 = json_of(
        &run(&["--json", "backup", "--name", "s3-1", "-k", &ks, "--backup-dir", &url, "--key-file", &k1]),
        "backup s3-1",
    );
    assert!(bytes_copied(&b1) > 0, "{b1}");
    let stored: Vec<_> = s3.object_files().into_iter().chain(s3.internal_files()).collect();
    assert!(stored.len() > 5, "the bucket holds the backup: {stored:?}");
    let readable: Vec<_> = stored.iter().filter(|p| holds_marker_file(p)).collect();
    assert!(readable.is_empty(), "the row value is readable in {readable:?}");
    let again = json_of(
        &run(&["--json", "backup", "--name", "s3-1b", "-k", &ks, "--backup-dir", &url, "--key-file", &k1]),
        "backup s3-1b",
    );
    assert_eq!(bytes_copied(&again), 0, "unchanged SSTables are stored once: {again}");

    // Rotation: needs the current key; afterwards new objects are for k2, and k1 still reads.
    let out = run(&["repo", "rotate-key", "--new-key-file", &k2, "--backup-dir", &url, "--key-file", &k2]);
    assert_eq!(out.status.code(), Some(2), "rotating without the current key: {}{}", stdout(&out), stderr(&out));
    assert!(stderr(&out).contains(&fp1), "{}", stderr(&out));
    let out = run(&["repo", "rotate-key", "--new-key-file", &k2, "--backup-dir", &url, "--key-file", &k1]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains(&fp2), "{}", stdout(&out));

    dataset::write_round(&session, &ks, 9, &dataset::Shape { rounds: 1, rows_per_round: 200, payload_bytes: 64 }).await;
    cluster.flush(&ks);
    let after = dataset::dump_all(&session, &ks).await;
    assert_ne!(after, before);
    let out = run(&["backup", "--name", "s3-2", "-k", &ks, "--backup-dir", &url, "--key-file", &k1]);
    assert_eq!(out.status.code(), Some(2), "a backup without the new key: {}{}", stdout(&out), stderr(&out));
    assert!(stderr(&out).contains(&fp2), "{}", stderr(&out));
    let both = ["--key-file", k1.as_str(), "--key-file", k2.as_str()];
    let mut args = vec!["--json", "backup", "--name", "s3-2", "-k", &ks, "--backup-dir", &url];
    args.extend_from_slice(&both);
    let b2 = json_of(&run(&args), "backup s3-2");
    assert!(bytes_copied(&b2) > 0, "{b2}");

    // With k2 only, the k1 backup is refused naming k1, before anything is touched.
    let out = run(&["restore", "--name", "s3-1", "-k", &ks, "--backup-dir", &url, "--key-file", &k2]);
    assert_eq!(out.status.code(), Some(2), "{}{}", stdout(&out), stderr(&out));
    assert!(stderr(&out).contains(&fp1), "{}", stderr(&out));
    assert_eq!(dataset::dump_all(&session, &ks).await, after, "the live rows are untouched");

    // With both keys, each backup restores its own rows.
    for (name, rows) in [("s3-1", &before), ("s3-2", &after)] {
        let mut args = vec!["restore", "--name", name, "-k", &ks, "--backup-dir", &url];
        args.extend_from_slice(&both);
        let out = run(&args);
        assert!(out.status.success(), "restore {name}: {}{}", stdout(&out), stderr(&out));
        assert_eq!(&dataset::dump_all(&session, &ks).await, rows, "restore {name}: its rows");
    }
}

/// Damages the stored object `data` twice, a flipped byte then a cut end: each time `restore`
/// fails (exit 1) naming it, the live rows of `ks` stay `before`, and `verify` finds it. The
/// object is whole again afterwards.
async fn refused_when_damaged(
    data: &Path,
    restore: impl Fn() -> std::process::Output,
    verify: impl Fn() -> std::process::Output,
    session: &scylla::client::session::Session,
    ks: &str,
    before: &[(String, Vec<String>)],
) {
    let name = data.file_name().unwrap().to_string_lossy().into_owned();
    let good = std::fs::read(data).unwrap();
    let mut flipped = good.clone();
    let at = flipped.len() / 2;
    flipped[at] ^= 0x01;
    let cut = good[..good.len() - 7].to_vec();
    for (damage, bytes) in [("a flipped byte", flipped), ("a truncated object", cut)] {
        std::fs::write(data, &bytes).unwrap();
        let out = restore();
        assert_eq!(out.status.code(), Some(1), "{damage}: {}{}", stdout(&out), stderr(&out));
        assert!(stderr(&out).contains(&name), "{damage}: the object is named: {}", stderr(&out));
        assert_eq!(dataset::dump_all(session, ks).await, before, "{damage}: the live rows are untouched");
        let verify = verify();
        assert!(!verify.status.success(), "{damage}: verify finds it");
        assert!(
            stdout(&verify).contains(&name) || stderr(&verify).contains(&name),
            "{damage}: {}{}",
            stdout(&verify),
            stderr(&verify)
        );
    }
    std::fs::write(data, &good).unwrap();
}
