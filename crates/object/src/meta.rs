//! The small objects of a remote backup: its manifest (written last, create-only), its state,
//! the node index, and listings of what a prefix holds.

use std::collections::BTreeMap;
use std::path::Path;

use cassette_repo::index::{INDEX_FORMAT, INDEX_VERSION, IndexEntry};
use cassette_repo::{BackupState, Manifest};
use futures::TryStreamExt;
use object_store::path::Path as Key;
use object_store::{ObjectMeta, ObjectStoreExt, PutMode};
use serde::{Deserialize, Serialize};

use crate::error::{ObjectError, Result};
use crate::repo::{RemoteBackup, RemoteRepo};

#[derive(Serialize, Deserialize)]
struct IndexFile {
    format: String,
    format_version: u32,
    backups: Vec<IndexEntry>,
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
        self.put_small(&b.manifest(), m.to_json(), PutMode::Create).await
    }

    fn index_key(node: &Key) -> Key {
        node.clone().join(".index.json")
    }

    /// The node index (empty when missing, damaged or of a newer version: it is a cache).
    pub async fn load_index(&self, node: &Key) -> BTreeMap<String, IndexEntry> {
        let Ok(Some(bytes)) = self.get_small(&Self::index_key(node)).await else { return BTreeMap::new() };
        match serde_json::from_slice::<IndexFile>(&bytes) {
            Ok(f) if f.format == INDEX_FORMAT && f.format_version == INDEX_VERSION => {
                f.backups.into_iter().map(|e| (e.name.clone(), e)).collect()
            }
            _ => BTreeMap::new(),
        }
    }

    /// Changes the node index. Object stores have no lock: a concurrent writer can lose an
    /// entry, which the next `list` adds back from the manifest (the index is a cache).
    pub async fn update_index(&self, node: &Key, change: impl FnOnce(&mut BTreeMap<String, IndexEntry>)) -> Result<()> {
        let mut entries = self.load_index(node).await;
        change(&mut entries);
        let file = IndexFile {
            format: INDEX_FORMAT.into(),
            format_version: INDEX_VERSION,
            backups: entries.into_values().collect(),
        };
        let json = serde_json::to_vec(&file).expect("an index serializes");
        self.put_small(&Self::index_key(node), json, PutMode::Overwrite).await
    }
}
