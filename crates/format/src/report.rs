//! The outcome words a backup and a restore both report.

use serde::Serialize;

/// SUCCESS or FAILURE, spelled as the Cassandra-Mesos-compatible API spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    /// Done.
    Success,
    /// Failed; see the message.
    Failure,
}

/// What happened to one keyspace.
#[derive(Debug, Clone, Serialize)]
pub struct KeyspaceOutcome {
    /// Keyspace.
    pub name: String,
    /// SUCCESS when every table of it succeeded.
    pub status: Status,
    /// Snapshot, copy and clear.
    pub duration_ms: u64,
    /// Why it failed, when it failed as a whole (e.g. the snapshot).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
