//! Moving bytes: uploading a snapshot file (hashed and checked on the way), putting small
//! objects, downloading an object into a local file (verified before it is renamed into place),
//! and hashing an object without storing it.
//!
//! Uploads read a file one part at a time into one of the repository's part buffers; files up
//! to one part go up in one PUT, larger ones as a multipart upload whose parts are sent in
//! parallel (each part holds its buffer until it is acknowledged). A `Data.db` whose CRC32
//! differs from Cassandra's `Digest.crc32` is never completed: its multipart upload is aborted.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use cassette_repo::{ContentHasher, StoredFile};
use futures::StreamExt;
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use tokio::sync::OwnedSemaphorePermit as Permit;

use crate::error::{ObjectError, Result};
use crate::limit::Buffer;
use crate::repo::{MIN_PART_SIZE, RemoteRepo};

/// What an upload stored: the file's size and digests (the format's [`StoredFile`], one
/// `to_entry` for every store), and how many parts it took.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uploaded {
    /// Size, BLAKE3, CRC32 and modification time of the bytes stored.
    pub file: StoredFile,
    /// Parts sent (1 for a single PUT).
    pub parts: usize,
    /// How the object is encoded, in an encoded repository (`None`: stored as it is).
    pub encoded: Option<cassette_format::encoding::Encoded>,
}

/// `up.size`, `up.blake3`, `up.to_entry(..)`: an upload is first of all a stored file.
impl std::ops::Deref for Uploaded {
    type Target = StoredFile;
    fn deref(&self) -> &StoredFile {
        &self.file
    }
}

pub(crate) fn mtime_ns(meta: &std::fs::Metadata) -> i64 {
    use std::os::unix::fs::MetadataExt;
    meta.mtime() * 1_000_000_000 + meta.mtime_nsec()
}

impl RemoteRepo {
    /// Uploads `src` to `key`. With `expected_crc32` (a `Data.db`), the upload is completed only
    /// if the bytes' CRC32 matches; otherwise nothing is left at `key`.
    pub async fn upload_file(&self, src: &Path, key: &Key, expected_crc32: Option<u32>) -> Result<Uploaded> {
        if let Some(codec) = self.writing_codec() {
            return self.upload_sealed(codec, src, key, expected_crc32).await;
        }
        let file = std::fs::File::open(src).map_err(|e| ObjectError::io("open", src, e))?;
        let meta = file.metadata().map_err(|e| ObjectError::io("stat", src, e))?;
        let (size, mtime) = (meta.len(), mtime_ns(&meta));
        // S3 allows 10,000 parts: larger parts for files beyond 10,000 × part_size.
        let part_size = self.transfer.part_size.max(size.div_ceil(9_000) as usize).max(MIN_PART_SIZE);
        let mut state = Some((file, ContentHasher::new()));
        let check_crc = |hashes: &ContentHasher| -> Result<()> {
            match expected_crc32 {
                Some(expect) if hashes.crc32() != expect => Err(ObjectError::Mismatch {
                    what: src.display().to_string(),
                    detail: format!(
                        "CRC32 {:08x} does not match its Digest.crc32 {expect:08x}: the SSTable is corrupt on the node, not uploaded (run `nodetool scrub` or restore that table)",
                        hashes.crc32()
                    ),
                }),
                _ => Ok(()),
            }
        };
        // Reads the next part into a pool buffer (waiting for one), on a blocking thread.
        let read_next =
            async |state: &mut Option<(std::fs::File, ContentHasher)>, len: usize| -> Result<(Bytes, Permit)> {
                let mut buf = self.buffers.take().await;
                let (mut file, mut hashes) = state.take().expect("file state");
                let (result, file, hashes, buf) = tokio::task::spawn_blocking(move || {
                    let r = buf.fill(&mut file, len).map(|bytes| hashes.update(bytes));
                    (r, file, hashes, buf)
                })
                .await
                .expect("read task");
                *state = Some((file, hashes));
                result.map_err(|e| ObjectError::io("read", src, e))?;
                Ok(buf.into_bytes())
            };

        if size <= part_size as u64 {
            let (bytes, permit) = read_next(&mut state, part_size).await?;
            let (_, hashes) = state.as_ref().expect("file state");
            check_crc(hashes)?;
            self.put_whole(key, bytes).await?;
            drop(permit);
            let (_, hashes) = state.take().expect("file state");
            return done(hashes, size, mtime, 1, src);
        }

        let mut parts = self.start_parts(key).await?;
        let mut sent = 0;
        let outcome: Result<()> = async {
            loop {
                let (bytes, permit) = read_next(&mut state, part_size).await?;
                if bytes.is_empty() && sent > 0 {
                    break;
                }
                sent += 1;
                let read = state.as_ref().expect("file state").1.size();
                let last = bytes.len() < part_size || read >= size;
                parts.send(bytes, permit).await?;
                if last {
                    break;
                }
            }
            check_crc(&state.as_ref().expect("file state").1)
        }
        .await;
        let count = parts.finish(outcome).await?;
        let (_, hashes) = state.take().expect("file state");
        done(hashes, size, mtime, count, src)
    }

