//! Stage `locate`: which backup directory, and its manifest.

use std::path::{Path, PathBuf};

use cassette_repo::{BackupName, Manifest, ManifestFile, RepoError, RepoLayout};

use crate::RestoreError;

/// The backup to restore: its directory and its (complete) manifest.
pub(crate) struct Located {
    pub dir: PathBuf,
    pub manifest: Manifest,
}

/// Finds `<root>/<cluster>/<host_id>/<name>` and reads its manifest. Not found: the error lists
/// the backups that exist for that node, and the nodes that have a backup of that name.
pub(crate) fn locate(root: &Path, cluster: &str, host_id: &str, name: &str) -> Result<Located, RestoreError> {
    let name = BackupName::parse(name).map_err(|e| RestoreError::InvalidInput(e.to_string()))?;
    let dir = RepoLayout::new(root).checked_backup_dir(cluster, host_id, &name)?;
    match Manifest::read(&dir) {
        Ok(manifest) => Ok(Located { dir, manifest }),
        Err(RepoError::Incomplete { path }) => Err(RestoreError::Incomplete { path: path.display().to_string() }),
        Err(RepoError::NotFound { .. }) => Err(RestoreError::NotFound {
            name: name.to_string(),
            cluster: cluster.to_string(),
            host_id: host_id.to_string(),
            path: dir.display().to_string(),
            hint: not_found_hint(root, cluster, host_id, name.as_str()),
        }),
        Err(e) => Err(e.into()),
    }
}

fn not_found_hint(root: &Path, cluster: &str, host_id: &str, name: &str) -> String {
    let Ok(all) = cassette_repo::list_backups(root, None, None) else {
        return format!("There is no backup repository at {}: check --backup-dir", root.display());
    };
    let mut hint = this_node_backups(
        all.iter().filter(|b| b.cluster == cluster && b.host_id == host_id).map(|b| (b.name.clone(), b.complete)),
    );
    let elsewhere: Vec<String> = all
        .iter()
        .filter(|b| b.name == name && !(b.cluster == cluster && b.host_id == host_id))
        .map(|b| format!("cluster '{}' host ID {}", b.cluster, b.host_id))
        .collect();
    if !elsewhere.is_empty() {
        hint.push_str(&format!(
            "; a backup named '{name}' exists for {} (restore it with --from-cluster/--from-node)",
            elsewhere.join(", ")
        ));
    }
    hint.push_str(". `cassette list` shows every backup.");
    hint
}

/// The first sentence of a not-found hint (no final stop): this node's backups, given as
/// (name, complete), or that it has none. One wording for a directory and an object store.
pub(crate) fn this_node_backups(backups: impl IntoIterator<Item = (String, bool)>) -> String {
    let mine: Vec<String> = backups
        .into_iter()
        .map(|(name, complete)| if complete { name } else { format!("{name} (incomplete)") })
        .collect();
    if mine.is_empty() {
        "This node has no backups there".to_string()
    } else {
        format!("The backups of this node are: {}", mine.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_lists_this_nodes_backups_and_other_nodes_with_the_name() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("c1/h1/monday")).unwrap();
        std::fs::create_dir_all(d.path().join("c1/h2/tuesday")).unwrap();
        let err = locate(d.path(), "c1", "h1", "tuesday").err().unwrap();
        let msg = err.to_string();
        assert!(matches!(err, RestoreError::NotFound { .. }));
        assert!(
            msg.contains("monday (incomplete)") && msg.contains("host ID h2") && msg.contains("--from-node"),
            "{msg}"
        );
        let err = locate(d.path(), "c1", "h1", "monday").err().unwrap();
        assert!(err.to_string().starts_with("incomplete backup, cannot be restored"), "{err}");
    }
}
