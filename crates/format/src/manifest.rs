//! The backup manifest: what a complete backup contains.
//!
//! `manifest.json` is written last and atomically, so its presence means the backup is
//! complete. It is versioned: a reader refuses a version newer than it knows instead of
//! guessing, because a misread manifest means a bad restore. [`Manifest::from_json`] holds
//! every check a manifest must pass before any path in it is used.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{FormatError, Result};
use crate::name::{check_relative, path_component};
use crate::version::check_version;

/// The `format` field of every manifest cassette writes.
pub const MANIFEST_FORMAT: &str = "cassette.backup-manifest";
/// The manifest format version this build writes, and the newest it reads.
pub const MANIFEST_VERSION: u32 = 1;

/// Everything a complete backup of one node contains.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`MANIFEST_FORMAT`].
    pub format: String,
    /// Always [`MANIFEST_VERSION`] for manifests this build writes.
    pub format_version: u32,
    /// The backup name (also the directory name).
    pub backup_name: String,
    /// The Cassandra cluster name.
    pub cluster_name: String,
    /// The node that was backed up.
    pub node: NodeInfo,
    /// The Cassandra snapshot tag the files were copied from.
    pub snapshot_tag: String,
    /// When the backup started.
    pub started_at: DateTime<Utc>,
    /// When the backup finished (just before the manifest was written).
    pub finished_at: DateTime<Utc>,
    /// The keyspaces backed up, with their tables and files.
    pub keyspaces: Vec<KeyspaceEntry>,
    /// Configuration directories backed up (e.g. `CASSANDRA_HOME/conf`).
    pub config_dirs: Vec<ConfigDirEntry>,
    /// File and byte counts.
    pub totals: Totals,
    /// The lock the store keeps every object of this backup under, if it was locked
    /// (`backup --object-lock-days`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_lock: Option<crate::lock::ObjectLock>,
}

/// The node a backup was taken from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Cassandra's host ID (a UUID).
    pub host_id: String,
    /// The node's broadcast address.
    pub address: String,
    /// A human-friendly name for the node, if configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    /// The node's datacenter.
    pub datacenter: String,
    /// The node's rack.
    pub rack: String,
    /// The node's tokens, needed to restore to a new node with the same ranges.
    pub tokens: Vec<String>,
    /// The Cassandra release version.
    pub cassandra_version: String,
}

/// One keyspace in a backup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyspaceEntry {
    /// The keyspace name.
    pub name: String,
    /// `CREATE KEYSPACE ...` statement.
    pub schema_cql: String,
    /// The tables backed up.
    pub tables: Vec<TableEntry>,
}

/// One table in a backup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableEntry {
    /// The table name.
    pub name: String,
    /// The table ID: 32 hex digits, as in the table's data directory name.
    pub id: String,
    /// The table's `schema.cql` from the snapshot, if there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_cql: Option<String>,
    /// The SSTable component files (and secondary index files).
    pub files: Vec<FileEntry>,
    /// How many SSTables (`Data.db` files) Cassandra's own snapshot manifest listed for the
    /// table when the backup was taken; `files` holds every one of them. `None` in manifests
    /// written before cassette recorded it. A restore refuses to truncate a table whose
    /// backup holds fewer SSTables than this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_sstables: Option<u64>,
}

/// One configuration directory in a backup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigDirEntry {
    /// The directory on the node.
    pub source: String,
    /// Where it is stored, relative to the backup directory.
    pub stored_as: String,
    /// Its files.
    pub files: Vec<FileEntry>,
}

/// One stored file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Path relative to the backup directory, '/'-separated.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// BLAKE3 of the content, lowercase hex.
    pub blake3: String,
    /// Cassandra's `Digest.crc32` for `Data.db`, verified at copy time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest_crc32: Option<u32>,
    /// The source file's mtime in nanoseconds since the epoch, to detect changes.
    pub mtime_ns: i64,
    /// Where the bytes live, relative to the node directory, if not at `path`
    /// (deduplication by reference on object stores). `None`: at `path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// The backup whose stored copy was reused (hard-linked), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reused_from: Option<String>,
    /// How the stored object is encoded (compressed, encrypted), in an encoded repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoded: Option<crate::encoding::Encoded>,
    /// The lock the store keeps the stored object under (S3 Object Lock), if the backup that
    /// stored it was locked; a reusing backup carries it over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<crate::lock::ObjectLock>,
}

impl FileEntry {
    /// Whether this backup added the bytes (as opposed to reusing a previous copy).
    pub fn is_added(&self) -> bool {
        self.reused_from.is_none() && self.object.is_none()
    }
}

