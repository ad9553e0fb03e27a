//! One cluster job from start to end: backup, restore, repair, cleanup.
//!
//! - backup: (`snapshotTogether`: every node's snapshot first) then each node's backup;
//! - restore: locate each node's backup → verify every node's backup (nothing touched yet) →
//!   truncate each table once, cluster-wide → load each node → (`repair`) repair each node;
//! - repair, cleanup: nodetool on each node.
//!
//! Nodes run one at a time unless `parallel` says more; abort lets the running nodes finish
//! and starts no other.

use std::collections::BTreeSet;
use std::sync::Arc;

use cassette_restore::Mode;

use super::nodes::{Target, apply_view, discover, run_agent_job};
use super::{Coordinator, Running, now_ms};
use crate::model::{AgentJobRequest, AgentJobState, ClusterJob, JobState, JobType, KeyspaceStatus, NodeRun, Phase};

pub(crate) struct JobRun {
    pub coordinator: Arc<Coordinator>,
    pub running: Arc<Running>,
    /// The job this one resumes.
    pub resumes: Option<ClusterJob>,
    /// The keyspaces the job covers (asked for, or every node's own), once its nodes are known.
    pub keyspaces: std::sync::OnceLock<Vec<String>>,
}

/// Why a job stopped before its nodes were all worked on.
type Stop = String;

/// The targets whose cluster-wide step failed, as `host ID: error`.
fn failures<T>(targets: &[Target], results: &[Result<T, String>]) -> Vec<String> {
    targets
        .iter()
        .zip(results)
        .filter_map(|(t, r)| r.as_ref().err().map(|e| format!("{}: {e}", t.run.executor_id)))
        .collect()
}

impl JobRun {
    pub async fn run(self) {
        let job_type = self.running.doc().job_type;
        let stopped = match job_type {
            JobType::Backup => self.backup().await,
            JobType::Restore => self.restore().await,
            JobType::Repair | JobType::Cleanup | JobType::Verify => self.maintenance(job_type).await,
        };
        let aborted = self.running.aborted();
        self.running.update(|d| {
            if let Err(stop) = stopped {
                d.error.get_or_insert(stop);
            }
            d.finished = Some(now_ms());
            d.aborted = aborted;
            d.running_nodes.clear();
            d.current_node = None;
            let failed = d.error.is_some() || d.completed_nodes.iter().any(|n| n.failure.is_some());
            d.state = if aborted {
                JobState::Aborted
            } else if failed || !d.remaining_nodes.is_empty() {
                JobState::Failed
            } else {
                JobState::Succeeded
            };
        });
        self.save().await;
    }

    /// For a resumed job: agent jobs started since the resumed job began are followed, not
    /// started again.
    fn adopt_since(&self) -> Option<i64> {
        self.resumes.as_ref().map(|old| old.started)
    }

    async fn save(&self) {
        let keyspaces = self.keyspaces.get().cloned().unwrap_or_default();
        let doc = self.running.update(|d| {
            for n in &mut d.completed_nodes {
                n.show_not_done(&keyspaces);
            }
            d.clone()
        });
        if let Err(e) = self.coordinator.store().update(&doc).await {
            tracing::error!(error = %e, "could not save the job to the history");
        }
    }

    /// Finds the nodes; the failed ones are recorded as completed with their failure. Nodes
    /// that succeeded in the job being resumed are carried over, not run again.
    async fn nodes(&self) -> Vec<Target> {
        let job_type = self.running.doc().job_type;
        let targets = discover(job_type, self.coordinator.agents(), self.coordinator.store()).await;
        let params = self.running.doc().params;
        let keyspaces: Vec<String> = if job_type == JobType::Verify {
            params.name.into_iter().collect()
        } else if !params.keyspaces.is_empty() {
            params.keyspaces
        } else {
            let all: BTreeSet<String> =
                targets.iter().filter_map(|t| t.view.as_ref()).flat_map(|v| v.keyspaces.iter().cloned()).collect();
            all.into_iter().collect()
        };
        let _ = self.keyspaces.set(keyspaces);
        let done: Vec<NodeRun> =
            self.resumes.iter().flat_map(|old| old.completed_nodes.iter().filter(|n| n.succeeded()).cloned()).collect();
        self.running.update(|d| {
            for t in &targets {
                if let Some(prev) = done.iter().find(|n| n.executor_id == t.run.executor_id) {
                    d.completed_nodes.push(prev.clone());
                } else if t.run.failure.is_some() {
                    let mut run = t.run.clone();
                    run.finished_timestamp = Some(now_ms());
                    d.completed_nodes.push(run);
                } else {
                    d.remaining_nodes.push(t.run.executor_id.clone());
                }
            }
        });
        self.save().await;
        targets
            .into_iter()
            .filter(|t| t.view.is_some() && !done.iter().any(|n| n.executor_id == t.run.executor_id))
            .collect()
    }

