//! Driving the node's process: `nodetool drain`, the operator's stop and start commands,
//! waiting until its ports go quiet or it is `UN` again, and `nodetool repair` at the end.

use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

use cassette_cassandra::{CqlTarget, Nodetool, port_answers, status_shows_up_normal};
use cassette_repo::RepoError;
use chrono::Utc;

use super::plan::OfflinePlan;
use super::run::Run;
use super::{failed, refused};
use crate::journal::Record;
use crate::{OfflineOptions, RestoreError, Stage};

/// The node restored, and how to stop and start it.
pub(super) struct NodeControl<'a> {
    pub target: &'a CqlTarget,
    pub nodetool: &'a Nodetool,
    pub opts: &'a OfflineOptions,
    /// The node's CQL `host:port`, as given.
    pub address: String,
}

impl<'a> NodeControl<'a> {
    pub fn new(target: &'a CqlTarget, nodetool: &'a Nodetool, opts: &'a OfflineOptions) -> Self {
        NodeControl { target, nodetool, opts, address: format!("{}:{}", target.host, target.port) }
    }

    /// Whether the node's process is up: its CQL or JMX port answers.
    async fn running(&self) -> bool {
        let (jmx_host, jmx_port) = self.nodetool.jmx_address();
        port_answers(&self.target.host, self.target.port).await || port_answers(jmx_host, jmx_port).await
    }

    /// Whether the node serves: CQL answers and `nodetool status` shows it `UN`.
    async fn up_normal(&self, node_address: &str) -> bool {
        port_answers(&self.target.host, self.target.port).await
            && self.nodetool.status().await.is_ok_and(|status| status_shows_up_normal(&status, node_address))
    }

    /// Drains the node, then stops it and waits until its ports no longer answer (each unless
    /// the journal says an interrupted run did). A node the journal says is stopped must not
    /// be running, unless everything is already in place.
    pub async fn drain_and_stop(&self, run: &mut Run<'_>, p: &OfflinePlan, cql_up: bool) -> Result<(), RestoreError> {
        let address = &self.address;
        if run.state.stopped {
            if !p.all_done(&run.state) && self.running().await {
                return Err(refused(format!(
                    "the node is running, but the offline restore that stopped it has not finished (journal {}): it was started during the restore, with some tables partly replaced. \
                     Stop it and run the same restore again to finish; the files moved so far are in {}",
                    run.journal_path().display(),
                    p.main_quarantine().display()
                )));
            }
            run.step("stop", "skipped: stopped by the interrupted run (journal)".into());
            return Ok(());
        }
        if run.state.drained {
            run.step("drain", "skipped: already drained by the interrupted run (journal)".into());
        } else if cql_up {
            run.progress.stage(Stage::Drain, address);
            self.nodetool.drain().await.map_err(|e| failed("drain", format!("{e}; nothing was moved: the node may be partly drained, restart it before running the restore again")))?;
            run.record(Record::Drained { at: Utc::now() })?;
            run.step("drain", "nodetool drain".into());
        } else {
            return Err(refused(format!(
                "the node does not answer CQL at {address} and this restore has not drained it (journal {}): its commitlog may hold writes that are in no SSTable. \
                 Start the node and run the same restore again: cassette drains it before stopping it",
                run.journal_path().display()
            )));
        }
        let opts = self.opts;
        run.progress.stage(Stage::Stop, &opts.stop_command);
        if self.running().await {
            let log = p.main_quarantine().join("stop-command.log");
            run_command("stop", &opts.stop_command, &log, opts.stop_timeout).await?;
            run.step("stop", format!("sh -c '{}'", opts.stop_command));
        } else {
            run.step("stop", "skipped: the node was already down".into());
        }
        if !wait_until(opts.stop_timeout, Duration::from_millis(500), || async { !self.running().await }).await {
            let (jmx_host, jmx_port) = self.nodetool.jmx_address();
            return Err(failed(
                "stop",
                format!(
                    "the node still answers on CQL {address} or JMX {jmx_host}:{jmx_port} {} s after `{}`; nothing was moved (the node is drained: it accepts no writes). \
                     Stop it, then run the same restore again: it continues",
                    opts.stop_timeout.as_secs(),
                    opts.stop_command
                ),
            ));
        }
        run.record(Record::NodeStopped { at: Utc::now() })
    }

