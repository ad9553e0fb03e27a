//! Where things live in the repository.
//!
//! ```text
//! <root>/<cluster_name>/<host_id>/<backup_name>/
//!     <keyspace>/<table>/<SSTable component files>
//!     cassette-meta/schema.cql
//!     cassette-meta/tables/<keyspace>.<table>.cql
//!     cassette-meta/conf/<n>-<dirname>/...
//!     cassette-meta/journal.jsonl
//!     manifest.json            (written last: its presence means complete)
//! <root>/<cluster_name>/<host_id>/.lock
//! <root>/<cluster_name>/<host_id>/.index.json   (summaries of the complete backups: a cache)
//! ```
//!
//! The layout mirrors Cassandra's data directory so that a restore by hand is
//! a plain `cp`. `cassette-meta` cannot collide with a keyspace: keyspace
//! names are `\w+`, which has no hyphen.
//!
//! The names and relative paths are the format's (`cassette_format::layout`, re-exported
//! here); [`RepoLayout`] joins them to a directory, and [`BackupState`] looks at it.

use std::path::{Path, PathBuf};

pub use cassette_format::layout::{
    INDEX_FILE, INDEX_LOCK_FILE, JOURNAL_FILE, JOURNAL_PATH, LOCK_FILE, MANIFEST_FILE, META_DIR, PARTIAL_SUFFIX,
    REPOSITORY_FORMAT_FILE, RESTORE_MARKER_PREFIX, RESTORE_STAGING_DIR, SCHEMA_FILE, SCHEMA_PATH, TOMBSTONE_PATH,
    is_backup_dir, relative_path,
};
use cassette_format::layout::{conf_path, table_path, table_schema_path};

use crate::error::Result;
use crate::name::{BackupName, path_component};

/// The repository root, and the paths derived from it.
///
/// Methods taking names validate them with [`path_component`], so a hostile
/// or odd name can never point outside the repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepoLayout {
    /// The repository root directory.
    pub root: PathBuf,
}

impl RepoLayout {
    /// A layout rooted at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        RepoLayout { root: root.into() }
    }

    /// `<root>/<cluster>/<host_id>`: all backups of one node, and its lock.
    pub fn node_dir(&self, cluster: &str, host_id: &str) -> Result<PathBuf> {
        Ok(self.root.join(path_component("cluster name", cluster)?).join(path_component("host ID", host_id)?))
    }

    /// `<root>/<cluster>/<host_id>/<backup_name>`.
    pub fn backup_dir(&self, cluster: &str, host_id: &str, name: &BackupName) -> Result<PathBuf> {
        Ok(self.node_dir(cluster, host_id)?.join(name.as_str()))
    }

    /// [`RepoLayout::backup_dir`], checked: the node's and the backup's directories, if they
    /// exist, are directories reached from the root without a symbolic link (`beneath`).
    pub fn checked_backup_dir(&self, cluster: &str, host_id: &str, name: &BackupName) -> Result<PathBuf> {
        let dir = self.backup_dir(cluster, host_id, name)?;
        crate::beneath::check_dir(&self.root, &dir)?;
        Ok(dir)
    }

    /// `<backup_dir>/<keyspace>/<table>`: where a table's SSTable components go.
    pub fn table_dir(backup_dir: &Path, keyspace: &str, table: &str) -> Result<PathBuf> {
        Ok(backup_dir.join(table_path(keyspace, table)?))
    }

    /// `<backup_dir>/cassette-meta`.
    pub fn meta_dir(backup_dir: &Path) -> PathBuf {
        backup_dir.join(META_DIR)
    }

    /// `<backup_dir>/cassette-meta/schema.cql`.
    pub fn schema_path(backup_dir: &Path) -> PathBuf {
        backup_dir.join(SCHEMA_PATH)
    }

    /// `<backup_dir>/cassette-meta/tables/<keyspace>.<table>.cql`.
    pub fn table_schema_path(backup_dir: &Path, keyspace: &str, table: &str) -> Result<PathBuf> {
        Ok(backup_dir.join(table_schema_path(keyspace, table)?))
    }

    /// `<backup_dir>/cassette-meta/conf/<n>-<dirname>`: the `n`th configuration
    /// directory (numbered so two `conf` directories do not collide).
    pub fn conf_dir(backup_dir: &Path, n: usize, dirname: &str) -> Result<PathBuf> {
        Ok(backup_dir.join(conf_path(n, dirname)?))
    }

    /// `<backup_dir>/manifest.json`.
    pub fn manifest_path(backup_dir: &Path) -> PathBuf {
        backup_dir.join(MANIFEST_FILE)
    }

    /// `<backup_dir>/cassette-meta/journal.jsonl`.
    pub fn journal_path(backup_dir: &Path) -> PathBuf {
        backup_dir.join(JOURNAL_PATH)
    }

    /// `<node_dir>/.lock`.
    pub fn lock_path(node_dir: &Path) -> PathBuf {
        node_dir.join(LOCK_FILE)
    }

    /// `<node_dir>/.index.json`.
    pub fn index_path(node_dir: &Path) -> PathBuf {
        node_dir.join(INDEX_FILE)
    }

    /// `<node_dir>/.index.lock`.
    pub fn index_lock_path(node_dir: &Path) -> PathBuf {
        node_dir.join(INDEX_LOCK_FILE)
    }
}

