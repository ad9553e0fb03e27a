//! `cassette restore` on real Cassandra 5.0 nodes, checked as an operator would: every row
//! back, nothing live touched when the backup is bad, resume after kill -9, a cluster restored
//! node by node.
// The job turn (a std mutex) is held for the whole test, across awaits, on purpose: each test
// has its own runtime, the guard only keeps jobs of different tests from overlapping.
#![allow(clippy::await_holding_lock)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cassette_testkit::{Cluster, Node, dataset, unique_name};
use common::*;
use scylla::client::session::Session;

/// `cassette --json restore --name NAME --backup-dir ROOT EXTRA...`.
fn restore(node: &Node, root: &Path, name: &str, extra: &[&str]) -> Output {
    let mut args = vec!["--json", "restore", "--name", name, "--backup-dir", root.to_str().unwrap()];
    args.extend_from_slice(extra);
    cassette(node, &args)
}

fn restore_ok(node: &Node, root: &Path, name: &str, extra: &[&str]) -> serde_json::Value {
    let out = restore(node, root, name, extra);
    assert!(
        out.status.success(),
        "restore {name} {extra:?} failed ({:?}):\n{}\n{}",
        out.status,
        stdout(&out),
        stderr(&out)
    );
    serde_json::from_str(&stdout(&out)).expect("restore --json prints a report")
}

/// Changes every table after the backup: new rows, updates, deletes, a TRUNCATE, some of it
/// flushed and some only in the memtable.
async fn scribble(session: &Session, cluster: &Cluster, ks: &str) {
    dataset::write_round(session, ks, 9, &dataset::Shape { rounds: 1, rows_per_round: 50, payload_bytes: 8 }).await;
    dataset::exec(session, &format!("DELETE FROM {ks}.readings WHERE sensor = 3")).await;
    dataset::exec(session, &format!("UPDATE {ks}.profiles SET name = 'changed' WHERE id = 5")).await;
    dataset::exec(session, &format!("TRUNCATE {ks}.sessions")).await;
    cluster.flush(ks);
    dataset::exec(session, &format!("UPDATE {ks}.page_views SET views = views + 100 WHERE page = '/page/1'")).await;
    dataset::exec(session, &format!("INSERT INTO {ks}.sessions (id, user_name) VALUES (99999, 'late')")).await;
}

async fn host_id(node: &Node) -> String {
    node.cql().await.local_node().await.unwrap().host_id.to_string()
}

