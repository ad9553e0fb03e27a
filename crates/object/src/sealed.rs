//! The byte paths of an encoded repository (`cassette-seal`): a file uploaded through the codec,
//! its plaintext hashed and CRC-checked as it is read, and an object downloaded or checked
//! through it. The plain paths in `transfer` are untouched: a plain repository pays nothing.
//!
//! The stored size is only known once the object is encoded, so an upload cuts the encoded
//! stream into parts as it comes (each in one of the repository's part buffers): one part is
//! one PUT, more are a multipart upload, aborted when the file turns out to be corrupt.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use cassette_format::encoding::Encoded;
use cassette_repo::ContentHasher;
use cassette_seal::{Codec, SAMPLE_LEN, SealError};
use futures::StreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path as Key;
use tokio::sync::OwnedSemaphorePermit as Permit;
use tokio::sync::mpsc;

use crate::error::{ObjectError, Result};
use crate::limit::{Buffer, Buffers};
use crate::repo::RemoteRepo;
use crate::transfer::Uploaded;

/// How much of a file one read takes while encoding.
const READ_CHUNK: usize = 256 << 10;

/// What the reading thread of an upload found.
struct Encoding {
    hashes: ContentHasher,
    mtime_ns: i64,
    encoded: Encoded,
}

impl RemoteRepo {
    /// [`RemoteRepo::upload_file`] through `codec`.
    pub(crate) async fn upload_sealed(
        &self,
        codec: Arc<Codec>,
        src: &Path,
        key: &Key,
        expected_crc32: Option<u32>,
    ) -> Result<Uploaded> {
        let plain_size = std::fs::metadata(src).map_err(|e| ObjectError::io("stat", src, e))?.len();
        // S3 allows 10,000 parts: larger parts for files beyond 9,000 × part_size, as in the
        // plain path (the encoded object is at most 0.03% larger).
        let part_size = self.buffers.part_size().max(plain_size.div_ceil(9_000) as usize);
        let (tx, mut rx) = mpsc::channel::<(Bytes, Permit)>(1);
        let sink = PartSink {
            buffers: self.buffers.clone(),
            runtime: tokio::runtime::Handle::current(),
            current: None,
            part_size,
            stored: 0,
            tx,
        };
        let path = src.to_path_buf();
        let encoder = self.encoders.clone().acquire_owned().await.expect("the encoder semaphore is never closed");
        let reading = tokio::task::spawn_blocking(move || {
            let _encoder = encoder;
            encode_file(&codec, &path, expected_crc32, sink)
        });

        let Some(first) = rx.recv().await else {
            return Err(reading.await.expect("encoding task").err().unwrap_or_else(|| ObjectError::Mismatch {
                what: src.display().to_string(),
                detail: "the encoder produced nothing".into(),
            }));
        };
        // A file that fits one part encoded (age adds 16 bytes per 64 KiB) is one PUT. The first
        // part is held only then: a second would wait for a buffer other uploads may hold.
        let mut next = vec![first];
        if fits_one_part(plain_size, part_size) {
            match rx.recv().await {
                None => {
                    let encoding = reading.await.expect("encoding task")?;
                    let (bytes, _permit) = next.pop().expect("the first part");
                    self.put_whole(key, bytes).await?;
                    return Ok(uploaded(encoding, 1));
                }
                Some(second) => next.push(second),
            }
        }

        let mut parts = self.start_parts(key).await?;
        let sent: Result<()> = async {
            loop {
                for (bytes, permit) in next.drain(..) {
                    parts.send(bytes, permit).await?;
                }
                match rx.recv().await {
                    Some(p) => next.push(p),
                    None => return Ok(()),
                }
            }
        }
        .await;
        drop(rx);
        let (outcome, encoding) = match (sent, reading.await.expect("encoding task")) {
            (Ok(()), Ok(encoding)) => (Ok(()), Some(encoding)),
            (Err(e), _) | (Ok(()), Err(e)) => (Err(e), None),
        };
        let count = parts.finish(outcome).await?;
        Ok(uploaded(encoding.expect("a finished upload was encoded"), count))
    }

