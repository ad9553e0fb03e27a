//! What operators watch and automate on `cassette server`, on the real 3-node cluster:
//! `/metrics`, webhooks, schedules, verify jobs.

// Jobs on the shared cluster take turns: the guard is held across awaits on purpose.
#![allow(clippy::await_holding_lock)]

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cassette_testkit::{Cluster, dataset, unique_name};
use common::services::*;
use common::*;
use serde_json::{Value, json};

/// The samples of a metric: labels → value.
fn samples(text: &str, name: &str) -> BTreeMap<String, f64> {
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("/metrics parses as the Prometheus text format");
    scrape
        .samples
        .into_iter()
        .filter(|s| s.metric == name)
        .map(|s| {
            let value = match s.value {
                prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Untyped(v) => v,
                other => panic!("{name}: unexpected {other:?}"),
            };
            let mut labels: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            labels.sort();
            (labels.join(","), value)
        })
        .collect()
}

/// A webhook receiver on a free port: the bodies it accepted; it refuses the very first call
/// with a 500, so the server has to retry.
async fn receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let calls = Arc::new(Mutex::new(0u32));
    let (acc, c) = (accepted.clone(), calls.clone());
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
            let (acc, c) = (acc.clone(), c.clone());
            async move {
                let first = {
                    let mut n = c.lock().unwrap();
                    *n += 1;
                    *n == 1
                };
                if first {
                    return axum::http::StatusCode::INTERNAL_SERVER_ERROR;
                }
                acc.lock().unwrap().push(body);
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, accepted)
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_and_webhooks_tell_what_the_jobs_did() {
    let cluster = Cluster::trio();
    let session = cluster.session().await;
    let ks = unique_name("ops");
    dataset::load(&session, cluster, &ks, 3, &dataset::Shape::small()).await;
    let root = other_disk_dir();
    let (hook, accepted) = receiver().await;
    let _turn = serial();
    let s = Services::start_with(root.path(), vec!["--webhook".into(), hook]);
    let host_ids = s.host_ids().await;

    let (code, _) = s.post(&format!("/cluster/backup/start?name=m1&keyspaces={ks}")).await;
    assert_eq!(code, 200);
    let backup = s.wait("backup", |_| {}).await["backup"].clone();
    assert_eq!(backup["state"], "succeeded", "{backup:#}");
    // A restore of a backup that does not exist fails, touching nothing.
    let (code, _) = s.post(&format!("/cluster/restore/start?name=nope&keyspaces={ks}")).await;
    assert_eq!(code, 200);
    let restore = s.wait("restore", |_| {}).await["restore"].clone();
    assert_eq!(restore["state"], "failed");
    assert!(restore["error"].as_str().unwrap().contains("no complete backup named 'nope'"), "{restore:#}");
    // Verify every node's backup m1.
    let (code, _) = s.post("/cluster/verify/start?name=m1").await;
    assert_eq!(code, 200);
    let verify = s.wait("verify", |_| {}).await["verify"].clone();
    assert_eq!(verify["state"], "succeeded", "{verify:#}");
    for n in verify["completedNodes"].as_array().unwrap() {
        assert_eq!(n["processedKeyspaces"]["m1"]["status"], "SUCCESS", "{n}");
    }

    let text = s.http.get(s.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let last = samples(&text, "cassette_backup_last_success_timestamp_seconds");
    let bytes = samples(&text, "cassette_backup_last_bytes");
    for n in backup["completedNodes"].as_array().unwrap() {
        let label = format!("node={}", n["executorId"].as_str().unwrap());
        let finished = n["finishedTimestamp"].as_f64().unwrap() / 1000.0;
        assert!((last[&label] - finished).abs() < 0.01, "{label}: {} vs {finished}", last[&label]);
        let stored: u64 =
            files_under(&root.path().join(&cluster.name).join(n["executorId"].as_str().unwrap()).join("m1").join(&ks))
                .iter()
                .map(|f| std::fs::metadata(f).unwrap().len())
                .sum();
        assert_eq!(bytes[&label] as u64, stored, "bytes backed up on {label}");
    }
    let cluster_last = samples(&text, "cassette_cluster_backup_last_success_timestamp_seconds");
    assert_eq!(cluster_last[""], backup["finished"].as_f64().unwrap() / 1000.0);
    let jobs = samples(&text, "cassette_jobs");
    assert_eq!(jobs["state=succeeded,type=BACKUP"], 1.0);
    assert_eq!(jobs["state=failed,type=RESTORE"], 1.0);
    assert_eq!(jobs["state=succeeded,type=VERIFY"], 1.0);
    let verified = samples(&text, "cassette_verify_last_success");
    for id in &host_ids {
        assert_eq!(verified[&format!("node={id}")], 1.0);
    }
    let failures = samples(&text, "cassette_node_failures");
    assert_eq!(failures.values().sum::<f64>(), 3.0, "the failed restore's three nodes: {failures:?}");
    let repo = samples(&text, "cassette_repository_backups");
    assert_eq!(repo.values().sum::<f64>(), 3.0);

    // One webhook call per job, with its status (the first delivery was refused and retried).
    let deadline = Instant::now() + Duration::from_secs(30);
    while accepted.lock().unwrap().len() < 3 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await; // no late duplicates
    let calls = accepted.lock().unwrap().clone();
    let got: Vec<(i64, String)> =
        calls.iter().map(|c| (c["job"]["id"].as_i64().unwrap(), c["status"].as_str().unwrap().to_string())).collect();
    let mut got = got;
    got.sort();
    let want = vec![
        (backup["id"].as_i64().unwrap(), "succeeded".to_string()),
        (restore["id"].as_i64().unwrap(), "failed".to_string()),
        (verify["id"].as_i64().unwrap(), "succeeded".to_string()),
    ];
    assert_eq!(got, want);
    assert!(calls.iter().all(|c| c["event"] == "job.finished" && c["summary"].is_string()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_schedule_fires_on_time_across_a_restart_and_runs_a_missed_slot_once() {
    let cluster = Cluster::trio();
    let session = cluster.session().await;
    let ks = unique_name("sched");
    dataset::create_schema(&session, &ks, 3).await;
    let root = other_disk_dir();
    let _turn = serial();
    let mut s = Services::start(root.path());
    // A backup of the schedule's keyspace outside the schedule: its retention leaves it alone.
    let (code, _) = s.post(&format!("/cluster/backup/start?name=manual-1&keyspaces={ks}")).await;
    assert_eq!(code, 200);
    assert_eq!(s.wait("backup", |_| {}).await["backup"]["state"], "succeeded");

    // Bad schedules are refused with the reason.
    let bad = s
        .http
        .post(s.url("/v1/schedules"))
        .bearer_auth(TOKEN)
        .json(&json!({"name": "x", "cron": "every day"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    assert!(bad.text().await.unwrap().contains("not a cron expression"));

    // Every 20 seconds (cron with seconds, so the test takes a minute, not ten).
    let period = 20_000i64;
    let resp = s
        .http
        .post(s.url("/v1/schedules"))
        .bearer_auth(TOKEN)
        .json(&json!({"name": "every20", "cron": "*/20 * * * * *", "keyspaces": [ks], "retention": {"keepLast": 2}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let schedule: Value = resp.json().await.unwrap();
    assert_eq!(schedule["nextRun"].as_i64().unwrap() % period, 0, "{schedule}");

    let scheduled = |jobs: &Value| -> Vec<Value> {
        jobs.as_array().unwrap().iter().filter(|j| j["params"]["schedule"] == "every20").cloned().collect()
    };
    // The first run, on its slot.
    let deadline = Instant::now() + Duration::from_secs(60);
    while scheduled(&s.get("/v1/jobs").await).is_empty() {
        assert!(Instant::now() < deadline, "no scheduled run:\n{}", s.logs());
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let first = scheduled(&s.get("/v1/jobs").await)[0].clone();
    let slot_lag = first["started"].as_i64().unwrap() % period;
    assert!(slot_lag < 2_500, "started {slot_lag} ms after its slot");

    // Down across two slots: once back, the missed slots run once, not twice.
    // (Restarted 3 s after a slot, so the catch-up run ends well before the next slot.)
    let _ = s.wait("backup", |_| {}).await;
    s.kill_server();
    let now = cassette_now_ms();
    let restart_at = (now / period + 2) * period + 3_000;
    tokio::time::sleep(Duration::from_millis((restart_at - now) as u64)).await;
    let restarted = cassette_now_ms();
    s.start_server();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let runs = scheduled(&s.get("/v1/jobs").await);
    let after_restart: Vec<&Value> = runs.iter().filter(|j| j["started"].as_i64().unwrap() >= restarted).collect();
    assert_eq!(after_restart.len(), 1, "missed slots run once: {runs:#?}");
    // Then on its slots again.
    let before = runs.len();
    let deadline = Instant::now() + Duration::from_secs(60);
    let next = loop {
        let runs = scheduled(&s.get("/v1/jobs").await);
        if runs.len() > before {
            break runs[0].clone(); // newest first
        }
        assert!(Instant::now() < deadline, "no run after the restart's catch-up:\n{}", s.logs());
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert!(next["started"].as_i64().unwrap() % period < 2_500, "{next:#}");
    let _ = s.wait("backup", |_| {}).await;
    for run in scheduled(&s.get("/v1/jobs").await) {
        assert_eq!(run["state"], "succeeded", "{run:#}");
        assert!(run["backupName"].as_str().unwrap().starts_with("every20-"));
    }
    // Retention (keep the last 2 of the schedule's backups) ran after each successful run.
    let runs = scheduled(&s.get("/v1/jobs").await);
    assert!(runs.len() >= 3, "{runs:#?}");
    assert!(runs[0]["phases"].as_array().unwrap().iter().any(|p| p["name"] == "retention" && p["status"] == "SUCCESS"));
    let newest: Vec<String> = runs[..2].iter().map(|r| r["backupName"].as_str().unwrap().to_string()).collect();
    for id in s.host_ids().await {
        let node_dir = root.path().join(&cluster.name).join(&id);
        let mut names: Vec<String> = std::fs::read_dir(&node_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect();
        names.sort();
        let mut want = newest.clone();
        want.push("manual-1".into());
        want.sort();
        assert_eq!(names, want, "on {id}");
    }
    // Removing the schedule stops it.
    let id = schedule["id"].as_i64().unwrap();
    let resp = s.http.delete(s.url(&format!("/v1/schedules/{id}"))).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    assert!(s.get("/v1/schedules").await.as_array().unwrap().is_empty());
}

fn cassette_now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}
