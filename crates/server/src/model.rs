//! The JSON the API speaks: seed 000's cluster jobs (same names and types, so existing scripts
//! keep working, with a few added fields), and what the coordinator and the agents exchange.

use std::collections::BTreeMap;

use cassette_restore::Mode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The kinds of cluster job, spelled as seed 000 spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobType {
    /// Back up every node.
    Backup,
    /// Restore every node from a backup.
    Restore,
    /// `nodetool repair -pr --full` on every node.
    Repair,
    /// `nodetool cleanup` on every node.
    Cleanup,
    /// Re-hash every node's backups against their manifests (added to seed 000's jobs).
    Verify,
}

impl JobType {
    /// Every kind, in the order the API lists them.
    pub const ALL: [JobType; 5] =
        [JobType::Backup, JobType::Restore, JobType::Repair, JobType::Cleanup, JobType::Verify];

    /// The path segment and JSON key: `backup`, `restore`, `repair`, `cleanup`.
    pub fn key(self) -> &'static str {
        match self {
            JobType::Backup => "backup",
            JobType::Restore => "restore",
            JobType::Repair => "repair",
            JobType::Cleanup => "cleanup",
            JobType::Verify => "verify",
        }
    }

    /// The kind named by a path segment.
    pub fn from_key(key: &str) -> Option<JobType> {
        JobType::ALL.into_iter().find(|t| t.key() == key)
    }

    /// `BACKUP`, as in a task ID.
    pub fn upper(self) -> &'static str {
        match self {
            JobType::Backup => "BACKUP",
            JobType::Restore => "RESTORE",
            JobType::Repair => "REPAIR",
            JobType::Cleanup => "CLEANUP",
            JobType::Verify => "VERIFY",
        }
    }
}

/// Where a cluster job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Running now.
    Running,
    /// Every node succeeded.
    Succeeded,
    /// At least one node (or a cluster-wide step) failed.
    Failed,
    /// Aborted by a call to `abort`; the nodes not reached are in `remainingNodes`.
    Aborted,
    /// The server stopped while the job ran; it can be resumed.
    Interrupted,
}

/// SUCCESS or FAILURE, as seed 000 spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum KeyspaceStatus {
    /// Done.
    Success,
    /// Failed; see `error`.
    Failure,
}

/// What happened to one keyspace on one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyspaceRun {
    /// SUCCESS or FAILURE.
    pub status: KeyspaceStatus,
    /// Time spent on the keyspace.
    pub duration_millis: u64,
    /// Why it failed (added to seed 000's fields).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A node's failure, as seed 000 reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Failure {
    /// Always true.
    pub failed: bool,
    /// What went wrong and what to do.
    pub message: String,
}

/// Live progress of a node's part of a job (added to seed 000's fields).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeProgress {
    /// The stage running (`snapshot`, `copy`, `verify`, `load`, ...).
    pub stage: String,
    /// The keyspace or table of the stage.
    pub detail: String,
    /// Files known so far.
    pub files_total: u64,
    /// Files done.
    pub files_done: u64,
    /// Bytes known so far.
    pub bytes_total: u64,
    /// Bytes done.
    pub bytes_done: u64,
}

/// One node's part of a cluster job: seed 000's NODE.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeRun {
    /// The node's identity: its host ID (the agent's address while it is unknown).
    pub executor_id: String,
    /// `<executorId>.<TYPE>`.
    pub task_id: String,
    /// The agent's host name.
    pub hostname: String,
    /// The node's address.
    pub ip: String,
    /// Present when the node failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    /// When the node's part started (epoch ms).
    pub started_timestamp: Option<i64>,
    /// When it finished (epoch ms).
    pub finished_timestamp: Option<i64>,
    /// Keyspaces done, with their outcome.
    pub processed_keyspaces: BTreeMap<String, KeyspaceRun>,
    /// Keyspaces not done yet.
    pub remaining_keyspaces: Vec<String>,
    /// The agent's URL (added).
    #[serde(default)]
    pub agent: String,
    /// Live progress (added).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<NodeProgress>,
    /// The host ID whose backup the node restored, when it is another node's (added).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_host_id: Option<String>,
}

