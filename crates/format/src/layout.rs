//! Where things live in the repository: file and directory names, and paths relative to a
//! backup or a node (for a directory they are joined to it, on object storage they are keys).
//!
//! ```text
//! <root>/cassette-repository.json              the repository's format version
//! <root>/<cluster_name>/<host_id>/<backup_name>/
//!     <keyspace>/<table>/<SSTable component files>
//!     cassette-meta/schema.cql
//!     cassette-meta/tables/<keyspace>.<table>.cql
//!     cassette-meta/conf/<n>-<dirname>/...
//!     cassette-meta/journal.jsonl
//!     cassette-meta/deleted.json               (object storage) tombstone of a deletion
//!     cassette-meta/restore-<host_id>.json     (object storage) restore marker
//!     manifest.json            (written last: its presence means complete)
//! <root>/<cluster_name>/<host_id>/.lock
//! <root>/<cluster_name>/<host_id>/.index.json   (summaries of the complete backups: a cache)
//! ```
//!
//! The layout mirrors Cassandra's data directory so that a restore by hand is a plain `cp`.
//! `cassette-meta` cannot collide with a keyspace: keyspace names are `\w+`, which has no
//! hyphen.

use std::path::{Component, Path};

use crate::error::{FormatError, Result};
use crate::name::path_component;

/// Directory, inside a backup, holding everything that is not SSTable data.
pub const META_DIR: &str = "cassette-meta";
/// The manifest file name, inside a backup directory.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The journal file name, inside [`META_DIR`].
pub const JOURNAL_FILE: &str = "journal.jsonl";
/// The journal's path relative to a backup.
pub const JOURNAL_PATH: &str = "cassette-meta/journal.jsonl";
/// The CQL schema file name, inside [`META_DIR`].
pub const SCHEMA_FILE: &str = "schema.cql";
/// The schema's path relative to a backup.
pub const SCHEMA_PATH: &str = "cassette-meta/schema.cql";
/// The per-node lock file name, inside a node directory.
pub const LOCK_FILE: &str = ".lock";
/// Suffix of files being written; they are renamed once complete.
pub const PARTIAL_SUFFIX: &str = ".partial";
/// The node index file name, inside a node directory (see `index`).
pub const INDEX_FILE: &str = ".index.json";
/// The lock serializing writers of the node index, inside a node directory.
pub const INDEX_LOCK_FILE: &str = ".index.lock";
/// Where `cassette restore` stages files by default, inside the repository root:
/// `<root>/.restore-staging/<host_id>/<run>/`.
pub const RESTORE_STAGING_DIR: &str = ".restore-staging";
/// The repository format file, at the repository root (see `repository`).
pub const REPOSITORY_FORMAT_FILE: &str = "cassette-repository.json";
/// The tombstone's path relative to a backup (object storage: the backup is being deleted).
pub const TOMBSTONE_PATH: &str = "cassette-meta/deleted.json";
/// The start of a restore marker's path relative to a backup (`restore-<host_id>.json`).
pub const RESTORE_MARKER_PREFIX: &str = "cassette-meta/restore-";

/// Whether a directory (or prefix) of a node holds a backup: not a dot-entry, and not the
/// node's archived commitlog segments ([`crate::commitlog::COMMITLOG_DIR`]).
pub fn is_backup_dir(name: &str) -> bool {
    !name.starts_with('.') && name != crate::commitlog::COMMITLOG_DIR
}

/// `<keyspace>/<table>`: where a table's SSTable components go, relative to the backup.
pub fn table_path(keyspace: &str, table: &str) -> Result<String> {
    Ok(format!("{}/{}", path_component("keyspace", keyspace)?, path_component("table", table)?))
}

/// `cassette-meta/tables/<keyspace>.<table>.cql`, relative to the backup.
pub fn table_schema_path(keyspace: &str, table: &str) -> Result<String> {
    let ks = path_component("keyspace", keyspace)?;
    let t = path_component("table", table)?;
    Ok(format!("{META_DIR}/tables/{ks}.{t}.cql"))
}

/// `cassette-meta/conf/<n>-<dirname>`, relative to the backup: the `n`th configuration
/// directory (numbered so two `conf` directories do not collide).
pub fn conf_path(n: usize, dirname: &str) -> Result<String> {
    let d = path_component("configuration directory name", dirname)?;
    Ok(format!("{META_DIR}/conf/{n}-{d}"))
}

/// `cassette-meta/restore-<host_id>.json`, relative to the backup: the marker a restore by
/// `host_id` keeps fresh on object storage.
pub fn restore_marker_path(host_id: &str) -> Result<String> {
    Ok(format!("{RESTORE_MARKER_PREFIX}{}.json", path_component("host ID", host_id)?))
}

/// `path` relative to `base`, '/'-separated, as stored in [`crate::FileEntry::path`]. Pure:
/// it compares the two paths, it does not look at the filesystem.
///
/// Refuses paths outside `base`, with `..`, or not valid UTF-8.
pub fn relative_path(base: &Path, path: &Path) -> Result<String> {
    let bad = |reason| FormatError::BadRelativePath { path: path.to_owned(), base: base.to_owned(), reason };
    let rel = path.strip_prefix(base).map_err(|_| bad("it is not inside that directory"))?;
    let mut parts = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(s) => parts.push(s.to_str().ok_or_else(|| bad("it is not valid UTF-8"))?),
            Component::CurDir => {}
            _ => return Err(bad("it contains '..' or a root")),
        }
    }
    if parts.is_empty() {
        return Err(bad("it is the directory itself"));
    }
    Ok(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        let b = Path::new("/r/b");
        assert_eq!(relative_path(b, Path::new("/r/b/ks/t/nb-1-big-Data.db")).unwrap(), "ks/t/nb-1-big-Data.db");
        assert!(relative_path(b, Path::new("/r/other/x")).is_err());
        assert!(relative_path(b, Path::new("/r/b/../x")).is_err());
        assert!(relative_path(b, b).is_err());
    }

    #[test]
    fn paths_inside_a_backup() {
        assert_eq!(table_path("ks", "t").unwrap(), "ks/t");
        assert_eq!(table_schema_path("ks", "t").unwrap(), "cassette-meta/tables/ks.t.cql");
        assert_eq!(conf_path(1, "cassandra").unwrap(), "cassette-meta/conf/1-cassandra");
        assert_eq!(restore_marker_path("h1").unwrap(), "cassette-meta/restore-h1.json");
        assert_eq!(JOURNAL_PATH, format!("{META_DIR}/{JOURNAL_FILE}"));
        assert_eq!(SCHEMA_PATH, format!("{META_DIR}/{SCHEMA_FILE}"));
        assert!(table_path("ks", "..").is_err());
        assert!(restore_marker_path("../x").is_err());
    }
}
