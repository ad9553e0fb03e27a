//! Encrypted and compressed repositories (`cassette repo init --encrypt --compress`), against
//! the real `solo` node: the stored bytes hide the rows, a restore brings them back, and a
//! missing or wrong key is refused before anything is touched.

// One job per node: the job turn is held across awaits on purpose.
#![allow(clippy::await_holding_lock)]

mod common;

use std::path::Path;

use cassette_testkit::{dataset, unique_name};
use common::*;

/// A row value written in plain bytes: its table is stored uncompressed by Cassandra, so a
/// plain backup holds it as it is (checked), and an encrypted one must not.
const MARKER: &str = "plaintext-marker-7f3a9c";

fn holds_marker(root: &Path) -> Vec<String> {
    files_under(root)
        .into_iter()
        .filter(|p| std::fs::read(p).is_ok_and(|b| b.windows(MARKER.len()).any(|w| w == MARKER.as_bytes())))
        .map(|p| p.display().to_string())
        .collect()
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
async fn an_encrypted_compressed_directory_repository_hides_rows_restores_them_and_refuses_other_keys() {
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
}
