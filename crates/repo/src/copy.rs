//! Copying files into the repository safely, hashing them on the way.
//!
//! A file is streamed once: the same bytes are hashed (BLAKE3 for the
//! manifest, CRC32 to check Cassandra's `Digest.crc32`: the format's one
//! `ContentHasher`, fed the pipeline's buffers in place) and written to
//! `<dst>.partial`, which is renamed only when everything matched. So `dst`
//! either is a verified copy or does not exist.
//!
//! Durability is the caller's choice ([`Durability`]): a lone file is
//! fsynced with its directory before the call returns; a backup copying
//! thousands of files defers to one [`sync_filesystem`] per table, because an
//! fsync per file and per directory (17,000 for an 8,000-file node) cost more
//! than the copying itself.
//!
//! Speed: large files go through a pipeline (reader thread, hashing on the
//! calling thread, writer thread) with a few reused 4 MiB buffers, so
//! reading, hashing and writing overlap. The writers use `O_DIRECT` where
//! the filesystem allows it: the data goes from our buffer straight to disk,
//! which saves a memory copy (the CPU is the bottleneck when hashing), makes
//! the final fsync cheap because the disk writes overlapped the copy, and
//! keeps the backup from evicting Cassandra's hot pages from the page cache.
//! Direct writes wait for the disk, so two writer threads keep two in flight
//! (positional writes into a preallocated file, which ext4 and XFS run
//! concurrently).
//! Small files are done inline with one reused buffer, to avoid thread
//! start-up on the many tiny SSTable components.

use std::fs::{self, File, FileTimes, OpenOptions};
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::SystemTime;

use crate::error::{IoContext, RepoError, Result};
use crate::fsutil::{partial_path, sync_parent};
use cassette_format::hash::ContentHasher;

/// When a stored file becomes durable (survives power loss, not just the process dying).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// The file and its directory are fsynced before the call returns.
    EachFile,
    /// Nothing is fsynced: the caller makes a batch of files durable at once with
    /// [`sync_filesystem`](crate::sync_filesystem) and must not treat them as safe before.
    Deferred,
}

/// Size of each copy buffer (a multiple of [`ALIGN`]).
const BUF_SIZE: usize = 4 << 20;
/// Writer threads: direct writes block on the disk, so keep two in flight.
const WRITERS: usize = 2;
/// Buffers in flight in the pipeline: reader, hasher, writers, one spare.
const PIPELINE_BUFS: usize = 3 + WRITERS;
/// Alignment of buffers, file offsets and lengths for `O_DIRECT`.
const ALIGN: usize = 4096;

/// Buffers kept between copies: allocating and faulting in 20 MiB per file
/// costs more than copying a small file. One pool for the process, capped,
/// so memory stays bounded however many threads copy (a per-thread pool grew
/// with tokio's blocking threads: 110 MB peak in the benchmark).
static POOL: Mutex<Vec<AlignedBuf>> = Mutex::new(Vec::new());
/// At most this many buffers are kept: two pipelined copies' worth.
const POOL_MAX: usize = 2 * PIPELINE_BUFS;

pub use cassette_format::hash::StoredFile;

/// How [`link_or_copy`] stored the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkOutcome {
    /// Hard-linked: no bytes copied.
    Linked,
    /// Hard linking was not possible (other filesystem, link limit,
    /// permissions), so the file was copied and verified.
    Copied(StoredFile),
}

/// Copies `src` to `dst`, hashing on the way; see the module docs.
///
/// If `expect_crc32` is given (the value of the SSTable's `Digest.crc32`, a
/// CRC32 of the whole `Data.db`), a mismatch is an error naming the file and
/// both values, and `dst` is not created. Also fails if the source changed
/// size or mtime during the copy. Creates `dst`'s parent directories; gives
/// `dst` the source's permissions and timestamps (like `cp -a`), then fsyncs
/// it and its directory.
pub fn copy_verified(src: &Path, dst: &Path, expect_crc32: Option<u32>) -> Result<StoredFile> {
    copy_verified_with(src, dst, expect_crc32, Durability::EachFile)
}