    fn phase(&self, name: &str) {
        self.running.update(|d| d.phases.push(Phase { name: name.into(), status: None, message: None }));
    }

    fn end_phase(&self, ok: bool, message: String) {
        self.running.update(|d| {
            if let Some(p) = d.phases.last_mut() {
                p.status = Some(if ok { KeyspaceStatus::Success } else { KeyspaceStatus::Failure });
                p.message = Some(message);
            }
        });
    }

    /// Runs `request_for(target)` on each target as the node's part of the job, `parallel`
    /// at a time, recording each in `runningNodes` and then `completedNodes`.
    async fn node_jobs(&self, targets: Vec<Target>, request_for: impl Fn(&Target) -> AgentJobRequest) {
        let jobs: Vec<_> = targets
            .into_iter()
            .map(|t| {
                let request = request_for(&t);
                self.node_job(t, request)
            })
            .collect();
        self.bounded(jobs).await;
    }

    async fn node_job(&self, target: Target, request: AgentJobRequest) {
        if self.running.aborted() {
            return; // stays in remainingNodes
        }
        let id = target.run.executor_id.clone();
        let mut run = target.run.clone();
        run.started_timestamp = Some(now_ms());
        if let AgentJobRequest::Restore { from_node: Some(from), .. } = &request
            && from != &id
        {
            run.backup_host_id = Some(from.clone());
        }
        self.running.update(|d| {
            d.remaining_nodes.retain(|n| n != &id);
            d.running_nodes.push(run.clone());
            d.sync_current();
        });
        self.save().await;
        let poll = self.coordinator.config().poll_interval;
        let result = run_agent_job(&target.client, &request, poll, self.adopt_since(), |view| {
            self.running.update(|d| {
                if let Some(r) = d.running_nodes.iter_mut().find(|r| r.executor_id == id) {
                    apply_view(r, view);
                }
                d.sync_current();
            })
        })
        .await;
        match result {
            Ok(view) => {
                apply_view(&mut run, &view);
                if view.state != AgentJobState::Succeeded {
                    run.fail(view.error.unwrap_or_else(|| "the node's job failed; see the agent's log".into()));
                }
            }
            Err(e) => {
                if let Some(r) = self.running.doc().running_nodes.iter().find(|r| r.executor_id == id) {
                    run.processed_keyspaces = r.processed_keyspaces.clone();
                    run.remaining_keyspaces = r.remaining_keyspaces.clone();
                    run.progress = r.progress.clone();
                }
                run.fail(e);
            }
        }
        run.finished_timestamp = Some(now_ms());
        tracing::info!(node = %id, failure = ?run.failure.as_ref().map(|f| &f.message), "node finished");
        self.running.update(|d| {
            d.running_nodes.retain(|r| r.executor_id != id);
            d.completed_nodes.push(run);
            d.sync_current();
        });
        self.save().await;
    }

    /// Runs one agent job per target at once, outside the nodes' records (a cluster-wide step);
    /// returns each target's view or error.
    async fn step(
        &self,
        targets: &[Target],
        request_for: impl Fn(&Target) -> AgentJobRequest,
    ) -> Vec<Result<crate::model::AgentJobView, String>> {
        let poll = self.coordinator.config().poll_interval;
        let since = self.adopt_since();
        let calls: Vec<_> = targets.iter().map(|t| agent_step(&t.client, request_for(t), poll, since)).collect();
        self.bounded(calls).await
    }

