//! The repository path policy: every path cassette reads, writes or removes in a directory
//! repository is resolved beneath a directory it trusts (the repository root, or a backup
//! directory), and no symbolic link is followed on the way.
//!
//! A repository is shared by every node and often writable by others; whoever writes there
//! must not be able to make cassette (running as root or as the cassandra user) read, write or
//! delete anything outside it. So:
//! - paths are resolved with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` (Linux 5.6 and
//!   later; older kernels get the same rule from a walk opening each component with
//!   `O_NOFOLLOW`), through `rustix`, the safe wrapper of these calls `tempfile` already uses;
//! - a stored file or manifest is read only if it is a regular file: it is opened with
//!   `O_NOFOLLOW | O_NONBLOCK` (a FIFO never blocks the open) and checked with `fstat` on the
//!   opened descriptor (what is checked is what is read);
//! - paths named by a manifest are checked on parse ([`check_relative`]);
//! - removals walk directories by descriptor and unlink entries, never following a link.
//!
//! Every refusal is [`RepoError::Unsafe`], naming the path and what was found there.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};

use crate::error::{RepoError, Result};

/// The rule of the relative paths a manifest names (the format's), re-exported here.
pub use cassette_format::name::check_relative;

fn unsafe_at(path: &Path, problem: impl Into<String>) -> RepoError {
    RepoError::Unsafe { path: path.to_owned(), problem: problem.into() }
}

/// What kind of file `t` is, in words.
fn kind(t: FileType) -> &'static str {
    match t {
        FileType::RegularFile => "a regular file",
        FileType::Directory => "a directory",
        FileType::Symlink => "a symbolic link",
        FileType::Fifo => "a FIFO (named pipe)",
        FileType::Socket => "a socket",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        FileType::Unknown => "a file of unknown type",
    }
}

/// The components of `rel` (relative to a trusted directory), refusing anything but plain names.
fn components<'a>(full: &Path, rel: &'a Path) -> Result<Vec<&'a std::ffi::OsStr>> {
    let mut out = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(s) => out.push(s),
            Component::CurDir => {}
            _ => return Err(unsafe_at(full, "the path leaves the repository ('..' or an absolute path)")),
        }
    }
    Ok(out)
}

/// `path` relative to `root`, refusing a path outside it.
fn relative<'a>(root: &Path, path: &'a Path) -> Result<&'a Path> {
    path.strip_prefix(root).map_err(|_| unsafe_at(path, format!("it is not inside {}", root.display())))
}

/// Opens `rel` beneath the directory `dirfd` with `flags`, following no symbolic link.
fn open_beneath(dirfd: impl AsFd, full: &Path, rel: &Path, flags: OFlags, mode: Mode) -> Result<OwnedFd> {
    let parts = components(full, rel)?;
    let flags = flags | OFlags::CLOEXEC | OFlags::NOFOLLOW;
    if parts.is_empty() {
        return rustix::fs::openat(dirfd, ".", flags, mode).map_err(|e| io_err(full, e));
    }
    let joined: PathBuf = parts.iter().collect();
    let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
    match rustix::fs::openat2(dirfd.as_fd(), &joined, flags, mode, resolve) {
        Err(rustix::io::Errno::NOSYS) | Err(rustix::io::Errno::PERM) => {}
        other => return other.map_err(|e| io_err(full, e)),
    }
    // A kernel without openat2 (or a seccomp filter refusing it): the same rule, one component
    // at a time.
    let (last, dirs) = parts.split_last().expect("not empty");
    let mut dir: Option<OwnedFd> = None;
    for d in dirs {
        let at = dir.as_ref().map(|f| f.as_fd()).unwrap_or(dirfd.as_fd());
        let next = rustix::fs::openat(
            at,
            *d,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io_err(full, e))?;
        dir = Some(next);
    }
    let at = dir.as_ref().map(|f| f.as_fd()).unwrap_or(dirfd.as_fd());
    rustix::fs::openat(at, *last, flags, mode).map_err(|e| io_err(full, e))
}

/// An error of resolving `full`: a symbolic link (ELOOP, or ENOTDIR from O_NOFOLLOW with
/// O_DIRECTORY on a link) or an escape (EXDEV) is [`RepoError::Unsafe`]; the rest is I/O.
fn io_err(full: &Path, e: rustix::io::Errno) -> RepoError {
    match e {
        rustix::io::Errno::LOOP => unsafe_at(full, "it is, or passes through, a symbolic link"),
        // O_NOFOLLOW with O_DIRECTORY on a link, or a file where a directory should be.
        rustix::io::Errno::NOTDIR => {
            unsafe_at(full, "it, or a directory on its way, is a symbolic link or a file where a directory should be")
        }
        rustix::io::Errno::XDEV => unsafe_at(full, "it resolves outside the repository"),
        e => RepoError::io("open", full, io::Error::from(e)),
    }
}

