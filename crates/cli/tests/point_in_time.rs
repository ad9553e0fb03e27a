//! Point-in-time recovery on a real Cassandra 5.0 node of its own (cluster `pitr`, 1 MiB
//! commitlog segments), which these tests stop and start: `cassette commitlog install`,
//! Cassandra running `cassette commitlog archive` for every finished segment, `commitlog ship`
//! into the repository, `list --commitlog`, and `restore --offline --until T`.
// The job turn (a std mutex) is held for the whole test, across awaits, on purpose: the tests
// of this binary share one node that they stop and start.
#![allow(clippy::await_holding_lock)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use cassette_testkit::{Cluster, Node, dataset, unique_name};
use chrono::{DateTime, SubsecRound, Utc};
use common::*;
use scylla::client::session::Session;

struct Setup {
    cluster: &'static Cluster,
    spool: PathBuf,
    properties: PathBuf,
}

fn pitr() -> &'static Cluster {
    Cluster::pitr()
}

fn json_of(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "cassette failed ({:?}):\n{}\n{}", out.status, stdout(out), stderr(out));
    serde_json::from_str(&stdout(out)).expect("--json prints JSON")
}

/// Archiving set up once per test run: `commitlog install`, then a restart so that Cassandra
/// reads the file. The spool is beside the node's commitlog (same filesystem: hard links).
fn set_up() -> Setup {
    set_up_on(pitr())
}

/// [`set_up`] on the one node of `cluster`.
fn set_up_on(cluster: &'static Cluster) -> Setup {
    let node = &cluster.nodes[0];
    let spool = node.dir.join("cassette-spool");
    let properties = node.dir.join("conf/commitlog_archiving.properties");
    let installed = std::fs::read_to_string(&properties).unwrap_or_default().contains("commitlog archive --spool");
    if !installed {
        let out = on(
            node,
            &[
                "--json",
                "commitlog",
                "install",
                "--spool",
                spool.to_str().unwrap(),
                "--commitlog-archiving-properties",
                properties.to_str().unwrap(),
            ],
        );
        let report = json_of(&out);
        assert_eq!(report["changed"], true, "{report}");
        restart(cluster);
    }
    Setup { cluster, spool, properties }
}