/// [`copy_verified`], made durable as `durability` says.
pub fn copy_verified_with(
    src: &Path,
    dst: &Path,
    expect_crc32: Option<u32>,
    durability: Durability,
) -> Result<StoredFile> {
    let mut input = File::open(src).ctx("open", src)?;
    let meta = input.metadata().ctx("stat", src)?;
    if let Some(parent) = dst.parent() {
        fs::create_dir_all(parent).ctx("create directory", parent)?;
    }
    let partial = partial_path(dst);
    // O_DIRECT only pays off (and only stays aligned) for files spanning buffers.
    let (output, direct) = create_output(&partial, meta.len())?;
    let result = (|| {
        let sink = Sink { file: &output, path: &partial, direct };
        let (read, hashes) = stream(&mut input, src, Some(sink), meta.len())?;
        let stored = check_unchanged(&input, src, &meta, read, hashes)?;
        if let Some(expected) = expect_crc32
            && expected != stored.crc32
        {
            return Err(RepoError::ChecksumMismatch { path: src.to_owned(), expected, actual: stored.crc32 });
        }
        output.set_permissions(fs::Permissions::from_mode(meta.mode() & 0o7777)).ctx("set permissions on", &partial)?;
        let times = FileTimes::new()
            .set_modified(meta.modified().ctx("read mtime of", src)?)
            .set_accessed(meta.accessed().unwrap_or_else(|_| SystemTime::now()));
        output.set_times(times).ctx("set timestamps on", &partial)?;
        if durability == Durability::EachFile {
            output.sync_all().ctx("sync", &partial)?;
        }
        crate::fault::point("file-partial");
        fs::rename(&partial, dst).ctx("rename into place", dst)?;
        Ok(stored)
    })();
    drop(output);
    match result {
        Ok(stored) => {
            if durability == Durability::EachFile {
                sync_parent(dst)?;
            }
            Ok(stored)
        }
        Err(e) => {
            let _ = fs::remove_file(&partial);
            Err(e)
        }
    }
}

/// Hashes `path` exactly as [`copy_verified`] would, without writing anything.
pub fn hash_file(path: &Path) -> Result<StoredFile> {
    hash_open_file(File::open(path).ctx("open", path)?, path)
}

/// [`hash_file`] of a file already opened (by the repository path policy, `beneath`); `path` is
/// for messages.
pub fn hash_open_file(mut input: File, path: &Path) -> Result<StoredFile> {
    let meta = input.metadata().ctx("stat", path)?;
    let (read, hashes) = stream(&mut input, path, None, meta.len())?;
    check_unchanged(&input, path, &meta, read, hashes)
}

/// Reads a Cassandra `Digest.crc32` file: a decimal CRC32 of the `Data.db`,
/// possibly followed by whitespace.
pub fn read_digest_crc32(path: &Path) -> Result<u32> {
    let mut text = String::new();
    File::open(path).and_then(|f| f.take(64).read_to_string(&mut text)).ctx("read", path)?;
    let trimmed = text.trim();
    // Cassandra writes the unsigned value of a Java long; anything else is damage.
    trimmed
        .parse::<u32>()
        .map_err(|_| RepoError::InvalidDigest { path: path.to_owned(), content: trimmed.chars().take(32).collect() })
}

/// Stores `existing` at `new` as a hard link (how unchanged SSTables are
/// shared between backups), falling back to [`copy_verified`] when linking is
/// not possible: another filesystem (EXDEV), too many links (EMLINK), not
/// permitted or not supported. Replaces `new` atomically if it exists.
pub fn link_or_copy(existing: &Path, new: &Path) -> Result<LinkOutcome> {
    link_or_copy_with(existing, new, Durability::EachFile)
}

/// [`link_or_copy`], made durable as `durability` says.
pub fn link_or_copy_with(existing: &Path, new: &Path, durability: Durability) -> Result<LinkOutcome> {
    // The common case, a new name in an existing directory, is one `link` call: a link
    // appears whole or not at all, so no temporary name is needed for it.
    let mut first = fs::hard_link(existing, new);
    // Not found: the directory is missing (or was just made by another thread: it exists
    // now either way), or `existing` is, which the second try reports.
    if first.as_ref().is_err_and(|e| e.kind() == io::ErrorKind::NotFound)
        && let Some(parent) = new.parent()
    {
        fs::create_dir_all(parent).ctx("create directory", parent)?;
        first = fs::hard_link(existing, new);
    }
    match first {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => replace_with_link(existing, new, durability),
        linked => settle_link(linked, existing, new, durability),
    }
}