/// Opens a directory the operator named (the repository root, a backup directory): the
/// anchor every other path is resolved beneath.
fn open_anchor(dir: &Path) -> Result<OwnedFd> {
    rustix::fs::open(dir, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| RepoError::io("open", dir, io::Error::from(e)))
}

/// Opens `path` (inside `root`) for reading if it is a regular file reached without a symbolic
/// link; anything else (a link, FIFO, directory, socket or device) is refused, naming it.
/// A FIFO neither blocks the open nor the check.
pub fn open_regular(root: &Path, path: &Path) -> Result<File> {
    let rel = relative(root, path)?;
    let anchor = open_anchor(root)?;
    let fd = open_beneath(&anchor, path, rel, OFlags::RDONLY | OFlags::NONBLOCK, Mode::empty())?;
    let st = rustix::fs::fstat(&fd).map_err(|e| RepoError::io("stat", path, io::Error::from(e)))?;
    let t = FileType::from_raw_mode(st.st_mode);
    if t != FileType::RegularFile {
        return Err(unsafe_at(path, format!("it is {}, not a regular file", kind(t))));
    }
    // Reads of a regular file never block; clearing the flag keeps `File`'s usual behaviour.
    rustix::fs::fcntl_setfl(&fd, OFlags::empty()).map_err(|e| RepoError::io("open", path, io::Error::from(e)))?;
    Ok(File::from(fd))
}

