//! Listing the backups in a repository.
//!
//! Complete backups are described by their manifest; incomplete ones
//! (interrupted or running) by what is on disk, so they show up too and can
//! be resumed or deleted.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{IoContext, RepoError, Result};
use crate::journal::{Journal, JournalRecord};
use crate::layout::RepoLayout;
use crate::manifest::Manifest;
use crate::name::path_component;

/// One backup found in the repository.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupSummary {
    /// Cluster name (directory name).
    pub cluster: String,
    /// Host ID (directory name).
    pub host_id: String,
    /// Backup name (directory name).
    pub name: String,
    /// The backup directory.
    pub path: PathBuf,
    /// Whether it has a readable manifest.
    pub complete: bool,
    /// Number of files (manifest totals, or counted on disk if incomplete).
    pub files: u64,
    /// Bytes in those files.
    pub bytes: u64,
    /// Bytes this backup added (manifest totals); if incomplete, bytes of
    /// files on disk not shared by hard link with another backup.
    pub bytes_added: u64,
    /// When it started (manifest, or the journal if incomplete).
    pub started_at: Option<DateTime<Utc>>,
    /// When it finished (complete backups only).
    pub finished_at: Option<DateTime<Utc>>,
    /// Why it could not be described fully (e.g. an unreadable manifest).
    pub error: Option<String>,
}

/// Lists the backups under `root` (`<root>/<cluster>/<host_id>/<backup>`),
/// optionally only one cluster and/or host, sorted by cluster, host, start
/// time (unknown last) and name. Dot-entries (like `.lock`) are skipped.
pub fn list_backups(root: &Path, cluster: Option<&str>, host: Option<&str>) -> Result<Vec<BackupSummary>> {
    if !root.is_dir() {
        return Err(RepoError::NoRepository { path: root.to_owned() });
    }
    let clusters = match cluster {
        Some(c) => vec![path_component("cluster name", c)?.to_owned()],
        None => subdirs(root)?,
    };
    let mut out = Vec::new();
    for c in clusters {
        let cluster_dir = root.join(&c);
        let hosts = match host {
            Some(h) => vec![path_component("host ID", h)?.to_owned()],
            None => subdirs(&cluster_dir)?,
        };
        for h in hosts {
            let node_dir = cluster_dir.join(&h);
            for name in subdirs(&node_dir)? {
                out.push(summarize(&c, &h, &name, node_dir.join(&name)));
            }
        }
    }
    out.sort_by(|a, b| {
        (&a.cluster, &a.host_id, a.started_at.is_none(), a.started_at, &a.name).cmp(&(
            &b.cluster,
            &b.host_id,
            b.started_at.is_none(),
            b.started_at,
            &b.name,
        ))
    });
    Ok(out)
}

/// Names of the visible subdirectories of `dir`; none if it does not exist.
fn subdirs(dir: &Path) -> Result<Vec<String>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(RepoError::io("list", dir, e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.ctx("list", dir)?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if name.starts_with('.') || !entry.file_type().ctx("stat", &entry.path())?.is_dir() {
            continue;
        }
        names.push(name);
    }
    names.sort();
    Ok(names)
}

fn summarize(cluster: &str, host: &str, name: &str, path: PathBuf) -> BackupSummary {
    let mut s = BackupSummary {
        cluster: cluster.to_owned(),
        host_id: host.to_owned(),
        name: name.to_owned(),
        path,
        complete: false,
        files: 0,
        bytes: 0,
        bytes_added: 0,
        started_at: None,
        finished_at: None,
        error: None,
    };
    match Manifest::read(&s.path) {
        Ok(m) => {
            s.complete = true;
            s.files = m.totals.files;
            s.bytes = m.totals.bytes;
            s.bytes_added = m.totals.bytes_added;
            s.started_at = Some(m.started_at);
            s.finished_at = Some(m.finished_at);
            return s;
        }
        Err(RepoError::Incomplete { .. }) => {}
        Err(e) => s.error = Some(e.to_string()),
    }
    s.started_at = Journal::load(&RepoLayout::journal_path(&s.path)).ok().and_then(|records| {
        records.into_iter().find_map(|r| match r {
            JournalRecord::Started { started_at, .. } => Some(started_at),
            JournalRecord::File { .. } => None,
        })
    });
    let mut usage = DiskUsage::default();
    if let Err(e) = usage.add_dir(&s.path) {
        s.error.get_or_insert_with(|| e.to_string());
    }
    s.files = usage.files;
    s.bytes = usage.bytes;
    s.bytes_added = usage.unshared_bytes;
    s
}