/// File and byte counts of a backup.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Number of files.
    pub files: u64,
    /// Sum of file sizes.
    pub bytes: u64,
    /// Files whose bytes this backup added (not reused).
    pub files_added: u64,
    /// Bytes this backup added (not reused).
    pub bytes_added: u64,
}

impl Totals {
    /// Totals over `files`.
    pub fn of<'a>(files: impl IntoIterator<Item = &'a FileEntry>) -> Totals {
        let mut t = Totals::default();
        for f in files {
            t.files += 1;
            t.bytes += f.size;
            if f.is_added() {
                t.files_added += 1;
                t.bytes_added += f.size;
            }
        }
        t
    }
}

impl Manifest {
    /// Every file entry: tables first, then configuration directories.
    pub fn files(&self) -> impl Iterator<Item = &FileEntry> {
        let tables = self.keyspaces.iter().flat_map(|k| k.tables.iter()).flat_map(|t| t.files.iter());
        tables.chain(self.config_dirs.iter().flat_map(|c| c.files.iter()))
    }

    /// Totals computed from the file entries (to fill [`Manifest::totals`]).
    pub fn compute_totals(&self) -> Totals {
        Totals::of(self.files())
    }

    /// Looks up a table by keyspace and table name.
    pub fn table(&self, keyspace: &str, table: &str) -> Option<&TableEntry> {
        self.keyspaces.iter().find(|k| k.name == keyspace)?.tables.iter().find(|t| t.name == table)
    }

    /// The manifest as written: pretty JSON and a newline. The buffer is sized
    /// exactly first (a counting pass): growing it by doubling held up to three
    /// times the manifest's size at once, the job's peak with 50,000 files.
    pub fn to_json(&self) -> Vec<u8> {
        struct Count(usize);
        impl std::io::Write for Count {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0 += buf.len();
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut count = Count(0);
        serde_json::to_writer_pretty(&mut count, self).expect("a manifest serializes");
        let mut json = Vec::with_capacity(count.0 + 1);
        serde_json::to_writer_pretty(&mut json, self).expect("a manifest serializes");
        json.push(b'\n');
        json
    }

    /// Parses and checks manifest bytes: the format and version first (a newer version may not
    /// even parse as this one, and "upgrade" beats "missing field"), then every path and name
    /// ([`FormatError::ManifestPath`] for one that leaves the backup). Whether the manifest is
    /// the one of the backup it was found in is the reader's check (it knows the name).
    pub fn from_json(bytes: &[u8]) -> Result<Manifest> {
        let parse_err = |source| FormatError::Parse { kind: "manifest", source };
        // Only these two fields are read first (a `serde_json::Value` of the whole manifest
        // took five times its size in memory).
        #[derive(serde::Deserialize)]
        struct Header {
            format: Option<serde_json::Value>,
            format_version: Option<serde_json::Value>,
        }
        let value: Header = serde_json::from_slice(bytes).map_err(parse_err)?;
        let format = value.format.as_ref().and_then(|v| v.as_str()).unwrap_or("");
        if format != MANIFEST_FORMAT {
            return Err(FormatError::UnknownFormat {
                kind: "cassette backup manifest",
                found: format.to_owned(),
                expected: MANIFEST_FORMAT,
            });
        }
        let version = value.format_version.as_ref().and_then(|v| v.as_u64()).unwrap_or(0);
        check_version("manifest", version, MANIFEST_VERSION)?;
        let m: Manifest = serde_json::from_slice(bytes).map_err(parse_err)?;
        m.check_paths()?;
        Ok(m)
    }

    /// The rules of every name and path a manifest holds, checked on parse so that no reader
    /// ever joins an unchecked path: names are single path components; file paths are
    /// relative, without `.`/`..`/empty components or NUL, and inside their table's (or
    /// configuration directory's) directory; hashes are hex; the sizes add up.
    fn check_paths(&self) -> Result<()> {
        let bad = |entry: &str, reason: String| FormatError::ManifestPath { entry: entry.to_owned(), reason };
        let name = |kind: &str, value: &str| {
            path_component(kind, value).map(|_| ()).map_err(|e| bad(value, format!("is not a valid {kind} ({e})")))
        };
        name("backup name", &self.backup_name)?;
        let mut total: u64 = 0;
        let mut file = |f: &FileEntry, inside: &str| -> Result<()> {
            if let Some(reason) = check_relative(&f.path) {
                return Err(bad(&f.path, reason.to_owned()));
            }
            if !f.path.strip_prefix(inside).is_some_and(|rest| rest.starts_with('/')) {
                return Err(bad(&f.path, format!("is not inside {inside}/")));
            }
            if let Some(o) = &f.object
                && let Some(reason) = check_relative(o)
            {
                return Err(bad(o, reason.to_owned()));
            }
            if let Some(r) = &f.reused_from {
                path_component("backup name", r).map_err(|e| bad(r, format!("is not a backup name ({e})")))?;
            }
            if f.blake3.len() != 64 || !f.blake3.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad(&f.path, format!("has a BLAKE3 hash {:?} that is not 64 hex digits", f.blake3)));
            }
            total =
                total.checked_add(f.size).ok_or_else(|| bad(&f.path, "has sizes adding up past 2^64 bytes".into()))?;
            Ok(())
        };
        for ks in &self.keyspaces {
            name("keyspace", &ks.name)?;
            for t in &ks.tables {
                name("table", &t.name)?;
                if t.id.len() != 32 || !t.id.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(bad(&t.id, format!("is not a table ID of {}.{} (32 hex digits)", ks.name, t.name)));
                }
                let dir = format!("{}/{}", ks.name, t.name);
                for f in &t.files {
                    file(f, &dir)?;
                }
            }
        }
        for c in &self.config_dirs {
            if let Some(reason) = check_relative(&c.stored_as) {
                return Err(bad(&c.stored_as, reason.to_owned()));
            }
            for f in &c.files {
                file(f, &c.stored_as)?;
            }
        }
        Ok(())
    }
}