impl NodeRun {
    /// A node not started yet.
    pub fn new(job_type: JobType, executor_id: &str, hostname: &str, ip: &str, agent: &str) -> NodeRun {
        NodeRun {
            executor_id: executor_id.to_string(),
            task_id: format!("{executor_id}.{}", job_type.upper()),
            hostname: hostname.to_string(),
            ip: ip.to_string(),
            failure: None,
            started_timestamp: None,
            finished_timestamp: None,
            processed_keyspaces: BTreeMap::new(),
            remaining_keyspaces: Vec::new(),
            agent: agent.to_string(),
            progress: None,
            backup_host_id: None,
        }
    }

    /// Marks the node failed with `message`.
    pub fn fail(&mut self, message: impl Into<String>) {
        self.failure = Some(Failure { failed: true, message: message.into() });
    }

    /// A failed node shows its keyspaces as not done, so that a client reading only seed
    /// 000's fields cannot take it for a success: the keyspace it was on is a FAILURE, and the
    /// job's other keyspaces it did not finish (`keyspaces`, when the agent never told) are in
    /// `remainingKeyspaces`.
    pub fn show_not_done(&mut self, keyspaces: &[String]) {
        let Some(failure) = self.failure.as_ref().map(|f| f.message.clone()) else { return };
        for k in keyspaces {
            if !self.processed_keyspaces.contains_key(k) && !self.remaining_keyspaces.contains(k) {
                self.remaining_keyspaces.push(k.clone());
            }
        }
        let failed = |k: &KeyspaceRun| k.status == KeyspaceStatus::Failure;
        if self.processed_keyspaces.values().any(failed) {
            return;
        }
        let detail = self.progress.as_ref().map(|p| p.detail.clone()).unwrap_or_default();
        let on = self
            .remaining_keyspaces
            .iter()
            .position(|k| detail == *k || detail.starts_with(&format!("{k}.")))
            .map(|i| self.remaining_keyspaces.remove(i));
        let error = Some(failure);
        if let Some(k) = on {
            self.processed_keyspaces
                .insert(k, KeyspaceRun { status: KeyspaceStatus::Failure, duration_millis: 0, error });
        } else if self.remaining_keyspaces.is_empty() {
            // Every keyspace was done when the node's part failed (its manifest, say): none of
            // them counts as done.
            for k in self.processed_keyspaces.values_mut() {
                k.status = KeyspaceStatus::Failure;
                k.error.get_or_insert_with(|| error.clone().unwrap_or_default());
            }
        }
    }

    /// True when it finished without failure.
    pub fn succeeded(&self) -> bool {
        self.failure.is_none() && self.finished_timestamp.is_some()
    }
}

/// A cluster-wide step of a job (a restore's verify, truncate, load, repair), added to seed
/// 000's fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Phase {
    /// `snapshot`, `verify`, `truncate`, `load`, `repair`, ...
    pub name: String,
    /// SUCCESS or FAILURE, or null while it runs.
    pub status: Option<KeyspaceStatus>,
    /// What happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// How a job was asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobParams {
    /// The backup's name (backup and restore).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Only these keyspaces; empty: every non-system keyspace.
    #[serde(default)]
    pub keyspaces: Vec<String>,
    /// Nodes worked on at once (1: node by node, as seed 000).
    #[serde(default = "one")]
    pub parallel: usize,
    /// Backup: take every node's snapshot first, within a short window, then copy.
    #[serde(default)]
    pub snapshot_together: bool,
    /// Restore: `nodetool repair -pr --full` on every node once every node is loaded.
    #[serde(default)]
    pub repair: bool,
    /// Restore to this point in time (UTC, whole seconds: `2026-12-02T10:15:00Z`): offline,
    /// node by node, each node's backup and then its archived commitlog replayed up to it.
    /// Without `name`, each node's newest complete backup before that time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// The schedule that started the job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// Backup: after success, purge the schedule's backups on every node by this policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<Retention>,
    /// Backup: S3 Object Lock on every object it writes.
    #[serde(flatten)]
    pub object_lock: ObjectLockOptions,
}

