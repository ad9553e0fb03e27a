//! A repository on object storage: the store behind a URL, and the keys of the layout.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use object_store::path::Path as Key;
use object_store::{ObjectStore, RetryConfig};

use crate::error::{ObjectError, Result};
use crate::limit::{Bandwidth, Buffers};

/// Whether `location` names an object store (`s3://`, `gs://`, `az://`, `memory://`) rather than
/// a local directory.
pub fn is_remote_url(location: &str) -> bool {
    ["s3://", "gs://", "az://", "azure://", "abfs://", "memory://"].iter().any(|p| location.starts_with(p))
}

/// S3's smallest multipart part (but the last one).
pub(crate) const MIN_PART_SIZE: usize = 5 << 20;

/// How transfers run: the size of a multipart part, how many part buffers may be in flight
/// (the memory bound is `part_size × buffers`), how many files at once, and an optional
/// bandwidth limit in bytes per second.
#[derive(Clone, Debug)]
pub struct Transfer {
    /// Bytes per part of a multipart upload (and per read of a file); files up to this size go
    /// up in one PUT.
    pub part_size: usize,
    /// Part buffers in flight across the whole process.
    pub buffers: usize,
    /// Files transferred at once.
    pub parallel_files: usize,
    /// Bytes per second across all transfers, if limited.
    pub bandwidth: Option<u64>,
    /// The identities that read an encrypted repository's objects (and whose public keys
    /// encrypt new ones): `--key-file`.
    pub keyring: Option<Arc<cassette_seal::Keyring>>,
    /// The lock every object a backup writes is put under (`backup --object-lock-days`): S3
    /// Object Lock retention, in a bucket made with Object Lock enabled.
    pub object_lock: Option<cassette_format::LockRequest>,
}

impl Default for Transfer {
    fn default() -> Self {
        // 8 buffers of 5 MiB (S3's smallest part): 40 MiB in flight at most, enough to keep a
        // 10 Gbit/s link busy at typical S3 latencies, and the process under 100 MB.
        Transfer {
            part_size: MIN_PART_SIZE,
            buffers: 8,
            parallel_files: 8,
            bandwidth: None,
            keyring: None,
            object_lock: None,
        }
    }
}

/// How many of `parallel_files` files are encoded at once: two per core at most. Encoding is
/// CPU work, so more would not go faster, and each encoder holds its zstd window and buffers.
/// Only the encoding waits: a small file's PUT starts once it is encoded, so as many objects
/// are in flight as in a plain repository.
fn encoders_for(parallel_files: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    parallel_files.clamp(1, 2 * cores)
}

/// A repository on object storage.
#[derive(Clone)]
pub struct RemoteRepo {
    pub(crate) store: Arc<dyn ObjectStore>,
    /// The key prefix every key of the repository starts with (from the URL's path).
    pub(crate) root: Key,
    url: String,
    pub(crate) transfer: Transfer,
    pub(crate) buffers: Buffers,
    pub(crate) bandwidth: Option<Arc<Bandwidth>>,
    /// How new objects are encoded, once the repository's format object said so (unset: a
    /// plain repository, or one whose format was not read yet). Shared by every clone.
    pub(crate) codec: Arc<OnceLock<Arc<cassette_seal::Codec>>>,
    /// Files encoded at once (see [`encoders_for`]); shared by every clone.
    pub(crate) encoders: Arc<tokio::sync::Semaphore>,
    /// The same bucket through clients that put every object under `transfer.object_lock`:
    /// what a backup writes goes through them (see [`RemoteRepo::backup_puts`]).
    pub(crate) locking: Option<crate::lock::Locking>,
}

impl std::fmt::Debug for RemoteRepo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteRepo").field("url", &self.url).finish()
    }
}

