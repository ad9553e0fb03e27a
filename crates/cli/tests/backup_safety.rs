//! A backup must never look complete, nor a restore wipe a table, on the strength of files
//! cassette did not find; cassette never writes into the node's data directories and never
//! clears a snapshot it did not take. Checked on the real test node, as an operator would:
//! exit codes, messages, manifests, the node's snapshots and rows.

// Tests hold the node's turn (`serial()`) across awaits on purpose: one job per node.
#![allow(clippy::await_holding_lock)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cassette_testkit::{Node, dataset, unique_name};
use common::*;

async fn loaded_keyspace(prefix: &str) -> String {
    let cluster = solo();
    let session = cluster.session().await;
    let ks = unique_name(prefix);
    dataset::load(&session, cluster, &ks, 1, &dataset::Shape::small()).await;
    ks
}

fn snapshots(node: &Node) -> String {
    node.nodetool(&["listsnapshots"])
}

fn report_of(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_str(&stdout(out))
        .unwrap_or_else(|e| panic!("no JSON report ({e}):\n{}\n{}", stdout(out), stderr(out)))
}

fn table_outcome<'a>(report: &'a serde_json::Value, table: &str) -> &'a serde_json::Value {
    report["tables"].as_array().unwrap().iter().find(|t| t["table"] == table).unwrap_or_else(|| panic!("{report}"))
}

/// A nodetool that, after each `snapshot`, removes one `Data.db` hard link from the snapshot
/// of `keyspace.readings` (the live SSTable stays): the snapshot's own manifest still lists it.
fn losing_nodetool(dir: &Path, data_dirs: &[PathBuf], keyspace: &str) -> PathBuf {
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
    rm "$f"
    echo "$f" > "{marker}"
  fi
done
"#,
            real = cassette_testkit::nodetool_launcher().display(),
            dirs = ["{", &dirs.join(","), "}"].concat(),
            marker = dir.join("removed").display(),
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    script
}

