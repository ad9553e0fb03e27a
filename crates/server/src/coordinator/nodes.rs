//! The nodes of a job: finding them through their agents (checked against the ring that
//! Cassandra itself reports), and running one agent job to its end.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::client::{AgentClient, StartRefused};
use crate::model::{AgentJobRequest, AgentJobState, AgentJobView, JobType, KnownNode, NodeRun, NodeView};
use crate::store::Store;

/// A node the job works on, through its agent.
#[derive(Clone)]
pub struct Target {
    pub client: AgentClient,
    pub view: Option<NodeView>,
    pub run: NodeRun,
}

/// Asks every agent for its node, then checks them against the ring: agents of another
/// cluster, agents that do not answer and ring nodes that have no agent come back as failed
/// nodes (never dropped silently, as seed 000 did). An agent that answers is remembered in the
/// history with its node, so when it is down its node is still reported once, by host ID, as
/// what it is: a node whose agent cannot be reached.
pub async fn discover(job_type: JobType, agents: Vec<AgentClient>, store: &Store) -> Vec<Target> {
    let views = futures_util::future::join_all(agents.iter().map(|a| a.node())).await;
    let answered: Vec<String> = views.iter().flatten().map(|v| v.host_id.clone()).collect();
    let mut targets = Vec::new();
    for (client, view) in agents.into_iter().zip(views) {
        match view {
            Ok(v) => {
                let known = KnownNode {
                    host_id: v.host_id.clone(),
                    hostname: v.hostname.clone(),
                    address: v.address.clone(),
                    seen: super::now_ms(),
                };
                if let Err(e) = store.remember_agent(&client.url, known).await {
                    tracing::warn!(agent = %client.url, error = %e, "could not record the agent's node");
                }
                let run = NodeRun::new(job_type, &v.host_id, &v.hostname, &v.address, &client.url);
                targets.push(Target { client, view: Some(v), run });
            }
            Err(e) => {
                let known = store.known_agent(&client.url).await.ok().flatten();
                // Keyed by the node it served, unless another agent answers for that node now.
                let mut run = match known.as_ref().filter(|k| !answered.contains(&k.host_id)) {
                    Some(k) => NodeRun::new(job_type, &k.host_id, &k.hostname, &k.address, &client.url),
                    None => NodeRun::new(job_type, &client.url, "", "", &client.url),
                };
                run.fail(format!(
                    "{e}; start the agent (`cassette agent`) or remove it from the server's --agent list"
                ));
                targets.push(Target { client, view: None, run });
            }
        }
    }

    // The cluster is the one most agents report.
    let mut clusters: BTreeMap<String, usize> = BTreeMap::new();
    for v in targets.iter().filter_map(|t| t.view.as_ref()) {
        *clusters.entry(v.cluster_name.clone()).or_default() += 1;
    }
    let cluster = clusters.into_iter().max_by_key(|(_, n)| *n).map(|(c, _)| c);
    for t in &mut targets {
        if let (Some(v), Some(c)) = (&t.view, &cluster)
            && &v.cluster_name != c
        {
            let message = format!(
                "agent {} serves a node of cluster '{}', the other agents serve '{c}'; give the server the agents of one cluster",
                t.client.url, v.cluster_name
            );
            t.run.fail(message);
            t.view = None;
        }
    }
    // Ring nodes without an agent (a node whose agent is down is known by the host ID it had).
    let known: Vec<String> = targets.iter().map(|t| t.run.executor_id.clone()).collect();
    let unknown_agents: Vec<String> =
        targets.iter().filter(|t| t.run.executor_id == t.client.url).map(|t| t.client.url.clone()).collect();
    let mut missing: BTreeMap<String, String> = BTreeMap::new();
    for v in targets.iter().filter_map(|t| t.view.as_ref()) {
        for (host_id, address) in &v.peers {
            if !known.contains(host_id) {
                missing.insert(host_id.clone(), address.clone());
            }
        }
    }
    for (host_id, address) in missing {
        let client = AgentClient::new(reqwest::Client::new(), "", None);
        let mut run = NodeRun::new(job_type, &host_id, "", &address, "");
        run.fail(if unknown_agents.is_empty() {
            format!(
                "node {host_id} ({address}) is in the ring but the server has no agent for it, so it was not worked on; \
                 start `cassette agent` beside it and add it to the server's --agent list"
            )
        } else {
            format!(
                "node {host_id} ({address}) is in the ring and no agent that answered serves it, so it was not worked on; \
                 its agent may be one that cannot be reached ({}): start it, or add the node's agent to the server's --agent list",
                unknown_agents.join(", ")
            )
        });
        targets.push(Target { client, view: None, run });
    }
    targets
}