impl RemoteRepo {
    /// Opens the repository at `url`: `s3://bucket/prefix` (credentials, region and endpoint
    /// from the usual `AWS_*` environment variables: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_REGION`, `AWS_ENDPOINT` for S3-compatible servers, `AWS_ALLOW_HTTP` for plain HTTP),
    /// `gs://bucket/prefix` (`GOOGLE_*`), `az://container/prefix` (`AZURE_*`), or
    /// `memory://` (in this process only: for tests). Nothing is contacted yet.
    pub fn open(url: &str, transfer: Transfer) -> Result<RemoteRepo> {
        let invalid = |reason: String| ObjectError::InvalidUrl { url: url.to_string(), reason };
        let (scheme, rest) = url.split_once("://").ok_or_else(|| invalid("no scheme".into()))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() && scheme != "memory" {
            return Err(invalid(format!("no bucket: write {scheme}://BUCKET/PREFIX")));
        }
        let retry = RetryConfig { max_retries: 10, retry_timeout: Duration::from_secs(180), ..Default::default() };
        let bucket_url = format!("{scheme}://{bucket}");
        let s3 = || object_store::aws::AmazonS3Builder::from_env().with_url(&bucket_url).with_retry(retry.clone());
        let locking = match (&transfer.object_lock, scheme) {
            (None, _) => None,
            (Some(lock), "s3") => {
                let client = |whole: bool| -> Result<Arc<dyn ObjectStore>> {
                    Ok(Arc::new(
                        s3().with_client_options(crate::lock::client_options(&lock.put, whole))
                            // S3 wants a checksum with every locked put.
                            .with_checksum_algorithm(object_store::aws::Checksum::SHA256)
                            .build()
                            .map_err(|e| invalid(e.to_string()))?,
                    ))
                };
                Some(crate::lock::Locking { whole: client(true)?, multipart: client(false)? })
            }
            (Some(_), _) => {
                return Err(ObjectError::LockUnsupported {
                    url: url.to_string(),
                    detail: crate::lock::UNSUPPORTED.into(),
                });
            }
        };
        let store: Arc<dyn ObjectStore> = match scheme {
            "s3" => Arc::new(s3().build().map_err(|e| invalid(e.to_string()))?),
            "gs" => Arc::new(
                object_store::gcp::GoogleCloudStorageBuilder::from_env()
                    .with_url(&bucket_url)
                    .with_retry(retry)
                    .build()
                    .map_err(|e| invalid(e.to_string()))?,
            ),
            "az" | "azure" | "abfs" => Arc::new(
                object_store::azure::MicrosoftAzureBuilder::from_env()
                    .with_url(&bucket_url)
                    .with_retry(retry)
                    .build()
                    .map_err(|e| invalid(e.to_string()))?,
            ),
            "memory" => Arc::new(object_store::memory::InMemory::new()),
            other => {
                return Err(invalid(format!(
                    "unknown scheme '{other}': use a directory, s3://bucket/prefix, gs://bucket/prefix or az://container/prefix"
                )));
            }
        };
        Ok(RemoteRepo { locking, ..RemoteRepo::with_store(store, url, prefix, transfer) })
    }

    /// A repository on an existing store (tests: an `InMemory` store shared by two handles).
    pub fn with_store(store: Arc<dyn ObjectStore>, url: &str, prefix: &str, transfer: Transfer) -> RemoteRepo {
        let root = prefix.split('/').filter(|p| !p.is_empty()).fold(Key::default(), |k, p| k.clone().join(p));
        RemoteRepo {
            store,
            root,
            url: url.trim_end_matches('/').to_string(),
            buffers: Buffers::new(transfer.buffers, transfer.part_size.max(MIN_PART_SIZE)),
            bandwidth: transfer.bandwidth.map(|b| Arc::new(Bandwidth::new(b))),
            codec: Arc::default(),
            encoders: Arc::new(tokio::sync::Semaphore::new(encoders_for(transfer.parallel_files))),
            transfer,
            locking: None,
        }
    }

    /// Where the objects of a backup (its files, metadata and manifest) are put: through the
    /// locking client when backups are locked. Node indexes, restore markers and tombstones
    /// are not locked: they are rewritten and removed. Single puts.
    pub(crate) fn backup_puts(&self) -> &Arc<dyn ObjectStore> {
        self.locking.as_ref().map_or(&self.store, |l| &l.whole)
    }

    /// Where a backup's multipart uploads go (see [`RemoteRepo::backup_puts`]).
    pub(crate) fn backup_multipart(&self) -> &Arc<dyn ObjectStore> {
        self.locking.as_ref().map_or(&self.store, |l| &l.multipart)
    }

    /// The lock a backup asks for (what its new objects are put under), if any.
    pub fn object_lock(&self) -> Option<&cassette_format::LockRequest> {
        self.locking.as_ref().and(self.transfer.object_lock.as_ref())
    }

    /// This repository with its objects encoded (and read) through `codec`.
    pub fn with_codec(self, codec: Arc<cassette_seal::Codec>) -> RemoteRepo {
        self.set_codec(codec);
        self
    }

    /// Sets how new objects are encoded (the repository's format object says how); the first
    /// call wins.
    pub fn set_codec(&self, codec: Arc<cassette_seal::Codec>) {
        let _ = self.codec.set(codec);
    }

    /// The fingerprint of the key new objects are encrypted for, if they are.
    pub fn encryption_key(&self) -> Option<String> {
        self.codec.get().and_then(|c| c.key_fingerprint().map(str::to_owned))
    }

    /// How new objects are encoded, if they are.
    pub(crate) fn writing_codec(&self) -> Option<Arc<cassette_seal::Codec>> {
        self.codec.get().cloned()
    }

