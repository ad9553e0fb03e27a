//! `cassette server`'s coordinator: one cluster job at a time, run through the node agents,
//! recorded in the job history.
//!
//! A job's document (seed 000's JOB) lives in memory while it runs, for `status` and the live
//! view, and is saved to the history at every node's start and end and when the job ends.

mod nodes;
mod run;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::client::AgentClient;
use crate::model::{ClusterJob, JobParams, JobState, JobType};
use crate::store::{Store, StoreError};

/// What the coordinator needs to know.
#[derive(Clone)]
pub struct CoordinatorConfig {
    /// The agents' URLs, in the order nodes are worked on.
    pub agents: Vec<String>,
    /// The token the agents want.
    pub agent_token: Option<String>,
    /// The HTTP client (with the TLS roots the agents need).
    pub http: reqwest::Client,
    /// How often a running agent job is polled.
    pub poll_interval: Duration,
    /// Who hears of finished jobs.
    pub webhooks: crate::notify::Webhooks,
}

/// Why a job was not started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The request is wrong (400).
    #[error("{0}")]
    Invalid(String),
    /// Another job runs (409).
    #[error("{0}")]
    Conflict(String),
    /// No such job to resume (404).
    #[error("{0}")]
    NotFound(String),
    /// The history could not be written (500).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A job while it runs.
pub(crate) struct Running {
    pub doc: Mutex<ClusterJob>,
    pub abort: AtomicBool,
}

