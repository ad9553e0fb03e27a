//! The node index: one summary per complete backup of a node, so that listing a node with
//! thousands of backups reads one file instead of every manifest.
//!
//! `<node>/.index.json` is a cache, never the truth: a backup is complete iff its
//! `manifest.json` exists and reads. An entry records the size and modification time of the
//! manifest file it was made from ([`ManifestStamp`]); a reader trusts it only for a backup
//! whose manifest has that stamp now ([`reconcile`]), and reads the manifests of the backups
//! the index does not describe. An index of a newer version is read around and never
//! overwritten ([`NodeIndex::Newer`]).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

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
    /// The manifest's `object_lock`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_lock: Option<crate::lock::ObjectLock>,
}

/// What identifies a manifest file cheaply: one `stat` (a `HEAD` on object storage).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestStamp {
    /// Its size in bytes.
    pub size: u64,
    /// Its modification time, nanoseconds since the epoch.
    pub mtime_ns: i64,
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
            object_lock: m.object_lock,
        }
    }

    /// The entry of `m`, read from (or just written as) a manifest file with `stamp`.
    pub fn stamped(m: &Manifest, stamp: Option<ManifestStamp>) -> IndexEntry {
        IndexEntry { manifest: stamp, ..IndexEntry::of(m) }
    }
}

/// The document as serialized.
#[derive(Serialize, Deserialize)]
struct IndexFile {
    format: String,
    format_version: u32,
    backups: Vec<IndexEntry>,
}

/// A node's index as read.
#[derive(Debug)]
pub enum NodeIndex {
    /// No index (a node written by an older cassette, or never listed).
    Missing,
    /// Unreadable or damaged: rebuilt from the manifests by the next writer.
    Damaged(String),
    /// Written by a newer cassette: read around, never overwritten.
    Newer(u64),
    /// The entries, by backup name.
    Loaded(BTreeMap<String, IndexEntry>),
}

impl NodeIndex {
    /// The index in `bytes`: never an error, since an index that cannot be used is only a cache
    /// missing (listing falls back to the manifests). An index of this version or an older one
    /// is [`NodeIndex::Loaded`], one of a newer version [`NodeIndex::Newer`].
    pub fn from_json(bytes: &[u8]) -> NodeIndex {
        let value: serde_json::Value = match serde_json::from_slice(bytes) {
            Ok(v) => v,
            Err(e) => return NodeIndex::Damaged(format!("cannot parse the node index: {e}")),
        };
        if value.get("format").and_then(|v| v.as_str()) != Some(INDEX_FORMAT) {
            return NodeIndex::Damaged("it is not a cassette node index".into());
        }
        let version = value.get("format_version").and_then(|v| v.as_u64()).unwrap_or(0);
        if version > u64::from(INDEX_VERSION) {
            return NodeIndex::Newer(version);
        }
        if version == 0 {
            return NodeIndex::Damaged("the node index has no valid format version".into());
        }
        match serde_json::from_value::<IndexFile>(value) {
            Ok(f) => NodeIndex::Loaded(f.backups.into_iter().map(|e| (e.name.clone(), e)).collect()),
            Err(e) => NodeIndex::Damaged(format!("cannot parse the node index: {e}")),
        }
    }

    /// The entries (none unless [`NodeIndex::Loaded`]).
    pub fn entries(&self) -> &BTreeMap<String, IndexEntry> {
        static EMPTY: BTreeMap<String, IndexEntry> = BTreeMap::new();
        match self {
            NodeIndex::Loaded(e) => e,
            _ => &EMPTY,
        }
    }

    /// Whether a writer may replace this index: not when a newer cassette wrote it (unless it
    /// is asked to rebuild the index, `force`).
    pub fn may_overwrite(&self, force: bool) -> bool {
        force || !matches!(self, NodeIndex::Newer(_))
    }
}

/// The index of `entries` as written, in this version: one entry per line, so that the file
/// reads well with `grep` and `less`.
pub fn to_json(entries: &BTreeMap<String, IndexEntry>) -> Vec<u8> {
    let mut text = format!("{{\"format\":\"{INDEX_FORMAT}\",\"format_version\":{INDEX_VERSION},\"backups\":[");
    for (i, e) in entries.values().enumerate() {
        text.push_str(if i == 0 { "\n" } else { ",\n" });
        text.push_str(&serde_json::to_string(e).expect("an index entry serializes"));
    }
    text.push_str("\n]}\n");
    text.into_bytes()
}

/// How the backups of a node (a listing) relate to its index.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reconciled<'a> {
    /// Backups the index describes: the backup exists and holds the very manifest file the
    /// entry was made from (same size and modification time).
    pub indexed: Vec<&'a IndexEntry>,
    /// Backups the index does not describe (incomplete, or written without an index).
    pub unindexed: Vec<String>,
    /// Index entries whose backup is gone, or whose manifest is gone or changed.
    pub stale: Vec<String>,
}

/// Splits the backups `dirs` of a node (a readdir, a listing) against its index `entries`;
/// `stamp` gives the stamp of a backup's `manifest.json` (a stat, a HEAD), `None` without one.
/// An entry is trusted only if its recorded stamp is that of the manifest there now: a cache
/// must not vouch for a file it has not read.
pub fn reconcile<'a>(
    entries: &'a BTreeMap<String, IndexEntry>,
    dirs: &[String],
    stamp: impl Fn(&str) -> Option<ManifestStamp>,
) -> Reconciled<'a> {
    let mut out = Reconciled::default();
    let mut seen = BTreeSet::new();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::samples::named as manifest;

    fn stamp(size: u64) -> ManifestStamp {
        ManifestStamp { size, mtime_ns: 1_700_000_000_000_000_000 }
    }

    fn entry(name: &str) -> IndexEntry {
        IndexEntry::stamped(&manifest(name, 1), Some(stamp(100)))
    }

    #[test]
    fn reconcile_trusts_only_entries_whose_directory_still_holds_a_manifest() {
        let mut entries: BTreeMap<String, IndexEntry> =
            ["a", "b", "c", "gone"].iter().map(|n| (n.to_string(), entry(n))).collect();
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
    fn roundtrips_one_entry_per_line() {
        let entries: BTreeMap<String, IndexEntry> = ["a", "b"].iter().map(|n| (n.to_string(), entry(n))).collect();
        let json = to_json(&entries);
        assert_eq!(String::from_utf8_lossy(&json).lines().count(), 4);
        assert_eq!(NodeIndex::from_json(&json).entries(), &entries);
        assert!(NodeIndex::from_json(&to_json(&BTreeMap::new())).entries().is_empty());
    }

    #[test]
    fn a_newer_index_is_read_around_and_left_alone_a_damaged_one_replaced() {
        let newer = br#"{"format":"cassette.node-index","format_version":9,"backups":"whatever"}"#;
        let index = NodeIndex::from_json(newer);
        assert!(matches!(index, NodeIndex::Newer(9)));
        assert!(index.entries().is_empty());
        assert!(!index.may_overwrite(false) && index.may_overwrite(true));
        for damaged in [&b"{\"format\": tor"[..], br#"{"format":"other","format_version":1,"backups":[]}"#] {
            let index = NodeIndex::from_json(damaged);
            assert!(matches!(index, NodeIndex::Damaged(_)), "{index:?}");
            assert!(index.may_overwrite(false));
        }
    }
}