    /// What decodes an encoded object: the repository's codec, or (before its format object
    /// was read) the key file's identities alone. Encoded objects say so in their first line.
    pub(crate) fn reading_codec(&self) -> Arc<cassette_seal::Codec> {
        match self.codec.get() {
            Some(c) => c.clone(),
            None => Arc::new(cassette_seal::Codec::read_only(self.transfer.keyring.clone())),
        }
    }

    /// The URL the repository was opened with (no credentials: those come from the environment).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The transfer settings.
    pub fn transfer(&self) -> &Transfer {
        &self.transfer
    }

    /// The store (for tests and tools that count objects).
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The URL of a key, for messages.
    pub fn url_of(&self, key: &Key) -> String {
        let rel = key.as_ref().strip_prefix(self.root.as_ref()).unwrap_or(key.as_ref()).trim_start_matches('/');
        format!("{}/{}", self.url, rel)
    }

    /// `<root>/<cluster>/<host_id>`.
    pub fn node_key(&self, cluster: &str, host_id: &str) -> Result<Key> {
        let cluster = cassette_repo::path_component("cluster name", cluster)?;
        let host = cassette_repo::path_component("host ID", host_id)?;
        Ok(self.root.clone().join(cluster).join(host))
    }

    /// The keys of one backup.
    pub fn backup(&self, cluster: &str, host_id: &str, name: &cassette_repo::BackupName) -> Result<RemoteBackup> {
        let node = self.node_key(cluster, host_id)?;
        Ok(RemoteBackup { prefix: node.clone().join(name.as_str()), node, name: name.to_string() })
    }

    /// The repository's root key (the URL's prefix).
    pub fn root(&self) -> &Key {
        &self.root
    }
}

/// The keys of one backup on object storage.
#[derive(Clone, Debug)]
pub struct RemoteBackup {
    /// `<root>/<cluster>/<host_id>`.
    pub node: Key,
    /// `<node>/<backup_name>`.
    pub prefix: Key,
    /// The backup name.
    pub name: String,
}

impl RemoteBackup {
    /// The key of a file at `relative` (`/`-separated, as in the manifest) in this backup.
    pub fn key(&self, relative: &str) -> Key {
        join(&self.prefix, relative)
    }

    /// `manifest.json`.
    pub fn manifest(&self) -> Key {
        self.prefix.clone().join("manifest.json")
    }

    /// The tombstone a deletion writes first.
    pub fn tombstone(&self) -> Key {
        self.key(TOMBSTONE)
    }

    /// The marker a restore of this backup by `host_id` keeps fresh (the object-store twin of
    /// a directory repository's restore journal): purge keeps a backup whose marker is younger
    /// than the grace period.
    pub fn restore_marker(&self, host_id: &str) -> Key {
        self.key(&format!("{RESTORE_MARKER_PREFIX}{host_id}.json"))
    }

    /// Where the bytes of a manifest entry are: its `object` (relative to the node) when it
    /// reuses an earlier backup's upload, else its own path.
    pub fn data_key(&self, entry: &cassette_repo::FileEntry) -> Key {
        match &entry.object {
            Some(object) => join(&self.node, object),
            None => self.key(&entry.path),
        }
    }

    /// `entry.object` for a file stored by this backup at `relative`: its path from the node.
    pub fn object_ref(&self, relative: &str) -> String {
        format!("{}/{}", self.name, relative)
    }
}

/// The tombstone's path in a backup.
pub const TOMBSTONE: &str = "cassette-meta/deleted.json";
/// The start of a restore marker's path in a backup (`restore-<host_id>.json`).
pub const RESTORE_MARKER_PREFIX: &str = "cassette-meta/restore-";

/// `base` joined with a `/`-separated relative path.
pub fn join(base: &Key, relative: &str) -> Key {
    relative.split('/').filter(|p| !p.is_empty()).fold(base.clone(), |k, p| k.join(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_keys() {
        assert!(is_remote_url("s3://b/p") && is_remote_url("memory://") && !is_remote_url("/var/backup"));
        let repo = RemoteRepo::open("memory://x/some/prefix/", Transfer::default()).unwrap();
        let name = cassette_repo::BackupName::parse("nightly").unwrap();
        let b = repo.backup("Test Cluster", "h1", &name).unwrap();
        assert_eq!(
            b.key("ks/t/nb-1-big-Data.db").as_ref(),
            "some/prefix/Test Cluster/h1/nightly/ks/t/nb-1-big-Data.db"
        );
        assert_eq!(repo.url_of(&b.manifest()), "memory://x/some/prefix/Test Cluster/h1/nightly/manifest.json");
        assert!(RemoteRepo::open("ftp://x/y", Transfer::default()).is_err());
        assert!(RemoteRepo::open("s3:///y", Transfer::default()).unwrap_err().to_string().contains("no bucket"));
        assert!(repo.backup("..", "h1", &name).is_err());
    }
}
