//! Small durable-write helpers shared by the other modules.
//!
//! A file is only as durable as its directory entry, so every atomic rename
//! is followed by an fsync of the directory that holds it.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{IoContext, Result};
use crate::layout::PARTIAL_SUFFIX;

/// `path` with [`PARTIAL_SUFFIX`] appended to its file name.
pub fn partial_path(path: &Path) -> PathBuf {
    let mut s: OsString = path.as_os_str().to_owned();
    s.push(PARTIAL_SUFFIX);
    PathBuf::from(s)
}

/// Refuses `path` if it is a symbolic link (a directory cassette is about to write into).
pub(crate) fn refuse_link(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(crate::RepoError::Unsafe {
            path: path.to_owned(),
            problem: "it is a symbolic link where a directory should be".into(),
        }),
        _ => Ok(()),
    }
}

/// Creates (or truncates) the file `path` for writing, refusing a symbolic link or anything but
/// a regular file there: a link planted at a `.partial` name is never written through.
pub fn create_nofollow(path: &Path) -> Result<File> {
    let f = open_own_regular(path, File::options().write(true).create(true).truncate(false), "create")?;
    // Truncated only once known to be a regular file of its own (a FIFO is never opened for
    // writing by a blocking open, a device never truncated).
    f.set_len(0).ctx("truncate", path)?;
    Ok(f)
}

/// Opens (creating it if missing) the file `path` for appending and reading, refusing a symbolic
/// link, a symbolic link as its directory, or anything but a regular file of its own: journals.
pub fn open_append_nofollow(path: &Path) -> Result<File> {
    if let Some(parent) = path.parent() {
        refuse_link(parent)?;
    }
    open_own_regular(path, File::options().read(true).append(true).create(true), "open")
}

/// Opens `path` with `options` plus `O_NOFOLLOW | O_NONBLOCK` (a link is refused, a FIFO never
/// blocks the open), then checks on the opened descriptor that it is a regular file with one
/// link: what is checked is what gets written.
fn open_own_regular(path: &Path, options: &mut fs::OpenOptions, verb: &'static str) -> Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let opened = options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC).open(path);
    let f = opened.map_err(|e| match e.raw_os_error() {
        Some(libc::ELOOP) => {
            crate::RepoError::Unsafe { path: path.to_owned(), problem: "it is a symbolic link".into() }
        }
        _ => crate::RepoError::io(verb, path, e),
    })?;
    let meta = f.metadata().ctx("stat", path)?;
    if !meta.is_file() || std::os::unix::fs::MetadataExt::nlink(&meta) != 1 {
        return Err(crate::RepoError::Unsafe {
            path: path.to_owned(),
            problem: "it is not a regular file of its own (a FIFO, device, or a hard link to another file)".into(),
        });
    }
    Ok(f)
}

/// The bytes of the regular file `path`, or `None` if there is none; a symbolic link, FIFO or
/// anything else there is refused (never followed, never blocks).
pub fn read_regular(path: &Path) -> Result<Option<Vec<u8>>> {
    use std::io::Read;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut f = match crate::beneath::open_regular(dir, path) {
        Ok(f) => f,
        Err(e) if e.io_kind() == Some(std::io::ErrorKind::NotFound) => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes).ctx("read", path)?;
    Ok(Some(bytes))
}

/// Fsyncs a directory, making renames and creations inside it durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).ctx("sync directory", dir)
}

/// Flushes everything written to the filesystem that holds `path` (`syncfs(2)`): one flush
/// makes a batch of files and renames durable ([`Durability::Deferred`](crate::Durability)).
/// Errors from earlier writeback of any file there are reported here (Linux 5.8 and later).
pub fn sync_filesystem(path: &Path) -> Result<()> {
    use std::os::fd::AsRawFd;
    let dir = File::open(path).ctx("open", path)?;
    // SAFETY: syncfs on a descriptor we own for the duration of the call.
    if unsafe { libc::syncfs(dir.as_raw_fd()) } == 0 {
        Ok(())
    } else {
        Err(crate::RepoError::io("sync the filesystem of", path, std::io::Error::last_os_error()))
    }
}

/// Fsyncs the directory containing `path`.
pub(crate) fn sync_parent(path: &Path) -> Result<()> {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => sync_dir(p),
        _ => sync_dir(Path::new(".")),
    }
}

/// Writes `bytes` to `path` atomically: `<path>.partial`, fsync, rename,
/// fsync of the directory. Readers see the old file or the new one, never
/// half of it. Creates the parent directories.
pub fn write_file_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomically_at(path, bytes, None)
}

/// [`write_file_atomically`], with a fault-injection point (see `fault`) between the fsync of
/// the partial file and its rename.
pub(crate) fn write_atomically_at(path: &Path, bytes: &[u8], fault_point: Option<&str>) -> Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).ctx("create directory", parent)?;
        refuse_link(parent)?;
    }
    let partial = partial_path(path);
    let result = (|| {
        let mut f = create_nofollow(&partial)?;
        f.write_all(bytes).ctx("write", &partial)?;
        f.sync_all().ctx("sync", &partial)?;
        if let Some(point) = fault_point {
            crate::fault::point(point);
        }
        fs::rename(&partial, path).ctx("rename into place", path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&partial);
    }
    result?;
    sync_parent(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_partial() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sub/schema.cql");
        write_file_atomically(&p, b"one").unwrap();
        write_file_atomically(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert!(!partial_path(&p).exists());
        assert_eq!(partial_path(&p), d.path().join("sub/schema.cql.partial"));
    }
}