/// How far a backup got, judged from the directory alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackupState {
    /// No backup directory.
    Absent,
    /// The directory exists but has no manifest: interrupted or running.
    Incomplete,
    /// `manifest.json` exists: the backup finished.
    Complete,
}

impl BackupState {
    /// The state of the backup at `backup_dir`. Complete iff `manifest.json`
    /// exists, because the manifest is always written last.
    pub fn of(backup_dir: &Path) -> BackupState {
        if RepoLayout::manifest_path(backup_dir).is_file() {
            BackupState::Complete
        } else if backup_dir.is_dir() {
            BackupState::Incomplete
        } else {
            BackupState::Absent
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_layout() {
        let l = RepoLayout::new("/r");
        let name = BackupName::parse("b1").unwrap();
        let node = l.node_dir("Test Cluster", "h1").unwrap();
        assert_eq!(node, Path::new("/r/Test Cluster/h1"));
        let b = l.backup_dir("Test Cluster", "h1", &name).unwrap();
        assert_eq!(b, Path::new("/r/Test Cluster/h1/b1"));
        assert_eq!(RepoLayout::table_dir(&b, "ks", "t").unwrap(), b.join("ks/t"));
        assert_eq!(RepoLayout::manifest_path(&b), b.join("manifest.json"));
        assert_eq!(RepoLayout::journal_path(&b), b.join("cassette-meta/journal.jsonl"));
        assert_eq!(RepoLayout::schema_path(&b), b.join("cassette-meta/schema.cql"));
        assert_eq!(RepoLayout::table_schema_path(&b, "ks", "t").unwrap(), b.join("cassette-meta/tables/ks.t.cql"));
        assert_eq!(RepoLayout::conf_dir(&b, 0, "conf").unwrap(), b.join("cassette-meta/conf/0-conf"));
        assert_eq!(RepoLayout::lock_path(&node), node.join(".lock"));
    }

    #[test]
    fn names_cannot_escape_root() {
        let l = RepoLayout::new("/r");
        assert!(l.node_dir("..", "h").is_err());
        assert!(l.node_dir("c", "../../etc").is_err());
        assert!(RepoLayout::table_dir(Path::new("/r/b"), "ks", "..").is_err());
    }

    #[test]
    fn state_follows_manifest() {
        let d = tempfile::tempdir().unwrap();
        let b = d.path().join("b");
        assert_eq!(BackupState::of(&b), BackupState::Absent);
        std::fs::create_dir(&b).unwrap();
        assert_eq!(BackupState::of(&b), BackupState::Incomplete);
        std::fs::write(b.join("manifest.json"), "{}").unwrap();
        assert_eq!(BackupState::of(&b), BackupState::Complete);
    }
}