    /// Puts a small object whole (node indexes, tombstones, restore markers), never locked.
    pub async fn put_small(&self, key: &Key, bytes: Vec<u8>, mode: PutMode) -> Result<()> {
        self.put_encoded(&self.store, key, bytes, mode).await
    }

    /// Puts a small object of a backup whole (its schema, its manifest), under the backup's
    /// object lock when there is one.
    pub async fn put_backup_small(&self, key: &Key, bytes: Vec<u8>, mode: PutMode) -> Result<()> {
        self.put_encoded(self.backup_puts(), key, bytes, mode).await
    }

    async fn put_encoded(&self, to: &Arc<dyn ObjectStore>, key: &Key, bytes: Vec<u8>, mode: PutMode) -> Result<()> {
        let bytes = match self.writing_codec() {
            Some(codec) => codec.encode(&bytes),
            None => bytes,
        };
        put_to(to, &self.url_of(key), key, bytes, mode).await
    }

    /// Puts a small object as it is, in any repository (the repository format object, which
    /// says how the others are encoded).
    pub async fn put_plain(&self, key: &Key, bytes: Vec<u8>, mode: PutMode) -> Result<()> {
        put_to(&self.store, &self.url_of(key), key, bytes, mode).await
    }

    /// Reads a small object whole; `None` if it does not exist.
    pub async fn get_small(&self, key: &Key) -> Result<Option<Bytes>> {
        let Some(stored) = self.get_plain(key).await? else { return Ok(None) };
        let what = self.url_of(key);
        if stored.starts_with(cassette_seal::HEADER_MAGIC) {
            return Ok(Some(Bytes::from(self.reading_codec().decode(&stored, &what)?)));
        }
        match self.writing_codec() {
            // In an encrypted repository a plain object was put there by something else.
            Some(c) if c.encrypts() => {
                Err(cassette_seal::SealError::NotEncoded { what, detail: "it has no cassette-object header".into() }
                    .into())
            }
            _ => Ok(Some(stored)),
        }
    }

    /// Reads a small object as it is stored; `None` if it does not exist.
    pub async fn get_plain(&self, key: &Key) -> Result<Option<Bytes>> {
        match self.store.get(key).await {
            Ok(r) => Ok(Some(r.bytes().await.map_err(|e| ObjectError::store("read", self.url_of(key), e))?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(ObjectError::store("read", self.url_of(key), e)),
        }
    }

    /// Downloads `key` into `dest` through `dest.partial`, checking size and BLAKE3 against
    /// `entry` before the rename: a file at `dest` is always whole and verified.
    pub async fn download_verified(&self, key: &Key, entry: &cassette_repo::FileEntry, dest: &Path) -> Result<()> {
        let partial = cassette_repo::partial_path(dest);
        let hashes = match self.stream_object(key, entry.encoded.is_some(), Some(&partial)).await {
            Ok(h) => h,
            Err(e) => {
                let _ = std::fs::remove_file(&partial);
                return Err(e);
            }
        };
        let bad = hashes.mismatch(entry);
        if let Some(detail) = bad {
            let _ = std::fs::remove_file(&partial);
            return Err(ObjectError::Mismatch { what: self.url_of(key), detail });
        }
        std::fs::rename(&partial, dest).map_err(|e| ObjectError::io("rename into place", dest, e))?;
        Ok(())
    }

    /// Reads `key` whole and says what is wrong with it against `entry` (`None`: it matches).
    pub async fn check_object(&self, key: &Key, entry: &cassette_repo::FileEntry) -> Result<Option<String>> {
        match self.stream_object(key, entry.encoded.is_some(), None).await {
            Ok(h) => Ok(h.mismatch(entry)),
            Err(ObjectError::Store { source: object_store::Error::NotFound { .. }, .. }) => Ok(Some("missing".into())),
            Err(ObjectError::Sealed(e)) if e.is_damage() => Ok(Some(e.to_string())),
            Err(e) => Err(e),
        }
    }

    /// Streams `key` (decoding it when its manifest entry says it is `encoded`), hashing it, and writes it to `to` (fsynced) when given. The bytes are
    /// gathered in a pool buffer and written in batches on a blocking thread.
    async fn stream_object(&self, key: &Key, encoded: bool, to: Option<&PathBuf>) -> Result<ContentHasher> {
        if encoded {
            return self.stream_sealed(self.reading_codec(), key, to).await;
        }
        const WRITE_BATCH: usize = 1 << 20;
        let url = self.url_of(key);
        let mut buf = self.buffers.take().await;
        let got = self.store.get(key).await.map_err(|e| ObjectError::store("read", &url, e))?;
        let mut out = match to {
            Some(p) => {
                if let Some(parent) = p.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| ObjectError::io("create directory", parent, e))?;
                }
                Some((std::fs::File::create(p).map_err(|e| ObjectError::io("create", p, e))?, p.clone()))
            }
            None => None,
        };
        let mut hashes = ContentHasher::new();
        let mut stream = got.into_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| ObjectError::store("read", &url, e))?;
            self.pace(chunk.len()).await;
            hashes.update(&chunk);
            if out.is_some() {
                buf.extend(&chunk);
                if buf.len() >= WRITE_BATCH {
                    let (file, back) = write_batch(out.take().expect("file to write"), buf, false).await?;
                    (out, buf) = (Some(file), back);
                }
            }
        }
        if let Some(file) = out {
            write_batch(file, buf, true).await?;
        }
        Ok(hashes)
    }

    pub(crate) async fn pace(&self, bytes: usize) {
        if let Some(b) = &self.bandwidth {
            b.take(bytes as u64).await;
        }
    }
}

