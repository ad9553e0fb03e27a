//! `cassette server` and `cassette agent` on the real 3-node cluster, driven over HTTP as
//! seed 000's operators and scripts drive it.

// Jobs on the shared cluster take turns: the guard is held across awaits on purpose.
#![allow(clippy::await_holding_lock)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cassette_testkit::{Cluster, dataset, unique_name};
use common::services::*;
use common::*;
use serde_json::Value;

fn nodes(job: &Value) -> &Vec<Value> {
    job["completedNodes"].as_array().expect("completedNodes is a list")
}

/// Every field of seed 000's example `/cluster/restore/last`, with the same JSON types.
fn assert_seed_job_shape(answer: &Value, key: &str, job_type: &str) {
    assert_eq!(answer["present"], true);
    let job = &answer[key];
    assert_eq!(job["type"], job_type);
    assert!(job["started"].is_i64() && job["finished"].is_i64(), "{job}");
    assert!(job["aborted"].is_boolean());
    assert!(job["remainingNodes"].is_array());
    assert!(job["currentNode"].is_null());
    assert!(job["backupName"].is_string());
    for n in nodes(job) {
        for field in ["executorId", "taskId", "hostname", "ip"] {
            assert!(n[field].is_string(), "{field} in {n}");
        }
        assert_eq!(n["taskId"].as_str().unwrap(), format!("{}.{job_type}", n["executorId"].as_str().unwrap()));
        assert!(n["startedTimestamp"].is_i64() && n["finishedTimestamp"].is_i64(), "{n}");
        assert!(n["remainingKeyspaces"].is_array());
        for (_, ks) in n["processedKeyspaces"].as_object().unwrap() {
            assert!(ks["status"] == "SUCCESS" || ks["status"] == "FAILURE");
            assert!(ks["durationMillis"].is_u64());
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn seed_api_backs_up_and_restores_the_whole_cluster() {
    let cluster = Cluster::trio();
    let session = cluster.session().await;
    let ks = unique_name("srv");
    dataset::load(&session, cluster, &ks, 3, &dataset::Shape::small()).await;
    let before = dataset::dump_all(&session, &ks).await;
    let root = other_disk_dir();
    let _turn = serial();
    let mut s = Services::start(root.path());
    let host_ids = s.host_ids().await;
    assert_eq!(host_ids.len(), 3);

    // No token: 401, nothing started.
    let resp = s.http.post(s.url("/cluster/backup/start?name=x")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    // Missing and invalid names: 400 with the rule.
    let (code, body) = s.post("/cluster/backup/start").await;
    assert_eq!((code, &body["started"]), (400, &Value::Bool(false)), "{body}");
    assert!(body["error"].as_str().unwrap().contains("name is required"), "{body}");
    for bad in ["", "..", "a%2Fb", "x%09y", "%2E%2E%2Fetc"] {
        let (code, body) = s.post(&format!("/cluster/backup/start?name={bad}")).await;
        assert_eq!(code, 400, "name {bad:?}: {body}");
        assert_eq!(body["started"], false);
        assert!(!body["error"].as_str().unwrap().is_empty());
    }
    assert_eq!(s.get("/cluster/backup/last").await["present"], false, "nothing ran");

    // Concurrent starts: exactly one runs, the others get 409.
    let starts = (0..5).map(|_| {
        let http = s.http.clone();
        let url = s.url(&format!("/cluster/backup/start?name=b1&keyspaces={ks}"));
        tokio::spawn(async move { http.post(url).bearer_auth(TOKEN).send().await.unwrap().status().as_u16() })
    });
    let mut codes: Vec<u16> = futures_join(starts).await;
    codes.sort();
    assert_eq!(codes, vec![200, 409, 409, 409, 409]);

    // Status moves node by node.
    let mut current = Vec::new();
    let mut remaining = Vec::new();
    let last = s
        .wait("backup", |job| {
            let Some(id) = job["currentNode"]["executorId"].as_str() else { return };
            if current.last().map(String::as_str) != Some(id) {
                current.push(id.to_string());
            }
            remaining.push(job["remainingNodes"].as_array().unwrap().len());
        })
        .await;
    assert!(current.len() >= 2, "currentNode moved across nodes: {current:?}");
    assert!(current.iter().all(|c| host_ids.contains(c)));
    assert!(remaining.windows(2).all(|w| w[0] >= w[1]), "remainingNodes only shrinks: {remaining:?}");
    assert_eq!((remaining.iter().max(), remaining.iter().min()), (Some(&2), Some(&0)), "{remaining:?}");
    let job = &last["backup"];
    assert_eq!(job["state"], "succeeded", "{job:#}\n{}", s.logs());
    assert_seed_job_shape(&last, "backup", "BACKUP");
    assert_eq!(nodes(job).len(), 3);
    for n in nodes(job) {
        assert!(n.get("failure").is_none(), "{n}");
        assert_eq!(n["processedKeyspaces"][&ks]["status"], "SUCCESS", "{n}");
        // Seed 000's layout: $backupDir/$clusterName/$nodeId/$backupName/$keyspace/$table.
        let dir = root.path().join(&cluster.name).join(n["executorId"].as_str().unwrap()).join("b1");
        assert!(dir.join("manifest.json").is_file(), "{}", dir.display());
        for t in dataset::TABLES {
            let files = files_under(&dir.join(&ks).join(t));
            assert!(files.iter().any(|f| f.to_string_lossy().ends_with("-Data.db")), "{t} on {}", dir.display());
        }
    }
    let (code, _) = s.post("/cluster/backup/start?name=b1").await;
    assert_eq!(code, 200, "a finished job frees the server");
    let again = s.wait("backup", |_| {}).await;
    assert_eq!(again["backup"]["state"], "failed", "a complete backup name is refused on each node");
    assert!(nodes(&again["backup"]).iter().all(|n| n["failure"]["message"].as_str().unwrap().contains("exists")));

    // A cluster restore brings back the rows of backup time.
    dataset::write_round(&session, &ks, 9, &dataset::Shape { rounds: 1, rows_per_round: 30, payload_bytes: 8 }).await;
    dataset::exec(&session, &format!("DELETE FROM {ks}.readings WHERE sensor = 3")).await;
    cluster.flush(&ks);
    assert_ne!(dataset::dump_all(&session, &ks).await, before);
    let (code, body) = s.post("/cluster/restore/start").await;
    assert_eq!(code, 400, "restore needs a name: {body}");

    // One corrupted file in the last node's backup: the restore is refused before any node
    // is touched.
    let changed = dataset::dump_all(&session, &ks).await;
    let node3 = root.path().join(&cluster.name).join(&host_ids[2]).join("b1").join(&ks).join("readings");
    let data = files_under(&node3).into_iter().find(|f| f.to_string_lossy().ends_with("-Data.db")).unwrap();
    let original = std::fs::read(&data).unwrap();
    let mut corrupted = original.clone();
    corrupted[original.len() / 2] ^= 0x01;
    std::fs::write(&data, &corrupted).unwrap();
    let (code, _) = s.post(&format!("/cluster/restore/start?name=b1&keyspaces={ks}")).await;
    assert_eq!(code, 200);
    let refused = s.wait("restore", |_| {}).await;
    let job = &refused["restore"];
    assert_eq!(job["state"], "failed", "{job:#}");
    assert!(job["error"].as_str().unwrap().contains("nothing was touched"), "{job:#}");
    let file_name = data.file_name().unwrap().to_string_lossy().into_owned();
    assert!(job["error"].as_str().unwrap().contains(&file_name), "names the file: {job:#}");
    assert!(nodes(job).iter().all(|n| n["failure"]["message"].as_str().unwrap().starts_with("not restored")));
    assert_eq!(dataset::dump_all(&session, &ks).await, changed, "live rows untouched");
    std::fs::write(&data, &original).unwrap();

    let (code, body) = s.post(&format!("/cluster/restore/start?name=b1&keyspaces={ks}&repair=true")).await;
    assert_eq!(code, 200, "{body}");
    let last = s.wait("restore", |_| {}).await;
    assert_eq!(last["restore"]["state"], "succeeded", "{:#}\n{}", last, s.logs());
    assert_seed_job_shape(&last, "restore", "RESTORE");
    assert_eq!(nodes(&last["restore"]).len(), 3);
    let phases: Vec<&str> =
        last["restore"]["phases"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(phases, ["locate", "verify", "truncate", "load", "repair"]);
    assert_eq!(dataset::dump_all(&session, &ks).await, before, "rows at CONSISTENCY ALL equal the backup's");

    // The server restarted: `last` and the history are unchanged.
    let backup_last = s.get("/cluster/backup/last").await;
    let restore_last = s.get("/cluster/restore/last").await;
    s.kill_server();
    s.start_server();
    assert_eq!(s.get("/cluster/backup/last").await, backup_last);
    assert_eq!(s.get("/cluster/restore/last").await, restore_last);
    assert_eq!(s.get("/v1/jobs").await.as_array().unwrap().len(), 4);
    let openapi = s.get("/openapi.json").await;
    assert!(openapi["paths"]["/cluster/{job}/start"]["post"].is_object(), "the OpenAPI lists the seed API");
}

async fn futures_join(handles: impl Iterator<Item = tokio::task::JoinHandle<u16>>) -> Vec<u16> {
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_agent_is_reported_failed_and_the_others_complete() {
    let cluster = Cluster::trio();
    let session = cluster.session().await;
    let ks = unique_name("srv_kill");
    dataset::load(&session, cluster, &ks, 3, &dataset::Shape::small()).await;
    let root = other_disk_dir();
    let _turn = serial();
    let mut s = Services::start(root.path());
    let host_ids = s.host_ids().await;

    let (code, body) = s.post(&format!("/cluster/backup/start?name=k1&keyspaces={ks}")).await;
    assert_eq!(code, 200, "{body}");
    let mut killed = false;
    let deadline = Instant::now() + Duration::from_secs(300);
    while !killed {
        let status = s.get("/cluster/backup/status").await;
        assert_eq!(status["running"], true, "the job ended before node 2 started: {status:#}");
        if status["backup"]["currentNode"]["executorId"] == host_ids[1].as_str() {
            s.kill_agent(1);
            killed = true;
        }
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let last = s.wait("backup", |_| {}).await;
    let job = &last["backup"];
    assert_eq!(job["state"], "failed", "{job:#}");
    let by_id = |id: &str| nodes(job).iter().find(|n| n["executorId"] == id).cloned().unwrap();
    let dead = by_id(&host_ids[1]);
    let message = dead["failure"]["message"].as_str().unwrap();
    assert!(message.contains("stopped answering") || message.contains("cannot be reached"), "{message}");
    for id in [&host_ids[0], &host_ids[2]] {
        let n = by_id(id);
        assert!(n.get("failure").is_none(), "{n}");
        assert!(root.path().join(&cluster.name).join(id).join("k1/manifest.json").is_file());
    }
    assert!(!root.path().join(&cluster.name).join(&host_ids[1]).join("k1/manifest.json").exists());

    // The failed job is resumed once the agent is back: only the failed node runs again, and
    // the snapshot the killed run left is cleared.
    s.start_agent(1);
    let id = job["id"].as_i64().unwrap();
    let (code, body) = s.post(&format!("/v1/jobs/{id}/resume")).await;
    assert_eq!(code, 202, "{body}");
    let last = s.wait("backup", |_| {}).await;
    let job = &last["backup"];
    assert_eq!(job["state"], "succeeded", "{job:#}\n{}", s.logs());
    assert_eq!(job["resumedFrom"], id);
    assert!(root.path().join(&cluster.name).join(&host_ids[1]).join("k1/manifest.json").is_file());
    let snapshots = cluster.nodes[1].nodetool(&["listsnapshots"]);
    assert!(!snapshots.contains("cassette-k1"), "{snapshots}");

    // Abort: the node running finishes, no other starts, the job stays in the history.
    let (code, _) = s.post(&format!("/cluster/backup/start?name=k2&keyspaces={ks}")).await;
    assert_eq!(code, 200);
    let (code, body) = s.post("/cluster/backup/abort").await;
    assert_eq!((code, &body["aborted"]), (200, &Value::Bool(true)));
    let last = s.wait("backup", |_| {}).await;
    let job = &last["backup"];
    assert_eq!((job["aborted"].clone(), job["state"].clone()), (Value::Bool(true), Value::from("aborted")));
    assert!(!job["remainingNodes"].as_array().unwrap().is_empty(), "{job:#}");
    let (_, body) = s.post("/cluster/backup/abort").await;
    assert_eq!(body["aborted"], false, "nothing runs");

    // parallel=3: the nodes back up at once.
    let (code, _) = s.post(&format!("/cluster/backup/start?name=k3&keyspaces={ks}&parallel=3")).await;
    assert_eq!(code, 200);
    let mut most = 0;
    let last = s.wait("backup", |job| most = most.max(job["runningNodes"].as_array().unwrap().len())).await;
    assert_eq!(last["backup"]["state"], "succeeded", "{last:#}");
    assert!(most >= 2, "several nodes ran at once (at most {most} seen)");

    // The jobs operators run around backups: cleanup on every node, per keyspace.
    let (code, _) = s.post(&format!("/cluster/cleanup/start?keyspaces={ks}")).await;
    assert_eq!(code, 200);
    let last = s.wait("cleanup", |_| {}).await;
    assert_eq!(last["cleanup"]["state"], "succeeded", "{last:#}");
    assert_eq!(nodes(&last["cleanup"]).len(), 3);
    for n in nodes(&last["cleanup"]) {
        assert_eq!(n["taskId"].as_str().unwrap(), format!("{}.CLEANUP", n["executorId"].as_str().unwrap()));
        assert_eq!(n["processedKeyspaces"][&ks]["status"], "SUCCESS", "{n}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_cut_off_by_a_server_crash_is_interrupted_and_resumes() {
    let cluster = Cluster::trio();
    let session = cluster.session().await;
    let ks = unique_name("srv_crash");
    dataset::load(&session, cluster, &ks, 3, &dataset::Shape::small()).await;
    let root = other_disk_dir();
    let _turn = serial();
    let mut s = Services::start(root.path());

    let (code, body) = s.post(&format!("/cluster/backup/start?name=c1&keyspaces={ks}&snapshot=together")).await;
    assert_eq!(code, 200, "{body}");
    let id = body["id"].as_i64().unwrap();
    // Kill the server once the first node's backup runs.
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let job = s.get(&format!("/v1/jobs/{id}")).await;
        if !job["runningNodes"].as_array().unwrap().is_empty() {
            assert_eq!(job["phases"][0]["name"], "snapshot");
            assert_eq!(job["phases"][0]["status"], "SUCCESS", "{job:#}");
            break;
        }
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.kill_server();
    s.start_server();
    let job = s.get(&format!("/v1/jobs/{id}")).await;
    assert_eq!(job["state"], "interrupted", "{job:#}");
    assert_eq!(s.get("/cluster/backup/last").await["backup"]["id"], id);

    let (code, body) = s.post(&format!("/v1/jobs/{id}/resume")).await;
    assert_eq!(code, 202, "{body}");
    let last = s.wait("backup", |_| {}).await;
    assert_eq!(last["backup"]["state"], "succeeded", "{:#}\n{}", last, s.logs());
    for n in nodes(&last["backup"]) {
        let dir = root.path().join(&cluster.name).join(n["executorId"].as_str().unwrap()).join("c1");
        assert!(dir.join("manifest.json").is_file(), "{}", dir.display());
    }
    for node in &cluster.nodes {
        let snapshots = node.nodetool(&["listsnapshots"]);
        assert!(!snapshots.contains("cassette-c1"), "no snapshot left: {snapshots}");
    }
}

/// A self-signed certificate for 127.0.0.1, made with openssl: (cert, key).
fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=cassette-test"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1", "-addext", "basicConstraints=critical,CA:FALSE"])
        .args(["-keyout", key.to_str().unwrap()])
        .args(["-out", cert.to_str().unwrap()])
        .output()
        .expect("openssl (apt install openssl) makes the test certificate");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (cert, key)
}

#[tokio::test(flavor = "multi_thread")]
async fn agents_and_server_speak_tls_and_want_the_token() {
    let cluster = Cluster::trio();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path());
    let (agent_port, server_port) = (free_port(), free_port());
    let node = &cluster.nodes[0];
    let spawn = |args: Vec<String>| {
        Command::new(env!("CARGO_BIN_EXE_cassette"))
            .args(args)
            .env("CASSETTE_TOKEN", TOKEN)
            .env("CASSETTE_TLS_CERT", &cert)
            .env("CASSETTE_TLS_KEY", &key)
            .env("CASSETTE_CQL_HOST", &node.ip)
            .env("CASSETTE_JMX_PORT", node.jmx_port.to_string())
            .env("CASSETTE_NODETOOL", cassette_testkit::nodetool_launcher())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut agent = spawn(vec!["agent".into(), "--listen".into(), format!("127.0.0.1:{agent_port}")]);
    let mut server = spawn(vec![
        "server".into(),
        "--listen".into(),
        format!("127.0.0.1:{server_port}"),
        "--agent".into(),
        format!("https://127.0.0.1:{agent_port}"),
        "--ca-cert".into(),
        cert.to_str().unwrap().into(),
        "--db".into(),
        dir.path().join("jobs.db").to_str().unwrap().into(),
    ]);
    assert!(wait_listening(agent_port) && wait_listening(server_port));
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&cert).unwrap()).unwrap();
    let https = reqwest::Client::builder().add_root_certificate(ca).build().unwrap();

    // The agent wants the token on every call, reads included.
    let resp = https.get(format!("https://127.0.0.1:{agent_port}/v1/node")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let resp = https.get(format!("https://127.0.0.1:{agent_port}/v1/node")).bearer_auth("wrong").send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    // The server reaches the agent over TLS (trusting --ca-cert) and serves HTTPS itself.
    let nodes: Value =
        https.get(format!("https://127.0.0.1:{server_port}/v1/cluster")).send().await.unwrap().json().await.unwrap();
    assert_eq!(nodes[0]["node"]["address"], node.ip.as_str(), "{nodes:#}");
    // Plain HTTP to a TLS port fails rather than falling back.
    let plain = reqwest::get(format!("http://127.0.0.1:{server_port}/health")).await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());
    let _ = agent.kill();
    let _ = server.kill();
    let _ = (agent.wait(), server.wait());
}

#[test]
fn a_service_without_a_token_refuses_to_start() {
    let out = Command::new(env!("CARGO_BIN_EXE_cassette"))
        .args(["server", "--agent", "http://127.0.0.1:1"])
        .env_remove("CASSETTE_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("CASSETTE_TOKEN") && err.contains("--insecure-no-token"), "{err}");
}
