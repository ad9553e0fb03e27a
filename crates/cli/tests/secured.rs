//! A production-like node: Cassandra 5.0 with `PasswordAuthenticator`, client-to-node TLS with
//! `require_client_auth: true`, and JMX authentication (the harness's `--secure`). Checked as an
//! operator would: backup, online restore and the cluster API through an agent work with the
//! logins and certificates given as flags, as environment variables, and from `cassette.toml`;
//! a wrong password or a missing certificate is a clear error, exit 4, with nothing touched; the
//! long-lived JMX client (not nodetool) takes the snapshots; and no password shows up in the
//! logs, the `--json` output, the REST API, the history database, or the command line of any
//! process cassette starts.

// The tests of this binary take turns on the one secured node (`serial()`), across awaits.
#![allow(clippy::await_holding_lock)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cassette_testkit::{Cluster, Node, SecureNode, dataset, unique_name};
use common::services::Services;
use common::*;

fn secure() -> (&'static Cluster, &'static Node, &'static SecureNode) {
    let cluster = Cluster::solo_secure();
    let s = cluster.secure.as_ref().expect("the secure cluster has its logins and certificates");
    (cluster, &cluster.nodes[0], s)
}

/// Every option a secured node needs, as flags; the passwords as files.
fn secure_flags(node: &Node, s: &SecureNode) -> Vec<String> {
    let mut flags = node_flags(node);
    for (flag, value) in [
        ("--cql-user", s.cql_user.clone()),
        ("--cql-password-file", path(&s.cql_password_file)),
        ("--cql-tls-ca", path(&s.ca)),
        ("--cql-tls-cert", path(&s.client_cert)),
        ("--cql-tls-key", path(&s.client_key)),
        ("--jmx-user", s.jmx_user.clone()),
        ("--jmx-password-file", path(&s.jmx_password_file)),
    ] {
        flags.extend([flag.to_string(), value]);
    }
    flags
}

/// Where the node is, with no login or TLS.
fn node_flags(node: &Node) -> Vec<String> {
    ["--cql-host", &node.ip, "--jmx-port", &node.jmx_port.to_string(), "--nodetool", &path(&node.nodetool)]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn path(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

/// `cassette ARGS...` with nothing from the test's environment that could log it in, and
/// cassette's debug logs on stderr (they say which calls went through the JMX client).
fn run(args: &[&str], extra: &[String], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cassette"));
    cmd.env_remove("CASSETTE_CONFIG");
    cmd.args(args)
        .args(extra)
        .envs(env.iter().copied())
        .env("CASSETTE_LOG", env_or(env, "CASSETTE_LOG", "warn,cassette_cassandra=debug"))
        .env_remove("CASSETTE_JMX_CLIENT")
        .env_remove("CASSANDRA_BACKUP_DIRECTORY")
        .env_remove("CASSANDRA_HOME")
        .output()
        .expect("run cassette")
}

fn env_or<'a>(env: &[(&str, &'a str)], key: &str, default: &'a str) -> &'a str {
    env.iter().find(|(k, _)| *k == key).map(|(_, v)| *v).unwrap_or(default)
}

fn assert_jmx_client_did_the_snapshots(what: &str, err: &str) {
    let fallbacks: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("running nodetool") || l.contains("go through nodetool") || l.contains("using nodetool"))
        .collect();
    assert!(fallbacks.is_empty(), "{what} fell back to nodetool on the secured node:\n{}", fallbacks.join("\n"));
    for request in ["snapshot", "clearsnapshot"] {
        assert!(
            err.lines().any(|l| l.contains("done through the JMX client") && l.contains(&format!("\"{request}\""))),
            "{what}'s {request} did not go through the JMX client:\n{err}"
        );
    }
}

fn no_cassette_snapshot(node: &Node) {
    let snapshots = node.nodetool(&["listsnapshots"]);
    assert!(!snapshots.contains("cassette-"), "a cassette snapshot is left on the node:\n{snapshots}");
}

