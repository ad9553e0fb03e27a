//! The README's exit-code table, command by command: each command is run with a missing backup
//! name, an incomplete backup, an invalid name, an unknown keyspace, Cassandra down (a CQL port
//! nothing listens on) and a backup location that is not one cassette knows, where these apply.
//! Each case checks the exit code and that the message names what to do.

// One job per node: the job turn is held across awaits on purpose.
#![allow(clippy::await_holding_lock)]

mod common;

use cassette_testkit::unique_name;
use common::*;

struct Case {
    args: Vec<String>,
    code: i32,
    /// Words of the message (stderr, or stdout for a report) that say what went wrong or what to do.
    says: &'static [&'static str],
}

fn case(args: &str, root: &str, code: i32, says: &'static [&'static str]) -> Case {
    let args = args.split_whitespace().map(|a| a.replace("{root}", root)).collect();
    Case { args, code, says }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_command_exits_as_the_readme_table_says() {
    let cluster = solo();
    let node = &cluster.nodes[0];
    let session = cluster.session().await;
    let ks = unique_name("exitcodes");
    cassette_testkit::dataset::exec_schema(
        &session,
        &format!("CREATE KEYSPACE {ks} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}"),
    )
    .await;
    cassette_testkit::dataset::exec_schema(&session, &format!("CREATE TABLE {ks}.t (id int PRIMARY KEY, v text)"))
        .await;
    for i in 0..20 {
        cassette_testkit::dataset::exec(&session, &format!("INSERT INTO {ks}.t (id, v) VALUES ({i}, 'v{i}')")).await;
    }
    cluster.flush(&ks);
    let dir = other_disk_dir();
    let root = dir.path().to_str().unwrap().to_string();
    let _turn = serial();
    backup_ok(node, dir.path(), "good", &["-k", &ks]);
    // An interrupted backup: killed after its first file (as kill -9 would).
    let out = cassette_with_env(
        node,
        &[("CASSETTE_FAULT_KILL_AT", "file-journaled:1")],
        &["backup", "--name", "half", "--backup-dir", &root, "-k", &ks],
    );
    assert!(!out.status.success(), "the fault hook kills the backup: {}", stderr(&out));
    let listed = list_json(node, dir.path());
    assert!(listed.iter().any(|b| b["name"] == "half" && b["complete"] == false), "{listed:?}");
    let nothing = dir.path().join("no-such-dir");
    let nothing = nothing.to_str().unwrap();

    let r = root.as_str();
    let down = "--cql-port 1";
    let cases = vec![
        // backup
        case("backup --name bad/name --backup-dir {root}", r, 2, &["invalid backup name", "letters, digits"]),
        case("backup --name=-x --backup-dir {root}", r, 2, &["starting with a letter or digit"]),
        case("backup --name good --backup-dir {root}", r, 3, &["good", "already"]),
        case(&format!("backup --name x --backup-dir {{root}} -k {ks}_nope"), r, 2, &["_nope"]),
        case(&format!("backup --name x --backup-dir {{root}} {down}"), r, 4, &["--cql-host"]),
        case("backup --name x --backup-dir S3://b/x", r, 2, &["S3://b/x", "s3://BUCKET/PREFIX"]),
        case("backup --name x --backup-dir s3:/b/x", r, 2, &["s3:/b/x", "s3://BUCKET/PREFIX"]),
        // restore
        case("restore --name missing --backup-dir {root}", r, 2, &["missing", "cassette list"]),
        case("restore --name half --backup-dir {root}", r, 2, &["incomplete", "Run the same backup again"]),
        case("restore --name bad/name --backup-dir {root}", r, 2, &["invalid backup name"]),
        case(&format!("restore --name good --backup-dir {{root}} -k {ks}_nope"), r, 2, &["_nope", "it has:"]),
        case(&format!("restore --name good --backup-dir {{root}} {down}"), r, 4, &["--cql-host"]),
        case("restore --name good --backup-dir gcs://b", r, 2, &["gcs://b", "gs://BUCKET/PREFIX"]),
        // list
        case("list --backup-dir s3:/b/x", r, 2, &["s3://BUCKET/PREFIX"]),
        case("list --backup-dir {root}", r, 0, &["good"]),
        // verify
        case("verify --name missing --backup-dir {root}", r, 2, &["missing", "cassette list"]),
        case("verify --name half --backup-dir {root}", r, 1, &["incomplete", "Run the same backup again"]),
        case("verify --name bad/name --backup-dir {root}", r, 2, &["invalid backup name"]),
        case(&format!("verify --backup-dir {nothing}"), r, 2, &["no backup", "cassette list"]),
        case("verify --name good --backup-dir {root}", r, 0, &["OK"]),
        // archive
        case("archive missing --backup-dir {root}", r, 2, &["missing", "cassette list"]),
        case("archive half --backup-dir {root}", r, 2, &["incomplete", "resume it or delete it"]),
        case("archive bad/name --backup-dir {root}", r, 2, &["invalid backup name"]),
        case("archive good --backup-dir az:/c", r, 2, &["az://CONTAINER/PREFIX"]),
        // delete
        case("delete --name missing --backup-dir {root}", r, 2, &["missing", "cassette list"]),
        case("delete --name bad/name --backup-dir {root}", r, 2, &["invalid backup name"]),
        case("delete --name good --backup-dir file://x", r, 2, &["file:///"]),
        // purge
        case("purge --keep-last 1 --grace soon --backup-dir {root}", r, 2, &["--grace"]),
        case("purge --backup-dir {root}", r, 2, &["--keep-last"]),
        case(
            &format!("purge --keep-last 1 --backup-dir {nothing}"),
            r,
            2,
            &["no-such-dir", "check the repository path"],
        ),
        case("purge --keep-last 1 --backup-dir Gs://b", r, 2, &["gs://BUCKET/PREFIX"]),
        // quarantine
        case(&format!("quarantine list {down}"), r, 4, &["--data-dir", "start Cassandra"]),
        // node
        case(&format!("node {down}"), r, 4, &["--cql-host"]),
        // agent and server
        case("agent --backup-dir {root}", r, 2, &["CASSETTE_TOKEN"]),
        case("agent --insecure-no-token --backup-dir S3://b", r, 2, &["s3://BUCKET/PREFIX"]),
        case("server --agent http://127.0.0.1:1", r, 2, &["CASSETTE_TOKEN"]),
        case("server --insecure-no-token --agent 127.0.0.1:1", r, 2, &["http://"]),
    ];
    let mut wrong = Vec::new();
    for c in &cases {
        let args: Vec<&str> = c.args.iter().map(String::as_str).collect();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_cassette"))
            .args(&args)
            .env("CASSETTE_CQL_HOST", &node.ip)
            .env("CASSETTE_JMX_PORT", node.jmx_port.to_string())
            .env("CASSETTE_NODETOOL", cassette_testkit::nodetool_launcher())
            .env("CASSETTE_JMX_CLIENT", "nodetool")
            .env_remove("CASSETTE_TOKEN")
            .env_remove("CASSANDRA_BACKUP_DIRECTORY")
            .env_remove("CASSANDRA_HOME")
            .env_remove("CASSETTE_FAULT_KILL_AT")
            .output()
            .expect("run cassette");
        let text = format!("{}{}", stdout(&out), stderr(&out));
        let code = out.status.code();
        let missing: Vec<&&str> = c.says.iter().filter(|w| !text.contains(**w)).collect();
        if code != Some(c.code) || !missing.is_empty() {
            wrong.push(format!(
                "cassette {}: exit {code:?} (want {}), message lacks {missing:?}:\n{}",
                c.args.join(" "),
                c.code,
                text.trim()
            ));
        }
    }
    // Nothing was written where a refused location would have put it.
    for bad in ["S3:", "s3:", "gcs:", "az:", "Gs:"] {
        assert!(!std::path::Path::new(bad).exists(), "a refused --backup-dir became the directory ./{bad}");
    }
    assert!(wrong.is_empty(), "{} of {} cases wrong:\n\n{}", wrong.len(), cases.len(), wrong.join("\n\n"));
}