fn table_report<'a>(report: &'a serde_json::Value, table: &str) -> &'a serde_json::Value {
    report["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == table)
        .unwrap_or_else(|| panic!("no table {table} in {report}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn round_trip_brings_every_row_back_and_keeps_the_truncate_snapshot() {
    let cluster = solo();
    let node = &cluster.nodes[0];
    let session = cluster.session().await;
    let ks = unique_name("rs_trip");
    dataset::load(&session, cluster, &ks, 1, &dataset::Shape::small()).await;
    let before = dataset::dump_all(&session, &ks).await;
    let by_index = dataset::dump(&session, &ks, "profiles")
        .await
        .into_iter()
        .filter(|r| r.contains("\"name\": \"user7\""))
        .count();
    assert!(by_index > 0);
    let root = other_disk_dir();
    let _turn = serial();
    backup_ok(node, root.path(), "b1", &["-k", &ks]);
    scribble(&session, cluster, &ks).await;
    assert_ne!(dataset::dump_all(&session, &ks).await, before, "the data changed after the backup");

    // A dry run verifies and plans, and changes nothing.
    let changed = dataset::dump_all(&session, &ks).await;
    let dry = restore_ok(node, root.path(), "b1", &["-k", &ks, "--dry-run"]);
    assert_eq!(dry["dry_run"], true);
    assert!(table_report(&dry, "readings")["skipped"].as_str().unwrap().contains(&format!("TRUNCATE {ks}.readings")));
    assert_eq!(dataset::dump_all(&session, &ks).await, changed);

    let report = restore_ok(node, root.path(), "b1", &["-k", &ks]);
    assert_eq!(report["complete"], true);
    assert_eq!(report["keyspaces"][0]["status"], "SUCCESS");
    for t in dataset::TABLES {
        let tr = table_report(&report, t);
        assert_eq!(
            (tr["status"].as_str(), tr["truncated"].as_bool(), tr["loaded"].as_bool()),
            (Some("SUCCESS"), Some(true), Some(true)),
            "{t}: {tr}"
        );
        assert!(tr["files"].as_u64().unwrap() > 0);
    }
    assert_eq!(dataset::dump_all(&session, &ks).await, before, "every table equals its state at backup time");
    // The secondary index was rebuilt for the loaded SSTables.
    let rows = session.query_unpaged(format!("SELECT id FROM {ks}.profiles WHERE name = 'user7'"), ()).await.unwrap();
    assert_eq!(rows.into_rows_result().unwrap().rows_num(), by_index);
    // TRUNCATE's snapshot (the pre-restore copy) is kept and reported.
    let tag = table_report(&report, "readings")["truncate_snapshot"]
        .as_str()
        .expect("truncate snapshot reported")
        .to_string();
    assert!(tag.starts_with("truncated-"));
    assert!(node.nodetool(&["listsnapshots"]).contains(&tag));
    node.nodetool(&["clearsnapshot", "-t", &tag, &ks]);
    // Loading left the backup intact: it still verifies (a dry run re-hashes every file).
    let again = restore(node, root.path(), "b1", &["-k", &ks, "--dry-run"]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        !root
            .path()
            .join(".restore-staging")
            .read_dir()
            .map(|mut d| d.any(|e| e.unwrap().path().read_dir().unwrap().next().is_some()))
            .unwrap_or(false),
        "staging is cleaned up"
    );
}

/// Replaces the stored file with a copy (breaking hard links shared with other backups),
/// then lets `damage` change it.
fn damage_stored_file(path: &Path, damage: impl FnOnce(&Path)) {
    let copy = path.with_extension("tmp-copy");
    std::fs::copy(path, &copy).unwrap();
    std::fs::rename(&copy, path).unwrap();
    damage(path);
}

fn stored_files(table_dir: &Path, component: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(table_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(component))
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn a_corrupted_or_missing_file_is_refused_before_anything_is_truncated() {
    let cluster = solo();
    let node = &cluster.nodes[0];
    let session = cluster.session().await;
    let ks = unique_name("rs_corrupt");
    dataset::load(&session, cluster, &ks, 1, &dataset::Shape::small()).await;
    let root = other_disk_dir();
    let _turn = serial();
    backup_ok(node, root.path(), "b1", &["-k", &ks]);
    scribble(&session, cluster, &ks).await;
    let live_before = dataset::dump_all(&session, &ks).await;
    let snapshots_before = node.nodetool(&["listsnapshots"]);

    let backup = root.path().join("solo").join(host_id(node).await).join("b1");
    let corrupted = stored_files(&backup.join(&ks).join("readings"), "-Data.db")[0].clone();
    damage_stored_file(&corrupted, |p| {
        let mut bytes = std::fs::read(p).unwrap();
        bytes[100] ^= 0xff;
        std::fs::write(p, bytes).unwrap();
    });
    let missing = stored_files(&backup.join(&ks).join("profiles"), "-Statistics.db")[0].clone();
    std::fs::remove_file(&missing).unwrap();

    let out = restore(node, root.path(), "b1", &["-k", &ks]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "a bad backup fails the job:\n{}\n{err}", stdout(&out));
    for f in [&corrupted, &missing] {
        let name = f.file_name().unwrap().to_string_lossy();
        assert!(err.contains(&*name), "the error names {name}: {err}");
    }
    assert!(err.contains("nothing was truncated") && err.contains("missing"), "{err}");
    assert_eq!(dataset::dump_all(&session, &ks).await, live_before, "live data untouched");
    let truncated_now: Vec<String> = node
        .nodetool(&["listsnapshots"])
        .lines()
        .filter(|l| l.starts_with("truncated-") && l.contains(&ks))
        .map(String::from)
        .collect();
    assert!(truncated_now.iter().all(|l| snapshots_before.contains(l.as_str())), "no TRUNCATE ran: {truncated_now:?}");

    // Not found: the error lists this node's backups. Incomplete: refused.
    let out = restore(node, root.path(), "nope", &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("The backups of this node are: b1"), "{}", stderr(&out));
    std::fs::create_dir_all(backup.with_file_name("half").join(&ks)).unwrap();
    let out = restore(node, root.path(), "half", &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("incomplete backup, cannot be restored"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_keyspace_restores_under_another_name_with_new_table_ids() {
    let cluster = solo();
    let node = &cluster.nodes[0];
    let session = cluster.session().await;
    let a = unique_name("rs_from");
    dataset::load(&session, cluster, &a, 1, &dataset::Shape::small()).await;
    let rows_a = dataset::dump_all(&session, &a).await;
    let root = other_disk_dir();
    let _turn = serial();
    backup_ok(node, root.path(), "b1", &["-k", &a]);

    // B exists with the same schema (new table ids).
    let b = unique_name("rs_into");
    dataset::create_schema(&session, &b, 1).await;
    let report = restore_ok(node, root.path(), "b1", &["--rename", &format!("{a}={b}")]);
    assert_eq!(table_report(&report, "readings")["backup_keyspace"], a.as_str());
    assert_eq!(dataset::dump_all(&session, &b).await, rows_a);
    let cql = node.cql().await;
    let ids = |ts: Vec<cassette_cassandra::TableInfo>| ts.into_iter().map(|t| t.id).collect::<Vec<_>>();
    assert_ne!(ids(cql.tables(&a).await.unwrap()), ids(cql.tables(&b).await.unwrap()));

    // C does not exist: refused with the list, then created from the backup's schema.
    let c = unique_name("rs_new");
    let out = restore(node, root.path(), "b1", &["--rename", &format!("{a}={c}")]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("{c}.readings")) && stderr(&out).contains("--create-schema"),
        "{}",
        stderr(&out)
    );
    let report = restore_ok(node, root.path(), "b1", &["--create-schema", "--rename", &format!("{a}={c}")]);
    assert!(
        report["schema_created"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s.as_str().unwrap().starts_with(&format!("CREATE KEYSPACE {c}")))
    );
    assert_eq!(dataset::dump_all(&session, &c).await, rows_a);
    assert_eq!(dataset::dump_all(&session, &a).await, rows_a, "the source keyspace is untouched");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restore_killed_mid_way_completes_when_run_again() {
    let cluster = solo();
    let node = &cluster.nodes[0];
    let session = cluster.session().await;
    let ks = unique_name("rs_kill");
    dataset::load(&session, cluster, &ks, 1, &dataset::Shape::small()).await;
    let before = dataset::dump_all(&session, &ks).await;
    let root = other_disk_dir();
    let _turn = serial();
    backup_ok(node, root.path(), "b1", &["-k", &ks]);
    scribble(&session, cluster, &ks).await;

    let host = host_id(node).await;
    let journal = root.path().join("solo").join(&host).join("b1/cassette-meta").join(format!("restore-{host}.jsonl"));
    let mut child = {
        use std::os::unix::process::CommandExt;
        Command::new(env!("CARGO_BIN_EXE_cassette"))
            .args(["--json", "restore", "--name", "b1", "--backup-dir", root.path().to_str().unwrap(), "-k", &ks])
            .env("CASSETTE_CQL_HOST", &node.ip)
            .env("CASSETTE_JMX_PORT", node.jmx_port.to_string())
            .env("CASSETTE_NODETOOL", cassette_testkit::nodetool_launcher())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let text = std::fs::read_to_string(&journal).unwrap_or_default();
        if text.contains("\"record\":\"loaded\"") {
            break;
        }
        assert!(child.try_wait().unwrap().is_none(), "restore ended before a table was loaded");
        assert!(std::time::Instant::now() < deadline, "no table loaded in time");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // kill -9 of the whole job (cassette and its nodetool).
    let killed = Command::new("kill").args(["-9", "--", &format!("-{}", child.id())]).status().unwrap();
    assert!(killed.success());
    let _ = child.wait();
    let text = std::fs::read_to_string(&journal).unwrap();
    assert!(!text.contains("\"record\":\"finished\""), "killed before the end:\n{text}");

    let report = restore_ok(node, root.path(), "b1", &["-k", &ks, "--clear-truncate-snapshots"]);
    assert_eq!(report["resumed"], true);
    let skipped: Vec<&str> =
        report["tables"].as_array().unwrap().iter().filter_map(|t| t["skipped"].as_str()).collect();
    assert!(skipped.iter().any(|s| s.contains("already loaded")), "{report}");
    assert_eq!(dataset::dump_all(&session, &ks).await, before);
    assert!(
        !node.nodetool(&["listsnapshots"]).lines().any(|l| l.starts_with("truncated-") && l.contains(&ks)),
        "truncate snapshots cleared"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_three_node_cluster_restores_node_by_node() {
    let cluster = Cluster::trio();
    let session = cluster.session().await;
    let ks = unique_name("rs_trio");
    dataset::load(&session, cluster, &ks, 3, &dataset::Shape::small()).await;
    let before = dataset::dump_all(&session, &ks).await;
    let root = other_disk_dir();
    let _turn = serial();
    for node in &cluster.nodes {
        backup_ok(node, root.path(), "b1", &["-k", &ks]);
    }
    scribble(&session, cluster, &ks).await;

    let first = &cluster.nodes[0];
    let report = restore_ok(first, root.path(), "b1", &["-k", &ks, "--truncate-only"]);
    assert!(report["tables"].as_array().unwrap().iter().all(|t| t["truncated"] == true && t["loaded"] == false));
    for t in dataset::TABLES {
        assert!(dataset::dump(&session, &ks, t).await.is_empty(), "{t} truncated cluster-wide");
    }
    for (i, node) in cluster.nodes.iter().enumerate() {
        let extra: &[&str] =
            if i == 2 { &["-k", &ks, "--no-truncate", "--repair"] } else { &["-k", &ks, "--no-truncate"] };
        let report = restore_ok(node, root.path(), "b1", extra);
        assert!(report["tables"].as_array().unwrap().iter().all(|t| t["truncated"] == false && t["loaded"] == true));
    }
    assert_eq!(dataset::dump_all(&session, &ks).await, before, "rows at CONSISTENCY ALL equal the backup's");

    // Truncating again would wipe what the nodes loaded: refused, with the way forward.
    let out = restore(&cluster.nodes[1], root.path(), "b1", &["-k", &ks, "--truncate-only"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("refusing to truncate") && stderr(&out).contains("--no-truncate"),
        "{}",
        stderr(&out)
    );
    assert_eq!(dataset::dump_all(&session, &ks).await, before);
}

#[tokio::test(flavor = "multi_thread")]
async fn restore_takes_the_node_wide_job_lock() {
    let node = &solo().nodes[0];
    let root = other_disk_dir();
    let _turn = serial();
    let _held = cassette_repo::NodeLock::acquire_host(&host_id(node).await).unwrap();
    let out = restore(node, root.path(), "anything", &[]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("another cassette job"), "{}", stderr(&out));
}