impl Running {
    pub fn doc(&self) -> ClusterJob {
        self.doc.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn update<T>(&self, f: impl FnOnce(&mut ClusterJob) -> T) -> T {
        f(&mut self.doc.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn aborted(&self) -> bool {
        self.abort.load(Ordering::SeqCst)
    }
}

/// Runs cluster jobs.
pub struct Coordinator {
    config: CoordinatorConfig,
    store: Store,
    current: tokio::sync::Mutex<Option<Arc<Running>>>,
}

impl Coordinator {
    /// A coordinator over `store`; jobs the previous server left running are marked interrupted.
    pub async fn new(config: CoordinatorConfig, store: Store) -> Result<Arc<Coordinator>, StoreError> {
        for job in store.interrupt_running(now_ms()).await? {
            tracing::warn!(job = job.id, r#type = ?job.job_type, "job interrupted by a server stop; resume it with POST /v1/jobs/{}/resume", job.id);
        }
        Ok(Arc::new(Coordinator { config, store, current: tokio::sync::Mutex::new(None) }))
    }

    /// The job history.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The agents.
    pub fn agents(&self) -> Vec<AgentClient> {
        let token = self.config.agent_token.clone();
        self.config.agents.iter().map(|u| AgentClient::new(self.config.http.clone(), u, token.clone())).collect()
    }

    /// The running job, if any.
    pub async fn running(&self) -> Option<ClusterJob> {
        self.current.lock().await.as_ref().map(|r| r.doc())
    }

    /// Starts a job; fails when the request is wrong or another job runs.
    pub async fn start(self: &Arc<Self>, job_type: JobType, params: JobParams) -> Result<ClusterJob, StartError> {
        validate(job_type, &params)?;
        self.launch(ClusterJob::new(job_type, params, now_ms()), None).await
    }

    /// Starts a new job that finishes what job `id` (interrupted, failed or aborted) left:
    /// the nodes that succeeded are not run again.
    pub async fn resume(self: &Arc<Self>, id: i64) -> Result<ClusterJob, StartError> {
        let old =
            self.store.get(id).await?.ok_or_else(|| StartError::NotFound(format!("no job {id} in the history")))?;
        if matches!(old.state, JobState::Running | JobState::Succeeded) {
            return Err(StartError::Invalid(format!(
                "job {id} is {}; only an interrupted, failed or aborted job can be resumed",
                serde_json::to_value(old.state).unwrap_or_default().as_str().unwrap_or_default()
            )));
        }
        let mut job = ClusterJob::new(old.job_type, old.params.clone(), now_ms());
        job.resumed_from = Some(id);
        self.launch(job, Some(old)).await
    }

    async fn launch(self: &Arc<Self>, job: ClusterJob, resumes: Option<ClusterJob>) -> Result<ClusterJob, StartError> {
        let mut current = self.current.lock().await;
        if let Some(r) = current.as_ref() {
            let d = r.doc();
            return Err(StartError::Conflict(format!(
                "a {} job (id {}{}) is running; wait for it to finish (GET /cluster/{}/status) or abort it",
                d.job_type.key(),
                d.id,
                d.backup_name.map(|n| format!(", backup {n}")).unwrap_or_default(),
                d.job_type.key()
            )));
        }
        let job = self.store.insert(job).await?;
        let running = Arc::new(Running { doc: Mutex::new(job.clone()), abort: AtomicBool::new(false) });
        *current = Some(running.clone());
        tracing::info!(job = job.id, r#type = ?job.job_type, name = ?job.backup_name, "cluster job started");
        let me = self.clone();
        tokio::spawn(async move {
            run::JobRun { coordinator: me.clone(), running: running.clone(), resumes, keyspaces: Default::default() }
                .run()
                .await;
            let doc = running.doc();
            tracing::info!(job = doc.id, state = ?doc.state, "cluster job finished");
            me.config.webhooks.job_finished(&doc);
            *me.current.lock().await = None;
        });
        Ok(job)
    }

    /// Asks the running job (of `job_type`, when given) to stop after the nodes it is on.
    pub async fn abort(&self, job_type: Option<JobType>) -> bool {
        let current = self.current.lock().await;
        match current.as_ref() {
            Some(r) if job_type.is_none_or(|t| r.doc().job_type == t) => {
                r.abort.store(true, Ordering::SeqCst);
                tracing::warn!(job = r.doc().id, "abort requested: the nodes being worked on finish, no other starts");
                true
            }
            _ => false,
        }
    }

    pub(crate) fn config(&self) -> &CoordinatorConfig {
        &self.config
    }
}

/// Checks a job request: names by the repository's rule, sane parallelism.
fn validate(job_type: JobType, params: &JobParams) -> Result<(), StartError> {
    if let (JobType::Verify, Some(name)) = (job_type, &params.name) {
        cassette_repo::BackupName::parse(name).map_err(|e| StartError::Invalid(e.to_string()))?;
    }
    if let Some(until) = &params.until {
        if job_type != JobType::Restore {
            return Err(StartError::Invalid(format!("until is an option of a restore, not of a {}", job_type.key())));
        }
        parse_until(until)?;
    }
    let name_optional = job_type == JobType::Restore && params.until.is_some();
    if name_optional {
        if let Some(name) = &params.name {
            cassette_repo::BackupName::parse(name).map_err(|e| StartError::Invalid(e.to_string()))?;
        }
    } else if matches!(job_type, JobType::Backup | JobType::Restore) {
        let Some(name) = &params.name else {
            return Err(StartError::Invalid(format!(
                "name is required: give the {} a name with ?name=NAME (1-128 of A-Z a-z 0-9 . _ -, not starting with a dot)",
                job_type.key()
            )));
        };
        cassette_repo::BackupName::parse(name).map_err(|e| StartError::Invalid(e.to_string()))?;
    }
    if params.object_lock.is_set() && job_type != JobType::Backup {
        return Err(StartError::Invalid(format!(
            "objectLockDays is an option of a backup, not of a {}",
            job_type.key()
        )));
    }
    params.object_lock.check().map_err(StartError::Invalid)?;
    if params.parallel == 0 || params.parallel > 64 {
        return Err(StartError::Invalid(format!(
            "parallel={} is out of range: give 1 to 64 nodes at once",
            params.parallel
        )));
    }
    for ks in &params.keyspaces {
        let ok = !ks.is_empty() && ks.len() <= 48 && ks.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            return Err(StartError::Invalid(format!(
                "keyspace '{}' is not a Cassandra keyspace name (1-48 of A-Z a-z 0-9 _)",
                ks.escape_debug()
            )));
        }
    }
    Ok(())
}

/// A restore's point in time: RFC 3339, to the whole second (what commitlog replay can honour).
pub(crate) fn parse_until(until: &str) -> Result<chrono::DateTime<chrono::Utc>, StartError> {
    let t = chrono::DateTime::parse_from_rfc3339(until).map_err(|e| {
        StartError::Invalid(format!(
            "until={until} is not a time ({e}): give UTC to the second, e.g. until=2026-12-02T10:15:00Z"
        ))
    })?;
    if t.timestamp_subsec_nanos() != 0 {
        return Err(StartError::Invalid(format!(
            "until={until} has a fraction of a second: commitlog replay restores to whole seconds, give e.g. {}",
            t.with_timezone(&chrono::Utc).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )));
    }
    Ok(t.with_timezone(&chrono::Utc))
}

/// Now, in epoch milliseconds (seed 000's timestamps).
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
