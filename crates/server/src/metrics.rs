//! `/metrics` in the Prometheus text format, computed at scrape time from the job history and
//! the agents' repositories (so a restarted server reports the same figures).

use std::collections::BTreeMap;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::coordinator::Coordinator;
use crate::model::{ClusterJob, JobState, JobType};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AgentLabel {
    agent: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NodeLabel {
    node: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TypeLabel {
    r#type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TypeStateLabel {
    r#type: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TypeNodeLabel {
    r#type: String,
    node: String,
}

type Gauges<L> = Family<L, Gauge<f64, std::sync::atomic::AtomicU64>>;

fn gauges<L: Clone + std::hash::Hash + Eq + EncodeLabelSet + std::fmt::Debug + Send + Sync + 'static>(
    registry: &mut Registry,
    name: &str,
    help: &str,
) -> Gauges<L> {
    let family = Gauges::<L>::default();
    registry.register(name, help, family.clone());
    family
}

/// Jobs read for the figures (newest first).
const HISTORY: u32 = 10_000;

/// The metrics text.
pub async fn render(coordinator: &Coordinator) -> Result<String, String> {
    let jobs = coordinator.store().history(None, HISTORY).await.map_err(|e| e.to_string())?;
    let mut registry = Registry::with_prefix("cassette");
    record_jobs(&mut registry, &jobs);

    let repo_bytes = gauges::<NodeLabel>(
        &mut registry,
        "repository_bytes",
        "Bytes stored for the node in its agent's backup directory (shared files counted once)",
    );
    let repo_backups = gauges::<NodeLabel>(&mut registry, "repository_backups", "Complete backups of the node");
    // An agent that does not answer leaves its node's repository figures out of this scrape;
    // `agent_up` says so, so that a missing series can be alerted on rather than read as "no
    // backups".
    let agent_up = gauges::<AgentLabel>(&mut registry, "agent_up", "1 if the agent answered this scrape, 0 if not");
    let agents = coordinator.agents();
    let lists = futures_util::future::join_all(agents.iter().map(|a| a.backups_all())).await;
    for (agent, list) in agents.iter().zip(&lists) {
        agent_up.get_or_create(&AgentLabel { agent: agent.url.clone() }).set(f64::from(u8::from(list.is_ok())));
    }
    let mut per_node: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    let mut seen = std::collections::BTreeSet::new();
    for b in lists.into_iter().flatten().flatten() {
        if !seen.insert((b.host_id.clone(), b.name.clone())) {
            continue; // agents sharing a directory list the same backups
        }
        let e = per_node.entry(b.host_id.clone()).or_default();
        e.0 += b.bytes_added as f64;
        e.1 += f64::from(u8::from(b.complete));
    }
    for (node, (bytes, count)) in per_node {
        repo_bytes.get_or_create(&NodeLabel { node: node.clone() }).set(bytes);
        repo_backups.get_or_create(&NodeLabel { node }).set(count);
    }

    let views = futures_util::future::join_all(agents.iter().map(|a| a.commitlog())).await;
    record_commitlog(&mut registry, views.into_iter().flatten().collect());

    let mut out = String::new();
    encode(&mut out, &registry).map_err(|e| e.to_string())?;
    Ok(out)
}

/// Point-in-time recovery, per node whose agent ships its commitlog.
fn record_commitlog(registry: &mut Registry, views: Vec<crate::model::CommitlogView>) {
    let spool = gauges::<NodeLabel>(
        registry,
        "commitlog_spool_segments",
        "Commitlog segments waiting in the node's spool to be shipped",
    );
    let shipped = gauges::<NodeLabel>(
        registry,
        "commitlog_last_shipped_timestamp_seconds",
        "The last write of the newest commitlog segment of the node archived in the repository",
    );
    let age = gauges::<NodeLabel>(
        registry,
        "commitlog_recovery_point_age_seconds",
        "Seconds since the last archived write: what a restore to now would miss at least",
    );
    let from = gauges::<NodeLabel>(
        registry,
        "commitlog_recoverable_from_timestamp_seconds",
        "The start of the node's newest recoverable window (the end of the backup it starts from)",
    );
    let until = gauges::<NodeLabel>(
        registry,
        "commitlog_recoverable_until_timestamp_seconds",
        "The end of the node's newest recoverable window (its last archived write)",
    );
    let gaps = gauges::<NodeLabel>(registry, "commitlog_gaps", "Gaps between the node's archived commitlog segments");
    let seconds = |t: &str| chrono::DateTime::parse_from_rfc3339(t).ok().map(|t| t.timestamp_millis() as f64 / 1000.0);
    let now = chrono::Utc::now().timestamp_millis() as f64 / 1000.0;
    for v in views.into_iter().filter(|v| v.enabled) {
        let Some(node) = v.host_id.clone() else { continue };
        let label = NodeLabel { node };
        spool.get_or_create(&label).set(v.spool_segments as f64);
        gaps.get_or_create(&label).set(v.gaps as f64);
        if let Some(t) = v.newest_archived_write.as_deref().and_then(seconds) {
            shipped.get_or_create(&label).set(t);
            age.get_or_create(&label).set(now - t);
        }
        if let Some(w) = v.windows.last() {
            if let Some(t) = seconds(&w.from) {
                from.get_or_create(&label).set(t);
            }
            if let Some(t) = seconds(&w.until) {
                until.get_or_create(&label).set(t);
            }
        }
    }
}

fn record_jobs(registry: &mut Registry, jobs: &[ClusterJob]) {
    let last_node_backup = gauges::<NodeLabel>(
        registry,
        "backup_last_success_timestamp_seconds",
        "When the node's newest successful backup finished",
    );
    let last_cluster_backup = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
    registry.register(
        "cluster_backup_last_success_timestamp_seconds",
        "When the newest cluster backup in which every node succeeded finished",
        last_cluster_backup.clone(),
    );
    let node_bytes = gauges::<NodeLabel>(registry, "backup_last_bytes", "Bytes in the node's newest successful backup");
    let node_files = gauges::<NodeLabel>(registry, "backup_last_files", "Files in the node's newest successful backup");
    let jobs_by_state = gauges::<TypeStateLabel>(registry, "jobs", "Jobs in the history, by type and final state");
    let duration =
        gauges::<TypeLabel>(registry, "job_last_duration_seconds", "Duration of the newest finished job of each type");
    let failures =
        gauges::<TypeNodeLabel>(registry, "node_failures", "Node failures in the history, by job type and node");
    let verify_ok = gauges::<NodeLabel>(
        registry,
        "verify_last_success",
        "1 when the node's newest verification found every file intact, 0 otherwise",
    );
    let verify_time =
        gauges::<NodeLabel>(registry, "verify_last_timestamp_seconds", "When the node's newest verification finished");

    let mut duration_done = std::collections::BTreeSet::new();
    // Newest first: the first value set for a node is its newest.
    for job in jobs {
        if job.state == JobState::Running {
            continue;
        }
        let t = job.job_type.upper().to_string();
        let state =
            serde_json::to_value(job.state).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
        jobs_by_state.get_or_create(&TypeStateLabel { r#type: t.clone(), state }).inc_by(1.0);
        if let Some(finished) = job.finished
            && duration_done.insert(t.clone())
        {
            duration.get_or_create(&TypeLabel { r#type: t.clone() }).set((finished - job.started) as f64 / 1000.0);
        }
        if job.job_type == JobType::Backup && job.state == JobState::Succeeded && last_cluster_backup.get() == 0.0 {
            last_cluster_backup.set(job.finished.unwrap_or(0) as f64 / 1000.0);
        }
        for n in &job.completed_nodes {
            let node = NodeLabel { node: n.executor_id.clone() };
            if n.failure.is_some() {
                failures.get_or_create(&TypeNodeLabel { r#type: t.clone(), node: n.executor_id.clone() }).inc_by(1.0);
            }
            match job.job_type {
                JobType::Backup if n.failure.is_none() => {
                    let g = last_node_backup.get_or_create(&node);
                    if g.get() == 0.0 {
                        g.set(n.finished_timestamp.unwrap_or(0) as f64 / 1000.0);
                        let p = n.progress.clone().unwrap_or_default();
                        node_bytes.get_or_create(&node).set(p.bytes_done as f64);
                        node_files.get_or_create(&node).set(p.files_done as f64);
                    }
                }
                JobType::Verify => {
                    let g = verify_time.get_or_create(&node);
                    if g.get() == 0.0 {
                        g.set(n.finished_timestamp.unwrap_or(0) as f64 / 1000.0);
                        verify_ok.get_or_create(&node).set(f64::from(u8::from(n.failure.is_none())));
                    }
                }
                _ => {}
            }
        }
    }
}