    /// [`RemoteRepo::stream_object`] through `codec`: the plaintext hashed, and written to `to`
    /// (fsynced) when given.
    pub(crate) async fn stream_sealed(
        &self,
        codec: Arc<Codec>,
        key: &Key,
        to: Option<&PathBuf>,
    ) -> Result<ContentHasher> {
        let url = self.url_of(key);
        let got = self.store.get(key).await.map_err(|e| ObjectError::store("read", &url, e))?;
        let stream = got.into_stream().then(|chunk| async move {
            if let Ok(c) = &chunk {
                self.pace(c.len()).await;
            }
            chunk.map_err(std::io::Error::other)
        });
        // The body is read on a blocking thread; the stream is driven from it through a channel.
        let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(4);
        let reader = tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(tokio_stream_of(rx)));
        let to = to.cloned();
        let what = url.clone();
        let decoding = tokio::task::spawn_blocking(move || decode_object(&codec, reader, &what, to.as_deref()));
        let mut stream = std::pin::pin!(stream);
        while let Some(chunk) = stream.next().await {
            if tx.send(chunk).await.is_err() {
                break; // The decoder stopped (an error it reports).
            }
        }
        drop(tx);
        decoding.await.expect("decoding task")
    }
}

/// Whether a file of `size` bytes surely fits one part of `part_size` once encoded.
fn fits_one_part(size: u64, part_size: usize) -> bool {
    size.saturating_add(size / 1024 + (64 << 10)) < part_size as u64
}

/// A receiver as a stream, for `StreamReader`.
fn tokio_stream_of(
    mut rx: mpsc::Receiver<std::io::Result<Bytes>>,
) -> impl futures::Stream<Item = std::io::Result<Bytes>> + Unpin {
    Box::pin(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)))
}

fn uploaded(e: Encoding, parts: usize) -> Uploaded {
    Uploaded { file: e.hashes.finish(e.mtime_ns), parts, encoded: Some(e.encoded) }
}

/// Reads `path`, hashing it, through the codec into `sink`. A `Data.db` whose CRC32 differs
/// from `expected_crc32` fails before its last part is sent.
fn encode_file(codec: &Codec, path: &Path, expected_crc32: Option<u32>, sink: PartSink) -> Result<Encoding> {
    let io = |action, e| ObjectError::io(action, path, e);
    let mut file = std::fs::File::open(path).map_err(|e| io("open", e))?;
    let meta = file.metadata().map_err(|e| io("stat", e))?;
    let (size, mtime_ns) = (meta.len(), crate::transfer::mtime_ns(&meta));
    let mut hashes = ContentHasher::new();
    let mut chunk = vec![0u8; READ_CHUNK.max(SAMPLE_LEN)];
    let sample_len = read_full(&mut file, &mut chunk[..SAMPLE_LEN.min(size as usize)]).map_err(|e| io("read", e))?;
    hashes.update(&chunk[..sample_len]);
    let mut w = codec.writer(sink, &chunk[..sample_len], size).map_err(|e| io("encode", e))?;
    w.write_all(&chunk[..sample_len]).map_err(|e| io("encode", e))?;
    // The encoder takes exactly the size stat gave (it was told it); a byte beyond is a file
    // that grew, reported below.
    let mut rest = (&mut file).take(size.saturating_sub(sample_len as u64));
    loop {
        let n = rest.read(&mut chunk).map_err(|e| io("read", e))?;
        if n == 0 {
            break;
        }
        hashes.update(&chunk[..n]);
        w.write_all(&chunk[..n]).map_err(|e| io("encode", e))?;
    }
    let grew = file.read(&mut chunk[..1]).map_err(|e| io("read", e))? > 0;
    if let Some(expect) = expected_crc32
        && hashes.crc32() != expect
    {
        return Err(ObjectError::Mismatch {
            what: path.display().to_string(),
            detail: format!(
                "CRC32 {:08x} does not match its Digest.crc32 {expect:08x}: the SSTable is corrupt on the node, not uploaded (run `nodetool scrub` or restore that table)",
                hashes.crc32()
            ),
        });
    }
    if hashes.size() != size || grew {
        let read = if grew { "more than".to_owned() } else { hashes.size().to_string() };
        return Err(ObjectError::Mismatch {
            what: path.display().to_string(),
            detail: format!("{read} bytes read, the file had {size} when opened: it changed while being uploaded"),
        });
    }
    let header = w.header().clone();
    let sink = w.finish().map_err(|e| io("encode", e))?;
    let stored_size = sink.close().map_err(|e| io("encode", e))?;
    Ok(Encoding { hashes, mtime_ns, encoded: Encoded { zstd: header.zstd, key: header.key, stored_size } })
}

