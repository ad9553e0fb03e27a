//! Cassandra's data directory layout, as the node writes it.
//!
//! ```text
//! <data_file_directory>/<keyspace>/<table>-<table id, 32 hex>/
//!     <version>-<id>-<format>-<Component>          SSTable components (nb-1-big-Data.db)
//!     .<index name>/...                            secondary index SSTables
//!     snapshots/<tag>/                             hard links + manifest.json + schema.cql
//!     backups/                                     incremental backups
//! ```
//! A dropped and recreated table leaves a second directory with another id: the live one is
//! the id in `system_schema.tables`. Several data directories (JBOD) each hold part of a table.

use std::path::{Path, PathBuf};

use crate::CassandraError;

/// The name of a table's directory: `<table>-<id as 32 hex>`.
pub fn table_dir_name(table: &str, id_hex: &str) -> String {
    format!("{table}-{id_hex}")
}

/// The table's directories that exist, one per data directory at most.
pub fn table_dirs(data_dirs: &[PathBuf], keyspace: &str, table: &str, id_hex: &str) -> Vec<PathBuf> {
    let name = table_dir_name(table, id_hex);
    data_dirs.iter().map(|d| d.join(keyspace).join(&name)).filter(|p| p.is_dir()).collect()
}

/// The snapshot `tag` of a table, in every data directory where it exists.
pub fn snapshot_dirs(data_dirs: &[PathBuf], keyspace: &str, table: &str, id_hex: &str, tag: &str) -> Vec<PathBuf> {
    table_dirs(data_dirs, keyspace, table, id_hex)
        .into_iter()
        .map(|t| t.join("snapshots").join(tag))
        .filter(|p| p.is_dir())
        .collect()
}

/// Tags of the snapshots starting with `prefix` that exist in any table directory, found by
/// reading the data directories (cheaper than a `nodetool listsnapshots` JVM start).
pub fn snapshot_tags_with_prefix(data_dirs: &[PathBuf], prefix: &str) -> std::collections::BTreeSet<String> {
    let mut tags = std::collections::BTreeSet::new();
    let subdirs = |d: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(d)
            .map(|rd| rd.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect())
            .unwrap_or_default()
    };
    for data_dir in data_dirs {
        for keyspace in subdirs(data_dir) {
            for table in subdirs(&keyspace) {
                for snapshot in subdirs(&table.join("snapshots")) {
                    let tag = snapshot.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                    if tag.starts_with(prefix) {
                        tags.insert(tag);
                    }
                }
            }
        }
    }
    tags
}

/// Tags of one table's snapshots that start with `prefix`, read from its directories.
pub fn table_snapshot_tags(
    data_dirs: &[PathBuf],
    keyspace: &str,
    table: &str,
    id_hex: &str,
    prefix: &str,
) -> std::collections::BTreeSet<String> {
    table_dirs(data_dirs, keyspace, table, id_hex)
        .into_iter()
        .filter_map(|t| std::fs::read_dir(t.join("snapshots")).ok())
        .flat_map(|rd| rd.flatten())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|tag| tag.starts_with(prefix))
        .collect()
}

/// Snapshot metadata that Cassandra writes beside the hard links; not SSTable data.
pub const SNAPSHOT_METADATA_FILES: &[&str] = &["manifest.json", "schema.cql"];

/// A file inside a snapshot (or table) directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataFile {
    /// Absolute path.
    pub path: PathBuf,
    /// Path relative to the snapshot directory, '/'-separated (`nb-1-big-Data.db`,
    /// `.idx_name/nb-1-big-Data.db`).
    pub relative: String,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i64,
}

/// Every SSTable file of a snapshot directory, including secondary index subdirectories,
/// without Cassandra's own snapshot metadata (`manifest.json`, `schema.cql`). Sorted.
pub fn snapshot_files(snapshot_dir: &Path) -> Result<Vec<DataFile>, CassandraError> {
    let mut out = Vec::new();
    collect_files(snapshot_dir, snapshot_dir, &mut out)?;
    out.retain(|f| !SNAPSHOT_METADATA_FILES.contains(&f.relative.as_str()));
    out.sort_by(|a, b| a.relative.cmp(&b.relative));
    Ok(out)
}

fn collect_files(root: &Path, dir: &Path, out: &mut Vec<DataFile>) -> Result<(), CassandraError> {
    let entries = std::fs::read_dir(dir).map_err(|e| CassandraError::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| CassandraError::io(dir, e))?;
        let path = entry.path();
        let meta = std::fs::metadata(&path).map_err(|e| CassandraError::io(&path, e))?;
        if meta.is_dir() {
            collect_files(root, &path, out)?;
        } else if meta.is_file() {
            let relative = path
                .strip_prefix(root)
                .expect("walked below root")
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            use std::os::unix::fs::MetadataExt;
            out.push(DataFile {
                path,
                relative,
                size: meta.len(),
                mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
            });
        }
    }
    Ok(())
}

/// What Cassandra's own `manifest.json` of a table's snapshot lists: the `Data.db` of every
/// SSTable the snapshot holds (index SSTables as `.<index>/...`), relative to the snapshot
/// directory. Cassandra 4.0 to 5.0 write it into one of the table's snapshot directories (with
/// several data directories, only the first holds it), so the union over `snapshot_dirs` is
/// read. `Ok(None)`: none of them holds a manifest.
pub fn snapshot_manifest_files(
    snapshot_dirs: &[PathBuf],
) -> Result<Option<std::collections::BTreeSet<String>>, CassandraError> {
    #[derive(serde::Deserialize)]
    struct SnapshotManifest {
        files: Vec<String>,
    }
    let mut listed: Option<std::collections::BTreeSet<String>> = None;
    for dir in snapshot_dirs {
        let path = dir.join("manifest.json");
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(CassandraError::io(&path, e)),
        };
        let manifest: SnapshotManifest = serde_json::from_slice(&bytes).map_err(|e| {
            CassandraError::Unexpected(format!("Cassandra's snapshot manifest {} cannot be read: {e}", path.display()))
        })?;
        listed.get_or_insert_with(Default::default).extend(manifest.files.into_iter().map(|f| f.replace('\\', "/")));
    }
    Ok(listed)
}