/// Sample manifests for tests of this crate and of the stores (feature `test-support`).
#[cfg(any(test, feature = "test-support"))]
pub mod samples {
    use super::*;

    /// A file entry with a fixed hash and mtime.
    pub fn file(path: &str, size: u64) -> FileEntry {
        FileEntry {
            path: path.into(),
            size,
            blake3: "ab".repeat(32),
            digest_crc32: None,
            mtime_ns: 1_700_000_000_123_456_789,
            object: None,
            reused_from: None,
            encoded: None,
            lock: None,
        }
    }

    /// A complete manifest of one keyspace, one table (a `Data.db` with its CRC32 and a
    /// reused `Index.db`) and one configuration directory.
    pub fn sample() -> Manifest {
        let started_at: DateTime<Utc> = "2024-06-01T02:00:00Z".parse().unwrap();
        let mut data = file("ks1/t1/nb-1-big-Data.db", 1000);
        data.digest_crc32 = Some(123_456);
        let mut reused = file("ks1/t1/nb-1-big-Index.db", 50);
        reused.reused_from = Some("previous".into());
        let mut m = Manifest {
            format: MANIFEST_FORMAT.into(),
            format_version: MANIFEST_VERSION,
            backup_name: "b1".into(),
            cluster_name: "Test Cluster".into(),
            node: NodeInfo {
                host_id: "0f3c2d1e-aaaa-bbbb-cccc-123456789abc".into(),
                address: "10.0.0.1".into(),
                alias: None,
                datacenter: "dc1".into(),
                rack: "rack1".into(),
                tokens: vec!["-9223372036854775808".into()],
                cassandra_version: "4.1.5".into(),
            },
            snapshot_tag: "cassette-b1".into(),
            started_at,
            finished_at: started_at + chrono::Duration::seconds(90),
            keyspaces: vec![KeyspaceEntry {
                name: "ks1".into(),
                schema_cql: "CREATE KEYSPACE ks1 ...;".into(),
                tables: vec![TableEntry {
                    name: "t1".into(),
                    id: "0123456789abcdef0123456789abcdef".into(),
                    schema_cql: Some("CREATE TABLE ks1.t1 ...;".into()),
                    files: vec![data, reused],
                    snapshot_sstables: Some(1),
                }],
            }],
            config_dirs: vec![ConfigDirEntry {
                source: "/etc/cassandra".into(),
                stored_as: "cassette-meta/conf/0-cassandra".into(),
                files: vec![file("cassette-meta/conf/0-cassandra/cassandra.yaml", 7)],
            }],
            totals: Totals::default(),
            object_lock: None,
        };
        m.totals = m.compute_totals();
        m
    }

