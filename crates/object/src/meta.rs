//! The small objects of a remote backup: its manifest (written last, create-only), its state,
//! the node index, and listings of what a prefix holds.

use std::collections::BTreeMap;
use std::path::Path;

use cassette_repo::index::{IndexEntry, NodeIndex};
use cassette_repo::{BackupState, FormatError, Manifest, ManifestFile};
use futures::TryStreamExt;
use object_store::path::Path as Key;
use object_store::{ObjectMeta, ObjectStoreExt, PutMode};

use crate::error::{ObjectError, Result};
use crate::repo::{RemoteBackup, RemoteRepo};

/// A name or document breaking the repository format is an error of the format shared with
/// local repositories (`BackupName::parse(..)?` in this crate).
impl From<FormatError> for ObjectError {
    fn from(e: FormatError) -> Self {
        ObjectError::Repo(e.into())
    }
}

impl RemoteRepo {
    /// Every object under `prefix` (recursively).
    pub async fn objects(&self, prefix: &Key) -> Result<Vec<ObjectMeta>> {
        self.store
            .list(Some(prefix))
            .try_collect()
            .await
            .map_err(|e| ObjectError::store("list", self.url_of(prefix), e))
    }

    /// The objects directly under `prefix` (one level, as a directory listing).
    pub async fn objects_in(&self, prefix: &Key) -> Result<Vec<ObjectMeta>> {
        self.store
            .list_with_delimiter(Some(prefix))
            .await
            .map(|l| l.objects)
            .map_err(|e| ObjectError::store("list", self.url_of(prefix), e))
    }

    /// The object `key`'s size and modification time, if it exists (one HEAD).
    pub async fn stamp(&self, key: &Key) -> Result<Option<cassette_repo::index::ManifestStamp>> {
        match self.store.head(key).await {
            Ok(m) => Ok(Some(cassette_repo::index::ManifestStamp {
                size: m.size,
                mtime_ns: m.last_modified.timestamp_nanos_opt().unwrap_or(i64::MAX),
            })),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(ObjectError::store("look up", self.url_of(key), e)),
        }
    }

    /// Whether `key` exists.
    pub async fn exists(&self, key: &Key) -> Result<bool> {
        match self.store.head(key).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(ObjectError::store("look up", self.url_of(key), e)),
        }
    }

    /// Complete (manifest), incomplete (objects but no manifest) or absent. A backup being
    /// deleted (tombstone) is absent for writers only once its objects are gone; it counts as
    /// incomplete until then, so its name is not reused halfway through a deletion.
    pub async fn state(&self, b: &RemoteBackup) -> Result<BackupState> {
        if self.exists(&b.manifest()).await? {
            return Ok(BackupState::Complete);
        }
        let mut listing = self.store.list(Some(&b.prefix));
        match listing.try_next().await {
            Ok(Some(_)) => Ok(BackupState::Incomplete),
            Ok(None) => Ok(BackupState::Absent),
            Err(e) => Err(ObjectError::store("list", self.url_of(&b.prefix), e)),
        }
    }

    /// Reads and checks the manifest of a complete backup.
    pub async fn read_manifest(&self, b: &RemoteBackup) -> Result<Manifest> {
        let url = self.url_of(&b.manifest());
        match self.get_small(&b.manifest()).await? {
            Some(bytes) => {
                let m = Manifest::parse(Path::new(&url), &bytes)?;
                // A manifest copied or swapped from another backup is not this one's.
                if m.backup_name != b.name {
                    return Err(cassette_repo::RepoError::ManifestMismatch {
                        path: url.into(),
                        found: m.backup_name,
                        expected: b.name.clone(),
                    }
                    .into());
                }
                Ok(m)
            }
            None => match self.state(b).await? {
                BackupState::Absent => Err(ObjectError::NotFound { url: self.url_of(&b.prefix) }),
                _ => Err(ObjectError::Incomplete { url: self.url_of(&b.prefix) }),
            },
        }
    }

    /// Writes the manifest, create-only: this completes the backup, once.
    pub async fn write_manifest(&self, b: &RemoteBackup, m: &Manifest) -> Result<()> {
        self.put_backup_small(&b.manifest(), m.to_json(), PutMode::Create).await
    }

    fn index_key(node: &Key) -> Key {
        node.clone().join(".index.json")
    }

    /// The node index (empty when missing, damaged or of a newer version: it is a cache).
    pub async fn load_index(&self, node: &Key) -> BTreeMap<String, IndexEntry> {
        match self.read_index(node).await {
            NodeIndex::Loaded(entries) => entries,
            _ => BTreeMap::new(),
        }
    }

    /// The node index as read: missing, damaged, of a newer version, or its entries.
    pub async fn read_index(&self, node: &Key) -> NodeIndex {
        match self.get_small(&Self::index_key(node)).await {
            Ok(Some(bytes)) => NodeIndex::from_json(&bytes),
            Ok(None) => NodeIndex::Missing,
            Err(e) => NodeIndex::Damaged(e.to_string()),
        }
    }

    /// Changes the node index. Object stores have no lock: a concurrent writer can lose an
    /// entry, which the next `list` adds back from the manifest (the index is a cache). An
    /// index written by a newer cassette is left alone (and read around); one that cannot be
    /// read is replaced.
    pub async fn update_index(&self, node: &Key, change: impl FnOnce(&mut BTreeMap<String, IndexEntry>)) -> Result<()> {
        let index = self.read_index(node).await;
        if !index.may_overwrite(false) {
            tracing::warn!(node = %self.url_of(node), index = ?index, "node index written by a newer cassette; not updated");
            return Ok(());
        }
        let mut entries = match index {
            NodeIndex::Loaded(entries) => entries,
            _ => BTreeMap::new(),
        };
        change(&mut entries);
        self.put_small(&Self::index_key(node), cassette_repo::index::to_json(&entries), PutMode::Overwrite).await
    }
}