/// Reads the encoded object from `input`, hashing the plaintext and writing it to `to`.
fn decode_object(
    codec: &Codec,
    input: impl Read + Send + 'static,
    what: &str,
    to: Option<&Path>,
) -> Result<ContentHasher> {
    let (_, mut body) = codec.reader(input, what)?;
    let mut out = match to {
        Some(p) => {
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent).map_err(|e| ObjectError::io("create directory", parent, e))?;
            }
            Some(std::fs::File::create(p).map_err(|e| ObjectError::io("create", p, e))?)
        }
        None => None,
    };
    let mut hashes = ContentHasher::new();
    let mut chunk = vec![0u8; READ_CHUNK];
    loop {
        let n = match body.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(SealError::Damaged { what: what.to_owned(), detail: e.to_string() }.into()),
        };
        if n == 0 {
            break;
        }
        hashes.update(&chunk[..n]);
        if let (Some(f), Some(p)) = (out.as_mut(), to) {
            f.write_all(&chunk[..n]).map_err(|e| ObjectError::io("write", p, e))?;
        }
    }
    if let (Some(f), Some(p)) = (out, to) {
        f.sync_all().map_err(|e| ObjectError::io("fsync", p, e))?;
    }
    Ok(hashes)
}

/// Fills `buf` as far as the file goes; returns how much it read.
fn read_full(file: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The encoded stream cut into part-sized pool buffers, each sent to the uploading task.
struct PartSink {
    buffers: Buffers,
    runtime: tokio::runtime::Handle,
    current: Option<Buffer>,
    part_size: usize,
    stored: u64,
    tx: mpsc::Sender<(Bytes, Permit)>,
}

impl PartSink {
    fn send(&mut self) -> std::io::Result<()> {
        if let Some(buf) = self.current.take() {
            self.tx.blocking_send(buf.into_bytes()).map_err(|_| std::io::Error::other("the upload stopped"))?;
        }
        Ok(())
    }

    /// Sends what is left; returns the stored size.
    fn close(mut self) -> std::io::Result<u64> {
        self.send()?;
        Ok(self.stored)
    }
}

impl Write for PartSink {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.current.is_none() {
            self.current = Some(self.runtime.block_on(self.buffers.take()));
        }
        let buf = self.current.as_mut().expect("a part buffer");
        let n = data.len().min(self.part_size - buf.len());
        buf.extend(&data[..n]);
        self.stored += n as u64;
        if buf.len() == self.part_size {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use cassette_seal::Keyring;

    use super::*;
    use crate::repo::Transfer;
    use object_store::{PutMode, PutPayload};

    /// An in-memory repository of 5 MiB parts whose objects are encrypted (and compressed).
    fn sealed_repo(ring: &Arc<Keyring>, zstd: Option<i32>) -> (RemoteRepo, Arc<dyn object_store::ObjectStore>) {
        let store: Arc<dyn object_store::ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        let fp = ring.fingerprints()[0].clone();
        let codec = Codec::new(zstd, Some(&fp), Some(ring.clone())).unwrap();
        let transfer = Transfer { part_size: 5 << 20, buffers: 2, ..Default::default() };
        (RemoteRepo::with_store(store.clone(), "memory://t/p", "p", transfer).with_codec(Arc::new(codec)), store)
    }

    fn rows(n: u32) -> Vec<u8> {
        (0..n).flat_map(|i| format!("row {i} holds secret-value-{}\n", i % 89).into_bytes()).collect()
    }

    async fn stored(store: &Arc<dyn object_store::ObjectStore>, key: &Key) -> Vec<u8> {
        store.get(key).await.unwrap().bytes().await.unwrap().to_vec()
    }

    #[tokio::test]
    async fn files_of_one_part_and_of_many_round_trip_encrypted_and_hide_their_rows() {
        let d = tempfile::tempdir().unwrap();
        let (ring, _) = Keyring::generate();
        let ring = Arc::new(ring);
        for (zstd, rows_n) in [(None, 1_000), (Some(3), 1_000), (None, 400_000), (Some(3), 600_000)] {
            let (repo, store) = sealed_repo(&ring, zstd);
            let data = rows(rows_n);
            let src = d.path().join("nb-1-big-Data.db");
            std::fs::write(&src, &data).unwrap();
            let key = Key::from("p/a/nb-1-big-Data.db");
            let crc = crc32fast::hash(&data);
            let up = repo.upload_file(&src, &key, Some(crc)).await.unwrap();
            let encoded = up.encoded.clone().expect("encoded");
            assert_eq!(
                (up.size, up.crc32, up.blake3.clone()),
                (data.len() as u64, crc, blake3::hash(&data).to_hex().to_string())
            );
            assert_eq!(encoded.zstd, zstd.is_some(), "{zstd:?}");
            let object = stored(&store, &key).await;
            assert_eq!(object.len() as u64, encoded.stored_size);
            assert!(!object.windows(12).any(|w| w == b"secret-value"), "a row value is readable in the object");
            if data.len() > 5 << 20 && zstd.is_none() {
                assert!(up.parts > 1, "{} bytes in {} part(s)", data.len(), up.parts);
            }
            let mut entry = up.to_entry("a/nb-1-big-Data.db".into(), Some(crc));
            entry.encoded = Some(encoded);
            assert_eq!(repo.check_object(&key, &entry).await.unwrap(), None);
            let dest = d.path().join("out/nb-1-big-Data.db");
            repo.download_verified(&key, &entry, &dest).await.unwrap();
            assert!(std::fs::read(&dest).unwrap() == data, "downloaded bytes differ");
        }
    }

    #[tokio::test]
    async fn a_flipped_byte_a_truncated_object_and_a_missing_key_are_refused_naming_the_object() {
        let d = tempfile::tempdir().unwrap();
        let (ring, _) = Keyring::generate();
        let ring = Arc::new(ring);
        let (repo, store) = sealed_repo(&ring, Some(3));
        let data = rows(50_000);
        let src = d.path().join("nb-2-big-Data.db");
        std::fs::write(&src, &data).unwrap();
        let key = Key::from("p/a/nb-2-big-Data.db");
        let up = repo.upload_file(&src, &key, None).await.unwrap();
        let mut entry = up.to_entry("a/nb-2-big-Data.db".into(), None);
        entry.encoded = up.encoded.clone();
        let object = stored(&store, &key).await;

        let mut flipped = object.clone();
        let at = flipped.len() / 2;
        flipped[at] ^= 1;
        store.put(&key, PutPayload::from(flipped)).await.unwrap();
        let problem = repo.check_object(&key, &entry).await.unwrap().expect("a flipped byte is found");
        assert!(problem.contains("nb-2-big-Data.db"), "{problem}");
        let dest = d.path().join("out/nb-2-big-Data.db");
        assert!(repo.download_verified(&key, &entry, &dest).await.is_err());
        assert!(!dest.exists() && !cassette_repo::partial_path(&dest).exists(), "nothing left behind");

        store.put(&key, PutPayload::from(object[..object.len() - 100].to_vec())).await.unwrap();
        let problem = repo.check_object(&key, &entry).await.unwrap().expect("a truncated object is found");
        assert!(problem.contains("nb-2-big-Data.db"), "{problem}");

        store.put(&key, PutPayload::from(object)).await.unwrap();
        let (other, _) = Keyring::generate();
        let other_fp = other.fingerprints()[0].clone();
        let wrong = RemoteRepo::with_store(store.clone(), "memory://t/p", "p", Transfer::default())
            .with_codec(Arc::new(Codec::new(None, Some(&other_fp), Some(Arc::new(other))).unwrap()));
        let err = wrong.check_object(&key, &entry).await.unwrap_err().to_string();
        assert!(err.contains(&ring.fingerprints()[0]) && err.contains("nb-2-big-Data.db"), "{err}");
    }

    #[tokio::test]
    async fn small_objects_are_encoded_and_the_format_object_is_not() {
        let (ring, _) = Keyring::generate();
        let (repo, store) = sealed_repo(&Arc::new(ring), None);
        let key = Key::from("p/c/h/b/manifest.json");
        repo.put_small(&key, b"{\"secret-value\": 1}".to_vec(), PutMode::Create).await.unwrap();
        assert!(!stored(&store, &key).await.windows(12).any(|w| w == b"secret-value"));
        assert_eq!(&repo.get_small(&key).await.unwrap().unwrap()[..], b"{\"secret-value\": 1}");
        let format = Key::from("p/cassette-repository.json");
        repo.put_plain(&format, b"{}".to_vec(), PutMode::Create).await.unwrap();
        assert_eq!(stored(&store, &format).await, b"{}");
    }
}