    /// [`sample`] as backup `name`, started on 2024-06-`day` at 02:00 and finished 5 minutes later.
    pub fn named(name: &str, day: u32) -> Manifest {
        let mut m = sample();
        m.backup_name = name.into();
        m.started_at = format!("2024-06-{day:02}T02:00:00Z").parse().unwrap();
        m.finished_at = m.started_at + chrono::Duration::minutes(5);
        m
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::samples::sample;
    use super::*;

    #[test]
    fn roundtrips_through_json_ending_with_a_newline() {
        let m = sample();
        let json = m.to_json();
        assert!(json.ends_with(b"}\n"));
        assert_eq!(Manifest::from_json(&json).unwrap(), m);
    }

    #[test]
    fn paths_leaving_the_backup_are_refused_on_parse() {
        let bad_paths =
            ["../../x", "/etc/hostname", "ks1/t1/../../../x", "ks1/t1//x", "ks1/t2/x", "ks1/t1", "ks1/t1/a\0b", ""];
        for p in bad_paths {
            let mut m = sample();
            m.keyspaces[0].tables[0].files[0].path = p.into();
            let err = Manifest::from_json(&m.to_json()).unwrap_err();
            assert!(matches!(err, FormatError::ManifestPath { .. }), "{p:?}: {err}");
        }
        let refused = |change: &dyn Fn(&mut Manifest)| {
            let mut m = sample();
            change(&mut m);
            Manifest::from_json(&m.to_json()).is_err()
        };
        assert!(refused(&|m| m.keyspaces[0].name = "..".into()));
        assert!(refused(&|m| m.config_dirs[0].stored_as = "/etc".into()));
        assert!(refused(&|m| m.keyspaces[0].tables[0].files[0].object = Some("../other/x".into())));
        assert!(refused(&|m| m.keyspaces[0].tables[0].files[0].blake3 = "é".repeat(20)));
        assert!(refused(&|m| m.keyspaces[0].tables[0].files[0].size = u64::MAX));
        assert!(refused(&|m| m.keyspaces[0].tables[0].id = "not-hex".into()));
        assert!(refused(&|m| m.keyspaces[0].tables[0].files[1].reused_from = Some("../x".into())));
    }

    #[test]
    fn totals_and_files() {
        let m = sample();
        assert_eq!(m.files().count(), 3);
        assert_eq!(m.totals, Totals { files: 3, bytes: 1057, files_added: 2, bytes_added: 1007 });
        assert_eq!(m.table("ks1", "t1").unwrap().files.len(), 2);
        assert!(m.table("ks1", "nope").is_none());
    }

    #[test]
    fn options_omitted_when_none() {
        let json = serde_json::to_string(&sample()).unwrap();
        assert!(!json.contains("\"alias\""));
        assert!(!json.contains("\"object\""));
        assert!(json.contains("\"reused_from\":\"previous\""));
        assert!(json.contains("\"digest_crc32\":123456"));
    }

    #[test]
    fn reads_a_manifest_without_the_snapshot_record() {
        let mut v = serde_json::to_value(sample()).unwrap();
        assert_eq!(v["keyspaces"][0]["tables"][0]["snapshot_sstables"], 1);
        v["keyspaces"][0]["tables"][0].as_object_mut().unwrap().remove("snapshot_sstables");
        let m = Manifest::from_json(v.to_string().as_bytes()).unwrap();
        assert_eq!(m.keyspaces[0].tables[0].snapshot_sstables, None);
    }

    #[test]
    fn refuses_a_newer_version_before_its_fields() {
        let mut v = serde_json::to_value(sample()).unwrap();
        v["format_version"] = 2.into();
        v["something_new"] = "x".into();
        v.as_object_mut().unwrap().remove("totals");
        let err = Manifest::from_json(v.to_string().as_bytes()).unwrap_err();
        assert!(matches!(err, FormatError::NewerVersion { found: 2, supported: 1, .. }), "{err:?}");
        assert!(err.to_string().contains("written by a newer cassette; upgrade cassette"), "{err}");
    }

    #[test]
    fn refuses_a_missing_version_and_an_unknown_format() {
        let mut v = serde_json::to_value(sample()).unwrap();
        v.as_object_mut().unwrap().remove("format_version");
        let err = Manifest::from_json(v.to_string().as_bytes()).unwrap_err();
        assert!(matches!(err, FormatError::InvalidVersion { found: 0, .. }), "{err:?}");
        let mut v = serde_json::to_value(sample()).unwrap();
        v["format"] = "something.else".into();
        let err = Manifest::from_json(v.to_string().as_bytes()).unwrap_err();
        assert!(matches!(err, FormatError::UnknownFormat { .. }), "{err:?}");
        let err = Manifest::from_json(b"{\"format\": ").unwrap_err();
        assert!(matches!(err, FormatError::Parse { .. }), "{err:?}");
    }
}