/// Writes what `buf` holds to the file on a blocking thread (and fsyncs it when `last`), and
/// gives both back with the buffer emptied.
async fn write_batch(
    (mut file, path): (std::fs::File, PathBuf),
    mut buf: Buffer,
    last: bool,
) -> Result<((std::fs::File, PathBuf), Buffer)> {
    tokio::task::spawn_blocking(move || {
        file.write_all(buf.as_ref()).map_err(|e| ObjectError::io("write", &path, e))?;
        buf.clear();
        if last {
            file.sync_all().map_err(|e| ObjectError::io("fsync", &path, e))?;
        }
        Ok(((file, path), buf))
    })
    .await
    .expect("write task")
}

fn done(hashes: ContentHasher, size: u64, mtime_ns: i64, parts: usize, src: &Path) -> Result<Uploaded> {
    if hashes.size() != size {
        return Err(ObjectError::Mismatch {
            what: src.display().to_string(),
            detail: format!(
                "{} bytes read, the file had {size} when opened: it changed while being uploaded",
                hashes.size()
            ),
        });
    }
    Ok(Uploaded { file: hashes.finish(mtime_ns), parts, encoded: None })
}

/// Puts `bytes` at `key` of `to` (`url` for messages).
async fn put_to(to: &Arc<dyn ObjectStore>, url: &str, key: &Key, bytes: Vec<u8>, mode: PutMode) -> Result<()> {
    let opts = PutOptions { mode, ..Default::default() };
    match to.put_opts(key, PutPayload::from(bytes), opts).await {
        Ok(_) => Ok(()),
        Err(object_store::Error::AlreadyExists { .. }) => Err(ObjectError::AlreadyComplete { url: url.to_string() }),
        Err(e) => Err(ObjectError::store("write", url, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::Transfer;

    fn repo(part: usize, buffers: usize) -> RemoteRepo {
        RemoteRepo::open("memory://t/p", Transfer { part_size: part, buffers, ..Default::default() }).unwrap()
    }

    #[tokio::test]
    async fn multipart_upload_round_trips_and_a_bad_crc_leaves_nothing() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("nb-1-big-Data.db");
        let data: Vec<u8> = (0..(13u32 << 20)).map(|i| (i % 251) as u8).collect();
        std::fs::write(&src, &data).unwrap();
        let r = repo(5 << 20, 2);
        let key = Key::from("p/a/nb-1-big-Data.db");
        let crc = crc32fast::hash(&data);
        let up = r.upload_file(&src, &key, Some(crc)).await.unwrap();
        assert_eq!((up.size, up.parts, up.crc32), (data.len() as u64, 3, crc));
        let entry = up.to_entry("a/nb-1-big-Data.db".into(), Some(crc));
        assert_eq!(r.check_object(&key, &entry).await.unwrap(), None);
        let dest = d.path().join("out/nb-1-big-Data.db");
        r.download_verified(&key, &entry, &dest).await.unwrap();
        let got = std::fs::read(&dest).unwrap();
        assert_eq!(got.len(), data.len(), "length");
        assert!(got == data, "content differs at {:?}", got.iter().zip(&data).position(|(a, b)| a != b));

        let bad = Key::from("p/a/bad-Data.db");
        let err = r.upload_file(&src, &bad, Some(crc ^ 1)).await.unwrap_err();
        assert!(err.to_string().contains("Digest.crc32"), "{err}");
        assert!(r.get_small(&bad).await.unwrap().is_none());
        let mut wrong = entry.clone();
        wrong.blake3 = "00".into();
        assert!(r.check_object(&key, &wrong).await.unwrap().unwrap().contains("content differs"));
        assert!(r.download_verified(&key, &wrong, &d.path().join("out/x")).await.is_err());
        assert!(!d.path().join("out/x").exists() && !d.path().join("out/x.partial").exists());
    }

    #[tokio::test]
    async fn create_only_puts_refuse_a_second_writer() {
        let r = repo(5 << 20, 1);
        let key = Key::from("p/m.json");
        r.put_small(&key, b"1".to_vec(), PutMode::Create).await.unwrap();
        assert!(matches!(
            r.put_small(&key, b"2".to_vec(), PutMode::Create).await,
            Err(ObjectError::AlreadyComplete { .. })
        ));
        assert_eq!(&r.get_small(&key).await.unwrap().unwrap()[..], b"1");
    }
}
