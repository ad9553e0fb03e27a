//! `cassette backup` on a real Cassandra 5.0 node (two data directories), checked as an
//! operator would: the files, the manifest, the node's snapshots, the errors.

// Tests hold the node's turn (`serial()`) across awaits on purpose: one job per node.
#![allow(clippy::await_holding_lock)]

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use cassette_testkit::{dataset, unique_name};
use common::*;

async fn loaded_keyspace(prefix: &str) -> String {
    let cluster = solo();
    let session = cluster.session().await;
    let ks = unique_name(prefix);
    dataset::load(&session, cluster, &ks, 1, &dataset::Shape::small()).await;
    ks
}

#[tokio::test(flavor = "multi_thread")]
async fn backup_is_a_verified_copy_of_every_sstable_in_the_seed_layout() {
    let node = &solo().nodes[0];
    let ks = loaded_keyspace("bk_layout").await;
    let root = other_disk_dir();
    let conf = node.dir.join("conf");
    let _turn = serial();
    let report = backup_ok(
        node,
        root.path(),
        "full-1",
        &["-k", &ks, "--config-dir", conf.to_str().unwrap(), "--alias", "solo-1"],
    );
    assert_eq!(report["complete"], true);

    let cql = node.cql().await;
    let local = cql.local_node().await.unwrap();
    // Seed 000's layout: $backupDir/$clusterName/$nodeId/$backupName/$keyspace/$table.
    let backup = root.path().join("solo").join(local.host_id.to_string()).join("full-1");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(backup.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["format_version"], 1);
    assert_eq!(manifest["node"]["host_id"], local.host_id.to_string());
    assert_eq!(manifest["node"]["alias"], "solo-1");
    assert_eq!(manifest["node"]["tokens"][0], local.tokens[0]);
    assert_eq!(manifest["node"]["cassandra_version"], local.release_version);

    let mut checked = 0;
    for table in cql.tables(&ks).await.unwrap() {
        let tm = manifest["keyspaces"][0]["tables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == table.name.as_str())
            .unwrap_or_else(|| panic!("manifest has no table {}", table.name));
        assert_eq!(tm["id"], table.id_hex());
        assert!(tm["schema_cql"].as_str().unwrap().contains("CREATE TABLE"));
        let entries = tm["files"].as_array().unwrap();
        let live = live_table_files(node, &ks, &table.name, &table.id_hex());
        assert!(!live.is_empty());
        assert_eq!(entries.len(), live.len(), "{}: manifest lists every SSTable file of the table", table.name);
        for (rel, live_path) in &live {
            let stored = backup.join(&ks).join(&table.name).join(rel);
            let bytes =
                std::fs::read(&stored).unwrap_or_else(|e| panic!("{} missing from backup: {e}", stored.display()));
            assert_eq!(bytes, std::fs::read(live_path).unwrap(), "{} differs from the node's file", stored.display());
            let entry = entries
                .iter()
                .find(|e| e["path"] == format!("{ks}/{}/{rel}", table.name))
                .unwrap_or_else(|| panic!("manifest has no entry for {rel}"));
            assert_eq!(entry["size"], bytes.len() as u64);
            assert_eq!(entry["blake3"], blake3::hash(&bytes).to_hex().as_str());
            if rel.ends_with("-Data.db") {
                let digest = std::fs::read_to_string(
                    live_path.with_file_name(rel.rsplit('/').next().unwrap().replace("Data.db", "Digest.crc32")),
                )
                .unwrap();
                assert_eq!(
                    entry["digest_crc32"].as_u64().unwrap().to_string(),
                    digest.trim(),
                    "checked against Digest.crc32"
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 50, "only {checked} files checked");
    // Secondary index SSTables, the schema, the configuration directory.
    assert!(backup.join(&ks).join("profiles/.profiles_by_name").is_dir());
    let schema = std::fs::read_to_string(backup.join("cassette-meta/schema.cql")).unwrap();
    assert!(schema.contains(&format!("CREATE KEYSPACE {ks}")) && schema.contains("CREATE INDEX profiles_by_name"));
    let yaml = backup.join("cassette-meta/conf/1-conf/cassandra.yaml");
    assert_eq!(std::fs::read(&yaml).unwrap(), std::fs::read(conf.join("cassandra.yaml")).unwrap());
    // Nothing left behind on the node.
    let snapshots = node.nodetool(&["listsnapshots"]);
    assert!(!snapshots.contains("cassette-"), "snapshot left behind:\n{snapshots}");
    assert!(!backup.join(format!("cassette-meta/{}", "journal.jsonl.partial")).exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_backup_copies_only_the_new_sstables() {
    let cluster = solo();
    let node = &cluster.nodes[0];
    let ks = loaded_keyspace("bk_incr").await;
    let root = other_disk_dir();
    let _turn = serial();
    let first = backup_ok(node, root.path(), "day-1", &["-k", &ks]);
    let session = cluster.session().await;
    dataset::write_round(&session, &ks, 7, &dataset::Shape::small()).await;
    cluster.flush(&ks);
    let second = backup_ok(node, root.path(), "day-2", &["-k", &ks]);

    let host = node.cql().await.local_node().await.unwrap().host_id.to_string();
    let node_dir = root.path().join("solo").join(&host);
    let files_of = |name: &str| -> Vec<(String, u64, u64)> {
        let m: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(node_dir.join(name).join("manifest.json")).unwrap()).unwrap();
        let mut v = Vec::new();
        for t in m["keyspaces"][0]["tables"].as_array().unwrap() {
            for f in t["files"].as_array().unwrap() {
                let path = f["path"].as_str().unwrap().to_string();
                let meta = std::fs::metadata(node_dir.join(name).join(&path)).unwrap();
                assert_eq!(meta.len(), f["size"].as_u64().unwrap(), "{name}/{path} is complete on disk");
                v.push((path, meta.len(), meta.ino()));
            }
        }
        v
    };
    let (a, b) = (files_of("day-1"), files_of("day-2"));
    let new: Vec<_> = b.iter().filter(|(p, _, _)| !a.iter().any(|(q, _, _)| q == p)).collect();
    assert!(!new.is_empty(), "the flush made new SSTables");
    let new_bytes: u64 = new.iter().map(|(_, s, _)| s).sum();
    // Only the new SSTables were copied: bytes added = their size, the rest are hard links.
    assert_eq!(second["totals"]["bytes_added"].as_u64().unwrap(), new_bytes);
    assert!(first["totals"]["bytes_added"] == first["totals"]["bytes"]);
    for (path, _, ino) in b.iter().filter(|(p, _, _)| a.iter().any(|(q, _, _)| q == p)) {
        let old = a.iter().find(|(q, _, _)| q == path).unwrap();
        assert_eq!(*ino, old.2, "{path} is shared with day-1 (hard link), not copied");
    }
    let list = cassette(node, &["--json", "list", "--backup-dir", root.path().to_str().unwrap()]);
    let list: serde_json::Value = serde_json::from_str(&stdout(&list)).unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert!(list.iter().all(|b| b["complete"] == true));
    assert_eq!(list.iter().find(|b| b["name"] == "day-2").unwrap()["bytes_added"].as_u64().unwrap(), new_bytes);

    // seed 001's "archive the SNAPSHOT_NAME directory".
    let archive = root.path().join("day-2.tar.zst");
    let out = cassette(
        node,
        &["archive", "day-2", "--backup-dir", root.path().to_str().unwrap(), "-o", archive.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(std::fs::metadata(&archive).unwrap().len() > 1000);

    // Deleting the first backup leaves the second whole: its hard links keep the shared files.
    let r = root.path().to_str().unwrap();
    let out = cassette(node, &["delete", "--name", "day-1", "--backup-dir", r]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!node_dir.join("day-1").exists());
    let out = cassette(node, &["verify", "--name", "day-2", "--backup-dir", r]);
    assert!(out.status.success(), "day-2 still verifies after day-1 is deleted:\n{}", stdout(&out));
    let out = cassette(node, &["delete", "--name", "day-1", "--backup-dir", r]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("no backup named 'day-1'"), "{}", stderr(&out));
}

/// A nodetool that, after each `snapshot`, swaps one snapshot `Data.db` (a hard link of the
/// live file) for a corrupted copy: the node's own files are never touched.
fn corrupting_nodetool(dir: &Path, data_dirs: &[std::path::PathBuf], keyspace: &str) -> std::path::PathBuf {
    let script = dir.join("nodetool");
    let dirs: Vec<String> = data_dirs.iter().map(|d| d.display().to_string()).collect();
    std::fs::write(
        &script,
        format!(
            r#"#!/usr/bin/env bash
set -e
"{real}" "$@"
for a in "$@"; do
  if [ "$a" = snapshot ]; then
    f=$(ls {dirs}/{keyspace}/readings-*/snapshots/*/nb-*-big-Data.db 2>/dev/null | head -1)
    cp "$f" "$f.tmp" && printf '\xff\xfe' | dd of="$f.tmp" bs=1 seek=100 conv=notrunc 2>/dev/null && mv "$f.tmp" "$f"
    echo "$f" > "{marker}"
  fi
done
"#,
            real = cassette_testkit::nodetool_launcher().display(),
            dirs = ["{", &dirs.join(","), "}"].concat(),
            marker = dir.join("corrupted").display(),
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    script
}

#[tokio::test(flavor = "multi_thread")]
async fn a_corrupted_data_file_is_caught_by_its_digest_and_the_backup_stays_incomplete() {
    let cluster = solo();
    let node = &cluster.nodes[0];
    let ks = loaded_keyspace("bk_corrupt").await;
    let session = cluster.session().await;
    let before = dataset::dump(&session, &ks, "readings").await;
    let root = other_disk_dir();
    let tools = tempfile::tempdir().unwrap();
    let nodetool = corrupting_nodetool(tools.path(), &node.data_dirs, &ks);
    let _turn = serial();
    let out = cassette_with_nodetool(
        node,
        &nodetool,
        &["--json", "backup", "--name", "bad", "--backup-dir", root.path().to_str().unwrap(), "-k", &ks],
    );
    assert_eq!(out.status.code(), Some(1), "a failed table fails the job:\n{}\n{}", stdout(&out), stderr(&out));
    let corrupted = std::fs::read_to_string(tools.path().join("corrupted")).unwrap();
    let file = Path::new(corrupted.trim()).file_name().unwrap().to_string_lossy().into_owned();
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["complete"], false);
    let readings = report["tables"].as_array().unwrap().iter().find(|t| t["table"] == "readings").unwrap();
    assert_eq!(readings["status"], "FAILURE");
    assert_eq!(readings["error_kind"], "store", "a file that cannot be stored: {readings}");
    let message = readings["error"].as_str().unwrap();
    assert!(
        message.contains(&file) && message.to_lowercase().contains("crc"),
        "error names the file and the check: {message}"
    );
    assert!(
        report["tables"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["table"] != "readings")
            .all(|t| t["status"] == "SUCCESS")
    );
    assert!(manifests_under(root.path()).is_empty(), "no manifest: the backup is not complete");
    let list: serde_json::Value = serde_json::from_str(&stdout(&cassette(
        node,
        &["--json", "list", "--backup-dir", root.path().to_str().unwrap()],
    )))
    .unwrap();
    assert_eq!(list[0]["complete"], false);
    // The snapshot was cleared even though the copy failed, and live data is intact.
    assert!(!node.nodetool(&["listsnapshots"]).contains("cassette-"));
    assert_eq!(dataset::dump(&session, &ks, "readings").await, before);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_a_clear_error_and_leaves_nothing_that_looks_complete() {
    let node = &solo().nodes[0];
    let ks = loaded_keyspace("bk_errors").await;
    let root = other_disk_dir();
    let r = root.path().to_str().unwrap();
    let _turn = serial();
    let too_long = "n".repeat(129);
    for bad in ["", "..", "a/b", "tab\tname", "line\nbreak", ".hidden", too_long.as_str()] {
        let out = cassette(node, &["backup", "--name", bad, "--backup-dir", r, "-k", &ks]);
        assert_eq!(out.status.code(), Some(2), "name {bad:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("letters, digits"), "the error states the rule: {}", stderr(&out));
    }
    let out = cassette(node, &["backup", "--name", "x", "--backup-dir", r, "-k", "no_such_keyspace"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no_such_keyspace")
            && stderr(&out).contains("does not exist")
            && stderr(&out).contains(&ks),
        "{}",
        stderr(&out)
    );
    let out = cassette(node, &["backup", "--name", "x", "--backup-dir", r, "-t", &format!("{ks}.nope")]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));

    backup_ok(node, root.path(), "once", &["-k", &ks, "-t", &format!("{ks}.sessions")]);
    let out = cassette(node, &["backup", "--name", "once", "--backup-dir", r, "-k", &ks]);
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));

    // Cassandra down: nothing listens on that port.
    let out = Command::new(env!("CARGO_BIN_EXE_cassette"))
        .args(["backup", "--name", "down", "--backup-dir", r, "--cql-host", "127.0.1.1", "--cql-port", "9999"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert!(stderr(&out).contains("is Cassandra running"), "{}", stderr(&out));

    // A backup directory that cannot be created (its parent is a file).
    let blocker = root.path().join("a-file");
    std::fs::write(&blocker, b"x").unwrap();
    let out =
        cassette(node, &["backup", "--name", "x", "--backup-dir", blocker.join("sub").to_str().unwrap(), "-k", &ks]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("a-file/sub"), "the error names the directory: {}", stderr(&out));

    // Same filesystem as the data directories: refused unless asked for.
    let same = tempfile::tempdir_in(node.data_dirs[0].parent().unwrap()).unwrap();
    let out = cassette(node, &["backup", "--name", "x", "--backup-dir", same.path().to_str().unwrap(), "-k", &ks]);
    assert_eq!(out.status.code(), Some(4));
    assert!(stderr(&out).contains("--allow-same-disk"), "{}", stderr(&out));

    let manifests = manifests_under(root.path());
    assert_eq!(manifests.len(), 1, "only the one good backup is complete: {manifests:?}");
    assert!(manifests[0].parent().unwrap().ends_with("once"));
    assert!(!node.nodetool(&["listsnapshots"]).contains("cassette-"));
}

use std::process::Command;

/// A nodetool that SIGKILLs cassette (its parent) when it is first asked to clear a snapshot:
/// the backup dies after copying its first keyspace, with that keyspace's snapshot still on the node.
fn killing_nodetool(dir: &Path) -> std::path::PathBuf {
    let script = dir.join("nodetool");
    std::fs::write(
        &script,
        format!(
            "#!/usr/bin/env bash\nfor a in \"$@\"; do\n  if [ \"$a\" = clearsnapshot ] && [ ! -e \"{marker}\" ]; then touch \"{marker}\"; kill -9 $PPID; exit 1; fi\ndone\nexec \"{real}\" \"$@\"\n",
            marker = dir.join("killed").display(),
            real = cassette_testkit::nodetool_launcher().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    script
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_backup_resumes_and_its_snapshot_is_cleared() {
    let node = &solo().nodes[0];
    let (ks1, ks2) = (loaded_keyspace("bk_kill_a").await, loaded_keyspace("bk_kill_b").await);
    let root = other_disk_dir();
    let r = root.path().to_str().unwrap();
    let tools = tempfile::tempdir().unwrap();
    let _turn = serial();
    let out = cassette_with_nodetool(
        node,
        &killing_nodetool(tools.path()),
        &["--json", "backup", "--name", "k", "--backup-dir", r, "-k", &ks1, "-k", &ks2],
    );
    assert!(tools.path().join("killed").exists() && !out.status.success(), "the backup was killed mid-way");
    assert!(node.nodetool(&["listsnapshots"]).contains("cassette-k-"), "the killed run left its snapshot");
    assert!(manifests_under(root.path()).is_empty());
    let list: serde_json::Value =
        serde_json::from_str(&stdout(&cassette(node, &["--json", "list", "--backup-dir", r]))).unwrap();
    assert_eq!(list[0]["complete"], false, "an interrupted backup is listed as incomplete");

    // What the killed run stored (files of the first keyspace), by inode.
    let stored_before: Vec<(std::path::PathBuf, u64)> = files_under(root.path())
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(&format!("/{ks1}/")))
        .map(|p| {
            let ino = std::fs::metadata(&p).unwrap().ino();
            (p, ino)
        })
        .collect();
    assert!(!stored_before.is_empty(), "the first keyspace was stored before the kill");

    let report = backup_ok(node, root.path(), "k", &["-k", &ks1, "-k", &ks2]);
    assert_eq!(report["resumed"], true);
    assert_eq!(report["complete"], true);
    let first_ks: Vec<&serde_json::Value> =
        report["tables"].as_array().unwrap().iter().filter(|t| t["keyspace"] == ks1.as_str()).collect();
    assert!(
        !first_ks.is_empty() && first_ks.iter().all(|t| t["bytes_copied"] == 0 && t["files"].as_u64().unwrap() > 0),
        "the first keyspace was kept, not copied again: {first_ks:?}"
    );
    for (path, ino) in &stored_before {
        assert_eq!(std::fs::metadata(path).unwrap().ino(), *ino, "{} was rewritten by the resumed run", path.display());
    }
    assert!(!node.nodetool(&["listsnapshots"]).contains("cassette-"), "the leftover snapshot was cleared");
    // Everything the manifest lists is there with its hash.
    let manifest_path = &manifests_under(root.path())[0];
    let backup = manifest_path.parent().unwrap();
    let manifest: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(manifest_path).unwrap()).unwrap();
    let mut n = 0;
    for ks in manifest["keyspaces"].as_array().unwrap() {
        for t in ks["tables"].as_array().unwrap() {
            for f in t["files"].as_array().unwrap() {
                let bytes = std::fs::read(backup.join(f["path"].as_str().unwrap())).unwrap();
                assert_eq!(f["blake3"], blake3::hash(&bytes).to_hex().as_str());
                n += 1;
            }
        }
    }
    assert!(n > 100);
}

/// A small tmpfs of its own, unmounted on drop (the tests run as root, as CI does).
struct TinyFs(tempfile::TempDir);

impl TinyFs {
    fn mount(size: &str) -> TinyFs {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "this test mounts a small tmpfs (needs root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        TinyFs(dir)
    }

    fn resize(&self, size: &str) {
        let out =
            Command::new("mount").args(["-o", &format!("remount,size={size}")]).arg(self.0.path()).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for TinyFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).output();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_backup_disk_is_refused_before_copying_and_the_rerun_succeeds_once_there_is_room() {
    let node = &solo().nodes[0];
    let ks = loaded_keyspace("bk_full").await;
    let tiny = TinyFs::mount("64k");
    let r = tiny.0.path().to_str().unwrap();
    let _turn = serial();
    let out = cassette(node, &["backup", "--name", "tight", "--backup-dir", r, "-k", &ks]);
    assert_eq!(out.status.code(), Some(4), "{}{}", stdout(&out), stderr(&out));
    assert!(stderr(&out).contains("not enough free space") && stderr(&out).contains(&ks), "{}", stderr(&out));
    assert!(manifests_under(tiny.0.path()).is_empty(), "nothing looks complete");
    assert!(!node.nodetool(&["listsnapshots"]).contains("cassette-"), "the snapshot was cleared");

    tiny.resize("64m");
    let report = backup_ok(node, tiny.0.path(), "tight", &["-k", &ks]);
    assert_eq!(report["complete"], true);
    assert_eq!(manifests_under(tiny.0.path()).len(), 1);
}
