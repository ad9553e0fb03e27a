//! The plan of an offline restore: which live tables it replaces (creating the missing ones
//! with `create_schema`), the node's directories, and where each one's files move. Decided
//! while the node is up and journaled before it is drained, so a rerun can continue with the
//! node down.

use std::path::{Path, PathBuf};

use cassette_cassandra::Cql;
use cassette_repo::{Manifest, RepoError};
use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::quarantine::QUARANTINE_DIR_NAME;
use crate::dc_map::DcMap;
use crate::journal::OfflineState;
use crate::schema::{TableIds, creation_statements, live_tables, missing};
use crate::select::{Planned, Rename};
use crate::{OfflineOptions, RestoreError, RestoreRequest};

/// The journal item of the commitlog directory's quarantine, and its directory there.
pub(super) const COMMITLOG: &str = "commitlog";
/// The journal item of the saved caches directory's quarantine, and its directory there.
pub(super) const SAVED_CACHES: &str = "saved_caches";

/// A directory whose files move into the quarantine: `source` → `dest` (same filesystem).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantineMove {
    /// The live directory.
    pub source: PathBuf,
    /// Where its files go, with the same relative paths.
    pub dest: PathBuf,
}

/// A table an offline restore replaces.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfflineTable {
    /// Live keyspace.
    pub keyspace: String,
    /// Live table.
    pub table: String,
    /// The live table id (32 hex): its directory is `<table>-<id>`.
    pub id_hex: String,
    /// Keyspace in the backup.
    pub backup_keyspace: String,
    /// Table in the backup.
    pub backup_table: String,
}

impl OfflineTable {
    /// `keyspace.table`, live names.
    pub fn live_name(&self) -> String {
        format!("{}.{}", self.keyspace, self.table)
    }

    /// The table's directory below the data directory (or its quarantine) `root`.
    pub(super) fn dir_in(&self, root: &Path) -> PathBuf {
        root.join(&self.keyspace).join(cassette_cassandra::disk::table_dir_name(&self.table, &self.id_hex))
    }
}

/// What an offline restore does, decided while the node is up and journaled before it is
/// drained, so a rerun can continue with the node down.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfflinePlan {
    /// The node's CQL `host:port` as given (how a rerun with the node down finds this plan).
    pub cql_address: String,
    /// The node's host ID.
    pub host_id: String,
    /// The node's address as `nodetool status` shows it.
    pub node_address: String,
    /// Its data directories; backed-up files are placed in the first.
    pub data_dirs: Vec<PathBuf>,
    /// The commitlog directory's move.
    pub commitlog: QuarantineMove,
    /// The saved caches directory's move.
    pub saved_caches: QuarantineMove,
    /// One move per data directory, in order.
    pub data: Vec<QuarantineMove>,
    /// The quarantine directories (one per filesystem involved, the first is the main one).
    pub quarantine_dirs: Vec<PathBuf>,
    /// The tables replaced.
    pub tables: Vec<OfflineTable>,
}

impl OfflinePlan {
    /// Every file moved and placed: a node running now was started with the restored files.
    pub(super) fn all_done(&self, state: &OfflineState) -> bool {
        state.quarantined.contains(COMMITLOG)
            && state.quarantined.contains(SAVED_CACHES)
            && self
                .tables
                .iter()
                .all(|t| state.quarantined.contains(&t.live_name()) && state.placed.contains(&t.live_name()))
    }