/// `new` exists: nothing to do if it is already `existing` (e.g. on resume), else it is
/// replaced atomically by a link made under a temporary name and renamed over it.
fn replace_with_link(existing: &Path, new: &Path, durability: Durability) -> Result<LinkOutcome> {
    if let (Ok(a), Ok(b)) = (fs::metadata(existing), fs::metadata(new))
        && a.dev() == b.dev()
        && a.ino() == b.ino()
    {
        return Ok(LinkOutcome::Linked);
    }
    let partial = partial_path(new);
    let _ = fs::remove_file(&partial);
    let linked = fs::hard_link(existing, &partial);
    if linked.is_ok()
        && let Err(e) = fs::rename(&partial, new)
    {
        let _ = fs::remove_file(&partial);
        return Err(RepoError::io("rename into place", new, e));
    }
    settle_link(linked, existing, new, durability)
}

/// What a link attempt at `new` comes to: made durable if asked, a verified copy when linking
/// is not possible, or the error.
fn settle_link(linked: io::Result<()>, existing: &Path, new: &Path, durability: Durability) -> Result<LinkOutcome> {
    match linked {
        Ok(()) => {
            if durability == Durability::EachFile {
                sync_parent(new)?;
            }
            Ok(LinkOutcome::Linked)
        }
        Err(e) if link_unsupported(&e) => {
            tracing::debug!(from = %existing.display(), to = %new.display(), error = %e, "hard link impossible, copying");
            copy_verified_with(existing, new, None, durability).map(LinkOutcome::Copied)
        }
        Err(e) => Err(RepoError::io("hard-link", new, e)),
    }
}

fn link_unsupported(e: &io::Error) -> bool {
    use io::ErrorKind::*;
    matches!(e.kind(), CrossesDevices | TooManyLinks | PermissionDenied | Unsupported)
}

/// Creates `path` for writing `len` bytes. Files spanning several buffers
/// get `O_DIRECT` if the filesystem supports it (tmpfs, for one, does not)
/// and are preallocated, so that concurrent writes do not extend the file.
/// Returns whether `O_DIRECT` is on.
fn create_output(path: &Path, len: u64) -> Result<(File, bool)> {
    let mut opts = OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    if len >= BUF_SIZE as u64 {
        match opts.clone().custom_flags(libc::O_DIRECT).open(path) {
            Ok(f) => {
                // SAFETY: fallocate on a descriptor we own, integer arguments.
                // Failure (e.g. EOPNOTSUPP) only costs speed: writes then extend.
                unsafe { libc::fallocate(f.as_raw_fd(), 0, 0, len as libc::off_t) };
                return Ok((f, true));
            }
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
            Err(e) => return Err(RepoError::io("create", path, e)),
        }
    }
    Ok((opts.open(path).ctx("create", path)?, false))
}

/// Where copied bytes go; shared by the writer threads.
#[derive(Clone, Copy)]
struct Sink<'a> {
    file: &'a File,
    path: &'a Path,
    /// Whether `file` is in `O_DIRECT` mode.
    direct: bool,
}

