//! Who the node is, which backup restores it, and what an interrupted offline restore already
//! did: asked of the node when it is up; read from the journals when it is down (only an
//! unfinished offline restore may continue with the node down).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use cassette_cassandra::{Cql, CqlTarget, port_answers};
use cassette_repo::Manifest;
use cassette_store::BackupReader;
use cassette_store::locate::Located;

use super::plan::OfflineTable;
use super::refused;
use crate::journal::{self, OfflineState, RunState};
use crate::locate::locate;
use crate::select::Planned;
use crate::{RestoreError, RestoreRequest};

/// The node restored and the backup restoring it.
pub(super) struct Subject {
    /// A session to the node; `None`: it is down.
    pub cql: Option<Cql>,
    pub host_id: String,
    /// The backup.
    pub backup: Box<dyn BackupReader>,
    /// Its directory, when it is in a directory repository; `None` on object storage (its
    /// files are downloaded, verified, into the quarantine before anything is touched).
    pub backup_dir: Option<PathBuf>,
    /// This node's restore journal: in the backup's directory, or for a backup on object
    /// storage in the state directory beside an [`Origin`].
    pub journal_path: PathBuf,
    pub manifest: Manifest,
    /// The node's address as `nodetool status` shows it.
    pub node_address: String,
    /// The interrupted offline restore this run continues; `None`: plan afresh.
    pub state: Option<OfflineState>,
}

/// The [`Subject`] of a restore of the node answering (or not) CQL at `target` (`address`).
pub(super) async fn identify(target: &CqlTarget, address: &str, req: &RestoreRequest) -> Result<Subject, RestoreError> {
    if port_answers(&target.host, target.port).await {
        from_node(target, req).await
    } else {
        from_journal(address, req).await
    }
}

async fn from_node(target: &CqlTarget, req: &RestoreRequest) -> Result<Subject, RestoreError> {
    let cql = Cql::connect(target).await?;
    let local = cql.local_node().await?;
    cassette_cassandra::version::check_supported(&local.release_version)?;
    let host_id = local.host_id.to_string();
    let cluster = req.from_cluster.clone().unwrap_or_else(|| local.cluster_name.clone());
    let source_host = req.from_node.clone().unwrap_or_else(|| host_id.clone());
    let Located { reader, manifest } = locate(req, &cluster, &source_host).await?;
    let dir = reader.local_dir().map(Path::to_path_buf);
    let journal_path = match &dir {
        Some(d) => journal::journal_path(d, &host_id),
        None => {
            let origin =
                Origin { repository: repository_of(req), cluster, host_id: source_host, name: req.name.clone() };
            origin.write_beside(&reader.restore_journal_path(&host_id))?
        }
    };
    let run = if req.new_restore { RunState::default() } else { RunState::of(&journal::load(&journal_path)) };
    let node_address =
        local.broadcast_address.or(local.rpc_address).map(|a| a.to_string()).unwrap_or_else(|| target.host.clone());
    // A journaled plan binds once files moved (or the node is down): otherwise plan afresh.
    let state = run.offline.filter(|s| !s.quarantined.is_empty());
    Ok(Subject {
        cql: Some(cql),
        host_id,
        backup: reader,
        backup_dir: dir,
        journal_path,
        manifest,
        node_address,
        state,
    })
}

async fn from_journal(address: &str, req: &RestoreRequest) -> Result<Subject, RestoreError> {
    if req.new_restore {
        return Err(refused(format!(
            "the node does not answer CQL at {address}: a new offline restore reads the schema and drains the node, so start it first"
        )));
    }
    let remote = crate::locate::open_store(req)?.local_root().is_none();
    let found = if remote {
        find_unfinished_remote(req, address)?
    } else {
        find_unfinished(&req.backup_root, &req.name, address)?.map(|(dir, host_id, state)| {
            let (cluster, source_host) = source_of(&dir);
            let journal_path = journal::journal_path(&dir, &host_id);
            (Some(dir), journal_path, cluster, source_host, host_id, state)
        })
    };
    let Some((dir, journal_path, cluster, source_host, host_id, state)) = found else {
        return Err(refused(format!(
            "the node does not answer CQL at {address}, and no unfinished offline restore of backup '{}' for it is journaled in {}: \
             start the node (cassette reads its schema and drains it before stopping it), or check --cql-host/--cql-port",
            req.name,
            req.backup_root.display()
        )));
    };
    let Located { reader, manifest } = locate(req, &cluster, &source_host).await?;
    let node_address = state.plan.node_address.clone();
    Ok(Subject {
        cql: None,
        host_id,
        backup: reader,
        backup_dir: dir,
        journal_path,
        manifest,
        node_address,
        state: Some(state),
    })
}

/// Whose backup a restore journal kept in the state directory is about (`origin.json` beside
/// it): what a restore continued with the node down needs to find the backup again.
#[derive(Debug, serde::Serialize, serde::Deserialize, PartialEq)]
struct Origin {
    repository: String,
    cluster: String,
    host_id: String,
    name: String,
}

const ORIGIN_FILE: &str = "origin.json";

