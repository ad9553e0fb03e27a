//! Free space and filesystem identity, to decide before copying whether a
//! backup fits and whether hard links are possible.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::error::{RepoError, Result};

/// Bytes available to this user on the filesystem holding `path`. If `path`
/// does not exist yet (a backup directory about to be created), its nearest
/// existing ancestor is asked.
pub fn available_bytes(path: &Path) -> Result<u64> {
    let existing = nearest_existing(path).map_err(|e| RepoError::io("stat", path, e))?;
    fs4::available_space(existing).map_err(|e| RepoError::io("read free space of", existing, e))
}

/// Whether `a` and `b` are on the same filesystem (same `st_dev`), i.e.
/// whether a hard link between them can work. Paths that do not exist yet
/// are judged by their nearest existing ancestor.
pub fn same_filesystem(a: &Path, b: &Path) -> io::Result<bool> {
    let dev = |p: &Path| -> io::Result<u64> { Ok(nearest_existing(p)?.metadata()?.dev()) };
    Ok(dev(a)? == dev(b)?)
}

fn nearest_existing(path: &Path) -> io::Result<&Path> {
    let mut p = path;
    loop {
        match p.try_exists() {
            Ok(true) => return Ok(p),
            Ok(false) => match p.parent() {
                Some(parent) if !parent.as_os_str().is_empty() => p = parent,
                _ => return Ok(Path::new(".")),
            },
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn space_and_filesystem() {
        let d = tempfile::tempdir().unwrap();
        let avail = available_bytes(d.path()).unwrap();
        assert!(avail > 0);
        // A not-yet-created backup directory is judged by its parent.
        let future = d.path().join("c/h/b");
        assert!(available_bytes(&future).unwrap() > 0);
        assert!(same_filesystem(d.path(), &future).unwrap());
        // /proc is always another filesystem than a tempdir.
        assert!(!same_filesystem(d.path(), Path::new("/proc")).unwrap());
    }
}