impl Sink<'_> {
    /// Writes all of `bytes` at `offset`. In `O_DIRECT` mode, the parts that
    /// are not multiples of [`ALIGN`] (the last chunk of a file) or that the
    /// filesystem refuses go through `buffered`, a plain descriptor of the
    /// same file opened on first need.
    fn write_at(&self, bytes: &[u8], offset: u64, buffered: &mut Option<File>) -> io::Result<()> {
        let mut done = 0;
        let mut direct = self.direct;
        while done < bytes.len() {
            direct = direct && done.is_multiple_of(ALIGN) && (bytes.len() - done).is_multiple_of(ALIGN);
            let file = if direct || !self.direct {
                self.file
            } else {
                match buffered {
                    Some(f) => &*f,
                    None => buffered.insert(OpenOptions::new().write(true).open(self.path)?),
                }
            };
            match file.write_at(&bytes[done..], offset + done as u64) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if direct && e.raw_os_error() == Some(libc::EINVAL) => direct = false,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// A heap buffer with a [`BUF_SIZE`] window aligned to [`ALIGN`], as
/// `O_DIRECT` requires; plain `Vec`s are not page-aligned.
struct AlignedBuf {
    data: Vec<u8>,
    start: usize,
}

impl AlignedBuf {
    fn new() -> Self {
        let data = vec![0u8; BUF_SIZE + ALIGN];
        let start = data.as_ptr().align_offset(ALIGN);
        AlignedBuf { data, start }
    }

    fn window(&mut self) -> &mut [u8] {
        &mut self.data[self.start..self.start + BUF_SIZE]
    }

    fn filled(&self, n: usize) -> &[u8] {
        &self.data[self.start..self.start + n]
    }
}

fn mtime_ns(meta: &fs::Metadata) -> i64 {
    meta.mtime().saturating_mul(1_000_000_000).saturating_add(meta.mtime_nsec())
}

/// Turns the hashes into a [`StoredFile`] after checking that the source
/// still has the size and mtime it had when opened.
fn check_unchanged(
    input: &File,
    path: &Path,
    before: &fs::Metadata,
    read: u64,
    hashes: ContentHasher,
) -> Result<StoredFile> {
    let changed = |detail: String| RepoError::ChangedWhileCopying { path: path.to_owned(), detail };
    if read != before.len() {
        return Err(changed(format!("it was {} bytes when opened, {} bytes were read", before.len(), read)));
    }
    let after = input.metadata().ctx("stat", path)?;
    if after.len() != before.len() || mtime_ns(&after) != mtime_ns(before) {
        return Err(changed("its size or modification time changed".to_owned()));
    }
    Ok(hashes.finish(mtime_ns(before)))
}

/// Reads `input` to the end (but no further than `expected + 1` bytes, so a
/// growing file cannot keep us busy), hashing, and writing to `output` if
/// given. Returns the number of bytes read.
fn stream(input: &mut File, in_path: &Path, output: Option<Sink<'_>>, expected: u64) -> Result<(u64, ContentHasher)> {
    let mut input = input.take(expected.saturating_add(1));
    let nbufs = if expected < BUF_SIZE as u64 { 1 } else { PIPELINE_BUFS };
    let mut bufs = take_buffers(nbufs);
    let result = if nbufs == 1 {
        stream_inline(&mut input, in_path, output, &mut bufs[0])
    } else {
        stream_pipelined(&mut input, in_path, output, &mut bufs)
    };
    give_back(bufs);
    result
}

fn give_back(bufs: Vec<AlignedBuf>) {
    let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    let room = POOL_MAX.saturating_sub(pool.len());
    pool.extend(bufs.into_iter().take(room));
}

fn take_buffers(n: usize) -> Vec<AlignedBuf> {
    let mut bufs = {
        let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
        let keep = pool.len().saturating_sub(n);
        pool.split_off(keep)
    };
    bufs.resize_with(n, AlignedBuf::new);
    bufs
}

/// Fills `buf` as far as possible; returns the bytes read (0 at end of file).
/// Only the last chunk of a file is short, which `O_DIRECT` relies on.
fn fill(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match input.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn stream_inline(
    input: &mut impl Read,
    in_path: &Path,
    output: Option<Sink<'_>>,
    buf: &mut AlignedBuf,
) -> Result<(u64, ContentHasher)> {
    let mut hashes = ContentHasher::new();
    let mut total = 0u64;
    loop {
        let n = fill(input, buf.window()).ctx("read", in_path)?;
        if n == 0 {
            return Ok((total, hashes));
        }
        hashes.update(buf.filled(n));
        if let Some(sink) = &output {
            sink.write_at(buf.filled(n), total, &mut None).ctx("write", sink.path)?;
        }
        total += n as u64;
    }
}

/// A filled buffer, how many of its bytes are valid, and their file offset.
type Chunk = (AlignedBuf, usize, u64);

/// Reader thread → hashing (this thread) → writer threads, buffers flowing
/// back to the reader. A failing stage drops its channel ends, which stops
/// the others; its error is then collected on join.
fn stream_pipelined(
    input: &mut (impl Read + Send),
    in_path: &Path,
    output: Option<Sink<'_>>,
    bufs: &mut Vec<AlignedBuf>,
) -> Result<(u64, ContentHasher)> {
    let (free_tx, free_rx) = sync_channel::<AlignedBuf>(PIPELINE_BUFS);
    let (hash_tx, hash_rx) = sync_channel::<Chunk>(PIPELINE_BUFS);
    let (write_tx, write_rx) = sync_channel::<Chunk>(PIPELINE_BUFS);
    let write_rx = Mutex::new(write_rx);
    let write_failed = AtomicBool::new(false);
    let initial = std::mem::take(bufs);
    std::thread::scope(|s| {
        let reader = s.spawn(move || read_stage(input, initial, free_rx, hash_tx));
        let mut writers = Vec::new();
        let write_tx = match output {
            Some(sink) => {
                // Buffered writes to one file serialize on the inode lock: one writer then.
                let n = if sink.direct { WRITERS } else { 1 };
                for _ in 0..n {
                    let (rx, free_tx, failed) = (&write_rx, free_tx.clone(), &write_failed);
                    writers.push(s.spawn(move || write_stage(sink, rx, free_tx, failed).ctx("write", sink.path)));
                }
                Some(write_tx)
            }
            None => None,
        };

        let mut hashes = ContentHasher::new();
        for (buf, n, offset) in hash_rx.iter() {
            if write_failed.load(Ordering::Relaxed) {
                bufs.push(buf); // stop early; the error comes from join
                break;
            }
            hashes.update(buf.filled(n));
            let sent = match &write_tx {
                Some(tx) => tx.send((buf, n, offset)).map_err(|e| e.0.0),
                None => free_tx.send(buf).map_err(|e| e.0),
            };
            if let Err(buf) = sent {
                bufs.push(buf); // the next stage failed; its error comes from join
                break;
            }
        }
        drop(write_tx);
        drop(hash_rx);
        drop(free_tx);

        let write_results: Vec<_> =
            writers.into_iter().map(|w| w.join().expect("copy writer thread panicked")).collect();
        let (read_result, mut left, free_rx) = reader.join().expect("copy reader thread panicked");
        left.extend(free_rx.try_iter());
        bufs.extend(left);
        let total = read_result.ctx("read", in_path)?;
        write_results.into_iter().collect::<Result<Vec<()>>>()?;
        Ok((total, hashes))
    })
}

fn read_stage(
    input: &mut impl Read,
    mut spare: Vec<AlignedBuf>,
    free_rx: Receiver<AlignedBuf>,
    hash_tx: SyncSender<Chunk>,
) -> (io::Result<u64>, Vec<AlignedBuf>, Receiver<AlignedBuf>) {
    let mut total = 0u64;
    // Stops when the input ends or downstream is gone (no buffer comes back).
    while let Some(mut buf) = spare.pop().or_else(|| free_rx.recv().ok()) {
        let n = match fill(input, buf.window()) {
            Ok(n) => n,
            Err(e) => {
                spare.push(buf);
                return (Err(e), spare, free_rx);
            }
        };
        if n == 0 {
            spare.push(buf);
            break;
        }
        let offset = total;
        total += n as u64;
        if let Err(e) = hash_tx.send((buf, n, offset)) {
            spare.push(e.0.0);
            break;
        }
    }
    (Ok(total), spare, free_rx)
}

/// Writes chunks until the channel closes. After a failure it keeps taking
/// (and dropping) chunks, so the hasher is never stuck on a full channel,
/// and raises `failed` so the hasher stops sending.
fn write_stage(
    sink: Sink<'_>,
    rx: &Mutex<Receiver<Chunk>>,
    free_tx: SyncSender<AlignedBuf>,
    failed: &AtomicBool,
) -> io::Result<()> {
    let mut buffered = None;
    let mut result = Ok(());
    loop {
        // Hold the lock only to take a chunk, not while writing it.
        let next = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
        let Ok((buf, n, offset)) = next else {
            return result;
        };
        if result.is_ok() {
            result = sink.write_at(buf.filled(n), offset, &mut buffered);
            if result.is_err() {
                failed.store(true, Ordering::Relaxed);
            }
        }
        // The reader may have finished already; then the buffer is just dropped.
        let _ = free_tx.send(buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect()
    }

    fn set_old_mtime(p: &Path) -> SystemTime {
        let t = SystemTime::UNIX_EPOCH + Duration::new(1_600_000_000, 123_456_789);
        File::options().write(true).open(p).unwrap().set_modified(t).unwrap();
        t
    }

    #[test]
    fn copies_bytes_hashes_and_mtime_small_and_large() {
        let d = tempfile::tempdir().unwrap();
        // Empty, small (inline path), exactly one buffer, and several buffers (pipeline).
        for len in [0, 1000, BUF_SIZE, 3 * BUF_SIZE + 17] {
            let src = d.path().join(format!("src-{len}"));
            let data = pattern(len);
            fs::write(&src, &data).unwrap();
            let mtime = set_old_mtime(&src);
            let dst = d.path().join(format!("out/ks/t/dst-{len}"));
            let crc = crc32fast::hash(&data);
            let stored = copy_verified(&src, &dst, Some(crc)).unwrap();
            assert_eq!(fs::read(&dst).unwrap(), data, "len {len}");
            assert_eq!(stored.size, len as u64);
            assert_eq!(stored.crc32, crc);
            assert_eq!(stored.blake3, blake3::hash(&data).to_hex().to_string());
            assert_eq!(stored.mtime_ns, 1_600_000_000_123_456_789);
            assert_eq!(fs::metadata(&dst).unwrap().modified().unwrap(), mtime);
            assert!(!partial_path(&dst).exists());
            assert_eq!(hash_file(&src).unwrap(), stored);
        }
    }

    #[test]
    fn buffered_pipeline_writes_the_same_bytes() {
        // The path taken where O_DIRECT is unsupported (e.g. tmpfs).
        let d = tempfile::tempdir().unwrap();
        let data = pattern(2 * BUF_SIZE + 4097);
        let src = d.path().join("s");
        fs::write(&src, &data).unwrap();
        let out_path = d.path().join("d");
        let out = File::create(&out_path).unwrap();
        let sink = Sink { file: &out, path: &out_path, direct: false };
        let mut input = File::open(&src).unwrap();
        let (read, hashes) = stream(&mut input, &src, Some(sink), data.len() as u64).unwrap();
        assert_eq!(read, data.len() as u64);
        assert_eq!(hashes.crc32(), crc32fast::hash(&data));
        assert_eq!(fs::read(&out_path).unwrap(), data);
    }

    #[test]
    fn write_failure_is_reported_not_hung() {
        // /dev/full fails every write with ENOSPC.
        let Ok(full) = File::options().write(true).open("/dev/full") else {
            return;
        };
        let data = pattern(6 * BUF_SIZE);
        let mut bufs = take_buffers(PIPELINE_BUFS);
        let sink = Sink { file: &full, path: Path::new("/dev/full"), direct: true };
        let mut src = &data[..];
        let Err(err) = stream_pipelined(&mut src, Path::new("src"), Some(sink), &mut bufs) else {
            panic!("writing to /dev/full succeeded")
        };
        assert_eq!(err.io_kind(), Some(io::ErrorKind::StorageFull), "{err}");
        assert!(err.to_string().contains("/dev/full"), "{err}");
    }

    #[test]
    fn copy_keeps_permissions() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("s");
        fs::write(&src, b"x").unwrap();
        fs::set_permissions(&src, fs::Permissions::from_mode(0o640)).unwrap();
        copy_verified(&src, &d.path().join("d"), None).unwrap();
        assert_eq!(fs::metadata(d.path().join("d")).unwrap().mode() & 0o777, 0o640);
    }

    #[test]
    fn crc_mismatch_names_file_and_leaves_nothing() {
        let d = tempfile::tempdir().unwrap();
        for len in [100, 2 * BUF_SIZE + 5] {
            let src = d.path().join("nb-1-big-Data.db");
            let data = pattern(len);
            fs::write(&src, &data).unwrap();
            let actual = crc32fast::hash(&data);
            let wrong = actual ^ 1;
            let dst = d.path().join("out/nb-1-big-Data.db");
            let err = copy_verified(&src, &dst, Some(wrong)).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains("nb-1-big-Data.db"), "{msg}");
            assert!(msg.contains(&wrong.to_string()) && msg.contains(&actual.to_string()), "{msg}");
            assert!(!dst.exists());
            assert!(!partial_path(&dst).exists());
        }
    }

    #[test]
    fn missing_source_is_error_naming_it() {
        let d = tempfile::tempdir().unwrap();
        let err = copy_verified(&d.path().join("gone"), &d.path().join("dst"), None).unwrap_err();
        assert!(err.to_string().contains("gone"));
        assert_eq!(err.io_kind(), Some(io::ErrorKind::NotFound));
    }

    #[test]
    fn detects_a_file_that_grows_while_copying() {
        // Read from a stream longer than the size at open.
        let data = pattern(3 * BUF_SIZE);
        let mut bufs = take_buffers(PIPELINE_BUFS);
        let expected = (2 * BUF_SIZE) as u64;
        let mut src = (&data[..]).take(expected + 1);
        let (read, _) = stream_pipelined(&mut src, Path::new("x"), None, &mut bufs).unwrap();
        assert_eq!(read, expected + 1);
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("s");
        fs::write(&src, b"abc").unwrap();
        let f = File::open(&src).unwrap();
        let before = f.metadata().unwrap();
        fs::write(&src, b"abcdef").unwrap();
        let err = check_unchanged(&f, &src, &before, 3, ContentHasher::new()).unwrap_err();
        assert!(err.to_string().contains("file changed while copying"), "{err}");
        let err = check_unchanged(&f, &src, &before, 6, ContentHasher::new()).unwrap_err();
        assert!(matches!(err, RepoError::ChangedWhileCopying { .. }));
    }

    #[test]
    fn digest_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("nb-1-big-Digest.crc32");
        fs::write(&p, "4000000000\n").unwrap();
        assert_eq!(read_digest_crc32(&p).unwrap(), 4_000_000_000);
        fs::write(&p, "12ab").unwrap();
        let err = read_digest_crc32(&p).unwrap_err();
        assert!(err.to_string().contains("Digest.crc32") && err.to_string().contains("12ab"), "{err}");
    }

    #[test]
    fn link_or_copy_links_and_is_idempotent() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("b1/ks/t/f");
        fs::create_dir_all(a.parent().unwrap()).unwrap();
        fs::write(&a, b"data").unwrap();
        let b = d.path().join("b2/ks/t/f");
        assert_eq!(link_or_copy(&a, &b).unwrap(), LinkOutcome::Linked);
        assert_eq!(fs::metadata(&a).unwrap().ino(), fs::metadata(&b).unwrap().ino());
        assert_eq!(link_or_copy(&a, &b).unwrap(), LinkOutcome::Linked);
        // Replaces a different file at `new`.
        fs::remove_file(&b).unwrap();
        fs::write(&b, b"stale").unwrap();
        assert_eq!(link_or_copy(&a, &b).unwrap(), LinkOutcome::Linked);
        assert_eq!(fs::read(&b).unwrap(), b"data");
        assert!(!partial_path(&b).exists());
        // A missing source is an error that names the link it could not make.
        let err = link_or_copy(&d.path().join("b1/ks/t/gone"), &d.path().join("b3/ks/t/gone")).unwrap_err();
        assert!(err.to_string().contains("b3/ks/t/gone"), "{err}");
    }

    #[test]
    fn links_made_at_once_into_a_new_directory_all_succeed() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("b1");
        fs::create_dir_all(&src).unwrap();
        for i in 0..64 {
            fs::write(src.join(format!("f{i}")), b"x").unwrap();
        }
        let dst = d.path().join("b2/ks/t");
        std::thread::scope(|scope| {
            for t in 0..8 {
                let (src, dst) = (&src, &dst);
                scope.spawn(move || {
                    for i in (t..64).step_by(8) {
                        let name = format!("f{i}");
                        link_or_copy_with(&src.join(&name), &dst.join(&name), Durability::Deferred).unwrap();
                    }
                });
            }
        });
        assert_eq!(fs::read_dir(&dst).unwrap().count(), 64);
    }

    #[test]
    fn link_falls_back_only_on_link_errors() {
        assert!(link_unsupported(&io::Error::from(io::ErrorKind::CrossesDevices)));
        assert!(link_unsupported(&io::Error::from_raw_os_error(31))); // EMLINK
        assert!(!link_unsupported(&io::Error::from(io::ErrorKind::NotFound)));
    }
}
