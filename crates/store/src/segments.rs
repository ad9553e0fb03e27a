//! A node's archived commitlog segments, in a directory or an object store: the layout and
//! record of `cassette_format::commitlog`, written segment first and record last.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use cassette_format::commitlog::{COMMITLOG_DIR, RECORD_SUFFIX, SEGMENT_RECORD_FORMAT, SEGMENT_RECORD_VERSION};
use cassette_format::{ContentHasher, SegmentName, SegmentRecord};
use cassette_object::{PutMode, RemoteRepo};
use cassette_repo::{FileEntry, RepoError};
use chrono::{DateTime, Utc};

use crate::{Result, StoreError, blocking};

/// A segment in the spool, to be archived.
#[derive(Clone, Debug)]
pub struct SpooledSegment {
    /// Its file.
    pub path: PathBuf,
    /// Its name.
    pub name: SegmentName,
    /// When Cassandra last wrote it.
    pub last_write: DateTime<Utc>,
    /// When it was handed to the archive command.
    pub archived_at: DateTime<Utc>,
    /// When archiving was set up on the node.
    pub archiving_since: DateTime<Utc>,
}

/// What [`SegmentArchive::records`] found.
#[derive(Debug, Default)]
pub struct Records {
    /// The archived segments' records.
    pub records: Vec<SegmentRecord>,
    /// Records that cannot be read: (path or URL, why).
    pub damaged: Vec<(String, String)>,
}

/// One node's archived commitlog segments.
#[async_trait]
pub trait SegmentArchive: Send + Sync {
    /// Where they are (a directory or a URL), for messages.
    fn location(&self) -> String;

    /// The record of every archived segment (a segment without its record is not archived).
    async fn records(&self) -> Result<Records>;

    /// Archives `segment`: stores its bytes (hashed on the way), then its record. A segment
    /// whose record is already stored with the same size is not stored again; the record is
    /// returned with `false`.
    async fn put(&self, segment: &SpooledSegment) -> Result<(SegmentRecord, bool)>;

    /// Copies an archived segment to `dest` through `dest.partial`, checking its size and
    /// BLAKE3 against its record before the rename.
    async fn fetch(&self, record: &SegmentRecord, dest: &Path) -> Result<()>;

    /// Reads an archived segment whole and says what is wrong with it (`None`: it matches).
    async fn check(&self, record: &SegmentRecord) -> Result<Option<String>>;
}

fn record_of(segment: &SpooledSegment, entry: &FileEntry) -> SegmentRecord {
    SegmentRecord {
        format: SEGMENT_RECORD_FORMAT.into(),
        format_version: SEGMENT_RECORD_VERSION,
        name: segment.name.file_name(),
        size: entry.size,
        blake3: entry.blake3.clone(),
        last_write: segment.last_write,
        archived_at: segment.archived_at,
        shipped_at: Utc::now(),
        archiving_since: segment.archiving_since,
        encoded: entry.encoded.clone(),
    }
}

/// A record's segment as a manifest entry, for the stores' verified reads.
fn entry_of(record: &SegmentRecord) -> FileEntry {
    FileEntry {
        path: record.name.clone(),
        size: record.size,
        blake3: record.blake3.clone(),
        digest_crc32: None,
        mtime_ns: 0,
        object: None,
        reused_from: None,
        encoded: record.encoded.clone(),
        lock: None,
    }
}

/// The segments of a node in a directory repository: `<node dir>/commitlog/`.
pub(crate) struct DirectorySegments {
    pub root: PathBuf,
    pub dir: PathBuf,
}

#[async_trait]
impl SegmentArchive for DirectorySegments {
    fn location(&self) -> String {
        self.dir.display().to_string()
    }