/// A backup's S3 Object Lock (in a bucket made with Object Lock enabled), as `cassette backup
/// --object-lock-days` and `--object-lock-mode`: of a job, or of each run of a schedule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectLockOptions {
    /// Lock every object the backup writes for this many days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 36500)]
    pub object_lock_days: Option<u32>,
    /// The lock's mode: `governance` (the default) or `compliance`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, pattern = "^(governance|compliance)$")]
    pub object_lock_mode: Option<cassette_repo::LockMode>,
}

impl ObjectLockOptions {
    /// Whether a lock is asked for.
    pub fn is_set(&self) -> bool {
        self.object_lock_days.is_some()
    }

    /// Checks the options, or says what is wrong with them.
    pub fn check(&self) -> Result<(), String> {
        match (self.object_lock_days, self.object_lock_mode) {
            (Some(d), _) if !(1..=36500).contains(&d) => {
                Err(format!("objectLockDays={d} is out of range: lock for 1 to 36500 days"))
            }
            (None, Some(m)) => Err(format!("objectLockMode={m} without objectLockDays: give the days to lock for too")),
            _ => Ok(()),
        }
    }

    /// The lock a backup started at `now` asks for.
    pub fn request(&self, now: chrono::DateTime<chrono::Utc>) -> Option<cassette_repo::LockRequest> {
        let mode = self.object_lock_mode.unwrap_or(cassette_repo::LockMode::Governance);
        self.object_lock_days.map(|days| cassette_repo::LockRequest::for_days(mode, now, days))
    }
}

/// What a purge keeps: a backup is kept when either rule keeps it, and the newest complete
/// backup of each node always is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Retention {
    /// Keep the newest N complete backups of each node.
    #[serde(default)]
    pub keep_last: Option<u32>,
    /// Keep backups younger than D days.
    #[serde(default)]
    pub keep_days: Option<u32>,
}

fn one() -> usize {
    1
}

/// A cluster job: seed 000's JOB, plus `id`, `state`, `error`, `phases`, `params`,
/// `runningNodes` and `resumedFrom`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterJob {
    /// The job's ID in the history.
    pub id: i64,
    /// BACKUP, RESTORE, REPAIR or CLEANUP.
    #[serde(rename = "type")]
    pub job_type: JobType,
    /// When it started (epoch ms).
    pub started: i64,
    /// When it finished (epoch ms), null while running.
    pub finished: Option<i64>,
    /// True when it was aborted.
    pub aborted: bool,
    /// Where it stands.
    pub state: JobState,
    /// Nodes not started yet (their executor IDs).
    pub remaining_nodes: Vec<String>,
    /// The node being worked on (the first of them, with `parallel` > 1).
    pub current_node: Option<NodeRun>,
    /// Nodes done, successfully or not, in the order they finished.
    pub completed_nodes: Vec<NodeRun>,
    /// Every node being worked on.
    #[serde(default)]
    pub running_nodes: Vec<NodeRun>,
    /// The backup's name (backup and restore jobs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_name: Option<String>,
    /// Why the job as a whole failed (a cluster-wide step), if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Cluster-wide steps.
    #[serde(default)]
    pub phases: Vec<Phase>,
    /// How it was asked for.
    pub params: JobParams,
    /// The interrupted, failed or aborted job this one resumes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resumed_from: Option<i64>,
}

impl ClusterJob {
    /// A job about to start.
    pub fn new(job_type: JobType, params: JobParams, started: i64) -> ClusterJob {
        ClusterJob {
            id: 0,
            job_type,
            started,
            finished: None,
            aborted: false,
            state: JobState::Running,
            remaining_nodes: Vec::new(),
            current_node: None,
            completed_nodes: Vec::new(),
            running_nodes: Vec::new(),
            backup_name: params.name.clone(),
            error: None,
            phases: Vec::new(),
            params,
            resumed_from: None,
        }
    }

