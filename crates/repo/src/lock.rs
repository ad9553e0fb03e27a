//! One cassette job at a time per node.
//!
//! Two backups (or a backup and a restore) of the same node would fight over
//! snapshots and the same backup directories. The lock is an advisory
//! `flock` on a lock file, so it vanishes with the process even on
//! `kill -9`: no stale lock to clean up by hand. The file also records who
//! holds it, for the error message.
//!
//! Two locks exist: the repository's (`<node_dir>/.lock`, keeping writers of one node's
//! backups apart) and the Cassandra node's (`<state dir>/locks/node-<host ID>.lock`, one job per
//! node whatever its repository; see `state`). A lock file is opened with `O_NOFOLLOW` and
//! `O_CREAT`, must be a regular file with one link, and is never truncated: the holder's details
//! are written over the start of the file, padded to a fixed width. So a link planted where a
//! lock file goes is refused, never written through.

use std::fs::{File, TryLockError};
use std::io::Read;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
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

/// The holder record's width: written in place, padded with spaces, so the file never shrinks.
const HOLDER_WIDTH: usize = 96;

/// The held lock of one node; released on drop.
#[derive(Debug)]
pub struct NodeLock {
    file: File,
    path: PathBuf,
}

impl NodeLock {
    /// Takes the repository lock of the node whose directory is `node_dir` (created if
    /// needed), without waiting. Fails with [`RepoError::LockHeld`], naming
    /// the holder's pid and start time, if another job has it.
    pub fn acquire(node_dir: &Path) -> Result<NodeLock> {
        std::fs::create_dir_all(node_dir).ctx("create directory", node_dir)?;
        Self::acquire_file(RepoLayout::lock_path(node_dir))
    }

    /// Takes the lock of the Cassandra node `host_id`, in cassette's state directory: one
    /// cassette job per node, whatever its repository. Without waiting, as [`NodeLock::acquire`].
    pub fn acquire_host(host_id: &str) -> Result<NodeLock> {
        let host = crate::name::path_component("host ID", host_id)?;
        let dir = crate::state::state_subdir("locks")?;
        Self::acquire_file(dir.join(format!("node-{host}.lock")))
    }

    fn acquire_file(path: PathBuf) -> Result<NodeLock> {
        let file = open_lock_file(&path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let holder = (&file)
                    .take(4096)
                    .read_to_string(&mut text)
                    .ok()
                    .and_then(|_| serde_json::from_str::<Holder>(text.lines().next().unwrap_or("").trim()).ok());
                return Err(RepoError::LockHeld {
                    path,
                    pid: holder.as_ref().map(|h| h.pid),
                    since: holder.map(|h| h.since),
                });
            }
            Err(TryLockError::Error(e)) => return Err(RepoError::io("lock", path, e)),
        }
        let holder = Holder { pid: std::process::id(), since: Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true) };
        let mut line = serde_json::to_string(&holder).expect("holder serializes");
        while line.len() < HOLDER_WIDTH - 1 {
            line.push(' ');
        }
        line.push('\n');
        file.write_all_at(line.as_bytes(), 0).ctx("write", &path)?;
        Ok(NodeLock { file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Opens (creating it if missing) a lock file: never through a symbolic link, only a regular
/// file with a single link (a hard link to another file would be written through as well).
/// `O_NONBLOCK`: a FIFO planted there never blocks the open.
fn open_lock_file(path: &Path) -> Result<File> {
    let file = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => {
                RepoError::Unsafe { path: path.to_owned(), problem: "the lock file is a symbolic link".into() }
            }
            _ => RepoError::io("open", path, e),
        })?;
    let meta = file.metadata().ctx("stat", path)?;
    if !meta.is_file() || meta.nlink() != 1 {
        return Err(RepoError::Unsafe {
            path: path.to_owned(),
            problem: format!("the lock file is not a regular file with one link ({} links)", meta.nlink()),
        });
    }
    Ok(file)
}

impl Drop for NodeLock {
    fn drop(&mut self) {
        // Closing would unlock too; being explicit costs nothing. The holder's details stay: they
        // are read only while the lock is held, and then they are the holder's.
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
        assert!(std::fs::read_to_string(node.join(".lock")).unwrap().contains(&pid.to_string()));
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
