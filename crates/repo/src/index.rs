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

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{IoContext, RepoError, Result};
use crate::fsutil::write_file_atomically;
use crate::layout::RepoLayout;
use crate::manifest::{Manifest, Totals};

/// The `format` field of a node index.
pub const INDEX_FORMAT: &str = "cassette.node-index";
/// The node index version this build writes and reads.
pub const INDEX_VERSION: u32 = 1;

/// What the index says of one complete backup: its manifest's times and totals.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexEntry {
    /// The backup name (its directory name).
    pub name: String,
    /// The manifest's `started_at`.
    pub started_at: DateTime<Utc>,
    /// The manifest's `finished_at`.
    pub finished_at: DateTime<Utc>,
    /// The manifest's `totals`.
    pub totals: Totals,
    /// The size and modification time of the manifest file this entry was made from: the entry
    /// describes that file only, and a reader reads the manifest again when they differ. `None`
    /// (an index written by an older cassette): never trusted, the manifest is read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<ManifestStamp>,
}

/// What identifies a manifest file cheaply: one `stat` (a `HEAD` on object storage).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestStamp {
    /// Its size in bytes.
    pub size: u64,
    /// Its modification time, nanoseconds since the epoch.
    pub mtime_ns: i64,
}

impl ManifestStamp {
    /// The stamp of the local manifest file `path`, if it is a regular file (a symbolic link or
    /// a FIFO has none: the manifest is then read, and refused, never trusted).
    pub fn of_file(path: &Path) -> Option<ManifestStamp> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::symlink_metadata(path).ok().filter(|m| m.is_file())?;
        Some(ManifestStamp { size: m.len(), mtime_ns: m.mtime() * 1_000_000_000 + m.mtime_nsec() })
    }
}

impl IndexEntry {
    /// The entry of a backup whose manifest is `m`, with no stamp (see [`IndexEntry::manifest`]).
    pub fn of(m: &Manifest) -> IndexEntry {
        IndexEntry {
            name: m.backup_name.clone(),
            started_at: m.started_at,
            finished_at: m.finished_at,
            totals: m.totals,
            manifest: None,
        }
    }

    /// The entry of `m`, read from (or just written as) a manifest file with `stamp`.
    pub fn stamped(m: &Manifest, stamp: Option<ManifestStamp>) -> IndexEntry {
        IndexEntry { manifest: stamp, ..IndexEntry::of(m) }
    }
}

#[derive(Serialize, Deserialize)]
struct IndexFile {
    format: String,
    format_version: u32,
    backups: Vec<IndexEntry>,
}

/// A node's index as read from disk.
#[derive(Debug)]
pub enum NodeIndex {
    /// No index file (a node written by an older cassette, or never listed).
    Missing,
    /// Unreadable or damaged: rebuilt from the manifests by the next writer.
    Damaged(String),
    /// Written by a newer cassette: read around, never overwritten.
    Newer(u64),
    /// The entries, by backup name.
    Loaded(BTreeMap<String, IndexEntry>),
}

impl NodeIndex {
    /// The entries (none unless [`NodeIndex::Loaded`]).
    pub fn entries(&self) -> &BTreeMap<String, IndexEntry> {
        static EMPTY: BTreeMap<String, IndexEntry> = BTreeMap::new();
        match self {
            NodeIndex::Loaded(e) => e,
            _ => &EMPTY,
        }
    }
}

/// Reads `<node_dir>/.index.json`. Never fails: an index that cannot be used is reported as
/// such, and listing falls back to the manifests.
pub fn load(node_dir: &Path) -> NodeIndex {
    let path = RepoLayout::index_path(node_dir);
    let bytes = match crate::fsutil::read_regular(&path) {
        Ok(Some(b)) => b,
        Ok(None) => return NodeIndex::Missing,
        Err(e) => return NodeIndex::Damaged(e.to_string()),
    };
    let value: serde_json::Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => return NodeIndex::Damaged(format!("cannot parse {}: {e}", path.display())),
    };
    let version = value.get("format_version").and_then(|v| v.as_u64()).unwrap_or(0);
    if value.get("format").and_then(|v| v.as_str()) == Some(INDEX_FORMAT) && version > u64::from(INDEX_VERSION) {
        return NodeIndex::Newer(version);
    }
    match serde_json::from_value::<IndexFile>(value) {
        Ok(f) if f.format == INDEX_FORMAT && f.format_version == INDEX_VERSION => {
            NodeIndex::Loaded(f.backups.into_iter().map(|e| (e.name.clone(), e)).collect())
        }
        Ok(_) => NodeIndex::Damaged(format!("{} is not a cassette node index", path.display())),
        Err(e) => NodeIndex::Damaged(format!("cannot parse {}: {e}", path.display())),
    }
}

/// How the backup directories of a node relate to its index.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reconciled<'a> {
    /// Backups the index describes: the directory exists and holds the very manifest file the
    /// entry was made from (same size and modification time).
    pub indexed: Vec<&'a IndexEntry>,
    /// Directories the index does not describe (incomplete, or written without an index).
    pub unindexed: Vec<String>,
    /// Index entries whose directory is gone, or whose manifest is gone or changed.
    pub stale: Vec<String>,
}

