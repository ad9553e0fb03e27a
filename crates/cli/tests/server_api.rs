//! The HTTP surface of `cassette server` and `cassette agent` as a client, a validator and an
//! attacker see it: the OpenAPI document (valid, every status it answers documented, limits
//! enforced), tokens, credentials in agent URLs, half-open connections, schedule names. None
//! of this needs Cassandra: the agents point at ports where nothing answers.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cassette_testkit::repo_root;
use common::services::{TOKEN, free_port, wait_listening};
use serde_json::{Value, json};

/// A `cassette` service process, killed when dropped; its stderr goes to `log`.
struct Service {
    child: Child,
    port: u16,
    log: std::path::PathBuf,
}

impl Service {
    fn start(dir: &Path, what: &str, args: &[&str], pre: &str) -> Service {
        let port = free_port();
        let log = dir.join(format!("{what}-{port}.log"));
        let bin = env!("CARGO_BIN_EXE_cassette");
        let mut cmd = Command::new("sh");
        // `pre` runs first in the shell (a lower `ulimit -n`, say), then exec the service.
        cmd.arg("-c").arg(format!("{pre} exec \"$0\" \"$@\"")).arg(bin).arg(what);
        cmd.args(["--listen", &format!("127.0.0.1:{port}")]).args(args);
        cmd.env("CASSETTE_TOKEN", TOKEN).env("CASSETTE_LOG", "info").env_remove("CASSANDRA_HOME");
        let child =
            cmd.stdout(Stdio::null()).stderr(std::fs::File::create(&log).unwrap()).spawn().expect("start cassette");
        let s = Service { child, port, log };
        assert!(wait_listening(port), "{what} did not start:\n{}", s.log());
        s
    }