/// Checks that `path` (inside `root`) is reached without a symbolic link and, if it exists, is
/// a directory. Returns whether it exists.
pub fn check_dir(root: &Path, path: &Path) -> Result<bool> {
    let rel = relative(root, path)?;
    let anchor = open_anchor(root)?;
    match open_beneath(&anchor, path, rel, OFlags::PATH | OFlags::DIRECTORY, Mode::empty()) {
        Ok(_) => Ok(true),
        Err(RepoError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Creates the directory `path` and its missing parents inside `root` (mode 0755 less the
/// umask), refusing any existing component that is a symbolic link or not a directory.
pub fn create_dir_all(root: &Path, path: &Path) -> Result<()> {
    let rel = relative(root, path)?;
    let parts = components(path, rel)?;
    let mut dir = open_anchor(root)?;
    let mut so_far = root.to_path_buf();
    for part in parts {
        so_far.push(part);
        match rustix::fs::mkdirat(&dir, part, Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(RepoError::io("create directory", &so_far, io::Error::from(e))),
        }
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        dir = rustix::fs::openat(&dir, part, flags, Mode::empty()).map_err(|e| match e {
            rustix::io::Errno::NOTDIR | rustix::io::Errno::LOOP => {
                unsafe_at(&so_far, "it is a symbolic link or a file where a directory should be")
            }
            e => RepoError::io("open", &so_far, io::Error::from(e)),
        })?;
    }
    Ok(())
}

/// Removes `path` (inside `root`) and everything under it, following no symbolic link: a link
/// found anywhere is removed as a link, its target untouched. A path reached through a link is
/// refused. Nothing there is not an error.
pub fn remove_all(root: &Path, path: &Path) -> Result<()> {
    let rel = relative(root, path)?;
    let parts = components(path, rel)?;
    let Some((name, parents)) = parts.split_last() else {
        return Err(unsafe_at(path, "refusing to remove the directory everything is resolved beneath"));
    };
    let anchor = open_anchor(root)?;
    let parent_rel: PathBuf = parents.iter().collect();
    let parent = match open_beneath(&anchor, path, &parent_rel, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()) {
        Ok(fd) => fd,
        Err(RepoError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    match remove_at(&parent, *name) {
        Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
        Err(e) => Err(RepoError::io("remove", path, io::Error::from(e))),
    }
}

/// Removes the entries of the directory `path` (inside `root`), keeping the directory; as
/// [`remove_all`], never through a link.
pub fn remove_contents(root: &Path, path: &Path) -> Result<()> {
    let rel = relative(root, path)?;
    let anchor = open_anchor(root)?;
    let dir = match open_beneath(&anchor, path, rel, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()) {
        Ok(fd) => fd,
        Err(RepoError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    clear_dir(&dir).map_err(|e| RepoError::io("remove the contents of", path, io::Error::from(e)))
}

fn clear_dir(dir: &OwnedFd) -> rustix::io::Result<()> {
    let mut names = Vec::new();
    for entry in rustix::fs::Dir::read_from(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(entry.file_name().to_owned());
        }
    }
    for name in names {
        match remove_at(dir, name.as_c_str()) {
            Ok(()) | Err(rustix::io::Errno::NOENT) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Removes `name` in `dir`: unlinks a file or link; empties and removes a directory, opened
/// with `O_NOFOLLOW` so that a directory swapped for a link meanwhile is not entered.
fn remove_at<P: rustix::path::Arg + Copy>(dir: &OwnedFd, name: P) -> rustix::io::Result<()> {
    let st = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?;
    if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
        return rustix::fs::unlinkat(dir, name, AtFlags::empty());
    }
    let sub = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    clear_dir(&sub)?;
    rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR)
}

/// The first entry under `dir` that is neither a directory nor a regular file (a symbolic link,
/// FIFO, socket or device), walking without following links: an interrupted backup holding
/// one is not resumed into.
pub fn find_special(dir: &Path) -> Result<Option<(PathBuf, &'static str)>> {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = match std::fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(RepoError::io("list", &d, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| RepoError::io("list", &d, e))?;
            let t = entry.file_type().map_err(|e| RepoError::io("stat", entry.path(), e))?;
            if t.is_dir() {
                stack.push(entry.path());
            } else if !t.is_file() {
                let what = if t.is_symlink() { "a symbolic link" } else { "not a regular file or directory" };
                return Ok(Some((entry.path(), what)));
            }
        }
    }
    Ok(None)
}

/// A file found by [`walk_files`] or [`read_dir`]: its path relative to the directory walked,
/// its size and modification time.
#[derive(Debug, Clone)]
pub struct FoundFile {
    /// Relative to the directory walked.
    pub path: PathBuf,
    /// In bytes.
    pub size: u64,
    /// Last modification.
    pub modified: std::time::SystemTime,
}

/// The parent of `path` (inside `root`), opened beneath `root` (made first when `create`), and
/// `path`'s last component.
fn open_parent<'a>(root: &Path, path: &'a Path, create: bool) -> Result<(OwnedFd, &'a std::ffi::OsStr)> {
    let rel = relative(root, path)?;
    let parts = components(path, rel)?;
    let Some((name, parents)) = parts.split_last() else {
        return Err(unsafe_at(path, "it is the directory everything is resolved beneath"));
    };
    let parent_rel: PathBuf = parents.iter().collect();
    if create {
        create_dir_all(root, &root.join(&parent_rel))?;
    }
    let anchor = open_anchor(root)?;
    let parent = open_beneath(&anchor, path, &parent_rel, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty())?;
    Ok((parent, name))
}

/// Creates the regular file `path` (inside `root`; missing parents made as by
/// [`create_dir_all`]) for writing, mode 0644 less the umask. An existing file or link there is
/// refused (`O_EXCL`), and no symbolic link is followed on the way.
pub fn create_new(root: &Path, path: &Path) -> Result<File> {
    let (parent, name) = open_parent(root, path, true)?;
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rustix::fs::openat(&parent, name, flags, Mode::from_raw_mode(0o644)).map_err(|e| io_err(path, e))?;
    Ok(File::from(fd))
}

/// Renames `from` to `to` (both inside `root`; `to`'s missing parents made), following no
/// symbolic link on either way. Without `replace`, an existing `to` is left alone and the
/// answer is `false`.
pub fn rename(root: &Path, from: &Path, to: &Path, replace: bool) -> Result<bool> {
    let (from_dir, from_name) = open_parent(root, from, false)?;
    let (to_dir, to_name) = open_parent(root, to, true)?;
    let flags = if replace { rustix::fs::RenameFlags::empty() } else { rustix::fs::RenameFlags::NOREPLACE };
    match rustix::fs::renameat_with(&from_dir, from_name, &to_dir, to_name, flags) {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::EXIST) if !replace => Ok(false),
        Err(e) => Err(RepoError::io("rename", to, io::Error::from(e))),
    }
}

/// The regular files of the directory `path` (inside `root`) and the names of its
/// subdirectories, one level, read by descriptor: symbolic links and special files are left
/// out, never followed. A missing directory has neither.
pub fn read_dir(root: &Path, path: &Path) -> Result<(Vec<FoundFile>, Vec<PathBuf>)> {
    let rel = relative(root, path)?;
    let anchor = open_anchor(root)?;
    let dir = match open_beneath(&anchor, path, rel, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()) {
        Ok(fd) => fd,
        Err(RepoError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            return Ok((Vec::new(), Vec::new()));
        }
        Err(e) => return Err(e),
    };
    read_dir_fd(&dir).map_err(|e| RepoError::io("read directory", path, io::Error::from(e)))
}

fn read_dir_fd(dir: &OwnedFd) -> rustix::io::Result<(Vec<FoundFile>, Vec<PathBuf>)> {
    use std::os::unix::ffi::OsStrExt;
    let (mut files, mut dirs) = (Vec::new(), Vec::new());
    for entry in rustix::fs::Dir::read_from(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_bytes() == b"." || name.to_bytes() == b".." {
            continue;
        }
        let st = match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(rustix::io::Errno::NOENT) => continue, // removed meanwhile
            Err(e) => return Err(e),
        };
        let path = PathBuf::from(std::ffi::OsStr::from_bytes(name.to_bytes()));
        match FileType::from_raw_mode(st.st_mode) {
            FileType::RegularFile => {
                let modified = std::time::UNIX_EPOCH
                    + std::time::Duration::new(st.st_mtime.max(0) as u64, st.st_mtime_nsec as u32);
                files.push(FoundFile { path, size: st.st_size as u64, modified });
            }
            FileType::Directory => dirs.push(path),
            _ => {}
        }
    }
    Ok((files, dirs))
}

/// Every regular file under the directory `path` (inside `root`), walking by descriptor:
/// symbolic links and special files are left out, and no link is followed into.
pub fn walk_files(root: &Path, path: &Path) -> Result<Vec<FoundFile>> {
    let mut found = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(sub) = pending.pop() {
        let (files, dirs) = read_dir(root, &path.join(&sub))?;
        found.extend(files.into_iter().map(|f| FoundFile { path: sub.join(&f.path), ..f }));
        pending.extend(dirs.into_iter().map(|d| sub.join(d)));
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn relative_paths_are_checked() {
        for ok in ["ks/t/nb-1-big-Data.db", "cassette-meta/conf/0-conf/cassandra.yaml", "a"] {
            assert_eq!(check_relative(ok), None, "{ok}");
        }
        for bad in ["", "/etc/hostname", "../../x", "ks/../x", "ks//t", "ks/t/", "./ks", "a\0b"] {
            assert!(check_relative(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn reads_only_regular_files_reached_without_links() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("repo");
        std::fs::create_dir_all(root.join("b/ks/t")).unwrap();
        std::fs::write(root.join("b/ks/t/f"), b"x").unwrap();
        std::fs::write(d.path().join("outside"), b"secret").unwrap();
        symlink(d.path().join("outside"), root.join("b/ks/t/link")).unwrap();
        symlink(root.join("b/ks"), root.join("b/ks2")).unwrap();
        rustix::fs::mkfifoat(rustix::fs::CWD, root.join("b/fifo"), Mode::from_raw_mode(0o644)).unwrap();
        assert!(open_regular(&root, &root.join("b/ks/t/f")).is_ok());
        for bad in ["b/ks/t/link", "b/ks2/t/f", "b/fifo", "b/ks"] {
            let err = open_regular(&root, &root.join(bad)).unwrap_err();
            assert!(matches!(err, RepoError::Unsafe { .. }), "{bad}: {err}");
        }
        assert!(open_regular(&root, &root.join("b/../../outside")).is_err());
        assert!(open_regular(&root, Path::new("/etc/hostname")).is_err());
    }

    #[test]
    fn creates_and_removes_without_following_links() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("repo");
        let outside = d.path().join("live");
        std::fs::create_dir_all(outside.join("t")).unwrap();
        std::fs::write(outside.join("t/Data.db"), b"live").unwrap();
        std::fs::create_dir_all(root.join("staging/h/1")).unwrap();
        symlink(&outside, root.join("staging/h/1/link")).unwrap();
        symlink(&outside, root.join("linked")).unwrap();
        assert!(matches!(create_dir_all(&root, &root.join("linked/x")), Err(RepoError::Unsafe { .. })));
        assert!(matches!(check_dir(&root, &root.join("linked")), Err(RepoError::Unsafe { .. })));
        assert!(matches!(remove_contents(&root, &root.join("linked")), Err(RepoError::Unsafe { .. })));
        assert!(matches!(remove_all(&root, &root.join("linked/t")), Err(RepoError::Unsafe { .. })));
        create_dir_all(&root, &root.join("a/b/c")).unwrap();
        assert!(check_dir(&root, &root.join("a/b/c")).unwrap());
        remove_contents(&root, &root.join("staging/h")).unwrap();
        assert!(root.join("staging/h").is_dir() && !root.join("staging/h/1").exists());
        remove_all(&root, &root.join("linked")).unwrap();
        assert!(!root.join("linked").exists());
        assert_eq!(std::fs::read(outside.join("t/Data.db")).unwrap(), b"live");
    }
}