    async fn records(&self) -> Result<Records> {
        blocking(|| {
            let mut out = Records::default();
            if !cassette_repo::beneath::check_dir(&self.root, &self.dir)? {
                return Ok(out);
            }
            let entries = std::fs::read_dir(&self.dir).map_err(|e| RepoError::io("list", &self.dir, e))?;
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let Some(segment) = name.strip_suffix(RECORD_SUFFIX) else { continue };
                if SegmentName::parse(segment).is_none() {
                    continue;
                }
                let path = self.dir.join(&name);
                let read = cassette_repo::beneath::open_regular(&self.root, &path).and_then(|mut f| {
                    let mut bytes = Vec::new();
                    std::io::Read::read_to_end(&mut f, &mut bytes).map_err(|e| RepoError::io("read", &path, e))?;
                    Ok(bytes)
                });
                match read
                    .map_err(|e| e.to_string())
                    .and_then(|b| SegmentRecord::from_json(&b).map_err(|e| e.to_string()))
                {
                    Ok(r) if r.name == segment => out.records.push(r),
                    Ok(r) => out.damaged.push((path.display().to_string(), format!("it describes {}", r.name))),
                    Err(e) => out.damaged.push((path.display().to_string(), e)),
                }
            }
            out.records.sort_by_key(|r| r.segment());
            Ok(out)
        })
    }

    async fn put(&self, segment: &SpooledSegment) -> Result<(SegmentRecord, bool)> {
        blocking(|| {
            std::fs::create_dir_all(&self.root).map_err(|e| RepoError::io("create backup directory", &self.root, e))?;
            cassette_repo::beneath::create_dir_all(&self.root, &self.dir)?;
            let dst = self.dir.join(segment.name.file_name());
            let record_path = self.dir.join(format!("{}{RECORD_SUFFIX}", segment.name.file_name()));
            if let Some(existing) = read_record(&self.root, &record_path)? {
                return Ok((existing, false));
            }
            let stored = cassette_repo::copy_verified(&segment.path, &dst, None)?;
            let record = record_of(segment, &stored.to_entry(segment.name.file_name(), None));
            cassette_repo::write_file_atomically(&record_path, &record.to_json())?;
            Ok((record, true))
        })
    }

    async fn fetch(&self, record: &SegmentRecord, dest: &Path) -> Result<()> {
        blocking(|| {
            let src = self.dir.join(&record.name);
            let input = cassette_repo::beneath::open_regular(&self.root, &src)?;
            let partial = cassette_repo::partial_path(dest);
            let stored = copy_open(input, &src, &partial)?;
            if let Some(detail) = mismatch(&stored, record) {
                let _ = std::fs::remove_file(&partial);
                return Err(StoreError::Mismatch { what: src.display().to_string(), detail });
            }
            std::fs::rename(&partial, dest).map_err(|e| RepoError::io("rename into place", dest, e))?;
            Ok(())
        })
    }

    async fn check(&self, record: &SegmentRecord) -> Result<Option<String>> {
        blocking(|| {
            let src = self.dir.join(&record.name);
            match cassette_repo::beneath::open_regular(&self.root, &src) {
                Ok(f) => Ok(mismatch(&cassette_repo::hash_open_file(f, &src)?, record)),
                Err(RepoError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                    Ok(Some("missing".into()))
                }
                Err(e) => Err(e.into()),
            }
        })
    }
}

