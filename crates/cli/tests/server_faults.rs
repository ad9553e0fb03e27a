//! `cassette server` when part of the cluster fails, on the real 3-node cluster: an agent that
//! is down or dies early, and a schedule's retention beside backups with similar names.

// Jobs on the shared cluster take turns: the guard is held across awaits on purpose.
#![allow(clippy::await_holding_lock)]

mod common;

use std::time::{Duration, Instant};

use cassette_testkit::{Cluster, dataset, unique_name};
use common::services::*;
use common::*;
use serde_json::{Value, json};

fn nodes(job: &Value) -> &Vec<Value> {
    job["completedNodes"].as_array().expect("completedNodes is a list")
}

/// Whether a node record shows keyspace `ks` as not done, as a client reading only seed
/// 000's fields sees it: FAILURE in processedKeyspaces, or still in remainingKeyspaces.
fn not_done(node: &Value, ks: &str) -> bool {
    node["processedKeyspaces"][ks]["status"] == "FAILURE"
        || node["remainingKeyspaces"].as_array().unwrap().iter().any(|k| k == ks)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_whose_agent_is_down_is_listed_once_with_the_true_reason_and_its_keyspaces_not_done() {
    let cluster = Cluster::trio();
    let session = cluster.session().await;
    let ks = unique_name("down");
    dataset::load(&session, cluster, &ks, 3, &dataset::Shape::small()).await;
    let root = other_disk_dir();
    let _turn = serial();
    // Each agent pauses before its backup has told which keyspaces it covers, so that the
    // agent of node 2 can be killed that early.
    let pause = ("CASSETTE_FAULT_PAUSE_AT".to_string(), "prepared:3000".to_string());
    let mut s = Services::start_with_env(root.path(), Vec::new(), vec![pause]);
    let host_ids = s.host_ids().await;

    // A complete backup first: its name cannot be used again, and each node's job fails
    // before it starts on a keyspace.
    let (code, _) = s.post(&format!("/cluster/backup/start?name=d1&keyspaces={ks}")).await;
    assert_eq!(code, 200);
    assert_eq!(s.wait("backup", |_| {}).await["backup"]["state"], "succeeded");
    let (code, _) = s.post(&format!("/cluster/backup/start?name=d1&keyspaces={ks}")).await;
    assert_eq!(code, 200);
    let again = s.wait("backup", |_| {}).await["backup"].clone();
    assert_eq!(again["state"], "failed");
    for n in nodes(&again) {
        assert!(n["failure"]["message"].as_str().unwrap().contains("exists"), "{n}");
        assert!(not_done(n, &ks), "a failed node shows {ks} as not done: {n:#}");
    }

    // The agent of node 2 dies early in a backup: its node shows the keyspace as not done.
    let (code, _) = s.post(&format!("/cluster/backup/start?name=d2&keyspaces={ks}")).await;
    assert_eq!(code, 200);
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let status = s.get("/cluster/backup/status").await;
        assert_eq!(status["running"], true, "the job ended before node 2 started: {status:#}");
        if status["backup"]["currentNode"]["executorId"] == host_ids[1].as_str() {
            s.kill_agent(1);
            break;
        }
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let job = s.wait("backup", |_| {}).await["backup"].clone();
    assert_eq!(job["state"], "failed", "{job:#}");
    let dead: Vec<&Value> = nodes(&job).iter().filter(|n| n["executorId"] == host_ids[1].as_str()).collect();
    assert_eq!(dead.len(), 1, "{job:#}");
    assert!(dead[0]["failure"].is_object());
    assert!(not_done(dead[0], &ks), "the node whose agent died shows {ks} as not done: {:#}", dead[0]);

    // With that agent still down, a job lists its node once, by host ID, with the true reason.
    let (code, _) = s.post(&format!("/cluster/cleanup/start?keyspaces={ks}")).await;
    assert_eq!(code, 200);
    let job = s.wait("cleanup", |_| {}).await["cleanup"].clone();
    assert_eq!(job["state"], "failed");
    assert_eq!(nodes(&job).len(), 3, "one entry per ring node: {job:#}");
    let ids: Vec<&str> = nodes(&job).iter().map(|n| n["executorId"].as_str().unwrap()).collect();
    let mut want: Vec<&str> = host_ids.iter().map(String::as_str).collect();
    let mut got = ids.clone();
    want.sort();
    got.sort();
    assert_eq!(got, want, "keyed by host ID: {job:#}");
    let dead = nodes(&job).iter().find(|n| n["executorId"] == host_ids[1].as_str()).unwrap();
    let message = dead["failure"]["message"].as_str().unwrap();
    assert!(message.contains(&format!("agent {} cannot be reached", s.agent_url(1))), "{message}");
    assert!(!message.contains("no agent for it"), "{message}");
    assert_eq!(dead["ip"], cluster.nodes[1].ip.as_str(), "the address it had when last seen: {dead}");
    assert!(not_done(dead, &ks), "{dead:#}");
    for n in nodes(&job).iter().filter(|n| n["executorId"] != host_ids[1].as_str()) {
        assert!(n.get("failure").is_none(), "{n}");
    }

    // Backups across the cluster: what the agents that answer have, and the one that does not.
    let resp = s.http.get(s.url("/v1/backups")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200, "one agent down does not fail the listing");
    let answer: Value = resp.json().await.unwrap();
    let errors = answer["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{answer:#}");
    assert_eq!(errors[0]["agent"], s.agent_url(1).as_str());
    let d1 = answer["backups"].as_array().unwrap().iter().find(|b| b["name"] == "d1").expect("d1 is listed");
    assert_eq!(d1["complete"], true, "{d1:#}");
    assert!(!d1["nodes"].as_array().unwrap().is_empty());
    // /metrics says which agent did not answer instead of dropping its node's figures silently.
    let metrics = s.http.get(s.url("/metrics")).send().await.unwrap().text().await.unwrap();
    for i in 0..3 {
        let series = format!("cassette_agent_up{{agent=\"{}\"}} ", s.agent_url(i));
        let value = metrics.lines().find_map(|l| l.strip_prefix(series.as_str())).map(|v| v.parse::<f64>().unwrap());
        assert_eq!(value, Some(if i == 1 { 0.0 } else { 1.0 }), "{series}in:\n{metrics}");
    }
    // The cluster view says which node the unreachable agent served.
    let view = s.get("/v1/cluster").await;
    let down = view.as_array().unwrap().iter().find(|c| c["agent"] == s.agent_url(1).as_str()).unwrap();
    assert!(down["node"].is_null() && down["error"].is_string(), "{down}");
    assert_eq!(down["lastSeen"]["hostId"], host_ids[1].as_str(), "{down}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_schedules_retention_purges_only_the_backups_its_runs_made() {
    let cluster = Cluster::trio();
    let session = cluster.session().await;
    let ks = unique_name("keep");
    dataset::load(&session, cluster, &ks, 3, &dataset::Shape::small()).await;
    let root = other_disk_dir();
    let _turn = serial();
    let s = Services::start(root.path());
    // Manual backups whose names start like the schedule's.
    let manual = ["nightly-2026-11-22", "nightly-eu-20260101T000000Z"];
    for name in manual {
        let (code, body) = s.post(&format!("/cluster/backup/start?name={name}&keyspaces={ks}")).await;
        assert_eq!(code, 200, "{body}");
        assert_eq!(s.wait("backup", |_| {}).await["backup"]["state"], "succeeded");
    }
    let resp = s
        .http
        .post(s.url("/v1/schedules"))
        .bearer_auth(TOKEN)
        .json(&json!({"name": "nightly", "cron": "*/10 * * * * *", "keyspaces": [ks], "retention": {"keepLast": 1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let schedule: Value = resp.json().await.unwrap();

    // Its first run, retention included.
    let run = s.first_scheduled_run("nightly", Duration::from_secs(120)).await;
    let id = schedule["id"].as_i64().unwrap();
    let resp = s.http.delete(s.url(&format!("/v1/schedules/{id}"))).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    let _ = s.wait("backup", |_| {}).await;
    assert_eq!(run["state"], "succeeded", "{run:#}\n{}", s.logs());
    assert!(
        run["phases"].as_array().unwrap().iter().any(|p| p["name"] == "retention" && p["status"] == "SUCCESS"),
        "{run:#}"
    );
    let scheduled = run["backupName"].as_str().unwrap();
    for id in s.host_ids().await {
        let node = root.path().join(&cluster.name).join(&id);
        for name in manual.iter().copied().chain([scheduled]) {
            assert!(node.join(name).join("manifest.json").is_file(), "{name} of {id} is still there");
        }
    }
}