/// The parts of an SSTable component file name: `<version>-<id>-<format>-<Component>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SstableName<'a> {
    /// Format version (`nb`, `oa`, `da`).
    pub version: &'a str,
    /// Generation: an integer or a base-36 time-UUID.
    pub id: &'a str,
    /// `big` or `bti`.
    pub format: &'a str,
    /// `Data.db`, `Index.db`, `Digest.crc32`, `TOC.txt`, `SAI+aa+...`.
    pub component: &'a str,
}

impl<'a> SstableName<'a> {
    /// Parses a file name; `None` for anything that is not an SSTable component
    /// (transaction logs `nb_txn_...log`, snapshot metadata).
    pub fn parse(file_name: &'a str) -> Option<Self> {
        let mut parts = file_name.splitn(4, '-');
        let version = parts.next()?;
        let id = parts.next()?;
        let format = parts.next()?;
        let component = parts.next()?;
        let ok = version.len() == 2
            && version.chars().all(|c| c.is_ascii_lowercase())
            && !id.is_empty()
            && (format == "big" || format == "bti");
        ok.then_some(SstableName { version, id, format, component })
    }

    /// The name of another component of the same SSTable.
    pub fn sibling(&self, component: &str) -> String {
        format!("{}-{}-{}-{}", self.version, self.id, self.format, component)
    }

    /// The name of this component under another generation (`id`).
    pub fn with_id(&self, id: &str) -> String {
        format!("{}-{id}-{}-{}", self.version, self.format, self.component)
    }

    /// True for the data component, whose CRC32 Cassandra keeps in `Digest.crc32`.
    pub fn is_data(&self) -> bool {
        self.component == "Data.db"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sstable_names() {
        let n = SstableName::parse("nb-12-big-Data.db").unwrap();
        assert_eq!((n.version, n.id, n.format, n.component), ("nb", "12", "big", "Data.db"));
        assert!(n.is_data());
        assert_eq!(n.sibling("Digest.crc32"), "nb-12-big-Digest.crc32");
        let bti = SstableName::parse("da-3gdg_0z3g_1pne82m1yxrmnxl5bs-bti-Partitions.db").unwrap();
        assert_eq!(bti.format, "bti");
        assert_eq!(
            SstableName::parse("oa-1-big-SAI+aa+name_idx+Meta.db").unwrap().component,
            "SAI+aa+name_idx+Meta.db"
        );
        assert!(SstableName::parse("nb_txn_flush_8f0e.log").is_none());
        assert!(SstableName::parse("manifest.json").is_none());
    }

    #[test]
    fn finds_snapshot_tags_by_prefix() {
        let dir = tempfile::tempdir().unwrap();
        for (ks, table, tag) in [
            ("shop", "orders-0a", "cassette-x-1"),
            ("shop", "users-0b", "truncated-1-users"),
            ("log", "ev-0c", "cassette-y-2"),
        ] {
            std::fs::create_dir_all(dir.path().join(ks).join(table).join("snapshots").join(tag)).unwrap();
        }
        let tags = snapshot_tags_with_prefix(&[dir.path().to_path_buf()], "cassette-");
        assert_eq!(tags.into_iter().collect::<Vec<_>>(), vec!["cassette-x-1", "cassette-y-2"]);
    }

    #[test]
    fn reads_the_snapshot_manifest_of_every_data_directory() {
        let d1 = tempfile::tempdir().unwrap();
        let d2 = tempfile::tempdir().unwrap();
        let dirs = [d1.path().to_path_buf(), d2.path().to_path_buf()];
        assert_eq!(snapshot_manifest_files(&dirs).unwrap(), None);
        std::fs::write(
            d1.path().join("manifest.json"),
            br#"{"files" : [ "nb-2-big-Data.db", ".by_name/nb-1-big-Data.db" ], "created_at" : "2026-12-02T03:55:09.925Z", "expires_at" : null, "ephemeral" : false}"#,
        )
        .unwrap();
        let listed = snapshot_manifest_files(&dirs).unwrap().unwrap();
        assert_eq!(listed.into_iter().collect::<Vec<_>>(), vec![".by_name/nb-1-big-Data.db", "nb-2-big-Data.db"]);
        std::fs::write(d2.path().join("manifest.json"), b"{\"files\": [").unwrap();
        assert!(snapshot_manifest_files(&dirs).is_err());
    }

    #[test]
    fn lists_snapshot_files_with_index_subdirs() {
        let dir = tempfile::tempdir().unwrap();
        let snap = dir.path();
        std::fs::write(snap.join("nb-1-big-Data.db"), b"abc").unwrap();
        std::fs::write(snap.join("manifest.json"), b"{}").unwrap();
        std::fs::write(snap.join("schema.cql"), b"CREATE TABLE").unwrap();
        std::fs::create_dir(snap.join(".by_name")).unwrap();
        std::fs::write(snap.join(".by_name/nb-1-big-Data.db"), b"x").unwrap();
        let files = snapshot_files(snap).unwrap();
        let names: Vec<_> = files.iter().map(|f| f.relative.as_str()).collect();
        assert_eq!(names, vec![".by_name/nb-1-big-Data.db", "nb-1-big-Data.db"]);
        assert_eq!(files[1].size, 3);
    }
}
