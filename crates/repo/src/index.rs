//! The node index: one summary per complete backup of a node, so that listing a node with
//! thousands of backups reads one file instead of every manifest.
//!
//! `<node_dir>/.index.json` is a cache, never the truth: a backup is complete iff its
//! `manifest.json` exists and reads. An entry records the size and modification time of the
//! manifest file it was made from; a reader trusts it only for a backup directory whose
//! manifest has that size and time now (one readdir of the node directory, one stat per backup,
//! no manifest read), and reads the manifests of the directories the index does not describe
//! (a manifest replaced, truncated or swapped since is read again, and shown damaged). Writers
//! (the backup engine after a manifest, delete and purge, list when it found a gap) take
//! `<node_dir>/.index.lock` for their read-modify-write and replace the file atomically.
//!
//! The document and the rule deciding which entries to trust are the format's
//! (`cassette_format::index`, re-exported here); this module reads and writes the file.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

pub use cassette_format::index::{
    INDEX_FORMAT, INDEX_VERSION, IndexEntry, ManifestStamp, NodeIndex, Reconciled, reconcile, to_json,
};

use crate::error::{IoContext, RepoError, Result};
use crate::fsutil::write_file_atomically;
use crate::layout::RepoLayout;
use crate::manifest::{Manifest, ManifestFile};

/// The stamp of the local manifest file `path`, if it is a regular file (a symbolic link or a
/// FIFO has none: the manifest is then read, and refused, never trusted).
pub fn stamp_of_file(path: &Path) -> Option<ManifestStamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(path).ok().filter(|m| m.is_file())?;
    Some(ManifestStamp { size: m.len(), mtime_ns: m.mtime() * 1_000_000_000 + m.mtime_nsec() })
}

/// Reads `<node_dir>/.index.json`. Never fails: an index that cannot be used is reported as
/// such, and listing falls back to the manifests.
pub fn load(node_dir: &Path) -> NodeIndex {
    let path = RepoLayout::index_path(node_dir);
    match crate::fsutil::read_regular(&path) {
        Ok(Some(bytes)) => match NodeIndex::from_json(&bytes) {
            NodeIndex::Damaged(why) => NodeIndex::Damaged(format!("{}: {why}", path.display())),
            index => index,
        },
        Ok(None) => NodeIndex::Missing,
        Err(e) => NodeIndex::Damaged(e.to_string()),
    }
}

/// Adds (or replaces) the entry of the backup whose manifest `m` was just written.
pub fn record(node_dir: &Path, m: &Manifest) -> Result<()> {
    let stamp = stamp_of_file(&RepoLayout::manifest_path(&node_dir.join(&m.backup_name)));
    update(node_dir, |entries| {
        entries.insert(m.backup_name.clone(), IndexEntry::stamped(m, stamp));
        Ok(true)
    })
}

/// Removes the entries of `names` (deleted backups, or a backup starting again under its name).
pub fn forget(node_dir: &Path, names: &[&str]) -> Result<()> {
    update(node_dir, |entries| {
        let before = entries.len();
        entries.retain(|name, _| !names.contains(&name.as_str()));
        Ok(entries.len() != before)
    })
}

/// Drops the entries without a manifest, and indexes the backups `names` from their manifests
/// (read again under the index lock, so that a concurrent delete cannot be undone).
pub fn refresh(node_dir: &Path, names: &[String]) -> Result<()> {
    update(node_dir, |entries| {
        let before = entries.len();
        entries.retain(|name, e| {
            e.manifest.is_some() && stamp_of_file(&RepoLayout::manifest_path(&node_dir.join(name))) == e.manifest
        });
        let mut changed = entries.len() != before;
        for name in names {
            let dir = node_dir.join(name);
            // Stamped before the read: a manifest replaced meanwhile leaves a stamp that does
            // not match, so the next listing reads it again.
            let stamp = stamp_of_file(&RepoLayout::manifest_path(&dir));
            if let Ok(m) = Manifest::read(&dir) {
                entries.insert(name.clone(), IndexEntry::stamped(&m, stamp));
                changed = true;
            }
        }
        Ok(changed)
    })
}

/// Rewrites the index from every manifest of the node (`cassette list --rebuild-index`).
/// Returns the number of complete backups indexed.
pub fn rebuild(node_dir: &Path) -> Result<usize> {
    let mut count = 0;
    update_with(node_dir, true, |entries| {
        entries.clear();
        for entry in std::fs::read_dir(node_dir).ctx("list", node_dir)? {
            let entry = entry.ctx("list", node_dir)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !cassette_format::layout::is_backup_dir(&name) || !entry.file_type().ctx("stat", &entry.path())?.is_dir()
            {
                continue;
            }
            let stamp = stamp_of_file(&RepoLayout::manifest_path(&entry.path()));
            if let Ok(m) = Manifest::read(&entry.path()) {
                entries.insert(name, IndexEntry::stamped(&m, stamp));
            }
        }
        count = entries.len();
        Ok(true)
    })?;
    Ok(count)
}