    /// Runs `futures`, `parallel` of them at a time; results in order.
    async fn bounded<T>(&self, futures: Vec<impl Future<Output = T>>) -> Vec<T> {
        let permits = tokio::sync::Semaphore::new(self.running.doc().params.parallel.max(1));
        let permits = &permits;
        let gated: Vec<_> = futures
            .into_iter()
            .map(|f| async move {
                let _permit = permits.acquire().await.expect("the semaphore is never closed");
                f.await
            })
            .collect();
        futures_util::future::join_all(gated).await
    }

    async fn backup(&self) -> Result<(), Stop> {
        let params = self.running.doc().params;
        let name = params.name.clone().unwrap_or_default();
        let mut targets = self.nodes().await;
        if self.resumes.is_some() {
            targets = self.skip_backed_up(targets, &name).await;
        }
        let mut tags: Vec<(String, Option<String>)> =
            targets.iter().map(|t| (t.run.executor_id.clone(), None)).collect();
        // A resumed job's nodes snapshot each on its own: the first run's window is gone, and a
        // node the first run left running is followed, with the snapshot it took.
        if params.snapshot_together && self.resumes.is_none() && !targets.is_empty() {
            self.phase("snapshot");
            let started = now_ms();
            // Every node at once: the point is a short window.
            let calls = targets.iter().map(|t| {
                let request = AgentJobRequest::Snapshot { name: name.clone(), keyspaces: params.keyspaces.clone() };
                let poll = self.coordinator.config().poll_interval;
                async move { run_agent_job(&t.client, &request, poll, None, |_| {}).await }
            });
            let results = futures_util::future::join_all(calls).await;
            let window = now_ms() - started;
            let mut failed = Vec::new();
            for ((t, tag), result) in targets.iter().zip(tags.iter_mut()).zip(results) {
                match result {
                    Ok(v) if v.state == AgentJobState::Succeeded => tag.1 = v.snapshot_tag,
                    Ok(v) => failed.push((t.run.executor_id.clone(), v.error.unwrap_or_default())),
                    Err(e) => failed.push((t.run.executor_id.clone(), e)),
                }
            }
            self.end_phase(
                failed.is_empty(),
                format!("snapshots of {} nodes taken within {window} ms", targets.len() - failed.len()),
            );
            for (id, e) in &failed {
                self.running.update(|d| {
                    d.remaining_nodes.retain(|n| n != id);
                    if let Some(t) = targets.iter().find(|t| &t.run.executor_id == id) {
                        let mut run = t.run.clone();
                        run.fail(format!("snapshot failed, node not backed up: {e}"));
                        run.finished_timestamp = Some(now_ms());
                        d.completed_nodes.push(run);
                    }
                });
            }
            targets.retain(|t| !failed.iter().any(|(id, _)| id == &t.run.executor_id));
        }
        let object_lock = params.object_lock.request(chrono::Utc::now());
        self.node_jobs(targets.clone(), |t| AgentJobRequest::Backup {
            name: name.clone(),
            keyspaces: params.keyspaces.clone(),
            snapshot_tag: tags.iter().find(|(id, _)| id == &t.run.executor_id).and_then(|(_, tag)| tag.clone()),
            object_lock,
        })
        .await;
        if let (Some(schedule), Some(retention)) = (&params.schedule, &params.retention) {
            self.retention(&targets, schedule, retention).await?;
        }
        Ok(())
    }