    /// Keeps `current_node` pointing at the first running node.
    pub fn sync_current(&mut self) {
        self.current_node = self.running_nodes.first().cloned();
    }
}

/// What an agent knows of its node (`GET /v1/node` on an agent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeView {
    /// Host ID.
    pub host_id: String,
    /// Cluster name.
    pub cluster_name: String,
    /// The node's CQL address.
    pub address: String,
    /// The agent machine's host name.
    pub hostname: String,
    /// Datacenter.
    pub datacenter: String,
    /// Rack.
    pub rack: String,
    /// Cassandra's version.
    pub release_version: String,
    /// The other nodes of the ring as this node sees them: `[host ID, address]` pairs.
    #[schema(value_type = Vec<Vec<String>>)]
    pub peers: Vec<(String, String)>,
    /// The agent's job running now.
    pub running_job: Option<String>,
    /// The node's keyspaces, the system ones excepted (what a job of every keyspace covers).
    #[serde(default)]
    pub keyspaces: Vec<String>,
}

/// The node an agent served when it last answered, as the server's history keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct KnownNode {
    /// Host ID.
    pub host_id: String,
    /// The agent machine's host name.
    pub hostname: String,
    /// The node's address.
    pub address: String,
    /// When the agent last answered (epoch ms).
    pub seen: i64,
}

/// A job for an agent (`POST /v1/jobs` on an agent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AgentJobRequest {
    /// Back up the node.
    Backup {
        /// Backup name.
        name: String,
        /// Keyspaces (empty: every non-system one).
        #[serde(default)]
        keyspaces: Vec<String>,
        /// A snapshot taken before by a `snapshot` job, to copy.
        #[serde(default)]
        snapshot_tag: Option<String>,
        /// The lock every object of the backup is put under (the same on every node).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(value_type = Option<Object>)]
        object_lock: Option<cassette_repo::LockRequest>,
    },
    /// Take the snapshot of a backup ahead of it.
    Snapshot {
        /// Backup name.
        name: String,
        /// Keyspaces (empty: every non-system one).
        #[serde(default)]
        keyspaces: Vec<String>,
    },
    /// Restore the node (or only verify, with `dry_run`).
    Restore {
        /// Backup name.
        name: String,
        /// Keyspaces of the backup (empty: all).
        #[serde(default)]
        keyspaces: Vec<String>,
        /// Truncate and load, load only, or truncate only.
        #[schema(value_type = String)]
        mode: Mode,
        /// Verify and plan only.
        #[serde(default)]
        dry_run: bool,
        /// Restore another node's backup (its host ID).
        #[serde(default)]
        from_node: Option<String>,
        /// A new restore: earlier restores' journals of this backup count for nothing (a
        /// resumed cluster restore sets it false, so tables already loaded are skipped).
        #[serde(default)]
        new_restore: bool,
    },
    /// Restore the node offline to a point in time: its backup (the one named, or its newest
    /// complete one before `until`), then its archived commitlog segments replayed up to
    /// `until`. The agent stops and starts the node with its `--stop-command` and
    /// `--start-command`. With `dry_run`, verify the backup and the segments only.
    PointInTimeRestore {
        /// Backup name; `None`: the node's newest complete backup before `until`.
        #[serde(default)]
        name: Option<String>,
        /// The point in time (RFC 3339, UTC, whole seconds).
        until: String,
        /// Keyspaces of the backup (empty: all).
        #[serde(default)]
        keyspaces: Vec<String>,
        /// Verify and plan only.
        #[serde(default)]
        dry_run: bool,
    },
    /// `nodetool repair -pr --full` of each keyspace.
    Repair {
        /// Keyspaces (empty: every non-system one).
        #[serde(default)]
        keyspaces: Vec<String>,
    },
    /// `nodetool cleanup` of each keyspace.
    Cleanup {
        /// Keyspaces (empty: every non-system one).
        #[serde(default)]
        keyspaces: Vec<String>,
    },
    /// Purge, by a retention policy, this node's backups among `names` (a schedule's, as its
    /// history recorded them); every other backup is left alone.
    Purge {
        /// The backups the policy is about; no other is touched or counted.
        names: Vec<String>,
        /// What to keep.
        retention: Retention,
    },
    /// Re-hash this node's complete backups (the one named, or all); each backup is reported
    /// as a "keyspace" of the job.
    Verify {
        /// Only this backup.
        #[serde(default)]
        name: Option<String>,
    },
}