/// Splits the backup directories `dirs` of a node (a readdir) against its index `entries`;
/// `stamp` gives the stamp of a directory's `manifest.json` (a stat), `None` without one. An
/// entry is trusted only if its recorded stamp is that of the manifest there now: a cache must
/// not vouch for a file it has not read. Pure, so that the rules are tested apart from storage.
pub fn reconcile<'a>(
    entries: &'a BTreeMap<String, IndexEntry>,
    dirs: &[String],
    stamp: impl Fn(&str) -> Option<ManifestStamp>,
) -> Reconciled<'a> {
    let mut out = Reconciled::default();
    let mut seen = std::collections::BTreeSet::new();
    for name in dirs {
        match entries.get(name) {
            Some(e) if e.manifest.is_some() && stamp(name) == e.manifest => {
                seen.insert(name.as_str());
                out.indexed.push(e);
            }
            _ => out.unindexed.push(name.clone()),
        }
    }
    out.stale = entries.keys().filter(|n| !seen.contains(n.as_str())).cloned().collect();
    out
}

/// Adds (or replaces) the entry of the backup whose manifest `m` was just written.
pub fn record(node_dir: &Path, m: &Manifest) -> Result<()> {
    let stamp = ManifestStamp::of_file(&RepoLayout::manifest_path(&node_dir.join(&m.backup_name)));
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
            e.manifest.is_some()
                && ManifestStamp::of_file(&RepoLayout::manifest_path(&node_dir.join(name))) == e.manifest
        });
        let mut changed = entries.len() != before;
        for name in names {
            let dir = node_dir.join(name);
            // Stamped before the read: a manifest replaced meanwhile leaves a stamp that does
            // not match, so the next listing reads it again.
            let stamp = ManifestStamp::of_file(&RepoLayout::manifest_path(&dir));
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
            if name.starts_with('.') || !entry.file_type().ctx("stat", &entry.path())?.is_dir() {
                continue;
            }
            let stamp = ManifestStamp::of_file(&RepoLayout::manifest_path(&entry.path()));
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
    let mut entries = match load(node_dir) {
        NodeIndex::Loaded(e) => e,
        NodeIndex::Newer(v) if !force => {
            tracing::warn!(node = %node_dir.display(), version = v, "node index written by a newer cassette; not updated");
            return Ok(());
        }
        NodeIndex::Missing | NodeIndex::Damaged(_) | NodeIndex::Newer(_) => BTreeMap::new(),
    };
    if change(&mut entries)? {
        write(node_dir, &entries)?;
    }
    Ok(())
}

/// One entry per line, so that the file reads well with `grep` and `less`.
fn write(node_dir: &Path, entries: &BTreeMap<String, IndexEntry>) -> Result<()> {
    let path = RepoLayout::index_path(node_dir);
    let mut text = format!("{{\"format\":\"{INDEX_FORMAT}\",\"format_version\":{INDEX_VERSION},\"backups\":[");
    for (i, e) in entries.values().enumerate() {
        text.push_str(if i == 0 { "\n" } else { ",\n" });
        let line =
            serde_json::to_string(e).map_err(|source| RepoError::ManifestParse { path: path.clone(), source })?;
        text.push_str(&line);
    }
    text.push_str("\n]}\n");
    write_file_atomically(&path, text.as_bytes())
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
    use crate::manifest::tests::sample;

    fn manifest(name: &str, day: u32) -> Manifest {
        let mut m = sample();
        m.backup_name = name.into();
        m.started_at = format!("2024-06-{day:02}T02:00:00Z").parse().unwrap();
        m.finished_at = m.started_at + chrono::Duration::minutes(5);
        m
    }

    fn stamp(size: u64) -> ManifestStamp {
        ManifestStamp { size, mtime_ns: 1_700_000_000_000_000_000 }
    }

    fn entry(name: &str) -> IndexEntry {
        IndexEntry::stamped(&manifest(name, 1), Some(stamp(100)))
    }

    #[test]
    fn reconcile_trusts_only_entries_whose_directory_still_holds_a_manifest() {
        let entries: BTreeMap<String, IndexEntry> =
            ["a", "b", "c", "gone"].iter().map(|n| (n.to_string(), entry(n))).collect();
        let mut entries = entries;
        entries.insert("old".into(), IndexEntry::of(&manifest("old", 1)));
        entries.insert("changed".into(), entry("changed"));
        // a: indexed; b: manifest removed since; c: not there; d: not indexed (older cassette);
        // e: incomplete; gone: deleted; old: indexed without a stamp; changed: another file now.
        let dirs: Vec<String> = ["a", "b", "changed", "d", "e", "old"].iter().map(|s| s.to_string()).collect();
        let r = reconcile(&entries, &dirs, |n| match n {
            "a" | "d" | "old" => Some(stamp(100)),
            "changed" => Some(stamp(99)),
            _ => None,
        });
        assert_eq!(r.indexed.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), ["a"]);
        assert_eq!(r.unindexed, ["b", "changed", "d", "e", "old"]);
        assert_eq!(r.stale, ["b", "c", "changed", "gone", "old"]);
    }

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
        assert_eq!(b2.manifest, ManifestStamp::of_file(&node.join("b2/manifest.json")));
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