#[tokio::test(flavor = "multi_thread")]
async fn backup_and_restore_with_logins_and_certificates_as_flags() {
    let (cluster, node, s) = secure();
    let _turn = serial();
    let session = cluster.session().await;
    let ks = unique_name("sec");
    dataset::load(&session, cluster, &ks, 1, &dataset::Shape::small()).await;
    let before = dataset::dump_all(&session, &ks).await;
    let root = other_disk_dir();
    let root_s = root.path().to_str().unwrap();
    let flags = secure_flags(node, s);

    let out = run(&["--json", "node"], &flags, &[]);
    assert!(out.status.success(), "cassette node on the secured node failed:\n{}", stderr(&out));

    let out = run(&["--json", "backup", "--name", "b1", "--backup-dir", root_s, "-k", &ks], &flags, &[]);
    let err = stderr(&out);
    assert!(out.status.success(), "backup failed ({:?}):\n{}\n{err}", out.status, stdout(&out));
    assert_jmx_client_did_the_snapshots("the backup", &err);
    assert_eq!(manifests_under(root.path()).len(), 1, "one complete backup");
    no_cassette_snapshot(node);

    dataset::write_round(&session, &ks, 9, &dataset::Shape { rounds: 1, rows_per_round: 40, payload_bytes: 8 }).await;
    dataset::exec(&session, &format!("DELETE FROM {ks}.readings WHERE sensor = 3")).await;
    cluster.flush(&ks);
    assert_ne!(dataset::dump_all(&session, &ks).await, before, "the data changed after the backup");

    let out = run(&["--json", "restore", "--name", "b1", "--backup-dir", root_s, "-k", &ks], &flags, &[]);
    let err = stderr(&out);
    assert!(out.status.success(), "restore failed ({:?}):\n{}\n{err}", out.status, stdout(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("restore --json prints a report");
    assert_eq!(report["complete"], true, "{report}");
    assert_eq!(dataset::dump_all(&session, &ks).await, before, "every table equals its backup-time state");
    no_cassette_snapshot(node);
    node.nodetool(&["clearsnapshot", "--all", &ks]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_login_or_a_missing_certificate_exits_4_and_touches_nothing() {
    let (cluster, node, s) = secure();
    let _turn = serial();
    let session = cluster.session().await;
    let ks = unique_name("secbad");
    dataset::load(&session, cluster, &ks, 1, &dataset::Shape::small()).await;
    let before = dataset::dump_all(&session, &ks).await;
    let root = other_disk_dir();
    let root_s = root.path().to_str().unwrap();
    let good = secure_flags(node, s);
    let without = |drop: &[&str]| -> Vec<String> {
        let mut out = Vec::new();
        let mut it = good.iter();
        while let Some(flag) = it.next() {
            let value = it.next().unwrap();
            if !drop.contains(&flag.as_str()) {
                out.extend([flag.clone(), value.clone()]);
            }
        }
        out
    };
    let wrong_jmx = root.path().join("wrong-jmx.password");
    std::fs::write(&wrong_jmx, format!("{} not-the-password\n", s.jmx_user)).unwrap();
    let missing_ca = root.path().join("missing-ca.pem");

    let wrong_cql_password = without(&["--cql-password-file"]);
    let mut other_ca_cert = without(&["--cql-tls-cert", "--cql-tls-key"]);
    other_ca_cert.extend(["--cql-tls-cert".into(), path(&s.other_client_cert)]);
    other_ca_cert.extend(["--cql-tls-key".into(), path(&s.other_client_key)]);
    let mut wrong_jmx_password = without(&["--jmx-password-file"]);
    wrong_jmx_password.extend(["--jmx-password-file".into(), path(&wrong_jmx)]);
    let mut no_such_ca = without(&["--cql-tls-ca"]);
    no_such_ca.extend(["--cql-tls-ca".into(), path(&missing_ca)]);

    // (what is wrong, the flags, more environment, what the error must name)
    type Case<'a> = (&'a str, Vec<String>, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        ("a wrong CQL password", wrong_cql_password, vec![("CASSETTE_CQL_PASSWORD", "not-the-password")], "password"),
        ("no CQL login", without(&["--cql-user", "--cql-password-file"]), vec![], "--cql-user"),
        ("no client certificate", without(&["--cql-tls-cert", "--cql-tls-key"]), vec![], "--cql-tls-cert"),
        ("a certificate of another CA", other_ca_cert, vec![], "TLS"),
        ("no TLS", without(&["--cql-tls-ca", "--cql-tls-cert", "--cql-tls-key"]), vec![], "--cql-tls-ca"),
        ("a CA file that is not there", no_such_ca, vec![], "missing-ca.pem"),
        ("a wrong JMX password", wrong_jmx_password, vec![], "--jmx-user"),
        ("no JMX login", without(&["--jmx-user", "--jmx-password-file"]), vec![], "--jmx-user"),
    ];
    for (what, flags, env, hint) in cases {
        let out = run(&["backup", "--name", "refused", "--backup-dir", root_s, "-k", &ks], &flags, &env);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(4), "{what}: exit 4 (environment):\n{err}");
        let last = &err[err.rfind("cassette: error:").unwrap_or_else(|| panic!("{what}: {err}"))..];
        assert!(last.contains(hint), "{what}: the error says what to check ({hint}):\n{err}");
        assert!(manifests_under(root.path()).is_empty(), "{what}: no backup is written");
        no_cassette_snapshot(node);
    }
    assert_eq!(dataset::dump_all(&session, &ks).await, before, "the live rows are untouched");
}

#[tokio::test(flavor = "multi_thread")]
async fn everything_from_cassette_toml_with_secrets_masked() {
    let (cluster, node, s) = secure();
    let _turn = serial();
    let session = cluster.session().await;
    let ks = unique_name("sectoml");
    dataset::load(&session, cluster, &ks, 1, &dataset::Shape::small()).await;
    let before = dataset::dump_all(&session, &ks).await;
    let root = other_disk_dir();
    let config = root.path().join("cassette.toml");
    let toml = format!(
        r#"[node]
cql_host = "{ip}"
cql_user = "{cql_user}"
cql_password = "{cql_password}"
cql_tls_ca = "{ca}"
cql_tls_cert = "{cert}"
cql_tls_key = "{key}"
jmx_port = {jmx_port}
jmx_user = "{jmx_user}"
jmx_password = "{jmx_password}"
nodetool = "{nodetool}"

[repository]
backup_dir = "{repo}"
"#,
        ip = node.ip,
        cql_user = s.cql_user,
        cql_password = s.cql_password,
        ca = s.ca.display(),
        cert = s.client_cert.display(),
        key = s.client_key.display(),
        jmx_port = node.jmx_port,
        jmx_user = s.jmx_user,
        jmx_password = s.jmx_password,
        nodetool = node.nodetool.display(),
        repo = root.path().join("repo").display(),
    );
    std::fs::write(&config, toml).unwrap();
    std::fs::set_permissions(&config, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let env = [("CASSETTE_CONFIG", config.to_str().unwrap())];

    let out = run(&["--json", "backup", "--name", "t1", "-k", &ks], &[], &env);
    let err = stderr(&out);
    assert!(out.status.success(), "backup from cassette.toml failed ({:?}):\n{}\n{err}", out.status, stdout(&out));
    assert_jmx_client_did_the_snapshots("the backup from cassette.toml", &err);
    assert_eq!(manifests_under(&root.path().join("repo")).len(), 1, "the backup went to the file's backup_dir");

    dataset::exec(&session, &format!("DELETE FROM {ks}.readings WHERE sensor = 2")).await;
    let out = run(&["--json", "restore", "--name", "t1", "-k", &ks], &[], &env);
    assert!(out.status.success(), "restore from cassette.toml failed:\n{}", stderr(&out));
    assert_eq!(dataset::dump_all(&session, &ks).await, before, "every table equals its backup-time state");

    for args in [&["config", "show"][..], &["--json", "config", "show"][..]] {
        let out = run(args, &[], &env);
        let (o, e) = (stdout(&out), stderr(&out));
        assert!(out.status.success(), "config show failed:\n{e}");
        assert!(o.contains(&node.ip) && o.contains(&s.cql_user), "config show prints the file's settings:\n{o}");
        assert!(o.contains("********"), "config show masks the passwords:\n{o}");
        for secret in [&s.cql_password, &s.jmx_password] {
            assert!(
                !o.contains(secret.as_str()) && !e.contains(secret.as_str()),
                "config show printed a password:\n{o}"
            );
        }
    }
    no_cassette_snapshot(node);
    node.nodetool(&["clearsnapshot", "--all", &ks]);
}

/// Command lines of every process descended from this test process while it watches.
struct CommandLines {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<BTreeMap<u32, String>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl CommandLines {
    fn watch() -> CommandLines {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(BTreeMap::new()));
        let (stop2, seen2) = (stop.clone(), seen.clone());
        let me = std::process::id();
        let thread = std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                let parents = parents();
                for (&pid, _) in parents.iter() {
                    let mut p = pid;
                    let mut descends = false;
                    while let Some(&pp) = parents.get(&p) {
                        if pp == me {
                            descends = true;
                            break;
                        }
                        if pp <= 1 {
                            break;
                        }
                        p = pp;
                    }
                    if descends && let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) {
                        let line = String::from_utf8_lossy(&raw).replace('\0', " ");
                        if !line.trim().is_empty() {
                            seen2.lock().unwrap().entry(pid).or_insert_with(String::new).push_str(&format!("{line}\n"));
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        CommandLines { stop, seen, thread: Some(thread) }
    }

    fn stop(mut self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap();
        self.seen.lock().unwrap().values().cloned().collect()
    }
}

/// pid → parent pid of every process.
fn parents() -> BTreeMap<u32, u32> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        let Some((_, rest)) = stat.rsplit_once(')') else { continue };
        if let Some(ppid) = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok()) {
            out.insert(pid, ppid);
        }
    }
    out
}

/// Every byte of every file under `dir` (the history database and its WAL, the repository).
fn all_bytes_under(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for f in files_under(dir) {
        out.extend(std::fs::read(&f).unwrap_or_default());
    }
    out
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread")]
async fn no_password_reaches_logs_json_the_api_the_history_or_a_child_command_line() {
    let (cluster, node, s) = secure();
    let _turn = serial();
    let session = cluster.session().await;
    let ks = unique_name("secleak");
    dataset::load(&session, cluster, &ks, 1, &dataset::Shape::small()).await;
    let before = dataset::dump_all(&session, &ks).await;
    let root = other_disk_dir();
    let root_s = root.path().to_str().unwrap();
    let secrets = [s.cql_password.clone(), s.jmx_password.clone()];
    // The passwords in the environment, not in files: cassette holds them itself (nodetool gets
    // an in-memory password file, the JMX client its environment).
    let mut flags = node_flags(node);
    for (flag, value) in [
        ("--cql-user", s.cql_user.clone()),
        ("--cql-tls-ca", path(&s.ca)),
        ("--cql-tls-cert", path(&s.client_cert)),
        ("--cql-tls-key", path(&s.client_key)),
        ("--jmx-user", s.jmx_user.clone()),
    ] {
        flags.extend([flag.to_string(), value]);
    }
    let env = [
        ("CASSETTE_CQL_PASSWORD", s.cql_password.as_str()),
        ("CASSETTE_JMX_PASSWORD", s.jmx_password.as_str()),
        ("CASSETTE_LOG", "debug"),
    ];

    let watch = CommandLines::watch();
    let mut printed = String::new();
    let mut record = |out: &Output| {
        printed.push_str(&stdout(out));
        printed.push_str(&stderr(out));
    };
    let no_flags: Vec<String> = Vec::new();
    for (args, flags) in [
        (&["--json", "--log-json", "backup", "--name", "l1", "--backup-dir", root_s, "-k", &ks][..], &flags),
        (&["--json", "node"][..], &flags),
        (&["--json", "list", "--backup-dir", root_s][..], &no_flags),
        (&["--json", "--log-json", "restore", "--name", "l1", "--backup-dir", root_s, "-k", &ks][..], &flags),
        (&["backup", "--name", "l2", "--backup-dir", root_s, "-k", &ks][..], &flags),
        (&["--json", "config", "show"][..], &no_flags),
        (&["config", "show", "backup", "--name", "l9"][..], &flags),
    ] {
        let out = run(args, flags, &env);
        assert!(out.status.success(), "cassette {args:?} failed:\n{}", stderr(&out));
        record(&out);
    }
    // A failed login: its error must not repeat the password either.
    let out = run(
        &["backup", "--name", "l3", "--backup-dir", root_s, "-k", &ks],
        &flags,
        &[("CASSETTE_CQL_PASSWORD", "wrong-but-secret-too"), ("CASSETTE_JMX_PASSWORD", s.jmx_password.as_str())],
    );
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(!stderr(&out).contains("wrong-but-secret-too"), "the error repeats the password:\n{}", stderr(&out));
    record(&out);
    assert_eq!(dataset::dump_all(&session, &ks).await, before);

    // The cluster API: an agent given the passwords in its environment, and a server.
    let api_root = other_disk_dir();
    let services = Services::start_on(
        cluster,
        api_root.path(),
        Vec::new(),
        env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        flags.clone(),
    );
    let (code, body) = services.post(&format!("/cluster/backup/start?name=api1&keyspaces={ks}")).await;
    assert_eq!(code, 200, "{body}");
    let mut responses = String::new();
    let last = services.wait("backup", |job| responses.push_str(&job.to_string())).await;
    assert_eq!(last["backup"]["state"], "succeeded", "{last:#}\n{}", services.logs());
    assert!(
        services.log("agent", 0).contains("done through the JMX client"),
        "the agent's snapshots went through the JMX client:\n{}",
        services.logs()
    );
    dataset::exec(&session, &format!("DELETE FROM {ks}.readings WHERE sensor = 4")).await;
    let (code, body) = services.post(&format!("/cluster/restore/start?name=api1&keyspaces={ks}")).await;
    assert_eq!(code, 200, "{body}");
    let last_restore = services.wait("restore", |job| responses.push_str(&job.to_string())).await;
    assert_eq!(last_restore["restore"]["state"], "succeeded", "{last_restore:#}\n{}", services.logs());
    assert_eq!(dataset::dump_all(&session, &ks).await, before, "the cluster restore brought the rows back");
    for path in ["/cluster/backup/last", "/cluster/restore/last", "/v1/jobs", "/v1/cluster", "/v1/backups", "/metrics"]
    {
        let resp = services.http.get(services.url(path)).send().await.unwrap();
        responses.push_str(&resp.text().await.unwrap());
    }
    responses.push_str(&last.to_string());
    let logs = services.logs();
    let history = all_bytes_under(services.db().parent().unwrap());
    drop(services);
    let command_lines = watch.stop();

    let repository = [all_bytes_under(root.path()), all_bytes_under(api_root.path())].concat();
    assert!(
        command_lines.iter().any(|l| l.contains("CassetteJmx")),
        "the JMX client ran during the test (so its command line was checked):\n{command_lines:#?}"
    );
    assert!(
        command_lines.iter().any(|l| l.contains("NodeTool") && l.contains(" -u ")),
        "nodetool ran with a JMX login during the test:\n{command_lines:#?}"
    );
    for secret in &secrets {
        assert!(!printed.contains(secret.as_str()), "a password is in cassette's output or logs:\n{printed}");
        assert!(!logs.contains(secret.as_str()), "a password is in the agent's or server's logs:\n{logs}");
        assert!(!responses.contains(secret.as_str()), "a password is in a REST response:\n{responses}");
        assert!(!contains(&history, secret), "a password is in the server's history database");
        assert!(!contains(&repository, secret), "a password is in the backup repository");
        let leaked: Vec<&String> = command_lines.iter().filter(|l| l.contains(secret.as_str())).collect();
        assert!(leaked.is_empty(), "a password is on a command line: {leaked:#?}");
    }
    node.nodetool(&["clearsnapshot", "--all", &ks]);
}

#[tokio::test(flavor = "multi_thread")]
async fn backup_and_restore_over_jmx_tls() {
    let cluster = Cluster::solo_secure_jmx_tls();
    let node = &cluster.nodes[0];
    let s = cluster.secure.as_ref().expect("the JMX TLS cluster is secure");
    assert!(s.jmx_tls, "the cluster's JMX is over TLS");
    let _turn = serial();
    let session = cluster.session().await;
    let ks = unique_name("secjtls");
    dataset::load(&session, cluster, &ks, 1, &dataset::Shape::small()).await;
    let before = dataset::dump_all(&session, &ks).await;
    let root = other_disk_dir();
    let root_s = root.path().to_str().unwrap();
    let mut flags = secure_flags(node, s);
    flags.extend(["--jmx-tls".into(), "--jmx-tls-properties".into(), path(&s.nodetool_ssl_properties)]);

    let without_tls: Vec<String> = flags[..flags.len() - 3].to_vec();
    let out = run(&["backup", "--name", "refused", "--backup-dir", root_s, "-k", &ks], &without_tls, &[]);
    assert_eq!(out.status.code(), Some(4), "JMX without TLS on a TLS port: exit 4:\n{}", stderr(&out));
    assert!(manifests_under(root.path()).is_empty(), "no backup is written");

    let out = run(&["--json", "backup", "--name", "j1", "--backup-dir", root_s, "-k", &ks], &flags, &[]);
    let err = stderr(&out);
    assert!(out.status.success(), "backup over JMX TLS failed ({:?}):\n{}\n{err}", out.status, stdout(&out));
    assert_jmx_client_did_the_snapshots("the backup over JMX TLS", &err);
    dataset::exec(&session, &format!("DELETE FROM {ks}.readings WHERE sensor = 1")).await;
    // The restore's import runs nodetool over TLS.
    let out = run(&["--json", "restore", "--name", "j1", "--backup-dir", root_s, "-k", &ks], &flags, &[]);
    assert!(out.status.success(), "restore over JMX TLS failed:\n{}", stderr(&out));
    assert_eq!(dataset::dump_all(&session, &ks).await, before, "every table equals its backup-time state");
    no_cassette_snapshot(node);
    node.nodetool(&["clearsnapshot", "--all", &ks]);
}
