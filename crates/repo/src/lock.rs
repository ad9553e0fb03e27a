//! One cassette job at a time per node.
//!
//! Two backups (or a backup and a restore) of the same node would fight over
//! snapshots and the same backup directories. The lock is an advisory
//! `flock` on `<node_dir>/.lock`, so it vanishes with the process even on
//! `kill -9`: no stale lock to clean up by hand. The file also records who
//! holds it, for the error message.

use std::fs::{self, File, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use chrono::{SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{IoContext, RepoError, Result};
use crate::layout::RepoLayout;

/// Who holds the lock: written into the lock file.
#[derive(Debug, Serialize, Deserialize)]
struct Holder {
    pid: u32,
    since: String,
}

/// The held lock of one node; released on drop.
#[derive(Debug)]
pub struct NodeLock {
    file: File,
    path: PathBuf,
}

impl NodeLock {
    /// Takes the lock of the node whose directory is `node_dir` (created if
    /// needed), without waiting. Fails with [`RepoError::LockHeld`], naming
    /// the holder's pid and start time, if another job has it.
    pub fn acquire(node_dir: &Path) -> Result<NodeLock> {
        fs::create_dir_all(node_dir).ctx("create directory", node_dir)?;
        let path = RepoLayout::lock_path(node_dir);
        // No truncation on open: the holder's details must survive a failed attempt.
        let mut file =
            File::options().read(true).write(true).create(true).truncate(false).open(&path).ctx("open", &path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let holder =
                    file.read_to_string(&mut text).ok().and_then(|_| serde_json::from_str::<Holder>(&text).ok());
                return Err(RepoError::LockHeld {
                    path,
                    pid: holder.as_ref().map(|h| h.pid),
                    since: holder.map(|h| h.since),
                });
            }
            Err(TryLockError::Error(e)) => return Err(RepoError::io("lock", path, e)),
        }
        let holder = Holder { pid: std::process::id(), since: Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true) };
        let mut line = serde_json::to_vec(&holder).expect("holder serializes");
        line.push(b'\n');
        file.set_len(0).ctx("truncate", &path)?;
        file.seek(SeekFrom::Start(0)).ctx("seek", &path)?;
        file.write_all(&line).ctx("write", &path)?;
        Ok(NodeLock { file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The directory of the lock that one cassette job per Cassandra node takes (keyed by host ID,
/// whatever the repository): the backup and restore engines hold it while they run.
pub fn cassandra_node_lock_dir(host_id: &str) -> PathBuf {
    std::env::temp_dir().join(format!("cassette-node-{host_id}"))
}

impl Drop for NodeLock {
    fn drop(&mut self) {
        // Clear the holder first so nobody reads stale details, then unlock
        // (closing would unlock too; being explicit costs nothing).
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_refused_then_free_after_drop() {
        let d = tempfile::tempdir().unwrap();
        let node = d.path().join("Test Cluster/host-1");
        let lock = NodeLock::acquire(&node).unwrap();
        assert_eq!(lock.path(), node.join(".lock"));
        let err = NodeLock::acquire(&node).unwrap_err();
        let msg = err.to_string();
        let pid = std::process::id();
        assert!(msg.starts_with(&format!("another cassette job (pid {pid}, since ")), "{msg}");
        assert!(msg.contains("is running for this node; wait for it to finish"), "{msg}");
        // The failed attempt must not have erased the holder's details.
        assert!(fs::read_to_string(node.join(".lock")).unwrap().contains(&pid.to_string()));
        drop(lock);
        let again = NodeLock::acquire(&node).unwrap();
        drop(again);
    }

    #[test]
    fn different_nodes_do_not_conflict() {
        let d = tempfile::tempdir().unwrap();
        let _a = NodeLock::acquire(&d.path().join("c/h1")).unwrap();
        let _b = NodeLock::acquire(&d.path().join("c/h2")).unwrap();
    }
}