/// Where an agent's job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AgentJobState {
    /// Running.
    Running,
    /// Done, everything succeeded.
    Succeeded,
    /// Done, something failed (see `error`).
    Failed,
}

/// An agent's job (`GET /v1/jobs/{id}` on an agent).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentJobView {
    /// The job's ID on the agent.
    pub id: String,
    /// What it does.
    pub request: AgentJobRequest,
    /// Where it stands.
    pub state: AgentJobState,
    /// When it started (epoch ms).
    pub started: i64,
    /// When it finished (epoch ms).
    pub finished: Option<i64>,
    /// Live progress.
    pub progress: NodeProgress,
    /// Keyspaces done.
    pub keyspaces: BTreeMap<String, KeyspaceRun>,
    /// Keyspaces not done yet.
    pub remaining_keyspaces: Vec<String>,
    /// What failed, and what to do.
    pub error: Option<String>,
    /// A `snapshot` job's tag.
    pub snapshot_tag: Option<String>,
    /// The engine's report (backup or restore), when done.
    #[schema(value_type = Option<Object>)]
    pub report: Option<serde_json::Value>,
}

/// An agent's commitlog archiving (`GET /v1/commitlog` on an agent): its spool, its shipper,
/// and what its node can be restored to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommitlogView {
    /// The agent ships a spool (`--commitlog-spool`).
    pub enabled: bool,
    /// The node whose segments it ships (the spool's host ID).
    pub host_id: Option<String>,
    /// Segments waiting in the spool.
    pub spool_segments: u64,
    /// Their bytes.
    pub spool_bytes: u64,
    /// When the oldest waiting segment was archived.
    pub spool_oldest_archived_at: Option<String>,
    /// When the shipper last ran, and its error if it stopped early.
    pub last_run_at: Option<String>,
    /// Why the last run stopped early (the segments wait in the spool).
    pub last_error: Option<String>,
    /// The last write of the newest segment archived in the repository.
    pub newest_archived_write: Option<String>,
    /// The times a restore can reach, oldest first.
    pub windows: Vec<RecoverableWindow>,
    /// Gaps between archived segments.
    pub gaps: u64,
}

/// A span a restore to a point in time can reach.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecoverableWindow {
    /// The earliest time (the end of the backup it starts from).
    pub from: String,
    /// The latest (the last archived write).
    pub until: String,
    /// The backup it starts from.
    pub backup: String,
}

/// A backup in an agent's repository (`GET /v1/backups` on an agent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StoredBackup {
    /// Cluster name.
    pub cluster: String,
    /// Host ID of the node backed up.
    pub host_id: String,
    /// Backup name.
    pub name: String,
    /// Manifest written.
    pub complete: bool,
    /// The node's address at backup time (complete backups).
    pub address: Option<String>,
    /// The node's tokens at backup time (complete backups).
    pub tokens: Vec<String>,
    /// The keyspaces it holds (complete backups).
    #[serde(default)]
    pub keyspaces: Vec<String>,
    /// Files.
    pub files: u64,
    /// Bytes.
    pub bytes: u64,
    /// Bytes this backup added.
    pub bytes_added: u64,
    /// When it started.
    pub started_at: Option<String>,
    /// When it finished.
    pub finished_at: Option<String>,
}