    fn server(dir: &Path, agents: &str, extra: &[&str]) -> Service {
        let db = dir.join(format!("jobs-{}.db", free_port()));
        let mut args = vec!["--agent", agents, "--db", db.to_str().unwrap(), "--poll-ms", "100"];
        args.extend_from_slice(extra);
        Service::start(dir, "server", &args, "")
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port where nothing listens (an agent that is down).
fn dead_agent() -> String {
    format!("http://127.0.0.1:{}", free_port())
}

async fn openapi(http: &reqwest::Client, s: &Service) -> Value {
    http.get(s.url("/openapi.json")).send().await.unwrap().json().await.unwrap()
}

#[tokio::test]
async fn the_openapi_documents_are_valid_with_unique_operation_ids() {
    let setup = Command::new(repo_root().join("harness/api/setup.sh")).arg("validator").output().unwrap();
    assert!(setup.status.success(), "harness/api/setup.sh validator:\n{}", String::from_utf8_lossy(&setup.stderr));
    let python = String::from_utf8_lossy(&setup.stdout).trim().to_string();
    let dir = tempfile::tempdir().unwrap();
    let server = Service::server(dir.path(), &dead_agent(), &[]);
    let agent = Service::start(dir.path(), "agent", &["--backup-dir", dir.path().to_str().unwrap()], "");
    let http = reqwest::Client::new();
    for (what, s) in [("server", &server), ("agent", &agent)] {
        let doc = openapi(&http, s).await;
        let mut ids = Vec::new();
        for (path, ops) in doc["paths"].as_object().unwrap() {
            for (method, op) in ops.as_object().unwrap() {
                ids.push((op["operationId"].as_str().unwrap_or_default().to_string(), format!("{method} {path}")));
            }
        }
        ids.sort();
        for w in ids.windows(2) {
            assert_ne!(w[0].0, w[1].0, "{what}: operationId used by {} and {}", w[0].1, w[1].1);
        }
        let file = dir.path().join(format!("{what}-openapi.json"));
        std::fs::write(&file, serde_json::to_vec(&doc).unwrap()).unwrap();
        let out = Command::new(&python)
            .args(["-m", "openapi_spec_validator", "--errors", "all", file.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openapi-spec-validator rejects the {what}'s /openapi.json:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A request and the status it must get (one of those its operation documents, in any case).
struct Probe {
    method: &'static str,
    path: &'static str,
    /// The operation's path in the document.
    op: &'static str,
    token: bool,
    body: Option<(&'static str, &'static str)>,
    want: u16,
}

fn probe(method: &'static str, path: &'static str, op: &'static str, want: u16) -> Probe {
    Probe { method, path, op, token: true, body: None, want }
}

async fn run_probes(http: &reqwest::Client, s: &Service, probes: &[Probe]) {
    let doc = openapi(http, s).await;
    let mut wrong = Vec::new();
    for p in probes {
        let mut req = http.request(p.method.parse().unwrap(), s.url(p.path));
        if p.token {
            req = req.bearer_auth(TOKEN);
        }
        if let Some((content_type, body)) = p.body {
            if !content_type.is_empty() {
                req = req.header("content-type", content_type);
            }
            req = req.body(body);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let json_body =
            resp.headers().get("content-type").is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
        let text = resp.text().await.unwrap();
        let documented: Vec<String> = doc["paths"][p.op][p.method.to_lowercase()]["responses"]
            .as_object()
            .map(|r| r.keys().cloned().collect())
            .unwrap_or_default();
        if status != p.want || !documented.contains(&status.to_string()) || (status >= 400 && !json_body) {
            wrong.push(format!(
                "{} {}: got {status} (want {}; documented {documented:?}; JSON: {json_body}): {text}",
                p.method, p.path, p.want
            ));
        }
    }
    assert!(wrong.is_empty(), "answers that the OpenAPI document does not describe:\n{}", wrong.join("\n"));
}

#[tokio::test]
async fn every_status_the_server_and_agent_answer_is_documented_and_limits_are_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let s = Service::server(dir.path(), &dead_agent(), &[]);
    let http = reqwest::Client::new();
    let json = Some(("application/json", "{\"type\": \"REPAIR\"}"));
    let mut probes = vec![
        probe("GET", "/v1/jobs?limit=1000", "/v1/jobs", 200),
        probe("GET", "/v1/jobs?limit=1001", "/v1/jobs", 400),
        probe("GET", "/v1/jobs?limit=0", "/v1/jobs", 400),
        probe("GET", "/v1/jobs?limit=many", "/v1/jobs", 400),
        probe("GET", "/v1/jobs?type=nope", "/v1/jobs", 400),
        probe("GET", "/v1/jobs/abc", "/v1/jobs/{id}", 400),
        probe("GET", "/v1/jobs/999", "/v1/jobs/{id}", 404),
        probe("POST", "/v1/jobs/abc/abort", "/v1/jobs/{id}/abort", 400),
        probe("POST", "/v1/jobs/999/abort", "/v1/jobs/{id}/abort", 404),
        probe("POST", "/v1/jobs/abc/resume", "/v1/jobs/{id}/resume", 400),
        probe("POST", "/v1/jobs/999/resume", "/v1/jobs/{id}/resume", 404),
        probe("DELETE", "/v1/schedules/abc", "/v1/schedules/{id}", 400),
        probe("DELETE", "/v1/schedules/999", "/v1/schedules/{id}", 404),
        probe("GET", "/cluster/nope/status", "/cluster/{job}/status", 404),
        probe("GET", "/cluster/nope/last", "/cluster/{job}/last", 404),
        probe("POST", "/cluster/nope/abort", "/cluster/{job}/abort", 404),
        probe("POST", "/cluster/nope/start", "/cluster/{job}/start", 404),
        probe("POST", "/cluster/repair/start?parallel=many", "/cluster/{job}/start", 400),
        probe("POST", "/cluster/repair/start?parallel=65", "/cluster/{job}/start", 400),
        probe("POST", "/cluster/backup/start?snapshot=sometimes&name=a", "/cluster/{job}/start", 400),
        probe("GET", "/v1/backups", "/v1/backups", 200),
        probe("GET", "/v1/cluster", "/v1/cluster", 200),
    ];
    // A job's fields are flattened, so serde reports a wrong type there as a syntax error (400).
    for (path, op, wrong_type) in [("/v1/jobs", "/v1/jobs", 400), ("/v1/schedules", "/v1/schedules", 422)] {
        probes.push(Probe { body: Some(("application/json", "{not json")), ..probe("POST", path, op, 400) });
        probes.push(Probe { body: Some(("", "{}")), ..probe("POST", path, op, 415) });
        probes.push(Probe {
            body: Some(("application/json", "{\"type\": 7, \"name\": 7}")),
            ..probe("POST", path, op, wrong_type)
        });
        probes.push(Probe { token: false, body: json, ..probe("POST", path, op, 401) });
    }
    for bad in ["", "a/b", "..", ".x", "x y"] {
        let body: &'static str = Box::leak(json!({"name": bad, "cron": "0 2 * * *"}).to_string().into_boxed_str());
        probes.push(Probe {
            body: Some(("application/json", body)),
            ..probe("POST", "/v1/schedules", "/v1/schedules", 400)
        });
    }
    probes.push(Probe {
        body: Some(("application/json", "{\"type\": \"BACKUP\", \"name\": \"a/b\"}")),
        ..probe("POST", "/v1/jobs", "/v1/jobs", 400)
    });
    run_probes(&http, &s, &probes).await;
    // The schedule names refused above made no schedule.
    let schedules: Value = http.get(s.url("/v1/schedules")).send().await.unwrap().json().await.unwrap();
    assert_eq!(schedules, json!([]));

    // The agent (its Cassandra is not there: 503), with and without the token.
    std::fs::create_dir_all(dir.path().join("backups")).unwrap();
    let agent = Service::start(
        dir.path(),
        "agent",
        &["--backup-dir", dir.path().join("backups").to_str().unwrap(), "--cql-port", &free_port().to_string()],
        "",
    );
    let backup = Some(("application/json", "{\"kind\": \"backup\", \"name\": \"a/b\"}"));
    let probes = vec![
        probe("GET", "/v1/node", "/v1/node", 503),
        Probe { token: false, ..probe("GET", "/v1/node", "/v1/node", 401) },
        probe("GET", "/v1/jobs", "/v1/jobs", 200),
        Probe { token: false, ..probe("GET", "/v1/jobs", "/v1/jobs", 401) },
        probe("GET", "/v1/jobs/nope", "/v1/jobs/{id}", 404),
        probe("GET", "/v1/backups", "/v1/backups", 200),
        Probe { body: backup, ..probe("POST", "/v1/jobs", "/v1/jobs", 400) },
        Probe { body: Some(("application/json", "{not json")), ..probe("POST", "/v1/jobs", "/v1/jobs", 400) },
        Probe { body: Some(("", "{}")), ..probe("POST", "/v1/jobs", "/v1/jobs", 415) },
        Probe {
            body: Some(("application/json", "{\"kind\": \"nope\"}")),
            ..probe("POST", "/v1/jobs", "/v1/jobs", 422)
        },
        Probe { token: false, body: backup, ..probe("POST", "/v1/jobs", "/v1/jobs", 401) },
    ];
    run_probes(&http, &agent, &probes).await;
}

fn refuses_to_start(what: &str, token: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cassette"));
    cmd.arg(what).args(["--listen", &format!("127.0.0.1:{}", free_port())]);
    if what == "server" {
        cmd.args(["--agent", "http://127.0.0.1:1", "--db", dir.path().join("j.db").to_str().unwrap()]);
    } else {
        cmd.args(["--backup-dir", dir.path().to_str().unwrap()]);
    }
    let mut child = cmd.env("CASSETTE_TOKEN", token).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("cassette {what} started with the token {token:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert_eq!(status.code(), Some(2), "{what} with token {token:?}: {err}");
    err
}

#[test]
fn weak_tokens_are_refused_at_start_with_how_to_make_one() {
    for what in ["server", "agent"] {
        for weak in ["a", " ", "test-token-5f1c", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"] {
            let err = refuses_to_start(what, weak);
            assert!(err.contains("openssl rand -hex 24"), "{what}, token {weak:?}: {err}");
            if weak.len() > 8 {
                assert!(!err.contains(weak), "the token is not echoed: {err}");
            }
        }
    }
}

#[tokio::test]
async fn agent_urls_never_show_their_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "s3cr3t-pa55";
    let agent = format!("http://operator:{secret}@127.0.0.1:{}", free_port());
    let s = Service::server(dir.path(), &agent, &[]);
    let http = reqwest::Client::new();
    let (code, _) = {
        let r = http.post(s.url("/cluster/repair/start")).bearer_auth(TOKEN).send().await.unwrap();
        (r.status().as_u16(), ())
    };
    assert_eq!(code, 200);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let last: Value = http.get(s.url("/cluster/repair/last")).send().await.unwrap().json().await.unwrap();
        if last["present"] == true {
            break;
        }
        assert!(Instant::now() < deadline, "the repair job did not end");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut seen = String::new();
    for path in ["/v1/cluster", "/v1/backups", "/v1/jobs", "/cluster/repair/last", "/metrics", "/"] {
        let text = http.get(s.url(path)).send().await.unwrap().text().await.unwrap();
        assert!(!text.contains(secret), "{path} shows the agent's password: {text}");
        seen.push_str(&text);
    }
    assert!(seen.contains("127.0.0.1"), "the agent is still named, by its host: {seen}");
    let log = s.log();
    assert!(!log.contains(secret), "the server's log shows the agent's password:\n{log}");
    let mut db_files = 0;
    for e in std::fs::read_dir(dir.path()).unwrap().flatten() {
        if e.file_name().to_string_lossy().starts_with("jobs-") {
            db_files += 1;
            let bytes = std::fs::read(e.path()).unwrap();
            assert!(!String::from_utf8_lossy(&bytes).contains(secret), "the job history stores the agent's password");
        }
    }
    assert!(db_files > 0, "the job history is in {}", dir.path().display());
}

#[test]
fn half_open_connections_do_not_keep_health_from_answering_and_are_closed_after_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    // Few file descriptors, as under a tight `ulimit -n`, and a short header timeout.
    let db = dir.path().join("jobs.db");
    let s = Service::start(
        dir.path(),
        "server",
        &["--agent", &dead_agent(), "--db", db.to_str().unwrap(), "--header-timeout", "2s"],
        "ulimit -n 256;",
    );
    // More half-open connections than the server has descriptors: each sends part of a
    // request's headers and then nothing.
    let mut held = Vec::new();
    for _ in 0..300 {
        let mut c = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
        let _ = c.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n");
        held.push(c);
    }
    let started = Instant::now();
    let mut health = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    health.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    health.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    let _ = health.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with("ok"), "/health: {answer:?}\n{}", s.log());
    assert!(started.elapsed() < Duration::from_secs(10), "/health took {:?}", started.elapsed());

    // The first half-open connection was closed by the server once the header timeout passed.
    let first = &mut held[0];
    first.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 512];
    let read = first.read(&mut buf);
    assert!(
        read.is_ok() || matches!(&read, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
        "the half-open connection is still open after 10 s: {read:?}"
    );
}