    /// A scheduled backup's retention: once every node succeeded, each node purges the
    /// schedule's backups by its policy (never the backup just made: it is the newest).
    async fn retention(
        &self,
        targets: &[Target],
        schedule: &str,
        retention: &crate::model::Retention,
    ) -> Result<(), Stop> {
        let doc = self.running.doc();
        if self.running.aborted()
            || !doc.remaining_nodes.is_empty()
            || doc.completed_nodes.iter().any(|n| n.failure.is_some())
        {
            return Ok(()); // a failed backup purges nothing
        }
        self.phase("retention");
        // The schedule's backups are those its runs made, as the history recorded them: a
        // backup that only shares its name's start is not one of them.
        let mut names = std::collections::BTreeMap::new();
        for t in targets {
            let id = t.run.executor_id.clone();
            match self.coordinator.store().schedule_backups(schedule, &id).await {
                Ok(list) => names.insert(id, list),
                Err(e) => {
                    self.end_phase(false, e.to_string());
                    return Err(format!("the backup succeeded but its retention could not read the history: {e}"));
                }
            };
        }
        let results = self
            .step(targets, |t| AgentJobRequest::Purge {
                names: names.get(&t.run.executor_id).cloned().unwrap_or_default(),
                retention: retention.clone(),
            })
            .await;
        let mut deleted = 0;
        let mut bad = Vec::new();
        for (t, r) in targets.iter().zip(results) {
            match r {
                Ok(v) => deleted += v.report.as_ref().and_then(|r| r["deleted"].as_array().map(Vec::len)).unwrap_or(0),
                Err(e) => bad.push(format!("{}: {e}", t.run.executor_id)),
            }
        }
        if bad.is_empty() {
            self.end_phase(true, format!("{deleted} backups purged across the nodes"));
            Ok(())
        } else {
            self.end_phase(false, bad.join("; "));
            Err(format!("the backup succeeded but its retention purge failed: {}", bad.join("; ")))
        }
    }

    /// A resumed backup: nodes whose backup of this name completed (while the server was
    /// down, on an agent that went on) are done; they are recorded as such, not run again.
    async fn skip_backed_up(&self, targets: Vec<Target>, name: &str) -> Vec<Target> {
        let mut left = Vec::new();
        for t in targets {
            let complete = t
                .client
                .backups(name)
                .await
                .is_ok_and(|list| list.iter().any(|b| b.complete && b.host_id == t.run.executor_id));
            if !complete {
                left.push(t);
                continue;
            }
            let mut run = t.run.clone();
            run.finished_timestamp = Some(now_ms());
            run.progress =
                Some(crate::model::NodeProgress { stage: "complete before the resume".into(), ..Default::default() });
            self.running.update(|d| {
                d.remaining_nodes.retain(|n| n != &run.executor_id);
                d.completed_nodes.push(run);
            });
        }
        self.save().await;
        left
    }