#[tokio::test(flavor = "multi_thread")]
async fn a_table_whose_snapshot_files_are_not_all_found_fails_and_nothing_looks_complete() {
    let node = &solo().nodes[0];
    let ks = loaded_keyspace("bs_fewer").await;
    let root = other_disk_dir();
    let tools = tempfile::tempdir().unwrap();
    let nodetool = losing_nodetool(tools.path(), &node.data_dirs, &ks);
    let _turn = serial();
    let out = cassette_with_nodetool(
        node,
        &nodetool,
        &["--json", "backup", "--name", "fewer", "--backup-dir", root.path().to_str().unwrap(), "-k", &ks],
    );
    assert_eq!(out.status.code(), Some(1), "a table missing files fails the job:\n{}\n{}", stdout(&out), stderr(&out));
    let removed = std::fs::read_to_string(tools.path().join("removed")).unwrap();
    let removed = Path::new(removed.trim());
    let report = report_of(&out);
    assert_eq!(report["complete"], false);
    let readings = table_outcome(&report, "readings");
    assert_eq!(readings["status"], "FAILURE");
    assert_eq!(readings["error_kind"], "snapshot", "the snapshot lacks a listed file: {readings}");
    let message = readings["error"].as_str().unwrap();
    let file = removed.file_name().unwrap().to_string_lossy();
    let snapshot_dir = removed.parent().unwrap().display().to_string();
    assert!(
        message.contains(&*file) && message.contains(&snapshot_dir),
        "the error names the missing file and the directories looked in: {message}"
    );
    for t in ["profiles", "page_views", "sessions"] {
        assert_eq!(table_outcome(&report, t)["status"], "SUCCESS", "{report}");
    }
    assert!(manifests_under(root.path()).is_empty(), "no manifest: the backup is not complete");
    assert!(!snapshots(node).contains("cassette-"), "the snapshot was cleared");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_data_dir_that_is_not_the_nodes_is_refused_and_with_the_override_an_empty_one_fails() {
    let node = &solo().nodes[0];
    let ks = loaded_keyspace("bs_wrongdir").await;
    let root = other_disk_dir();
    let r = root.path().to_str().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let e = empty.path().to_str().unwrap();
    let _turn = serial();

    // The reproduction of the report: an empty directory given as the data directory.
    let out = cassette(
        node,
        &["backup", "--name", "wrong-dir", "--backup-dir", r, "-k", &ks, "--data-dir", e, "--allow-same-disk"],
    );
    assert_eq!(out.status.code(), Some(4), "refused:\n{}\n{}", stdout(&out), stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(e)
            && err.contains("data_file_directories")
            && err.contains(&node.data_dirs[0].display().to_string())
            && err.contains("--data-dir-override"),
        "the error names the directory, the node's own and the way out: {err}"
    );
    assert!(manifests_under(root.path()).is_empty());
    assert!(!snapshots(node).contains("cassette-"));

    // With the override (a container whose mount paths differ), the snapshot's own file
    // list still catches an empty directory: the job fails, names where it looked.
    let out = cassette(
        node,
        &[
            "--json",
            "backup",
            "--name",
            "wrong-dir",
            "--backup-dir",
            r,
            "-k",
            &ks,
            "--data-dir",
            e,
            "--data-dir-override",
            "--allow-same-disk",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}\n{}", stdout(&out), stderr(&out));
    let report = report_of(&out);
    assert_eq!(report["complete"], false);
    for t in dataset::TABLES {
        let o = table_outcome(&report, t);
        assert_eq!(o["status"], "FAILURE", "{o}");
        assert_eq!(o["error_kind"], "snapshot", "{o}");
        let message = o["error"].as_str().unwrap();
        assert!(message.contains(e) && message.contains("snapshot"), "names the directory looked in: {message}");
    }
    assert!(manifests_under(root.path()).is_empty(), "no manifest");
    assert!(!snapshots(node).contains("cassette-"), "no snapshot left");
    let out = cassette(node, &["restore", "--name", "wrong-dir", "--backup-dir", r, "-k", &ks, "--dry-run"]);
    assert_eq!(out.status.code(), Some(2), "never offered for restore: {}", stderr(&out));

    // The node's own directories, even through another path to them, are accepted.
    let links = tempfile::tempdir().unwrap();
    let mut args: Vec<String> =
        ["backup", "--name", "own-dirs", "--backup-dir", r, "-k", &ks].iter().map(|s| s.to_string()).collect();
    for (i, d) in node.data_dirs.iter().enumerate() {
        let link = links.path().join(format!("d{i}"));
        std::os::unix::fs::symlink(d, &link).unwrap();
        args.push("--data-dir".into());
        args.push(link.display().to_string());
    }
    let out = cassette(node, &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert_eq!(manifests_under(root.path()).len(), 1);
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Drops every file entry of `table` from the backup's manifest (and the files themselves),
/// keeping the rest of the manifest consistent: what a backup that missed the table's files
/// looks like. `keep_record: false` also removes the new per-table record, as in a manifest
/// written by an older cassette.
fn strip_table(backup: &Path, keyspace: &str, table: &str, keep_record: bool) {
    let path = backup.join("manifest.json");
    let mut m = read_json(&path);
    let mut removed = 0;
    for ks in m["keyspaces"].as_array_mut().unwrap() {
        let this_keyspace = ks["name"] == keyspace;
        for t in ks["tables"].as_array_mut().unwrap() {
            let obj = t.as_object_mut().unwrap();
            if !keep_record {
                obj.remove("snapshot_sstables");
            }
            if this_keyspace && t["name"] == table {
                for f in t["files"].as_array().unwrap() {
                    std::fs::remove_file(backup.join(f["path"].as_str().unwrap())).unwrap();
                    removed += 1;
                }
                t["files"] = serde_json::json!([]);
            }
        }
    }
    assert!(removed > 0);
    let (mut files, mut bytes, mut files_added, mut bytes_added) = (0u64, 0u64, 0u64, 0u64);
    let all = m["keyspaces"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|k| k["tables"].as_array().unwrap().iter())
        .flat_map(|t| t["files"].as_array().unwrap().iter())
        .chain(m["config_dirs"].as_array().unwrap().iter().flat_map(|c| c["files"].as_array().unwrap().iter()));
    for f in all {
        let size = f["size"].as_u64().unwrap();
        files += 1;
        bytes += size;
        if f.get("reused_from").is_none() && f.get("object").is_none() {
            files_added += 1;
            bytes_added += size;
        }
    }
    m["totals"] =
        serde_json::json!({"files": files, "bytes": bytes, "files_added": files_added, "bytes_added": bytes_added});
    std::fs::write(&path, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    // The node index is a cache of the manifests: dropping it is always safe.
    let _ = std::fs::remove_file(backup.parent().unwrap().join(".index.json"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restore_refuses_to_truncate_a_table_the_backup_holds_no_sstable_of_when_its_snapshot_had_some() {
    let cluster = solo();
    let node = &cluster.nodes[0];
    let session = cluster.session().await;
    let ks = loaded_keyspace("bs_nottrunc").await;
    let root = other_disk_dir();
    let r = root.path().to_str().unwrap();
    let _turn = serial();
    backup_ok(node, root.path(), "lost-readings", &["-k", &ks]);
    backup_ok(node, root.path(), "old-format", &["-k", &ks]);
    let host = node.cql().await.local_node().await.unwrap().host_id.to_string();
    let node_dir = root.path().join("solo").join(&host);

    // The backup records, per table, how many SSTables Cassandra's snapshot listed.
    let m = read_json(&node_dir.join("lost-readings/manifest.json"));
    let tables = m["keyspaces"][0]["tables"].as_array().unwrap();
    let readings = tables.iter().find(|t| t["name"] == "readings").unwrap();
    let listed = readings["snapshot_sstables"].as_u64().expect("the manifest records the snapshot's SSTables");
    let held = readings["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["path"].as_str().unwrap().ends_with("-Data.db"))
        .count();
    assert_eq!(listed as usize, held, "{readings}");

    strip_table(&node_dir.join("lost-readings"), &ks, "readings", true);
    strip_table(&node_dir.join("old-format"), &ks, "readings", false);
    let out = cassette(node, &["verify", "--name", "lost-readings", "--backup-dir", r]);
    assert!(out.status.success(), "the edited backup is consistent: {}{}", stdout(&out), stderr(&out));

    let mut before = Vec::new();
    for t in dataset::TABLES {
        before.push(dataset::dump(&session, &ks, t).await);
    }
    assert!(!before[2].is_empty(), "readings has rows");
    for name in ["lost-readings", "old-format"] {
        let out = cassette(node, &["restore", "--name", name, "--backup-dir", r, "-k", &ks]);
        assert!(!out.status.success(), "{name}: refused:\n{}\n{}", stdout(&out), stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains(&format!("{ks}.readings")) && err.contains("nothing was truncated"),
            "{name}: the error names the table and says nothing was touched: {err}"
        );
        let mut after = Vec::new();
        for t in dataset::TABLES {
            after.push(dataset::dump(&session, &ks, t).await);
        }
        assert_eq!(after, before, "{name}: every row is still there");
        let truncated: Vec<String> = snapshots(node)
            .lines()
            .filter(|l| l.starts_with("truncated-") && l.contains(&ks))
            .map(String::from)
            .collect();
        assert!(truncated.is_empty(), "{name}: no table was truncated: {truncated:?}");
    }
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
            "this test mounts a tmpfs (needs root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        TinyFs(dir)
    }

    fn available(&self) -> u64 {
        let out = Command::new("df").args(["--output=avail", "-B1"]).arg(self.0.path()).output().unwrap();
        String::from_utf8_lossy(&out.stdout).lines().nth(1).unwrap().trim().parse().unwrap()
    }
}

impl Drop for TinyFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).output();
    }
}

fn size_of_files(dir: &Path, suffix: &str) -> u64 {
    files_under(dir)
        .iter()
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_that_filled_its_disk_resumes_once_there_is_room_for_what_is_left() {
    let cluster = solo();
    let node = &cluster.nodes[0];
    let session = cluster.session().await;
    let ks = unique_name("bs_fill");
    dataset::exec_schema(
        &session,
        &format!("CREATE KEYSPACE {ks} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}"),
    )
    .await;
    // Incompressible rows, no compaction: eight flushes make SSTables of a few MB that stay.
    dataset::exec_schema(
        &session,
        &format!(
            "CREATE TABLE {ks}.big (id int PRIMARY KEY, payload blob) WITH compression = {{'enabled': 'false'}} \
             AND compaction = {{'class': 'SizeTieredCompactionStrategy', 'enabled': 'false'}}"
        ),
    )
    .await;
    let insert = session.prepare(format!("INSERT INTO {ks}.big (id, payload) VALUES (?, ?)")).await.unwrap();
    for round in 0..8i32 {
        for i in round * 250..(round + 1) * 250 {
            let mut payload = vec![0u8; 16 * 1024];
            blake3::Hasher::new().update(&i.to_le_bytes()).finalize_xof().fill(&mut payload);
            session.execute_unpaged(&insert, (i, payload)).await.unwrap();
        }
        cluster.flush(&ks);
    }
    let cql = node.cql().await;
    let table = cql.tables(&ks).await.unwrap().remove(0);
    let total: u64 = live_table_files(node, &ks, "big", &table.id_hex())
        .iter()
        .map(|(_, p)| std::fs::metadata(p).unwrap().len())
        .sum();
    assert!(total > 30_000_000, "{total}");

    let tiny = TinyFs::mount("48m");
    let r = tiny.0.path().to_str().unwrap();
    let _turn = serial();
    // The first run copies slowly (a pause after each file); once a quarter of the table is
    // stored, the rest of the disk is filled, as another writer would.
    let mut child = Command::new(env!("CARGO_BIN_EXE_cassette"))
        .args(["--json", "backup", "--name", "filled", "--backup-dir", r, "-k", &ks])
        .env("CASSETTE_CQL_HOST", &node.ip)
        .env("CASSETTE_JMX_PORT", node.jmx_port.to_string())
        .env("CASSETTE_NODETOOL", cassette_testkit::nodetool_launcher())
        .env("CASSETTE_FAULT_PAUSE_AT", "file-journaled:150")
        .env_remove("CASSANDRA_HOME")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let filler = tiny.0.path().join("filler");
    let deadline = Instant::now() + Duration::from_secs(120);
    while size_of_files(tiny.0.path(), "-Data.db") < total / 4 {
        assert!(Instant::now() < deadline && child.try_wait().unwrap().is_none(), "the backup did not get going");
        std::thread::sleep(Duration::from_millis(20));
    }
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.flush();
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success(), "the disk filled up:\n{}\n{}", stdout(&out), stderr(&out));
    assert!(manifests_under(tiny.0.path()).is_empty());
    assert!(!snapshots(node).contains("cassette-"), "the snapshot was cleared");

    // Free a little: room for what is left to store, not for the whole table.
    let stored = size_of_files(&tiny.0.path().join("solo"), ".db");
    assert!(stored > total / 5, "a good part was stored before the disk filled: {stored} of {total}");
    let wanted = total - stored + 4 * 1024 * 1024;
    let grow = wanted.saturating_sub(tiny.available());
    let filler_len = std::fs::metadata(&filler).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&filler).unwrap().set_len(filler_len - grow).unwrap();
    let available = tiny.available();
    assert!(available < total, "less room than the whole table: {available} < {total}");

    let report = backup_ok(node, tiny.0.path(), "filled", &["-k", &ks]);
    assert_eq!(report["complete"], true);
    assert_eq!(report["resumed"], true);
    let copied: u64 = report["tables"].as_array().unwrap().iter().map(|t| t["bytes_copied"].as_u64().unwrap()).sum();
    assert!(copied < total, "what the first run stored was kept: {copied} of {total} copied again");
    let out = cassette(node, &["verify", "--name", "filled", "--backup-dir", r]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    dataset::exec(&session, &format!("DROP KEYSPACE {ks}")).await;
}

/// Removes a path on drop: what a test may have written into the node's data directories.
struct RemoveOnDrop(Vec<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_dir_all(p);
            let _ = std::fs::remove_file(p);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_directory_inside_a_data_directory_is_refused_even_with_allow_same_disk() {
    let node = &solo().nodes[0];
    let ks = loaded_keyspace("bs_inside").await;
    let table = node.cql().await.tables(&ks).await.unwrap().into_iter().find(|t| t.name == "readings").unwrap();
    let table_dir = node.data_dirs[0].join(&ks).join(format!("readings-{}", table.id_hex()));
    assert!(table_dir.is_dir());
    let links = tempfile::tempdir_in("/dev/shm").unwrap();
    let link = links.path().join("data");
    std::os::unix::fs::symlink(&node.data_dirs[1], &link).unwrap();
    let inside_data = node.data_dirs[0].join("cassette-backups");
    let inside_table = table_dir.join("backup-here");
    let through_link = link.join("via-link");
    let _cleanup = RemoveOnDrop(vec![inside_data.clone(), inside_table.clone(), node.data_dirs[1].join("via-link")]);
    let _turn = serial();
    for (dir, data) in
        [(&inside_data, &node.data_dirs[0]), (&inside_table, &node.data_dirs[0]), (&through_link, &node.data_dirs[1])]
    {
        let out = cassette(
            node,
            &["backup", "--name", "x", "--backup-dir", dir.to_str().unwrap(), "-k", &ks, "--allow-same-disk"],
        );
        assert_eq!(out.status.code(), Some(2), "{}: refused:\n{}\n{}", dir.display(), stdout(&out), stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains(&dir.display().to_string())
                && err.contains(&data.display().to_string())
                && err.contains("inside"),
            "the error names both directories: {err}"
        );
        assert!(!dir.exists(), "nothing was written into the data directory: {}", dir.display());
        assert!(!data.join("x").exists() && !data.join("solo").exists());
    }
    assert!(!snapshots(node).contains("cassette-"));
}

/// `cassette agent` for the solo node, without a token, on a free port.
struct Agent {
    child: std::process::Child,
    port: u16,
}

impl Agent {
    fn start(node: &Node, root: &Path, log: &Path) -> Agent {
        let port = services::free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_cassette"))
            .args(["agent", "--listen", &format!("127.0.0.1:{port}"), "--insecure-no-token"])
            .args(["--backup-dir", root.to_str().unwrap()])
            .env("CASSETTE_CQL_HOST", &node.ip)
            .env("CASSETTE_JMX_PORT", node.jmx_port.to_string())
            .env("CASSETTE_NODETOOL", cassette_testkit::nodetool_launcher())
            .env("CASSETTE_LOG", "info")
            .env_remove("CASSETTE_TOKEN")
            .env_remove("CASSANDRA_HOME")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap();
        assert!(services::wait_listening(port), "the agent did not start:\n{}", std::fs::read_to_string(log).unwrap());
        Agent { child, port }
    }

    /// Runs a backup job on the agent and returns the finished job.
    async fn backup(&self, name: &str, keyspace: &str, snapshot_tag: &str) -> serde_json::Value {
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{}", self.port);
        let body =
            serde_json::json!({"kind": "backup", "name": name, "keyspaces": [keyspace], "snapshot_tag": snapshot_tag});
        let resp = http.post(format!("{base}/v1/jobs")).json(&body).send().await.unwrap();
        let status = resp.status();
        let job: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(status.as_u16(), 202, "{job}");
        let id = job["id"].as_str().unwrap().to_string();
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let job: serde_json::Value =
                http.get(format!("{base}/v1/jobs/{id}")).send().await.unwrap().json().await.unwrap();
            if job["state"] != "running" {
                return job;
            }
            assert!(Instant::now() < deadline, "the agent job did not finish: {job}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Clears the operator's snapshots at the end, whatever happened.
struct ClearSnapshots<'a>(&'a Node, Vec<&'static str>);

impl Drop for ClearSnapshots<'_> {
    fn drop(&mut self) {
        for tag in &self.1 {
            let _ = Command::new(cassette_testkit::nodetool_launcher())
                .args(["-h", "127.0.0.1", "-p", &self.0.jmx_port.to_string(), "clearsnapshot", "-t", tag])
                .output();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operators_snapshot_given_to_an_agent_backup_is_refused_and_survives() {
    let node = &solo().nodes[0];
    let ks = loaded_keyspace("bs_opsnap").await;
    let root = other_disk_dir();
    let logs = tempfile::tempdir().unwrap();
    let _turn = serial();
    let _clear = ClearSnapshots(node, vec!["mine", "cassette-mine"]);
    node.nodetool(&["snapshot", "-t", "mine", &ks]);
    node.nodetool(&["snapshot", "-t", "cassette-mine", &ks]);
    let agent = Agent::start(node, root.path(), &logs.path().join("agent.log"));
    for tag in ["mine", "cassette-mine"] {
        let job = agent.backup("op-1", &ks, tag).await;
        assert_eq!(job["state"], "failed", "{tag}: {job}");
        let error = job["error"].as_str().unwrap_or_default();
        assert!(error.contains(tag) && error.contains("cassette"), "{tag}: the error says why: {error}");
        let listed = snapshots(node);
        assert!(listed.lines().any(|l| l.starts_with(&format!("{tag} "))), "{tag} survives:\n{listed}");
    }
    assert!(manifests_under(root.path()).is_empty());
    drop(agent);
    // A backup's clearing of leftovers leaves a snapshot that only starts like cassette's.
    backup_ok(node, root.path(), "op-2", &["-k", &ks]);
    let listed = snapshots(node);
    for tag in ["mine", "cassette-mine"] {
        assert!(listed.lines().any(|l| l.starts_with(&format!("{tag} "))), "{tag} survives a backup:\n{listed}");
    }
}

#[test]
fn with_cassandra_down_only_cassettes_own_message_is_printed_without_colour_codes() {
    let root = other_disk_dir();
    let run = |extra: &[&str]| {
        let mut args = vec!["backup", "--name", "down", "--backup-dir", root.path().to_str().unwrap()];
        args.extend_from_slice(extra);
        Command::new(env!("CARGO_BIN_EXE_cassette"))
            .args(&args)
            .args(["--cql-host", "127.0.0.1", "--cql-port", &services::free_port().to_string()])
            .env_remove("CASSETTE_LOG")
            .env_remove("CASSANDRA_HOME")
            .output()
            .unwrap()
    };
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(4));
    let err = stderr(&out);
    assert!(err.contains("cassette: error:") && err.contains("is Cassandra running"), "{err}");
    assert!(!err.contains('\x1b'), "no colour codes when stderr is not a terminal: {err:?}");
    let others: Vec<&str> = err.lines().filter(|l| !l.starts_with("cassette: error:")).collect();
    assert!(others.is_empty(), "nothing but cassette's message: {others:?}");
    // With -v the driver's own lines are shown (and still without colours).
    let out = run(&["-v"]);
    let err = stderr(&out);
    assert!(err.contains("scylla"), "{err}");
    assert!(!err.contains('\x1b'), "{err:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_configuration_file_that_is_a_symlink_is_stored_not_skipped() {
    let node = &solo().nodes[0];
    let ks = loaded_keyspace("bs_conflink").await;
    let root = other_disk_dir();
    // Packaged Cassandra links its configuration files (/etc/cassandra/... -> alternatives).
    let conf = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::write(conf.path().join("cassandra.yaml"), b"cluster_name: solo\n").unwrap();
    std::fs::write(elsewhere.path().join("logback.xml"), b"<configuration/>\n").unwrap();
    std::os::unix::fs::symlink(elsewhere.path().join("logback.xml"), conf.path().join("logback.xml")).unwrap();
    let _turn = serial();
    backup_ok(node, root.path(), "conf", &["-k", &ks, "--config-dir", conf.path().to_str().unwrap()]);
    let manifest_path = &manifests_under(root.path())[0];
    let m = read_json(manifest_path);
    let files: Vec<&str> =
        m["config_dirs"][0]["files"].as_array().unwrap().iter().map(|f| f["path"].as_str().unwrap()).collect();
    let stored = files.iter().find(|p| p.ends_with("/logback.xml")).unwrap_or_else(|| panic!("not stored: {files:?}"));
    let bytes = std::fs::read(manifest_path.parent().unwrap().join(stored)).unwrap();
    assert_eq!(bytes, b"<configuration/>\n");
    assert!(files.iter().any(|p| p.ends_with("/cassandra.yaml")), "{files:?}");
}