/// Starts `request` on the agent and polls it until it ends, calling `on_update` with each
/// view. `Err` when the agent refuses the job or stops answering (a killed agent, a lost
/// network): the node's outcome is then unknown, and the message says so.
///
/// With `adopt_since` (a resumed cluster job: when the job it resumes started), a job with the
/// same request that the agent started since then is followed instead of starting another: the
/// agent went on with it while the server was down.
pub async fn run_agent_job(
    client: &AgentClient,
    request: &AgentJobRequest,
    poll: Duration,
    adopt_since: Option<i64>,
    mut on_update: impl FnMut(&AgentJobView),
) -> Result<AgentJobView, String> {
    let adopted = match adopt_since {
        Some(since) => client
            .jobs()
            .await?
            .into_iter()
            .rev()
            .find(|j| same_work(&j.request, request) && j.started >= since && j.state != AgentJobState::Failed),
        None => None,
    };
    let started = match adopted {
        Some(job) => {
            tracing::info!(agent = %client.url, job = %job.id, "following the agent's job started before the server stopped");
            job
        }
        None => start_when_free(client, request, poll).await?,
    };
    on_update(&started);
    if started.state != AgentJobState::Running {
        return Ok(started);
    }
    let mut failures = 0;
    loop {
        tokio::time::sleep(poll).await;
        match client.job(&started.id).await {
            Ok(view) => {
                failures = 0;
                on_update(&view);
                if view.state != AgentJobState::Running {
                    return Ok(view);
                }
            }
            Err(e) => {
                failures += 1;
                // A few seconds of silence: a restarting network is forgiven, a dead agent not.
                if failures >= 5 {
                    return Err(format!(
                        "{e}; the agent stopped answering during the job, so this node's part did not finish \
                         (check the agent's log, restart it, then resume the job)"
                    ));
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

/// The same work, whatever snapshot it copies (a resumed job takes its snapshots again).
fn same_work(a: &AgentJobRequest, b: &AgentJobRequest) -> bool {
    match (a, b) {
        (
            AgentJobRequest::Backup { name: n1, keyspaces: k1, .. },
            AgentJobRequest::Backup { name: n2, keyspaces: k2, .. },
        ) => n1 == n2 && k1 == k2,
        _ => a == b,
    }
}

/// Starts the job, waiting first for a job the agent runs already (one left by a server that
/// stopped) to end.
async fn start_when_free(
    client: &AgentClient,
    request: &AgentJobRequest,
    poll: Duration,
) -> Result<AgentJobView, String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(6 * 3600);
    loop {
        match client.start(request).await {
            Ok(v) => return Ok(v),
            Err(StartRefused::Failed(e)) => return Err(e),
            Err(StartRefused::Busy(e)) if std::time::Instant::now() > deadline => {
                return Err(format!("{e}; gave up waiting after 6 hours"));
            }
            Err(StartRefused::Busy(e)) => {
                tracing::info!(agent = %client.url, "{e}; waiting for it");
                tokio::time::sleep(poll.max(Duration::from_secs(1))).await;
            }
        }
    }
}

/// Copies an agent job's keyspaces and progress into the node's record.
pub fn apply_view(run: &mut NodeRun, view: &AgentJobView) {
    run.processed_keyspaces = view.keyspaces.clone();
    run.remaining_keyspaces = view.remaining_keyspaces.clone();
    run.progress = Some(view.progress.clone());
}