    async fn restore(&self) -> Result<(), Stop> {
        let params = self.running.doc().params;
        let name = params.name.clone().unwrap_or_default();
        let resumed = self.resumes.is_some();
        let targets = self.nodes().await;
        let unusable: Vec<String> = self
            .running
            .doc()
            .completed_nodes
            .iter()
            .filter_map(|n| n.failure.as_ref().map(|f| format!("{}: {}", n.executor_id, f.message)))
            .collect();
        if !unusable.is_empty() {
            return Err(self.refuse(
                &targets,
                format!(
                    "a cluster restore needs every node of the ring and its agent; nothing was touched. {}",
                    unusable.join("; ")
                ),
            ));
        }
        if let Some(until) = params.until.clone() {
            return self.restore_until(targets, params.name.clone(), until).await;
        }

        self.phase("locate");
        let mut sources = Vec::new();
        for t in &targets {
            match locate(t, &name).await {
                Ok(from) => sources.push((t.run.executor_id.clone(), from)),
                Err(e) => {
                    self.end_phase(false, e.clone());
                    return Err(self.refuse(&targets, format!("{e}; nothing was touched")));
                }
            }
        }
        let mapped: Vec<String> =
            sources.iter().filter(|(id, from)| id != from).map(|(id, from)| format!("{id} ← {from}")).collect();
        self.end_phase(
            true,
            if mapped.is_empty() {
                format!("{} nodes, each with its own backup", sources.len())
            } else {
                format!("{} nodes; restored from another host ID's backup: {}", sources.len(), mapped.join(", "))
            },
        );
        let from = |t: &Target| sources.iter().find(|(id, _)| id == &t.run.executor_id).map(|(_, f)| f.clone());

        self.phase("verify");
        let results = self
            .step(&targets, |t| AgentJobRequest::Restore {
                name: name.clone(),
                keyspaces: params.keyspaces.clone(),
                mode: Mode::TruncateAndLoad,
                dry_run: true,
                from_node: from(t),
                new_restore: false,
            })
            .await;
        let bad = failures(&targets, &results);
        if !bad.is_empty() {
            self.end_phase(false, bad.join("; "));
            return Err(self.refuse(
                &targets,
                format!("the backup did not verify on every node, so nothing was touched: {}", bad.join("; ")),
            ));
        }
        let bytes: u64 = results.iter().flatten().map(|v| v.progress.bytes_done).sum();
        self.end_phase(true, format!("every file of {} nodes' backups verified ({bytes} bytes)", targets.len()));
        if self.running.aborted() {
            return Err("aborted before anything was touched".into());
        }

        let truncated_before = self.resumes.as_ref().is_some_and(|old| {
            old.phases.iter().any(|p| p.name == "truncate" && p.status == Some(KeyspaceStatus::Success))
        });
        self.phase("truncate");
        if truncated_before {
            self.end_phase(true, "done by the job being resumed; not truncated again".into());
        } else if let Some(first) = targets.first() {
            // TRUNCATE is cluster-wide: once, from one node, before any node loads.
            let request = AgentJobRequest::Restore {
                name: name.clone(),
                keyspaces: params.keyspaces.clone(),
                mode: Mode::TruncateOnly,
                dry_run: false,
                from_node: from(first),
                new_restore: !resumed,
            };
            match self.step(std::slice::from_ref(first), |_| request.clone()).await.remove(0) {
                Ok(_) => self.end_phase(true, format!("every table truncated once, through {}", first.run.executor_id)),
                Err(e) => {
                    self.end_phase(false, e.clone());
                    return Err(self.refuse(
                        &targets,
                        format!(
                            "truncate failed through {}: {e}; no node was loaded: fix the cause and resume the job",
                            first.run.executor_id
                        ),
                    ));
                }
            }
        }

        self.phase("load");
        self.node_jobs(targets.clone(), |t| AgentJobRequest::Restore {
            name: name.clone(),
            keyspaces: params.keyspaces.clone(),
            mode: Mode::LoadOnly,
            dry_run: false,
            from_node: from(t),
            new_restore: !resumed,
        })
        .await;
        let doc = self.running.doc();
        let loaded_ok = doc.remaining_nodes.is_empty() && doc.completed_nodes.iter().all(|n| n.failure.is_none());
        self.end_phase(
            loaded_ok,
            format!("{} nodes loaded", doc.completed_nodes.iter().filter(|n| n.succeeded()).count()),
        );

        if params.repair && loaded_ok && !self.running.aborted() {
            self.phase("repair");
            let results =
                self.step(&targets, |_| AgentJobRequest::Repair { keyspaces: params.keyspaces.clone() }).await;
            let bad = failures(&targets, &results);
            if bad.is_empty() {
                self.end_phase(true, "nodetool repair -pr --full on every node".into());
            } else {
                self.end_phase(false, bad.join("; "));
                return Err(format!("the data is restored but repair failed: {}", bad.join("; ")));
            }
        }
        Ok(())
    }

    /// A restore to a point in time: every node verifies its backup and the archived commitlog
    /// segments that bring it to `until` (nothing touched yet), then node by node (`parallel`
    /// at a time) each agent restores its node offline and replays the segments. No TRUNCATE:
    /// each node's own files are replaced while it is down. A resumed job skips the nodes the
    /// job it resumes finished.
    async fn restore_until(&self, targets: Vec<Target>, name: Option<String>, until: String) -> Result<(), Stop> {
        let keyspaces = self.running.doc().params.keyspaces.clone();
        let request = |dry_run: bool| AgentJobRequest::PointInTimeRestore {
            name: name.clone(),
            until: until.clone(),
            keyspaces: keyspaces.clone(),
            dry_run,
        };
        self.phase("verify");
        let results = self.step(&targets, |_| request(true)).await;
        let bad = failures(&targets, &results);
        if !bad.is_empty() {
            self.end_phase(false, bad.join("; "));
            return Err(self.refuse(
                &targets,
                format!("not every node can be restored to {until}, so nothing was touched: {}", bad.join("; ")),
            ));
        }
        self.end_phase(
            true,
            format!("every node's backup and commitlog segments up to {until} verified ({} nodes)", targets.len()),
        );
        if self.running.aborted() {
            return Err("aborted before anything was touched".into());
        }

        let done_before: Vec<NodeRun> = self
            .resumes
            .as_ref()
            .map(|old| old.completed_nodes.iter().filter(|n| n.succeeded()).cloned().collect())
            .unwrap_or_default();
        let (skipped, todo): (Vec<Target>, Vec<Target>) =
            targets.into_iter().partition(|t| done_before.iter().any(|n| n.executor_id == t.run.executor_id));
        for t in skipped {
            let Some(run) = done_before.iter().find(|n| n.executor_id == t.run.executor_id).cloned() else { continue };
            self.running.update(|d| {
                d.remaining_nodes.retain(|n| n != &run.executor_id);
                d.completed_nodes.push(run);
                d.sync_current();
            });
        }
        self.phase("restore");
        self.node_jobs(todo, |_| request(false)).await;
        let doc = self.running.doc();
        let all_ok = doc.remaining_nodes.is_empty() && doc.completed_nodes.iter().all(|n| n.failure.is_none());
        self.end_phase(
            all_ok,
            format!("{} nodes restored to {until}", doc.completed_nodes.iter().filter(|n| n.succeeded()).count()),
        );
        Ok(())
    }