fn read_record(root: &Path, path: &Path) -> Result<Option<SegmentRecord>> {
    match cassette_repo::beneath::open_regular(root, path) {
        Ok(mut f) => {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut f, &mut bytes).map_err(|e| RepoError::io("read", path, e))?;
            Ok(SegmentRecord::from_json(&bytes).ok())
        }
        Err(RepoError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Copies an opened file to `to` (fsynced), hashing it.
fn copy_open(mut input: std::fs::File, src: &Path, to: &Path) -> Result<cassette_format::StoredFile> {
    let mut out = std::fs::File::create(to).map_err(|e| RepoError::io("create", to, e))?;
    let mut hasher = ContentHasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = std::io::Read::read(&mut input, &mut buf).map_err(|e| RepoError::io("read", src, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        std::io::Write::write_all(&mut out, &buf[..n]).map_err(|e| RepoError::io("write", to, e))?;
    }
    out.sync_all().map_err(|e| RepoError::io("sync", to, e))?;
    Ok(hasher.finish(0))
}

fn mismatch(stored: &cassette_format::StoredFile, record: &SegmentRecord) -> Option<String> {
    if stored.size != record.size {
        Some(format!("{} bytes, its record says {}", stored.size, record.size))
    } else if stored.blake3 != record.blake3 {
        Some(format!("BLAKE3 {} differs from its record's {}", stored.blake3, record.blake3))
    } else {
        None
    }
}

/// The segments of a node on object storage: `<node>/commitlog/`.
pub(crate) struct BucketSegments {
    pub repo: Arc<RemoteRepo>,
    pub prefix: object_store::path::Path,
}

impl BucketSegments {
    fn key(&self, name: &str) -> object_store::path::Path {
        cassette_object::repo::join(&self.prefix, name)
    }
}

#[async_trait]
impl SegmentArchive for BucketSegments {
    fn location(&self) -> String {
        self.repo.url_of(&self.prefix)
    }

    async fn records(&self) -> Result<Records> {
        let mut out = Records::default();
        let objects = self.repo.objects_in(&self.prefix).await?;
        let names: Vec<String> = objects
            .iter()
            .filter_map(|o| o.location.filename().map(str::to_owned))
            .filter(|n| n.strip_suffix(RECORD_SUFFIX).is_some_and(|s| SegmentName::parse(s).is_some()))
            .collect();
        use futures::StreamExt;
        let reads = futures::stream::iter(names.into_iter().map(|n| async move {
            let key = self.key(&n);
            (n, self.repo.get_small(&key).await)
        }))
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
        for (name, read) in reads {
            let url = self.repo.url_of(&self.key(&name));
            let segment = name.strip_suffix(RECORD_SUFFIX).unwrap_or_default();
            match read? {
                None => continue,
                Some(bytes) => match SegmentRecord::from_json(&bytes) {
                    Ok(r) if r.name == segment => out.records.push(r),
                    Ok(r) => out.damaged.push((url, format!("it describes {}", r.name))),
                    Err(e) => out.damaged.push((url, e.to_string())),
                },
            }
        }
        out.records.sort_by_key(|r| r.segment());
        Ok(out)
    }

    async fn put(&self, segment: &SpooledSegment) -> Result<(SegmentRecord, bool)> {
        let name = segment.name.file_name();
        let record_key = self.key(&format!("{name}{RECORD_SUFFIX}"));
        if let Some(bytes) = self.repo.get_small(&record_key).await?
            && let Ok(existing) = SegmentRecord::from_json(&bytes)
        {
            return Ok((existing, false));
        }
        // Encoded as the repository's format says (read once per process).
        crate::bucket::BucketStore::on(self.repo.clone()).check_format(false).await?;
        let uploaded = self.repo.upload_file(&segment.path, &self.key(&name), None).await?;
        let entry = FileEntry { encoded: uploaded.encoded.clone(), ..uploaded.to_entry(name, None) };
        let record = record_of(segment, &entry);
        match self.repo.put_small(&record_key, record.to_json(), PutMode::Create).await {
            Ok(()) => Ok((record, true)),
            // A shipper killed after its record was put, and rerun meanwhile by another.
            Err(StoreError::AlreadyComplete { .. }) => Ok((record, false)),
            Err(e) => Err(e),
        }
    }

    async fn fetch(&self, record: &SegmentRecord, dest: &Path) -> Result<()> {
        self.repo.download_verified(&self.key(&record.name), &entry_of(record), dest).await
    }

    async fn check(&self, record: &SegmentRecord) -> Result<Option<String>> {
        self.repo.check_object(&self.key(&record.name), &entry_of(record)).await
    }
}

/// `<node>/commitlog` under a directory repository's root.
pub(crate) fn directory(root: &Path, cluster: &str, host_id: &str) -> Result<DirectorySegments> {
    let node = cassette_repo::RepoLayout::new(root).node_dir(cluster, host_id)?;
    Ok(DirectorySegments { root: root.to_owned(), dir: node.join(COMMITLOG_DIR) })
}

/// `<node>/commitlog` under an object store repository's root.
pub(crate) fn bucket(repo: &Arc<RemoteRepo>, cluster: &str, host_id: &str) -> Result<BucketSegments> {
    let node = repo.node_key(cluster, host_id)?;
    Ok(BucketSegments { repo: repo.clone(), prefix: node.join(COMMITLOG_DIR) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spooled(dir: &Path, name: &str, bytes: &[u8]) -> SpooledSegment {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        let t = Utc::now();
        SpooledSegment {
            path,
            name: SegmentName::parse(name).unwrap(),
            last_write: t,
            archived_at: t,
            archiving_since: t,
        }
    }

    #[tokio::test]
    async fn a_segment_is_stored_once_with_its_record_and_read_back_verified() {
        let tmp = tempfile::tempdir().unwrap();
        let store = crate::open(&tmp.path().join("repo"), cassette_object::Transfer::default()).unwrap();
        let archive = store.segments("prod", "5d3c7a9e-0000-4000-8000-000000000001").unwrap();
        let seg = spooled(tmp.path(), "CommitLog-7-1733139300001.log", b"mutations");
        let (record, stored) = archive.put(&seg).await.unwrap();
        assert!(stored);
        assert_eq!((record.size, record.blake3.as_str()), (9, blake3::hash(b"mutations").to_hex().as_str()));
        let (again, stored) = archive.put(&seg).await.unwrap();
        assert!(!stored, "a segment whose record exists is not stored again");
        assert_eq!(again, record);
        assert_eq!(archive.records().await.unwrap().records, vec![record.clone()]);

        let out = tmp.path().join("fetched");
        archive.fetch(&record, &out).await.unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"mutations");
        assert_eq!(archive.check(&record).await.unwrap(), None);

        // Damaged where it is stored: refused, nothing left at the destination.
        let stored_path = Path::new(&archive.location()).join(&record.name);
        std::fs::write(&stored_path, b"mutationz").unwrap();
        let out2 = tmp.path().join("fetched2");
        assert!(matches!(archive.fetch(&record, &out2).await, Err(StoreError::Mismatch { .. })));
        assert!(!out2.exists() && !cassette_repo::partial_path(&out2).exists());
        assert!(archive.check(&record).await.unwrap().unwrap().contains("BLAKE3"));
        std::fs::remove_file(&stored_path).unwrap();
        assert_eq!(archive.check(&record).await.unwrap().as_deref(), Some("missing"));
    }

    #[tokio::test]
    async fn the_commitlog_directory_is_not_a_backup() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("repo");
        let store = crate::open(&root, cassette_object::Transfer::default()).unwrap();
        let archive = store.segments("prod", "h1").unwrap();
        archive.put(&spooled(tmp.path(), "CommitLog-7-1733139300001.log", b"x")).await.unwrap();
        assert!(store.list(None, None).await.unwrap().is_empty(), "no backup listed");
    }
}
