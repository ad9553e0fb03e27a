//! Finding the backup to restore, for every kind of store: open it, read its manifest, and
//! when it is not there, say which backups are (this node's, and other nodes' of that name).

use cassette_repo::{BackupSummary, Manifest, RepoError};

use crate::{BackupId, BackupReader, Store, StoreError};

/// A complete backup, opened for restoring.
pub struct Located {
    /// The backup.
    pub reader: Box<dyn BackupReader>,
    /// Its manifest.
    pub manifest: Manifest,
}

/// Why a backup cannot be restored.
#[derive(Debug)]
pub enum LocateError {
    /// There is no backup of that name for that node.
    NotFound {
        /// Where it was looked for.
        location: String,
        /// Which backups there are instead, as a sentence ending with what to do.
        hint: String,
    },
    /// The backup has no manifest: interrupted, or still running.
    Incomplete {
        /// Its directory or URL.
        location: String,
    },
    /// The store failed.
    Store(StoreError),
}

impl From<StoreError> for LocateError {
    fn from(e: StoreError) -> Self {
        LocateError::Store(e)
    }
}

/// Opens backup `b` of `store` and reads its manifest.
pub async fn locate(store: &dyn Store, b: &BackupId) -> Result<Located, LocateError> {
    let reader = store.open_restore(b)?;
    match reader.read_manifest().await {
        Ok(manifest) => Ok(Located { reader, manifest }),
        Err(StoreError::Repo(RepoError::Incomplete { .. }) | StoreError::Incomplete { .. }) => {
            Err(LocateError::Incomplete { location: reader.location().display().to_string() })
        }
        Err(StoreError::Repo(RepoError::NotFound { .. }) | StoreError::NotFound { .. }) => Err(LocateError::NotFound {
            location: reader.location().display().to_string(),
            hint: not_found_hint(store, b).await,
        }),
        Err(e) => Err(e.into()),
    }
}

async fn not_found_hint(store: &dyn Store, b: &BackupId) -> String {
    let Ok(all) = store.list(None, None).await else {
        return format!("There is no backup repository at {}: check --backup-dir", store.location());
    };
    let this_node = |s: &BackupSummary| s.cluster == b.cluster && s.host_id == b.host_id;
    let mut hint = this_node_backups(all.iter().filter(|s| this_node(s)).map(|s| (s.name.clone(), s.complete)));
    let elsewhere: Vec<String> = all
        .iter()
        .filter(|s| s.name == b.name.as_str() && !this_node(s))
        .map(|s| format!("cluster '{}' host ID {}", s.cluster, s.host_id))
        .collect();
    if !elsewhere.is_empty() {
        hint.push_str(&format!(
            "; a backup named '{}' exists for {} (restore it with --from-cluster/--from-node)",
            b.name.as_str(),
            elsewhere.join(", ")
        ));
    }
    hint.push_str(". `cassette list` shows every backup.");
    hint
}

/// The first sentence of a not-found hint (no final stop): this node's backups, given as
/// (name, complete), or that it has none.
fn this_node_backups(backups: impl IntoIterator<Item = (String, bool)>) -> String {
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
    use crate::{Transfer, open};

    fn id(cluster: &str, host: &str, name: &str) -> BackupId {
        BackupId {
            cluster: cluster.into(),
            host_id: host.into(),
            name: cassette_repo::BackupName::parse(name).unwrap(),
        }
    }

    #[tokio::test]
    async fn not_found_lists_this_nodes_backups_and_other_nodes_with_the_name() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("c1/h1/monday")).unwrap();
        std::fs::create_dir_all(d.path().join("c1/h2/tuesday")).unwrap();
        let store = open(d.path(), Transfer::default()).unwrap();
        let Err(LocateError::NotFound { hint, .. }) = locate(&*store, &id("c1", "h1", "tuesday")).await else {
            panic!("not found expected")
        };
        assert!(
            hint.contains("monday (incomplete)") && hint.contains("host ID h2") && hint.contains("--from-node"),
            "{hint}"
        );
        assert!(matches!(locate(&*store, &id("c1", "h1", "monday")).await, Err(LocateError::Incomplete { .. })));
    }

    #[tokio::test]
    async fn not_found_on_an_object_store_uses_the_same_words() {
        let store = open(std::path::Path::new("memory://"), Transfer::default()).unwrap();
        let Err(LocateError::NotFound { hint, .. }) = locate(&*store, &id("c1", "h1", "tuesday")).await else {
            panic!("not found expected")
        };
        assert_eq!(hint, "This node has no backups there. `cassette list` shows every backup.");
    }
}
