//! Who the node is, which backup restores it, and what an interrupted offline restore already
//! did: asked of the node when it is up; read from the journals when it is down (only an
//! unfinished offline restore may continue with the node down).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use cassette_cassandra::{Cql, CqlTarget, port_answers};
use cassette_repo::{Manifest, ManifestFile};

use super::plan::OfflineTable;
use super::refused;
use crate::journal::{self, OfflineState, RunState};
use crate::locate::{Located, locate};
use crate::select::Planned;
use crate::{RestoreError, RestoreRequest};

/// The node restored and the backup restoring it.
pub(super) struct Subject {
    /// A session to the node; `None`: it is down.
    pub cql: Option<Cql>,
    pub host_id: String,
    pub backup_dir: PathBuf,
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
        from_journal(address, req)
    }
}

async fn from_node(target: &CqlTarget, req: &RestoreRequest) -> Result<Subject, RestoreError> {
    let cql = Cql::connect(target).await?;
    let local = cql.local_node().await?;
    cassette_cassandra::version::check_supported(&local.release_version)?;
    let host_id = local.host_id.to_string();
    let cluster = req.from_cluster.clone().unwrap_or_else(|| local.cluster_name.clone());
    let source_host = req.from_node.clone().unwrap_or_else(|| host_id.clone());
    let Located { dir, manifest } = locate(&req.backup_root, &cluster, &source_host, &req.name)?;
    let run = if req.new_restore {
        RunState::default()
    } else {
        RunState::of(&journal::load(&journal::journal_path(&dir, &host_id)))
    };
    let node_address =
        local.broadcast_address.or(local.rpc_address).map(|a| a.to_string()).unwrap_or_else(|| target.host.clone());
    // A journaled plan binds once files moved (or the node is down): otherwise plan afresh.
    let state = run.offline.filter(|s| !s.quarantined.is_empty());
    Ok(Subject { cql: Some(cql), host_id, backup_dir: dir, manifest, node_address, state })
}

fn from_journal(address: &str, req: &RestoreRequest) -> Result<Subject, RestoreError> {
    if req.new_restore {
        return Err(refused(format!(
            "the node does not answer CQL at {address}: a new offline restore reads the schema and drains the node, so start it first"
        )));
    }
    let Some((dir, host_id, state)) = find_unfinished(&req.backup_root, &req.name, address)? else {
        return Err(refused(format!(
            "the node does not answer CQL at {address}, and no unfinished offline restore of backup '{}' for it is journaled in {}: \
             start the node (cassette reads its schema and drains it before stopping it), or check --cql-host/--cql-port",
            req.name,
            req.backup_root.display()
        )));
    };
    let manifest = Manifest::read(&dir)?;
    let node_address = state.plan.node_address.clone();
    Ok(Subject { cql: None, host_id, backup_dir: dir, manifest, node_address, state: Some(state) })
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
            let Ok(entries) = std::fs::read_dir(cassette_repo::RepoLayout::meta_dir(&backup)) else { continue };
            for e in entries.flatten() {
                let file = e.file_name().to_string_lossy().into_owned();
                let Some(restored) = file.strip_prefix("restore-").and_then(|f| f.strip_suffix(".jsonl")) else {
                    continue;
                };
                if let Some(state) = RunState::of(&journal::load(&e.path())).offline
                    && state.plan.cql_address == address
                {
                    found.push((backup.clone(), restored.to_string(), state));
                }
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
