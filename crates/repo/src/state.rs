//! cassette's own state directory: the node-wide job locks and the journals of uploads to
//! object storage. It must be a place nobody else can write, because cassette runs as root
//! (or as the cassandra user) and a lock file another user could plant a link at would make it
//! write through that link.
//!
//! Where: `$CASSETTE_STATE_DIR` if set; else `/var/lib/cassette` when running as root and
//! `/var/lib` is there to hold it; else `$XDG_STATE_HOME/cassette`, else
//! `~/.local/state/cassette`. It is created with mode 0700, and refused (with
//! [`RepoError::StateDir`]) unless it is a directory owned by the user running cassette and not
//! writable by group or others.

use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::error::{RepoError, Result};

/// Where the state directory is, by the rule above (not created, not checked).
pub fn state_dir_path() -> PathBuf {
    if let Some(d) = std::env::var_os("CASSETTE_STATE_DIR").filter(|d| !d.is_empty()) {
        return d.into();
    }
    // SAFETY: geteuid cannot fail and touches no memory.
    let root = unsafe { libc::geteuid() } == 0;
    let var_lib = Path::new("/var/lib");
    if root && (var_lib.join("cassette").is_dir() || writable(var_lib)) {
        return var_lib.join("cassette");
    }
    if let Some(d) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("cassette");
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/"));
    home.join(".local/state/cassette")
}

fn writable(dir: &Path) -> bool {
    rustix::fs::access(dir, rustix::fs::Access::WRITE_OK).is_ok() && dir.is_dir()
}

/// The state directory, created (mode 0700) if missing and checked.
pub fn state_dir() -> Result<PathBuf> {
    let dir = state_dir_path();
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| RepoError::io("create directory", parent, e))?;
    }
    private_dir(&dir, true)?;
    Ok(dir)
}

/// `<state>/<name>`, a private subdirectory (created mode 0700, checked like the state directory,
/// and not a symbolic link).
pub fn state_subdir(name: &str) -> Result<PathBuf> {
    let dir = state_dir()?.join(name);
    private_dir(&dir, false)?;
    Ok(dir)
}

/// `<state>/<kind>/<BLAKE3 of url>`: the local state of one backup on object storage (its upload
/// journal, its restore journals), apart from every other backup's. Not created: see [`dir_for`].
pub fn dir_path_for(kind: &str, url: &str) -> PathBuf {
    state_dir_path().join(kind).join(url_key(url))
}

/// [`dir_path_for`] with `<state>/<kind>` created and checked like [`state_subdir`].
pub fn dir_for(kind: &str, url: &str) -> Result<PathBuf> {
    Ok(state_subdir(kind)?.join(url_key(url)))
}

fn url_key(url: &str) -> String {
    blake3::hash(url.as_bytes()).to_hex().to_string()
}

/// Creates `dir` with mode 0700 if missing, then checks its owner and mode. `follow`: whether
/// `dir` itself may be a symbolic link (the operator's choice of state directory may be).
fn private_dir(dir: &Path, follow: bool) -> Result<()> {
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(RepoError::io("create directory", dir, e)),
    }
    let bad = |problem: String| RepoError::StateDir { path: dir.to_owned(), problem };
    let meta = if follow { std::fs::metadata(dir) } else { std::fs::symlink_metadata(dir) }
        .map_err(|e| RepoError::io("stat", dir, e))?;
    if !meta.is_dir() {
        return Err(bad("it is not a directory".into()));
    }
    // SAFETY: as above.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        return Err(bad(format!("it is owned by uid {}, not by uid {me} running cassette", meta.uid())));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(bad(format!("its mode is {:o}, writable by group or others (chmod 700 it)", meta.mode() & 0o7777)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn created_private_and_refused_when_writable_by_others() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("state");
        private_dir(&dir, true).unwrap();
        assert_eq!(std::fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = private_dir(&dir, true).unwrap_err().to_string();
        assert!(err.contains("writable by group or others"), "{err}");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::symlink(&dir, d.path().join("link")).unwrap();
        assert!(private_dir(&d.path().join("link"), false).is_err(), "a link inside the state directory");
    }
}