/// Files and bytes under a directory, counted on disk.
#[derive(Default)]
struct DiskUsage {
    files: u64,
    bytes: u64,
    unshared_bytes: u64,
}

impl DiskUsage {
    fn add_dir(&mut self, dir: &Path) -> Result<()> {
        for entry in fs::read_dir(dir).ctx("list", dir)? {
            let entry = entry.ctx("list", dir)?;
            let path = entry.path();
            let meta = fs::symlink_metadata(&path).ctx("stat", &path)?;
            if meta.is_dir() {
                self.add_dir(&path)?;
            } else if meta.is_file() {
                self.files += 1;
                self.bytes += meta.len();
                if meta.nlink() == 1 {
                    self.unshared_bytes += meta.len();
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::tests::sample;

    #[test]
    fn lists_complete_and_incomplete() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        let node = root.join("Test Cluster/host-1");
        // Complete: described by its manifest.
        let mut m = sample();
        m.backup_name = "b1".into();
        m.write_atomically(&node.join("b1")).unwrap();
        // Incomplete: two files on disk (one shared by hard link), no manifest.
        let b0 = node.join("b0/ks1/t1");
        fs::create_dir_all(&b0).unwrap();
        fs::write(b0.join("a"), b"12345").unwrap();
        fs::write(b0.join("b"), b"xyz").unwrap();
        fs::hard_link(b0.join("b"), node.join("b1/shared")).unwrap();
        // Noise that must be skipped.
        fs::write(node.join(".lock"), b"").unwrap();
        fs::create_dir_all(node.join(".trash")).unwrap();
        fs::create_dir_all(root.join("Other/h9/z")).unwrap();

        let all = list_backups(root, None, None).unwrap();
        let names: Vec<_> = all.iter().map(|s| (s.cluster.as_str(), s.name.as_str(), s.complete)).collect();
        assert_eq!(names, [("Other", "z", false), ("Test Cluster", "b1", true), ("Test Cluster", "b0", false)]);

        let b1 = &all[1];
        assert_eq!((b1.files, b1.bytes, b1.bytes_added), (m.totals.files, m.totals.bytes, m.totals.bytes_added));
        assert_eq!(b1.started_at, Some(m.started_at));
        let b0 = &all[2];
        assert_eq!((b0.files, b0.bytes, b0.bytes_added), (2, 8, 5));
        assert_eq!(b0.started_at, None);
        assert!(b0.error.is_none());

        let only = list_backups(root, Some("Test Cluster"), Some("host-1")).unwrap();
        assert_eq!(only.len(), 2);
        assert!(list_backups(root, Some("Nope"), None).unwrap().is_empty());
        assert!(serde_json::to_string(&only).unwrap().contains("\"complete\":true"));
    }

    #[test]
    fn unreadable_manifest_is_reported_not_fatal() {
        let d = tempfile::tempdir().unwrap();
        let b = d.path().join("c/h/bad");
        fs::create_dir_all(&b).unwrap();
        fs::write(b.join("manifest.json"), "not json").unwrap();
        let all = list_backups(d.path(), None, None).unwrap();
        assert_eq!(all.len(), 1);
        assert!(!all[0].complete);
        assert!(all[0].error.as_deref().unwrap().contains("cannot parse manifest"));
    }

    #[test]
    fn missing_root_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        let err = list_backups(&d.path().join("nope"), None, None).unwrap_err();
        assert!(matches!(err, RepoError::NoRepository { .. }));
    }
}