fn restart(cluster: &Cluster) {
    for cmd in [cluster.stop_node_command(1), cluster.start_node_command(1)] {
        let out = std::process::Command::new("sh").arg("-c").arg(&cmd).output().unwrap();
        assert!(out.status.success(), "{cmd}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

/// Writes about `mib` MiB into `ks.filler`, so that the node finishes and archives segments.
async fn fill(session: &Session, ks: &str, mib: usize) {
    let blob = "x".repeat(100 * 1024);
    for i in 0..(mib * 10) {
        dataset::exec(session, &format!("INSERT INTO {ks}.filler (id, payload) VALUES ({i}, '{blob}')")).await;
    }
}

async fn rows(session: &Session, ks: &str) -> BTreeMap<i32, String> {
    let result = session.query_unpaged(format!("SELECT id, v FROM {ks}.t"), ()).await.unwrap();
    let rows = result.into_rows_result().unwrap();
    rows.rows::<(i32, String)>().unwrap().map(|r| r.unwrap()).collect()
}

/// `cassette ARGS` against `node` with its own version's nodetool.
fn on(node: &Node, args: &[&str]) -> Output {
    cassette_with_env(node, &[("CASSETTE_NODETOOL", node.nodetool.to_str().unwrap())], args)
}

fn ship(node: &Node, setup: &Setup, root: &Path) -> serde_json::Value {
    let out = on(
        node,
        &[
            "--json",
            "commitlog",
            "ship",
            "--spool",
            setup.spool.to_str().unwrap(),
            "--backup-dir",
            root.to_str().unwrap(),
        ],
    );
    json_of(&out)
}

fn restore_until(setup: &Setup, root: &Path, until: &str, extra: &[&str]) -> Output {
    let cluster = setup.cluster;
    let node = &cluster.nodes[0];
    let (stop, start) = (cluster.stop_node_command(1), cluster.start_node_command(1));
    let mut args = vec![
        "--json",
        "restore",
        "--offline",
        "--until",
        until,
        "--backup-dir",
        root.to_str().unwrap(),
        "--stop-command",
        &stop,
        "--start-command",
        &start,
        "--commitlog-archiving-properties",
        setup.properties.to_str().unwrap(),
        "--cassandra-log",
        node.log.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    on(node, &args)
}

/// The segment files stored for the node, and their records.
fn stored_segments(root: &Path) -> (Vec<String>, Vec<String>) {
    let mut segments = Vec::new();
    let mut records = Vec::new();
    for p in files_under(root) {
        if p.parent().and_then(|d| d.file_name()).is_some_and(|n| n == "commitlog") {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if name.ends_with(".log.json") {
                records.push(name);
            } else {
                segments.push(name);
            }
        }
    }
    segments.sort();
    records.sort();
    (segments, records)
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restore_to_a_point_in_time_has_every_write_before_it_and_none_after() {
    let _turn = serial();
    let setup = set_up();
    let cluster = setup.cluster;
    let node = &cluster.nodes[0];
    let root = other_disk_dir();
    let session = cluster.session().await;
    let ks = unique_name("pitr");
    dataset::exec_schema(
        &session,
        &format!("CREATE KEYSPACE {ks} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}"),
    )
    .await;
    dataset::exec_schema(&session, &format!("CREATE TABLE {ks}.t (id int PRIMARY KEY, v text)")).await;
    dataset::exec_schema(&session, &format!("CREATE TABLE {ks}.filler (id int PRIMARY KEY, payload text)")).await;

    // A: in the backup.
    for i in 0..50 {
        dataset::exec(&session, &format!("INSERT INTO {ks}.t (id, v) VALUES ({i}, 'a{i}')")).await;
    }
    backup_ok(node, root.path(), "base", &["-k", &ks]);

    // B: after the backup, before T: inserts, an update and a delete of A's rows.
    for i in 50..80 {
        dataset::exec(&session, &format!("INSERT INTO {ks}.t (id, v) VALUES ({i}, 'b{i}')")).await;
    }
    dataset::exec(&session, &format!("UPDATE {ks}.t SET v = 'b-updated' WHERE id = 3")).await;
    dataset::exec(&session, &format!("DELETE FROM {ks}.t WHERE id = 4")).await;
    let at_t = rows(&session, &ks).await;
    assert_eq!(at_t.len(), 79);
    // T: a whole second after B's last write, a whole second before C's first.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let t = Utc::now().trunc_subsecs(0);
    tokio::time::sleep(Duration::from_millis(1100)).await;

    // C: after T: inserts, an update of a B row, a delete of an A row; then enough writes to
    // finish the segments that hold B, C and T.
    for i in 80..100 {
        dataset::exec(&session, &format!("INSERT INTO {ks}.t (id, v) VALUES ({i}, 'c{i}')")).await;
    }
    dataset::exec(&session, &format!("UPDATE {ks}.t SET v = 'c-updated' WHERE id = 60")).await;
    dataset::exec(&session, &format!("DELETE FROM {ks}.t WHERE id = 10")).await;
    fill(&session, &ks, 4).await;

    // The segments reach the spool as Cassandra finishes them, and the shipper stores them.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let shipped = loop {
        let report = ship(node, &setup, root.path());
        let newest = report["last_shipped_write"].as_str().map(|s| DateTime::parse_from_rfc3339(s).unwrap().to_utc());
        if newest.is_some_and(|w| w > t) {
            break report;
        }
        assert!(std::time::Instant::now() < deadline, "no archived segment reaches past T: {report}");
        fill(&session, &ks, 1).await;
    };
    // (Cassandra goes on finishing segments meanwhile: some may wait for the next run.)
    let (segments, records) = stored_segments(root.path());
    assert!(!segments.is_empty());
    assert_eq!(records, segments.iter().map(|s| format!("{s}.json")).collect::<Vec<_>>());

    // The window runs from the backup's end past T.
    let listing =
        json_of(&cassette(node, &["--json", "list", "--commitlog", "--backup-dir", root.path().to_str().unwrap()]));
    let windows = listing["nodes"][0]["windows"].as_array().unwrap().clone();
    assert_eq!(windows.len(), 1, "{listing}");
    let from = DateTime::parse_from_rfc3339(windows[0]["from"].as_str().unwrap()).unwrap().to_utc();
    let until = DateTime::parse_from_rfc3339(windows[0]["until"].as_str().unwrap()).unwrap().to_utc();
    assert!(from < t && t < until, "T {t} outside {listing}");
    let newest_shipped =
        DateTime::parse_from_rfc3339(shipped["last_shipped_write"].as_str().unwrap()).unwrap().to_utc();
    assert_eq!(until, newest_shipped, "the window ends at the newest archived write");
    assert_eq!(windows[0]["backup"], "base");
    drop(session);

    // A time after the window is refused before anything is touched, naming the window.
    let too_late = rfc3339(until + chrono::Duration::hours(1));
    let out = restore_until(&setup, root.path(), &too_late, &[]);
    assert_eq!(out.status.code(), Some(2), "{}\n{}", stdout(&out), stderr(&out));
    assert!(
        stderr(&out).contains("recoverable windows") && stderr(&out).contains("Nothing was touched"),
        "{}",
        stderr(&out)
    );
    assert!(cassette_cassandra::port_answers(&node.ip, 9042).await, "the node is still up");

    // The restore to T: A and B as they were at T, nothing of C.
    let report = json_of(&restore_until(&setup, root.path(), &rfc3339(t), &["-k", &ks]));
    assert_eq!(report["complete"], true, "{report}");
    assert_eq!(report["name"], "base", "the newest backup before T");
    let replayed = report["replay"]["replayed_mutations"].as_u64().unwrap_or(0);
    assert!(replayed >= 32, "B's 32 writes were replayed: {report}");
    let session = cluster.session().await;
    assert_eq!(rows(&session, &ks).await, at_t);

    // The restore settings are gone (the next start does not replay again); archiving stays.
    let props = std::fs::read_to_string(&setup.properties).unwrap();
    assert!(!props.contains("restore_point_in_time") && !props.contains("restore_directories"), "{props}");
    assert!(props.contains("commitlog archive --spool"), "{props}");
}

/// The names of the segments waiting in the spool.
fn spooled_names(setup: &Setup) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(&setup.spool)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("CommitLog-") && n.ends_with(".log"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Segments waiting in the spool.
fn spooled(setup: &Setup) -> usize {
    std::fs::read_dir(&setup.spool)
        .map(|d| {
            d.flatten()
                .filter(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    n.starts_with("CommitLog-") && n.ends_with(".log")
                })
                .count()
        })
        .unwrap_or(0)
}

/// Writes until at least `n` segments wait in the spool.
async fn spool_at_least(setup: &Setup, session: &Session, ks: &str, n: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while spooled(setup) < n {
        assert!(std::time::Instant::now() < deadline, "Cassandra archived {} segments, not {n}", spooled(setup));
        fill(session, ks, 1).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn keyspace_with_tables(session: &Session, prefix: &str) -> String {
    let ks = unique_name(prefix);
    dataset::exec_schema(
        session,
        &format!("CREATE KEYSPACE {ks} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}"),
    )
    .await;
    dataset::exec_schema(session, &format!("CREATE TABLE {ks}.t (id int PRIMARY KEY, v text)")).await;
    dataset::exec_schema(session, &format!("CREATE TABLE {ks}.filler (id int PRIMARY KEY, payload text)")).await;
    ks
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shipper_killed_mid_upload_loses_no_segment_and_a_damaged_segment_is_refused_before_the_node_stops() {
    let _turn = serial();
    let setup = set_up();
    let cluster = setup.cluster;
    let node = &cluster.nodes[0];
    let root = other_disk_dir();
    let session = cluster.session().await;
    let ks = keyspace_with_tables(&session, "pitr_kill").await;
    write_a(&session, &ks).await;
    backup_ok(node, root.path(), "base", &["-k", &ks]);
    dataset::exec(&session, &format!("INSERT INTO {ks}.t (id, v) VALUES (100, 'b')")).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let t = Utc::now().trunc_subsecs(0);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    spool_at_least(&setup, &session, &ks, 3).await;
    let waiting_names = spooled_names(&setup);
    let waiting = waiting_names.len();

    let ship_args = [
        "--json",
        "commitlog",
        "ship",
        "--spool",
        setup.spool.to_str().unwrap(),
        "--backup-dir",
        root.path().to_str().unwrap(),
    ];
    // Killed while the second segment's bytes are being written, then right after a segment is
    // stored but before it leaves the spool.
    for kill_at in ["file-partial:2", "segment-archived:1"] {
        let out = cassette_with_env(node, &[("CASSETTE_FAULT_KILL_AT", kill_at)], &ship_args);
        assert!(!out.status.success(), "{kill_at}: the shipper was not killed:\n{}", stderr(&out));
    }
    assert!(spooled(&setup) >= waiting - 1, "nothing left the spool unless stored");
    let report = ship(node, &setup, root.path());
    assert_eq!(report["already_archived"].as_array().unwrap().len(), 1, "the segment stored before the kill: {report}");
    let (segments, records) = stored_segments(root.path());
    for name in &waiting_names {
        assert!(segments.contains(name), "{name} was spooled before the kills and is not stored: {segments:?}");
        assert!(!spooled_names(&setup).contains(name), "{name} is stored and still spooled");
    }
    assert_eq!(
        records,
        segments.iter().map(|s| format!("{s}.json")).collect::<Vec<_>>(),
        "each segment once, with its record"
    );
    assert!(
        files_under(root.path()).iter().all(|p| !p.to_string_lossy().ends_with(".partial")),
        "no partial file left"
    );
    let commitlog_dir = files_under(root.path())
        .into_iter()
        .find(|p| p.ends_with(&segments[0]))
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    for s in &segments {
        let record: serde_json::Value =
            serde_json::from_slice(&std::fs::read(commitlog_dir.join(format!("{s}.json"))).unwrap()).unwrap();
        let stored = blake3::hash(&std::fs::read(commitlog_dir.join(s)).unwrap()).to_hex().to_string();
        assert_eq!(record["blake3"], stored, "{s} is stored whole");
    }

    // Every segment up to T is archived; damage one the restore needs.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while ship(node, &setup, root.path())["last_shipped_write"]
        .as_str()
        .is_none_or(|w| DateTime::parse_from_rfc3339(w).unwrap().to_utc() <= t)
    {
        assert!(std::time::Instant::now() < deadline, "no segment archived past T");
        fill(&session, &ks, 1).await;
    }
    drop(session);
    let needed = stored_segments(root.path())
        .0
        .into_iter()
        .find(|s| {
            let record: serde_json::Value =
                serde_json::from_slice(&std::fs::read(commitlog_dir.join(format!("{s}.json"))).unwrap()).unwrap();
            DateTime::parse_from_rfc3339(record["last_write"].as_str().unwrap()).unwrap().to_utc() >= t
        })
        .expect("a segment written at T");
    let path = commitlog_dir.join(&needed);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
    let out = restore_until(&setup, root.path(), &rfc3339(t), &["-k", &ks]);
    assert_eq!(out.status.code(), Some(1), "{}\n{}", stdout(&out), stderr(&out));
    assert!(stderr(&out).contains(&needed) && stderr(&out).contains("nothing was touched"), "{}", stderr(&out));
    assert!(cassette_cassandra::port_answers(&node.ip, 9042).await, "the node was not stopped");
    let props = std::fs::read_to_string(&setup.properties).unwrap();
    assert!(!props.contains("restore_point_in_time"), "{props}");

    // A missing one too.
    std::fs::remove_file(&path).unwrap();
    let out = restore_until(&setup, root.path(), &rfc3339(t), &["-k", &ks]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains(&needed) && stderr(&out).contains("missing"), "{}", stderr(&out));
    assert!(cassette_cassandra::port_answers(&node.ip, 9042).await, "the node was not stopped");
}

#[tokio::test(flavor = "multi_thread")]
async fn segments_wait_in_the_spool_while_the_repository_is_unreachable_and_ship_once_it_is_back() {
    use cassette_testkit::s3::{StoreKind, StoreServer};
    let _turn = serial();
    let setup = set_up();
    let node = &setup.cluster.nodes[0];
    let session = setup.cluster.session().await;
    let ks = keyspace_with_tables(&session, "pitr_s3").await;
    let mut s3 = StoreServer::start(StoreKind::S3sFs);
    let url = s3.url("pitr");
    let ship_to = |s3: &StoreServer| {
        let env = s3.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        cassette_with_env(
            node,
            &env,
            &["--json", "commitlog", "ship", "--spool", setup.spool.to_str().unwrap(), "--backup-dir", &url],
        )
    };
    json_of(&ship_to(&s3));

    s3.stop_for_now();
    // Cassandra goes on writing and finishing segments: the archive command needs no network.
    spool_at_least(&setup, &session, &ks, 2).await;
    let waiting_names = spooled_names(&setup);
    let waiting = waiting_names.len();
    let out = ship_to(&s3);
    assert_eq!(out.status.code(), Some(1), "{}\n{}", stdout(&out), stderr(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(report["error"].as_str().is_some_and(|e| e.contains("CommitLog-")), "{report}");
    assert!(report["waiting"]["segments"].as_u64().unwrap() >= waiting as u64, "{report}");

    s3.restart();
    let report = json_of(&ship_to(&s3));
    let shipped: Vec<&str> = report["shipped"].as_array().unwrap().iter().map(|n| n.as_str().unwrap()).collect();
    for name in &waiting_names {
        assert!(shipped.contains(&name.as_str()), "{name} waited and was not shipped: {report}");
    }
    let objects = s3.objects().await;
    for name in report["shipped"].as_array().unwrap().iter().map(|n| n.as_str().unwrap()) {
        for key in [name.to_owned(), format!("{name}.json")] {
            assert_eq!(
                objects.keys().filter(|k| k.ends_with(&format!("/commitlog/{key}"))).count(),
                1,
                "{key} in {:?}",
                objects.keys()
            );
        }
    }
}

/// The value of a metric for one node in the Prometheus text `text`.
fn metric(text: &str, name: &str, node: &str) -> Option<f64> {
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("/metrics parses as the Prometheus text format");
    scrape.samples.into_iter().find(|s| s.metric == name && s.labels.get("node") == Some(node)).map(|s| match s.value {
        prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => v,
        other => panic!("{name}: unexpected {other:?}"),
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn the_agent_ships_as_segments_come_and_metrics_show_the_window_list_shows() {
    use common::services::Services;
    let _turn = serial();
    let setup = set_up();
    let cluster = setup.cluster;
    let node = &cluster.nodes[0];
    let root = other_disk_dir();
    let session = cluster.session().await;
    let ks = keyspace_with_tables(&session, "pitr_agent").await;
    dataset::exec(&session, &format!("INSERT INTO {ks}.t (id, v) VALUES (1, 'a')")).await;
    backup_ok(node, root.path(), "base", &["-k", &ks]);
    let agent_args = vec![
        "--commitlog-spool".to_string(),
        setup.spool.display().to_string(),
        "--commitlog-ship-interval".into(),
        "1".into(),
    ];
    let s = Services::start_on(cluster, root.path(), Vec::new(), Vec::new(), agent_args);
    let host = s.host_ids().await.remove(0);
    fill(&session, &ks, 3).await;

    // The agent ships without being asked; the server's /metrics shows the window that
    // `list --commitlog` computes from the repository.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let text = s.http.get(s.url("/metrics")).send().await.unwrap().text().await.unwrap();
        let listing =
            json_of(&cassette(node, &["--json", "list", "--commitlog", "--backup-dir", root.path().to_str().unwrap()]));
        let window = &listing["nodes"][0]["windows"][0];
        let seconds = |v: &serde_json::Value| {
            v.as_str().map(|t| DateTime::parse_from_rfc3339(t).unwrap().timestamp_millis() as f64 / 1000.0)
        };
        let until = metric(&text, "cassette_commitlog_recoverable_until_timestamp_seconds", &host);
        let from = metric(&text, "cassette_commitlog_recoverable_from_timestamp_seconds", &host);
        let shipped = metric(&text, "cassette_commitlog_last_shipped_timestamp_seconds", &host);
        if until.is_some() && until == seconds(&window["until"]) && from == seconds(&window["from"]) {
            assert_eq!(shipped, until, "the newest archived write ends the window");
            assert!(metric(&text, "cassette_commitlog_spool_segments", &host).is_some(), "{text}");
            assert!(
                metric(&text, "cassette_commitlog_recovery_point_age_seconds", &host).is_some_and(|a| a >= 0.0),
                "{text}"
            );
            assert_eq!(window["backup"], "base");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the metrics never showed the listed window:\n{listing}\n{text}\n{}",
            s.logs()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_table_dropped_after_the_point_in_time_comes_back_with_its_id_and_its_writes() {
    let _turn = serial();
    let setup = set_up();
    let cluster = setup.cluster;
    let node = &cluster.nodes[0];
    let root = other_disk_dir();
    let session = cluster.session().await;
    let ks = keyspace_with_tables(&session, "pitr_drop").await;
    for i in 0..10 {
        dataset::exec(&session, &format!("INSERT INTO {ks}.t (id, v) VALUES ({i}, 'a{i}')")).await;
    }
    backup_ok(node, root.path(), "base", &["-k", &ks]);
    for i in 10..20 {
        dataset::exec(&session, &format!("INSERT INTO {ks}.t (id, v) VALUES ({i}, 'b{i}')")).await;
    }
    dataset::exec(&session, &format!("UPDATE {ks}.t SET v = 'b-updated' WHERE id = 2")).await;
    let at_t = rows(&session, &ks).await;
    let id_before = node.cql().await.tables(&ks).await.unwrap().into_iter().find(|t| t.name == "t").unwrap().id_hex();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let t = Utc::now().trunc_subsecs(0);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    dataset::exec_schema(&session, &format!("DROP TABLE {ks}.t")).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while ship(node, &setup, root.path())["last_shipped_write"]
        .as_str()
        .is_none_or(|w| DateTime::parse_from_rfc3339(w).unwrap().to_utc() <= t)
    {
        assert!(std::time::Instant::now() < deadline, "no segment archived past T");
        fill(&session, &ks, 1).await;
    }
    drop(session);

    let report = json_of(&restore_until(&setup, root.path(), &rfc3339(t), &["-k", &ks, "--create-schema"]));
    assert_eq!(report["complete"], true, "{report}");
    let created: Vec<&str> = report["schema_created"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert!(
        created.iter().any(|s| s.starts_with(&format!("CREATE TABLE {ks}.t")) && s.contains("ID = ")),
        "{created:?}"
    );
    let id_after = node.cql().await.tables(&ks).await.unwrap().into_iter().find(|t| t.name == "t").unwrap().id_hex();
    assert_eq!(id_after, id_before, "recreated with its backed-up id");
    let session = cluster.session().await;
    assert_eq!(rows(&session, &ks).await, at_t, "the writes after the backup were replayed into it");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restore_to_a_point_in_time_from_object_storage_downloads_and_verifies_before_the_node_stops() {
    use cassette_testkit::s3::{StoreKind, StoreServer};
    let _turn = serial();
    let setup = set_up();
    let cluster = setup.cluster;
    let node = &cluster.nodes[0];
    let session = cluster.session().await;
    let ks = keyspace_with_tables(&session, "pitr_obj").await;
    let s3 = StoreServer::start(StoreKind::S3sFs);
    let url = s3.url("pitr-obj");
    let env = s3.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let run = |args: &[&str]| cassette_with_env(node, &env, args);

    write_a(&session, &ks).await;
    json_of(&run(&["--json", "backup", "--name", "base", "-k", &ks, "--backup-dir", &url]));
    let (at_t, t) = write_b_then_c(&session, &ks).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let shipped = json_of(&run(&[
            "--json",
            "commitlog",
            "ship",
            "--spool",
            setup.spool.to_str().unwrap(),
            "--backup-dir",
            &url,
        ]));
        if time_of(&shipped["last_shipped_write"]).is_some_and(|w| w > t) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no segment archived past T: {shipped}");
        fill(&session, &ks, 1).await;
    }
    drop(session);
    let (stop, start) = (cluster.stop_node_command(1), cluster.start_node_command(1));
    let restore = |start: &str, extra: &[&str]| {
        let until = rfc3339(t);
        let mut args = vec![
            "--json",
            "restore",
            "--offline",
            "--until",
            until.as_str(),
            "--backup-dir",
            url.as_str(),
            "--stop-command",
            stop.as_str(),
            "--start-command",
            start,
            "--commitlog-archiving-properties",
            setup.properties.to_str().unwrap(),
            "--cassandra-log",
            node.log.to_str().unwrap(),
            "-k",
            ks.as_str(),
        ];
        args.extend_from_slice(extra);
        run(&args)
    };

    // A damaged SSTable object is refused while downloading, before the node is stopped.
    let objects = s3.objects().await;
    let data_key = objects
        .keys()
        .find(|k| k.contains(&format!("/base/{ks}/t/")) && k.ends_with("-Data.db"))
        .cloned()
        .unwrap_or_else(|| panic!("t's Data.db among {:?}", objects.keys()));
    let original = s3.get(&data_key).await;
    let mut damaged = original.clone();
    let last = damaged.len() - 1;
    damaged[last] ^= 0xff;
    s3.put(&data_key, damaged).await;
    let out = restore(&start, &[]);
    assert_eq!(out.status.code(), Some(1), "{}\n{}", stdout(&out), stderr(&out));
    assert!(cassette_cassandra::port_answers(&node.ip, 9042).await, "the node was not stopped");
    s3.put(&data_key, original).await;

    // The restore from object storage, its start failing: the files are in place, the node
    // stays down; run again (the node down: the journal is in the state directory), it
    // finishes. A and B as at T, nothing of C.
    let out = restore("echo cannot start >&2; exit 3", &["--new-restore"]);
    assert_eq!(out.status.code(), Some(1), "{}\n{}", stdout(&out), stderr(&out));
    assert!(!cassette_cassandra::port_answers(&node.ip, 9042).await, "the node is down");
    let report = json_of(&restore(&start, &["--name", "base"]));
    assert_eq!((report["complete"].as_bool(), report["resumed"].as_bool()), (Some(true), Some(true)), "{report}");
    let steps: Vec<String> =
        report["steps"].as_array().unwrap().iter().map(|s| s["detail"].as_str().unwrap().to_string()).collect();
    assert!(steps.iter().any(|s| s.contains("downloaded into") && s.contains("verified")), "{steps:?}");
    let session = cluster.session().await;
    assert_eq!(rows(&session, &ks).await, at_t);
}

fn time_of(v: &serde_json::Value) -> Option<DateTime<Utc>> {
    v.as_str().map(|s| DateTime::parse_from_rfc3339(s).unwrap().to_utc())
}

/// The focused round trip of the other versions: A, backup, B (an update and a delete among
/// them), T, C; restored to T, the rows are those at T.
async fn round_trip_to_a_point_in_time(cluster: &'static Cluster) {
    let setup = set_up_on(cluster);
    let node = &cluster.nodes[0];
    let root = other_disk_dir();
    let session = cluster.session().await;
    let ks = keyspace_with_tables(&session, "pitr_v").await;
    write_a(&session, &ks).await;
    json_of(&on(
        node,
        &["--json", "backup", "--name", "base", "-k", &ks, "--backup-dir", root.path().to_str().unwrap()],
    ));
    let (at_t, t) = write_b_then_c(&session, &ks).await;
    dataset::exec(&session, &format!("UPDATE {ks}.t SET v = 'c-updated' WHERE id = 25")).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while time_of(&ship(node, &setup, root.path())["last_shipped_write"]).is_none_or(|w| w <= t) {
        assert!(std::time::Instant::now() < deadline, "no segment archived past T");
        fill(&session, &ks, 1).await;
    }
    drop(session);
    let report = json_of(&restore_until(&setup, root.path(), &rfc3339(t), &["-k", &ks]));
    assert_eq!(report["complete"], true, "{report}");
    assert!(report["replay"]["replayed_mutations"].as_u64().is_some_and(|n| n >= 12), "B's writes replayed: {report}");
    let session = cluster.session().await;
    assert_eq!(rows(&session, &ks).await, at_t);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restore_to_a_point_in_time_on_cassandra_4_1() {
    let _turn = serial();
    round_trip_to_a_point_in_time(Cluster::pitr_v41()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restore_to_a_point_in_time_on_cassandra_4_0() {
    let _turn = serial();
    round_trip_to_a_point_in_time(Cluster::pitr_v40()).await;
}

/// A: rows 0 to 19, before the backup.
async fn write_a(session: &Session, ks: &str) {
    for i in 0..20 {
        dataset::exec(session, &format!("INSERT INTO {ks}.t (id, v) VALUES ({i}, 'a{i}')")).await;
    }
}

/// B (rows 20 to 29, an update of row 1, a delete of row 2), then T a whole second after B's
/// last write and a second before C (rows 30 to 39). Returns the rows at T, and T.
async fn write_b_then_c(session: &Session, ks: &str) -> (BTreeMap<i32, String>, DateTime<Utc>) {
    for i in 20..30 {
        dataset::exec(session, &format!("INSERT INTO {ks}.t (id, v) VALUES ({i}, 'b{i}')")).await;
    }
    dataset::exec(session, &format!("UPDATE {ks}.t SET v = 'b-updated' WHERE id = 1")).await;
    dataset::exec(session, &format!("DELETE FROM {ks}.t WHERE id = 2")).await;
    let at_t = rows(session, ks).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let t = Utc::now().trunc_subsecs(0);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for i in 30..40 {
        dataset::exec(session, &format!("INSERT INTO {ks}.t (id, v) VALUES ({i}, 'c{i}')")).await;
    }
    (at_t, t)
}