    /// Starts the node (unless it runs already) and waits until it is up: CQL and `UN`.
    pub async fn start(&self, run: &mut Run<'_>, p: &OfflinePlan) -> Result<(), RestoreError> {
        let (opts, address) = (self.opts, &self.address);
        run.progress.stage(Stage::Start, &opts.start_command);
        if self.running().await {
            run.step("start", "skipped: the node is already running".into());
        } else {
            let log = p.main_quarantine().join("start-command.log");
            run_command("start", &opts.start_command, &log, opts.start_timeout).await?;
            run.step("start", format!("sh -c '{}'", opts.start_command));
        }
        if !wait_until(opts.start_timeout, Duration::from_secs(2), || self.up_normal(&p.node_address)).await {
            return Err(failed(
                "start",
                format!(
                    "the node is not up (CQL {address} and UN {} in `nodetool status`) {} s after `{}`: check its log. The restored files are in place; \
                     the replaced ones are in {}. Once it is up, run the same restore again to finish",
                    p.node_address,
                    opts.start_timeout.as_secs(),
                    opts.start_command,
                    p.main_quarantine().display()
                ),
            ));
        }
        run.record(Record::NodeStarted { at: Utc::now() })?;
        run.step("start", format!("node up: CQL {address} answers, {} is UN", p.node_address));
        Ok(())
    }

    /// `nodetool repair -pr --full` of each restored keyspace, stopping at the first failure,
    /// whose description it returns (the restore itself is done by then).
    pub async fn repair(&self, run: &mut Run<'_>, p: &OfflinePlan) -> Option<String> {
        let mut keyspaces: Vec<&str> = p.tables.iter().map(|t| t.keyspace.as_str()).collect();
        keyspaces.dedup();
        for ks in keyspaces {
            run.progress.stage(Stage::Repair, ks);
            match self.nodetool.repair(ks).await {
                Ok(_) => run.step("repair", format!("nodetool repair -pr --full {ks}")),
                Err(e) => {
                    return Some(format!(
                        "repair of {ks} failed (the restore is done; run `nodetool repair -pr --full {ks}` again): {e}"
                    ));
                }
            }
        }
        None
    }
}

/// Polls `done` every `every` until it holds (true) or `timeout` has passed (false).
async fn wait_until<F: Future<Output = bool>>(timeout: Duration, every: Duration, done: impl Fn() -> F) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if done().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(every).await;
    }
}

/// Runs `sh -c command`, its output to `log`; fails on a non-zero exit or after `timeout`.
async fn run_command(what: &str, command: &str, log: &Path, timeout: Duration) -> Result<(), RestoreError> {
    if let Some(parent) = log.parent() {
        std::fs::create_dir_all(parent).map_err(|e| RepoError::io("create directory", parent, e))?;
    }
    let out = std::fs::File::create(log).map_err(|e| RepoError::io("create", log, e))?;
    let err = out.try_clone().map_err(|e| RepoError::io("open", log, e))?;
    tracing::info!(command, what, "running the {what} command");
    // Output to a file, not a pipe: a daemon the command starts may keep its output open.
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(std::process::Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| failed(what, format!("cannot run `sh -c {command}`: {e}")))?;
    let tail = || {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        lines[lines.len().saturating_sub(5)..].join(" | ")
    };
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) if status.success() => Ok(()),
        Ok(Ok(status)) => {
            Err(failed(what, format!("`{command}` failed ({status}): {} (output: {})", tail(), log.display())))
        }
        Ok(Err(e)) => Err(failed(what, format!("waiting for `{command}`: {e}"))),
        Err(_) => {
            let _ = child.start_kill();
            Err(failed(
                what,
                format!("`{command}` did not finish in {} s (output: {})", timeout.as_secs(), log.display()),
            ))
        }
    }
}