impl Origin {
    /// Writes the origin beside `journal` (creating its private directory); returns `journal`.
    fn write_beside(&self, journal: &Path) -> Result<PathBuf, RestoreError> {
        let dir = journal.parent().expect("a journal is in a directory");
        if let Some(kind_dir) = dir.parent().and_then(|d| d.file_name()) {
            cassette_repo::state::state_subdir(&kind_dir.to_string_lossy())?;
        }
        std::fs::create_dir_all(dir).map_err(|e| cassette_repo::RepoError::io("create directory", dir, e))?;
        let json = serde_json::to_vec_pretty(self).expect("an origin serializes");
        cassette_repo::write_file_atomically(&dir.join(ORIGIN_FILE), &json)?;
        Ok(journal.to_path_buf())
    }
}

fn repository_of(req: &RestoreRequest) -> String {
    req.backup_root.to_string_lossy().trim_end_matches('/').to_string()
}

/// [`find_unfinished`] for a backup on object storage: the journals in the state directory
/// whose origin is this repository and backup name. Returns (no backup directory, journal,
/// cluster, source host ID, restored host ID, state).
#[allow(clippy::type_complexity)]
fn find_unfinished_remote(
    req: &RestoreRequest,
    address: &str,
) -> Result<Option<(Option<PathBuf>, PathBuf, String, String, String, OfflineState)>, RestoreError> {
    let restores = cassette_repo::state::state_dir_path().join("restores");
    let mut found = Vec::new();
    for dir in std::fs::read_dir(&restores).into_iter().flatten().flatten().map(|e| e.path()) {
        let Ok(Some(bytes)) = cassette_repo::fsutil::read_regular(&dir.join(ORIGIN_FILE)) else { continue };
        let Ok(origin) = serde_json::from_slice::<Origin>(&bytes) else { continue };
        if origin.repository != repository_of(req) || origin.name != req.name {
            continue;
        }
        for (restored, journal, state) in unfinished_in(&dir, address) {
            found.push((None, journal, origin.cluster.clone(), origin.host_id.clone(), restored, state));
        }
    }
    if found.len() > 1 {
        return Err(RestoreError::InvalidInput(format!(
            "several unfinished offline restores of '{}' for the node at {address} (journals in {}); start the node and pass --new-restore, or finish them one by one",
            req.name,
            restores.display()
        )));
    }
    Ok(found.pop())
}

/// The cluster and host ID directories a backup directory `<root>/<cluster>/<host>/<name>` is in.
fn source_of(backup_dir: &Path) -> (String, String) {
    let name_of =
        |p: Option<&Path>| p.and_then(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let host = backup_dir.parent();
    (name_of(host.and_then(Path::parent)), name_of(host))
}

/// The unfinished offline restore of backup `name` whose node answers at `address`: its
/// backup directory, restored host ID and state (read from the journals, the node being down).
fn find_unfinished(
    root: &Path,
    name: &str,
    address: &str,
) -> Result<Option<(PathBuf, String, OfflineState)>, RestoreError> {
    let mut found = Vec::new();
    let subdirs = |d: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(d)
            .map(|rd| rd.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect())
            .unwrap_or_default()
    };
    for cluster in subdirs(root) {
        for host in subdirs(&cluster) {
            let backup = host.join(name);
            for (restored, _, state) in unfinished_in(&cassette_repo::RepoLayout::meta_dir(&backup), address) {
                found.push((backup.clone(), restored, state));
            }
        }
    }
    if found.len() > 1 {
        let dirs: Vec<String> = found.iter().map(|(d, _, _)| d.display().to_string()).collect();
        return Err(RestoreError::InvalidInput(format!(
            "several unfinished offline restores of '{name}' for the node at {address}: {}; start the node and pass --new-restore, or finish them one by one",
            dirs.join(", ")
        )));
    }
    Ok(found.pop())
}

/// The restore journals (`restore-<host ID>.jsonl`) in `dir` of an unfinished offline restore of
/// the node at `address`: (restored host ID, journal, state).
fn unfinished_in(dir: &Path, address: &str) -> Vec<(String, PathBuf, OfflineState)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let file = e.file_name().to_string_lossy().into_owned();
        let Some(restored) = file.strip_prefix("restore-").and_then(|f| f.strip_suffix(".jsonl")) else { continue };
        if let Some(state) = RunState::of(&journal::load(&e.path())).offline
            && state.plan.cql_address == address
        {
            out.push((restored.to_string(), e.path(), state));
        }
    }
    out
}

/// Refuses a selection other than the interrupted restore's: it must finish what it started.
pub(super) fn check_same_tables(
    state: &OfflineState,
    planned: &[Planned<'_>],
    name: &str,
    journal_path: &Path,
) -> Result<(), RestoreError> {
    let want: BTreeSet<String> = planned.iter().map(Planned::live_name).collect();
    let had: BTreeSet<String> = state.plan.tables.iter().map(OfflineTable::live_name).collect();
    if want != had {
        return Err(RestoreError::InvalidInput(format!(
            "an unfinished offline restore of '{name}' on this node replaces {}: run it again with the same selection to finish it (journal {})",
            had.into_iter().collect::<Vec<_>>().join(", "),
            journal_path.display()
        )));
    }
    Ok(())
}
