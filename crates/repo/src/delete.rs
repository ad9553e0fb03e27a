//! Deleting one backup: out of sight first (a rename), then removed.
//!
//! Every backup is a complete tree: files shared with other backups are hard links, so removing
//! one backup's tree never takes bytes from another. The rename to a dot-directory makes the
//! backup vanish from listings at once; a crash during the removal leaves only that hidden
//! directory, which the next delete or purge in the node directory removes.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde::Serialize;

use crate::error::{IoContext, RepoError, Result};
use crate::lock::NodeLock;

/// Prefix of a backup directory being deleted.
pub(crate) const DELETING_PREFIX: &str = ".deleting-";

/// What [`delete_backup`] removed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DeleteSummary {
    /// Files removed.
    pub files: u64,
    /// Bytes that no other backup shared (hard link count 1): the space freed.
    pub bytes_freed: u64,
}

/// Deletes the backup at `backup_dir` (complete or not), holding its node directory's lock so
/// that no backup of that node runs meanwhile.
pub fn delete_backup(backup_dir: &Path) -> Result<DeleteSummary> {
    if !backup_dir.is_dir() {
        return Err(RepoError::NotFound { path: backup_dir.to_path_buf() });
    }
    let node_dir = backup_dir.parent().expect("a backup directory has a node directory");
    let _lock = NodeLock::acquire(node_dir)?;
    remove_interrupted_deletes(node_dir)?;
    let name = backup_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let hidden = hide(node_dir, &name)?;
    crate::sync_dir(node_dir)?;
    crate::fault::point("delete-hidden");
    if let Err(e) = crate::index::forget(node_dir, &[&name]) {
        // The index is a cache: the next list drops entries whose directory is gone.
        tracing::warn!(node = %node_dir.display(), error = %e, "could not update the node index");
    }
    remove_hidden(&hidden)
}

/// Renames the backup `name` of a node to a hidden `.deleting-` directory (the caller holds the
/// node lock and fsyncs the node directory); returns where it went.
pub(crate) fn hide(node_dir: &Path, name: &str) -> Result<std::path::PathBuf> {
    let hidden = node_dir.join(format!("{DELETING_PREFIX}{name}-{}", std::process::id()));
    let backup_dir = node_dir.join(name);
    fs::rename(&backup_dir, &hidden).ctx("hide backup being deleted", &backup_dir)?;
    Ok(hidden)
}

/// Removes a hidden backup tree; says what it held.
pub(crate) fn remove_hidden(hidden: &Path) -> Result<DeleteSummary> {
    let summary = measure(hidden)?;
    fs::remove_dir_all(hidden).ctx("remove", hidden)?;
    Ok(summary)
}

fn remove_interrupted_deletes(node_dir: &Path) -> Result<()> {
    for entry in fs::read_dir(node_dir).ctx("read", node_dir)?.flatten() {
        if entry.file_name().to_string_lossy().starts_with(DELETING_PREFIX) {
            let path = entry.path();
            fs::remove_dir_all(&path).ctx("remove", &path)?;
        }
    }
    Ok(())
}

fn measure(dir: &Path) -> Result<DeleteSummary> {
    let mut summary = DeleteSummary::default();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).ctx("read", &d)?.flatten() {
            let meta = entry.metadata().ctx("stat", &entry.path())?;
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                summary.files += 1;
                if meta.nlink() == 1 {
                    summary.bytes_freed += meta.len();
                }
            }
        }
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deleting_one_backup_keeps_the_files_it_shares_with_another() {
        let root = tempfile::tempdir().unwrap();
        let node = root.path().join("c/h");
        let (a, b) = (node.join("day-1/ks/t"), node.join("day-2/ks/t"));
        fs::create_dir_all(&a).unwrap();
        fs::create_dir_all(&b).unwrap();
        fs::write(a.join("nb-1-big-Data.db"), b"shared bytes").unwrap();
        fs::hard_link(a.join("nb-1-big-Data.db"), b.join("nb-1-big-Data.db")).unwrap();
        fs::write(a.join("nb-2-big-Data.db"), b"only day-1").unwrap();
        fs::create_dir_all(node.join(".deleting-old-1/x")).unwrap(); // an interrupted delete

        let summary = delete_backup(&node.join("day-1")).unwrap();
        assert_eq!(summary, DeleteSummary { files: 2, bytes_freed: 10 });
        assert!(!node.join("day-1").exists() && !node.join(".deleting-old-1").exists());
        assert_eq!(fs::read(b.join("nb-1-big-Data.db")).unwrap(), b"shared bytes");
        assert!(matches!(delete_backup(&node.join("day-1")), Err(RepoError::NotFound { .. })));
    }

    #[test]
    fn a_running_job_blocks_the_delete() {
        let root = tempfile::tempdir().unwrap();
        let node = root.path().join("c/h");
        fs::create_dir_all(node.join("day-1")).unwrap();
        let _held = NodeLock::acquire(&node).unwrap();
        assert!(matches!(delete_backup(&node.join("day-1")), Err(RepoError::LockHeld { .. })));
        assert!(node.join("day-1").exists());
    }
}