    /// Ends a restore before loading: every node not done yet is recorded as not restored.
    fn refuse(&self, targets: &[Target], reason: String) -> Stop {
        self.running.update(|d| {
            for id in std::mem::take(&mut d.remaining_nodes) {
                let mut run = match targets.iter().find(|t| t.run.executor_id == id) {
                    Some(t) => t.run.clone(),
                    None => NodeRun::new(d.job_type, &id, "", "", ""),
                };
                run.fail(format!("not restored: {reason}"));
                run.finished_timestamp = Some(now_ms());
                d.completed_nodes.push(run);
            }
        });
        reason
    }

    async fn maintenance(&self, job_type: JobType) -> Result<(), Stop> {
        let params = self.running.doc().params;
        let keyspaces = params.keyspaces;
        let targets = self.nodes().await;
        self.node_jobs(targets, |_| match job_type {
            JobType::Cleanup => AgentJobRequest::Cleanup { keyspaces: keyspaces.clone() },
            JobType::Verify => AgentJobRequest::Verify { name: params.name.clone() },
            _ => AgentJobRequest::Repair { keyspaces: keyspaces.clone() },
        })
        .await;
        Ok(())
    }
}

/// One agent job as a cluster-wide step: its view when it succeeded, else why not.
async fn agent_step(
    client: &crate::client::AgentClient,
    request: AgentJobRequest,
    poll: std::time::Duration,
    adopt_since: Option<i64>,
) -> Result<crate::model::AgentJobView, String> {
    let view = run_agent_job(client, &request, poll, adopt_since, |_| {}).await?;
    match view.state {
        AgentJobState::Succeeded => Ok(view),
        _ => Err(view.error.clone().unwrap_or_else(|| "failed; see the agent's log".into())),
    }
}

/// Which host ID's backup named `name` a node restores: its own; else, for a node whose host
/// ID changed (replaced, rebuilt), the backup taken at the same address. No manual renaming of
/// directories (seed 000's limitation).
async fn locate(target: &Target, name: &str) -> Result<String, String> {
    let view = target.view.as_ref().expect("targets have a view");
    let backups = target.client.backups(name).await?;
    let complete: Vec<_> = backups.iter().filter(|b| b.complete && b.cluster == view.cluster_name).collect();
    if complete.iter().any(|b| b.host_id == view.host_id) {
        return Ok(view.host_id.clone());
    }
    if let Some(b) = complete.iter().find(|b| b.address.as_deref() == Some(view.address.as_str())) {
        return Ok(b.host_id.clone());
    }
    let hosts: BTreeSet<String> = complete.iter().map(|b| b.host_id.clone()).collect();
    Err(if hosts.is_empty() {
        format!(
            "no complete backup named '{name}' of cluster '{}' in the backup directory of agent {} (node {} at {}); \
             list the backups with GET /v1/backups",
            view.cluster_name, target.client.url, view.host_id, view.address
        )
    } else {
        format!(
            "node {} at {} has no backup named '{name}', and none of the backups of that name ({}) was taken at its address",
            view.host_id,
            view.address,
            hosts.into_iter().collect::<Vec<_>>().join(", ")
        )
    })
}