fn update(node_dir: &Path, change: impl FnOnce(&mut BTreeMap<String, IndexEntry>) -> Result<bool>) -> Result<()> {
    update_with(node_dir, false, change)
}

/// Read-modify-write under `.index.lock`. A damaged index starts empty (the next list fills
/// it from the manifests); one written by a newer cassette is left alone unless `force`.
fn update_with(
    node_dir: &Path,
    force: bool,
    change: impl FnOnce(&mut BTreeMap<String, IndexEntry>) -> Result<bool>,
) -> Result<()> {
    let _lock = IndexLock::acquire(node_dir)?;
    let loaded = load(node_dir);
    if !loaded.may_overwrite(force) {
        tracing::warn!(node = %node_dir.display(), index = ?loaded, "node index written by a newer cassette; not updated");
        return Ok(());
    }
    let mut entries = match loaded {
        NodeIndex::Loaded(e) => e,
        NodeIndex::Missing | NodeIndex::Damaged(_) | NodeIndex::Newer(_) => BTreeMap::new(),
    };
    if change(&mut entries)? {
        write(node_dir, &entries)?;
    }
    Ok(())
}

/// Replaces the index file atomically (see [`to_json`] for its shape).
fn write(node_dir: &Path, entries: &BTreeMap<String, IndexEntry>) -> Result<()> {
    write_file_atomically(&RepoLayout::index_path(node_dir), &to_json(entries))
}

/// The writers' lock: short, blocking (`flock`), apart from the job lock so that a `list`
/// updating the index never makes a backup starting at that moment fail.
struct IndexLock(#[allow(dead_code)] File);

impl IndexLock {
    fn acquire(node_dir: &Path) -> Result<IndexLock> {
        let path: PathBuf = RepoLayout::index_lock_path(node_dir);
        use std::os::unix::fs::OpenOptionsExt;
        // Never through a link planted at its name (the repository path policy, `beneath`).
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ELOOP) => RepoError::Unsafe { path: path.clone(), problem: "it is a symbolic link".into() },
                _ => RepoError::io("open", &path, e),
            })?;
        if !file.metadata().ctx("stat", &path)?.is_file() {
            return Err(RepoError::Unsafe { path, problem: "it is not a regular file".into() });
        }
        file.lock().ctx("lock", &path)?;
        Ok(IndexLock(file))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cassette_format::manifest::samples::named as manifest;

    #[test]
    fn record_forget_refresh_rebuild() {
        let d = tempfile::tempdir().unwrap();
        let node = d.path();
        assert!(matches!(load(node), NodeIndex::Missing));
        for (name, day) in [("b1", 1), ("b2", 2), ("b3", 3)] {
            let m = manifest(name, day);
            m.write_atomically(&node.join(name)).unwrap();
            record(node, &m).unwrap();
        }
        let names = |i: NodeIndex| i.entries().keys().cloned().collect::<Vec<_>>();
        assert_eq!(names(load(node)), ["b1", "b2", "b3"]);
        let b2 = &load(node).entries()["b2"].clone();
        assert_eq!(b2.manifest, stamp_of_file(&node.join("b2/manifest.json")));
        assert_eq!(IndexEntry { manifest: None, ..b2.clone() }, IndexEntry::of(&manifest("b2", 2)));
        forget(node, &["b1", "nope"]).unwrap();
        assert_eq!(names(load(node)), ["b2", "b3"]);
        // b3's manifest vanished, b1 is back unindexed: refresh fixes both.
        std::fs::remove_file(node.join("b3/manifest.json")).unwrap();
        refresh(node, &["b1".into()]).unwrap();
        assert_eq!(names(load(node)), ["b1", "b2"]);
        // Damaged: rebuilt from the manifests.
        std::fs::write(node.join(".index.json"), "{\"format\": tor").unwrap();
        assert!(matches!(load(node), NodeIndex::Damaged(_)));
        assert_eq!(rebuild(node).unwrap(), 2);
        assert_eq!(names(load(node)), ["b1", "b2"]);
        assert!(!node.join(".index.json.partial").exists());
        let text = std::fs::read_to_string(node.join(".index.json")).unwrap();
        assert_eq!(text.lines().count(), 4, "one line per backup:\n{text}");
    }

    #[test]
    fn an_index_of_a_newer_version_is_read_around_and_left_alone() {
        let d = tempfile::tempdir().unwrap();
        let newer = r#"{"format":"cassette.node-index","format_version":9,"backups":"whatever"}"#;
        std::fs::write(d.path().join(".index.json"), newer).unwrap();
        assert!(matches!(load(d.path()), NodeIndex::Newer(9)));
        record(d.path(), &manifest("b1", 1)).unwrap();
        assert_eq!(std::fs::read_to_string(d.path().join(".index.json")).unwrap(), newer);
    }
}
