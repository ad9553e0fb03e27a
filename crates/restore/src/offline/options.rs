//! What only an offline restore needs to be told: how to stop and start the node, where its
//! directories are, where the replaced files go, and how long to wait.

use std::path::PathBuf;
use std::time::Duration;

/// What only an offline restore needs.
#[derive(Debug, Clone)]
pub struct OfflineOptions {
    /// Stops the node after the drain (run with `sh -c`), e.g. `systemctl stop cassandra`.
    pub stop_command: String,
    /// Starts the node once the files are in place (`sh -c`); must return once the node is
    /// launched (not run Cassandra in the foreground).
    pub start_command: String,
    /// The node's data directories; empty: ask the node (`data_file_directories`).
    pub data_dirs: Vec<PathBuf>,
    /// The commitlog directory; `None`: ask the node (`commitlog_directory`).
    pub commitlog_dir: Option<PathBuf>,
    /// The saved caches directory; `None`: ask the node (`saved_caches_directory`).
    pub saved_caches_dir: Option<PathBuf>,
    /// Where to move the replaced files; `None`: `<first data dir>/../cassette-quarantine/<time>-<backup>`.
    pub quarantine_dir: Option<PathBuf>,
    /// How long the stop command and the node's shutdown may take.
    pub stop_timeout: Duration,
    /// How long the start command and the node's start-up (CQL and `UN`) may take.
    pub start_timeout: Duration,
    /// Replay the archived commitlog up to a point in time after the backup's files are placed.
    pub point_in_time: Option<super::PointInTime>,
}

impl OfflineOptions {
    /// Options with the given commands and the defaults (120 s to stop, 300 s to start).
    pub fn new(stop_command: impl Into<String>, start_command: impl Into<String>) -> Self {
        OfflineOptions {
            stop_command: stop_command.into(),
            start_command: start_command.into(),
            data_dirs: Vec::new(),
            commitlog_dir: None,
            saved_caches_dir: None,
            quarantine_dir: None,
            stop_timeout: Duration::from_secs(120),
            start_timeout: Duration::from_secs(300),
            point_in_time: None,
        }
    }
}