    /// The moves of the directories the node shares by all tables, with their journal items.
    pub(super) fn node_moves(&self) -> [(&'static str, &QuarantineMove); 2] {
        [(COMMITLOG, &self.commitlog), (SAVED_CACHES, &self.saved_caches)]
    }

    /// Every move: the commitlog's, the saved caches', then one per data directory.
    pub(super) fn moves(&self) -> impl Iterator<Item = &QuarantineMove> {
        [&self.commitlog, &self.saved_caches].into_iter().chain(&self.data)
    }

    /// Where `t`'s backed-up files go: its directory in the first data directory.
    pub(super) fn live_dir(&self, t: &OfflineTable) -> PathBuf {
        t.dir_in(&self.data_dirs[0])
    }

    /// The main quarantine directory (it holds the command logs).
    pub(super) fn main_quarantine(&self) -> &Path {
        &self.quarantine_dirs[0]
    }
}

/// The live tables `planned` replaces, with their ids, and the schema statements executed (a
/// dry run: that would be) to create the missing ones when `create_schema` allows it.
pub(super) async fn live_tables_to_replace(
    cql: &Cql,
    req: &RestoreRequest,
    manifest: &Manifest,
    planned: &[Planned<'_>],
    renames: &[Rename],
    ids: TableIds,
) -> Result<(Vec<OfflineTable>, Vec<String>), RestoreError> {
    let mut schema_created = Vec::new();
    let mut live = live_tables(cql, planned).await?;
    let absent = missing(planned, &live);
    if !absent.is_empty() {
        if !req.create_schema {
            return Err(RestoreError::SchemaMissing { missing: absent });
        }
        let creation = creation_statements(manifest, planned, &absent, renames, &DcMap::parse(&req.dc_map)?, ids)?;
        crate::dc_map::check_target(cql, &creation.data_centres).await?;
        let statements = creation.statements;
        if req.dry_run {
            schema_created = statements;
        } else {
            for s in statements {
                if cql.execute_schema(&s).await? {
                    schema_created.push(s);
                }
            }
            cql.await_schema_agreement().await?;
            live = live_tables(cql, planned).await?;
            let still = missing(planned, &live);
            if !still.is_empty() {
                return Err(RestoreError::SchemaMissing { missing: still });
            }
        }
    }
    let tables = planned
        .iter()
        .map(|p| OfflineTable {
            keyspace: p.live_keyspace.clone(),
            table: p.live_table.clone(),
            // In a dry run with --create-schema, a table to create has no id yet.
            id_hex: live.get(&p.live_name()).map(|t| t.id_hex()).unwrap_or_else(|| "<new table id>".into()),
            backup_keyspace: p.backup_keyspace.clone(),
            backup_table: p.entry.name.clone(),
        })
        .collect();
    Ok((tables, schema_created))
}

/// The node's directories, as configured or as the node reports them.
pub(super) struct NodeDirs {
    pub data: Vec<PathBuf>,
    pub commitlog: PathBuf,
    pub saved_caches: PathBuf,
}

/// The options' directories, asking the node for those not given; each must exist here.
pub(super) async fn node_dirs(cql: &Cql, opts: &OfflineOptions) -> Result<NodeDirs, RestoreError> {
    let data = if opts.data_dirs.is_empty() { cql.data_file_directories().await? } else { opts.data_dirs.clone() };
    let commitlog = match &opts.commitlog_dir {
        Some(d) => d.clone(),
        None => cql.commitlog_directory().await?,
    };
    let saved_caches = match &opts.saved_caches_dir {
        Some(d) => d.clone(),
        None => cql.saved_caches_directory().await?,
    };
    for d in data.iter().chain([&commitlog, &saved_caches]) {
        if !d.is_dir() {
            return Err(RestoreError::InvalidInput(format!(
                "{} is not a directory on this machine: an offline restore runs on the node's own machine (check --data-dir, --commitlog-dir, --saved-caches-dir)",
                d.display()
            )));
        }
    }
    Ok(NodeDirs { data, commitlog, saved_caches })
}

/// Decides every move: one quarantine per filesystem, the main one first.
pub(super) fn make_plan(
    address: &str,
    host_id: &str,
    node_address: &str,
    dirs: NodeDirs,
    opts: &OfflineOptions,
    backup: &str,
    tables: Vec<OfflineTable>,
) -> Result<OfflinePlan, RestoreError> {
    let stamp_name = format!("{}-{backup}", Utc::now().format("%Y%m%dT%H%M%SZ"));
    let beside = |d: &Path| d.parent().unwrap_or(d).join(QUARANTINE_DIR_NAME).join(&stamp_name);
    let main = opts.quarantine_dir.clone().unwrap_or_else(|| beside(&dirs.data[0]));
    for live in dirs.data.iter().chain([&dirs.commitlog, &dirs.saved_caches]) {
        if main.starts_with(live) {
            return Err(RestoreError::InvalidInput(format!(
                "the quarantine directory {} is inside {}, a directory Cassandra uses: choose another --quarantine-dir",
                main.display(),
                live.display()
            )));
        }
    }
    let mut roots = vec![main.clone()];
    // Every move is a rename: a directory on another filesystem than `main` gets its own root.
    let mut quarantine_for = |source: &Path, sub: &str| -> Result<QuarantineMove, RestoreError> {
        let same = cassette_repo::same_filesystem(source, &main).map_err(|e| RepoError::io("stat", source, e))?;
        let root = if same {
            main.clone()
        } else if opts.quarantine_dir.is_some() {
            return Err(RestoreError::InvalidInput(format!(
                "--quarantine-dir {} is not on the filesystem of {}: files are moved by rename, never copied; leave --quarantine-dir out (each filesystem then gets its own quarantine beside the directory)",
                main.display(),
                source.display()
            )));
        } else {
            let r = beside(source);
            if !roots.contains(&r) {
                roots.push(r.clone());
            }
            r
        };
        Ok(QuarantineMove { source: source.to_path_buf(), dest: root.join(sub) })
    };
    let commitlog = quarantine_for(&dirs.commitlog, COMMITLOG)?;
    let saved_caches = quarantine_for(&dirs.saved_caches, SAVED_CACHES)?;
    let data = dirs
        .data
        .iter()
        .enumerate()
        .map(|(i, d)| quarantine_for(d, &format!("data{}", i + 1)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(OfflinePlan {
        cql_address: address.into(),
        host_id: host_id.into(),
        node_address: node_address.into(),
        data_dirs: dirs.data,
        commitlog,
        saved_caches,
        data,
        quarantine_dirs: roots,
        tables,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_puts_each_filesystem_in_its_own_quarantine() {
        let d = tempfile::tempdir().unwrap();
        let mk = |p: &str| {
            let p = d.path().join(p);
            std::fs::create_dir_all(&p).unwrap();
            p
        };
        let dirs = NodeDirs {
            data: vec![mk("data1"), mk("data2")],
            commitlog: mk("commitlog"),
            saved_caches: mk("saved_caches"),
        };
        let opts = OfflineOptions::new("stop", "start");
        let p = make_plan("h:9042", "id", "1.2.3.4", dirs, &opts, "b1", vec![]).unwrap();
        assert_eq!(p.quarantine_dirs.len(), 1);
        let q = &p.quarantine_dirs[0];
        assert!(
            q.starts_with(d.path().join(QUARANTINE_DIR_NAME)) && q.to_string_lossy().ends_with("-b1"),
            "{}",
            q.display()
        );
        assert_eq!(p.commitlog.dest, q.join("commitlog"));
        assert_eq!(p.data[1], QuarantineMove { source: d.path().join("data2"), dest: q.join("data2") });
        // A quarantine inside a live directory, or on another filesystem, is refused.
        let dirs = || NodeDirs {
            data: vec![d.path().join("data1")],
            commitlog: d.path().join("commitlog"),
            saved_caches: d.path().join("saved_caches"),
        };
        let mut opts = OfflineOptions::new("stop", "start");
        opts.quarantine_dir = Some(d.path().join("data1/q"));
        assert!(
            make_plan("h:9042", "id", "a", dirs(), &opts, "b1", vec![]).unwrap_err().to_string().contains("inside")
        );
        if Path::new("/dev/shm").is_dir() {
            opts.quarantine_dir = Some(PathBuf::from("/dev/shm/cassette-q-test"));
            if !cassette_repo::same_filesystem(d.path(), Path::new("/dev/shm")).unwrap() {
                assert!(
                    make_plan("h:9042", "id", "a", dirs(), &opts, "b1", vec![])
                        .unwrap_err()
                        .to_string()
                        .contains("not on the filesystem")
                );
            }
        }
    }
}
