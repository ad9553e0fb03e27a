//! `cassette verify` on real backups: each kind of damage is named, and only damage fails it.

// Tests hold the node's turn (`serial()`) across awaits on purpose: one job per node.
#![allow(clippy::await_holding_lock)]

mod common;

use cassette_testkit::{dataset, unique_name};
use common::*;

/// Replaces a stored file by a modified copy (so the hard-linked copies of other backups and
/// the node's files are untouched).
fn damage(path: &std::path::Path, change: impl FnOnce(&mut Vec<u8>)) {
    let mut bytes = std::fs::read(path).unwrap();
    change(&mut bytes);
    std::fs::remove_file(path).unwrap();
    std::fs::write(path, bytes).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_names_a_flipped_bit_a_truncated_file_a_missing_file_and_a_missing_manifest() {
    let cluster = solo();
    let node = &cluster.nodes[0];
    let session = cluster.session().await;
    let ks = unique_name("verify");
    dataset::load(&session, cluster, &ks, 1, &dataset::Shape::small()).await;
    let root = other_disk_dir();
    let r = root.path().to_str().unwrap();
    let _turn = serial();
    backup_ok(node, root.path(), "good", &["-k", &ks]);
    backup_ok(node, root.path(), "damaged", &["-k", &ks]);
    backup_ok(node, root.path(), "unfinished", &["-k", &ks]);

    let out = cassette(node, &["verify", "--backup-dir", r]);
    assert!(out.status.success(), "intact backups verify:\n{}{}", stdout(&out), stderr(&out));
    assert_eq!(stdout(&out).matches("OK ").count(), 3, "{}", stdout(&out));

    let backup = manifests_under(root.path()).into_iter().find(|m| m.parent().unwrap().ends_with("damaged")).unwrap();
    let backup = backup.parent().unwrap();
    let table = backup.join(&ks).join("readings");
    let mut data: Vec<_> = std::fs::read_dir(&table)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with("-Data.db"))
        .collect();
    data.sort();
    damage(&data[0], |b| {
        let mid = b.len() / 2;
        b[mid] ^= 0x01; // one flipped bit, same size
    });
    damage(&data[1], |b| b.truncate(b.len() - 7));
    std::fs::remove_file(&data[2]).unwrap();
    let unfinished =
        manifests_under(root.path()).into_iter().find(|m| m.parent().unwrap().ends_with("unfinished")).unwrap();
    std::fs::remove_file(&unfinished).unwrap();

    let out = cassette(node, &["verify", "--backup-dir", r]);
    assert_eq!(out.status.code(), Some(1), "damage fails verify:\n{}", stdout(&out));
    let text = stdout(&out);
    let name = |p: &std::path::Path| p.file_name().unwrap().to_string_lossy().into_owned();
    let line = |file: &str| {
        text.lines().find(|l| l.contains(file)).unwrap_or_else(|| panic!("{file} not named:\n{text}")).to_string()
    };
    assert!(line(&name(&data[0])).contains("BLAKE3"), "{text}");
    assert!(line(&name(&data[1])).contains("size"), "{text}");
    assert!(line(&name(&data[2])).contains("missing"), "{text}");
    assert!(text.lines().any(|l| l.contains("unfinished") && l.contains("incomplete")), "{text}");
    assert!(text.lines().any(|l| l.starts_with("OK") && l.contains("/good:")), "{text}");

    // --quick reads nothing: it sees the truncated and the missing file, not the flipped bit.
    let out = cassette(node, &["--json", "verify", "--quick", "--backup-dir", r, "--name", "damaged"]);
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let bad: Vec<&str> =
        json[0]["report"]["bad"].as_array().unwrap().iter().map(|b| b["path"].as_str().unwrap()).collect();
    assert_eq!(bad.len(), 2, "{bad:?}");
    assert!(bad.iter().any(|p| p.ends_with(&name(&data[1]))) && bad.iter().any(|p| p.ends_with(&name(&data[2]))));

    // A restore of the damaged backup refuses before touching anything.
    let before = dataset::dump(&session, &ks, "readings").await;
    let out = cassette(node, &["restore", "--name", "damaged", "--backup-dir", r, "-k", &ks]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains(&name(&data[0])), "{}", stderr(&out));
    assert_eq!(dataset::dump(&session, &ks, "readings").await, before);
}
