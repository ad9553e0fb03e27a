//! Listing the backups in a repository.
//!
//! Complete backups are described by the node index (`index`), or by their manifest when the
//! index does not describe them; incomplete ones (interrupted or running) by what is on disk, so
//! they show up too and can be resumed or deleted.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use chrono::DateTime;

use crate::error::{IoContext, RepoError, Result};
use crate::index::{self, NodeIndex};
use crate::journal::{Journal, JournalRecord};
use crate::layout::RepoLayout;
use crate::manifest::{Manifest, ManifestFile};
use crate::name::path_component;

pub use cassette_format::summary::BackupSummary;

/// Lists the backups under `root` (`<root>/<cluster>/<host_id>/<backup>`),
/// optionally only one cluster and/or host, sorted by cluster, host, start
/// time (unknown last) and name. Dot-entries (like `.lock`) are skipped.
pub fn list_backups(root: &Path, cluster: Option<&str>, host: Option<&str>) -> Result<Vec<BackupSummary>> {
    let mut out = Vec::new();
    for node_dir in node_dirs(root, cluster, host)? {
        out.extend(list_node(&node_dir)?);
    }
    Ok(out)
}

/// The node directories under `root`, optionally of one cluster and/or host, sorted.
pub fn node_dirs(root: &Path, cluster: Option<&str>, host: Option<&str>) -> Result<Vec<PathBuf>> {
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
        // Only directories reached without a symbolic link (`beneath`): a link is not listed.
        out.extend(
            hosts
                .into_iter()
                .map(|h| cluster_dir.join(h))
                .filter(|d| matches!(crate::beneath::check_dir(root, d), Ok(true))),
        );
    }
    Ok(out)
}

/// The backups of one node (`<root>/<cluster>/<host_id>`), sorted by start time (unknown
/// last) and name. Reads the node index, and the manifests of the backups it does not
/// describe; when it found such a gap it updates the index (best effort: a read-only
/// repository is listed all the same).
pub fn list_node(node_dir: &Path) -> Result<Vec<BackupSummary>> {
    let component =
        |p: Option<&Path>| p.and_then(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let (cluster, host) = (component(node_dir.parent()), component(Some(node_dir)));
    let names: Vec<String> =
        subdirs(node_dir)?.into_iter().filter(|n| cassette_format::layout::is_backup_dir(n)).collect();
    let loaded = index::load(node_dir);
    let split = index::reconcile(loaded.entries(), &names, |n| {
        index::stamp_of_file(&RepoLayout::manifest_path(&node_dir.join(n)))
    });
    let mut out: Vec<BackupSummary> =
        split.indexed.iter().map(|e| BackupSummary::complete(&cluster, &host, node_dir.join(&e.name), e)).collect();
    let mut to_index = Vec::new();
    for name in &split.unindexed {
        let s = summarize(&cluster, &host, name, node_dir.join(name));
        if s.complete {
            to_index.push(name.clone());
        }
        out.push(s);
    }
    let repair = !to_index.is_empty() || !split.stale.is_empty() || matches!(loaded, NodeIndex::Damaged(_));
    if repair
        && !matches!(loaded, NodeIndex::Newer(_))
        && let Err(e) = index::refresh(node_dir, &to_index)
    {
        // A read-only repository is listed all the same.
        tracing::debug!(node = %node_dir.display(), error = %e, "could not update the node index");
    }
    out.sort_by(|a, b| {
        (a.started_at.is_none(), a.started_at, &a.name).cmp(&(b.started_at.is_none(), b.started_at, &b.name))
    });
    Ok(out)
}

/// Rewrites the index of every node under `root` (optionally one cluster and/or host) from
/// the manifests; returns the number of complete backups indexed.
pub fn rebuild_indexes(root: &Path, cluster: Option<&str>, host: Option<&str>) -> Result<usize> {
    let mut n = 0;
    for node_dir in node_dirs(root, cluster, host)? {
        n += index::rebuild(&node_dir)?;
    }
    Ok(n)
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
    let mut s = BackupSummary::incomplete(cluster, host, name, path);
    match Manifest::read(&s.path) {
        Ok(m) => return BackupSummary::of_manifest(cluster, host, s.path, &m),
        Err(RepoError::Incomplete { .. }) => {}
        Err(e) => {
            s.damaged = fs::symlink_metadata(RepoLayout::manifest_path(&s.path)).is_ok();
            s.error = Some(e.to_string());
        }
    }
    s.started_at = Journal::load(&RepoLayout::journal_path(&s.path)).ok().and_then(|records| {
        records.into_iter().find_map(|r| match r {
            JournalRecord::Started { started_at, .. } => Some(started_at),
            JournalRecord::File { .. } | JournalRecord::Synced => None,
        })
    });
    let mut usage = DiskUsage::default();
    if let Err(e) = usage.add_dir(&s.path) {
        s.error.get_or_insert_with(|| e.to_string());
    }
    s.files = usage.files;
    s.bytes = usage.bytes;
    s.bytes_added = usage.unshared_bytes;
    s.last_written_at =
        (usage.newest_mtime > 0).then(|| DateTime::from_timestamp(usage.newest_mtime, 0)).flatten().max(s.started_at);
    s
}

/// Files and bytes under a directory, counted on disk.
#[derive(Default)]
struct DiskUsage {
    files: u64,
    bytes: u64,
    unshared_bytes: u64,
    /// Newest modification time (seconds since the epoch) of the directory or anything in it.
    newest_mtime: i64,
}

impl DiskUsage {
    fn add_dir(&mut self, dir: &Path) -> Result<()> {
        self.newest_mtime = self.newest_mtime.max(fs::symlink_metadata(dir).ctx("stat", dir)?.mtime());
        for entry in fs::read_dir(dir).ctx("list", dir)? {
            let entry = entry.ctx("list", dir)?;
            let path = entry.path();
            let meta = fs::symlink_metadata(&path).ctx("stat", &path)?;
            if meta.is_dir() {
                self.add_dir(&path)?;
            } else if meta.is_file() {
                self.files += 1;
                self.bytes += meta.len();
                self.newest_mtime = self.newest_mtime.max(meta.mtime());
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
        assert!(all[0].damaged);
        assert!(all[0].error.as_deref().unwrap().contains("cannot parse manifest"));
    }

    #[test]
    fn missing_root_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        let err = list_backups(&d.path().join("nope"), None, None).unwrap_err();
        assert!(matches!(err, RepoError::NoRepository { .. }));
    }
}
