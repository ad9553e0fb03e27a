//! The crate's single error type.
//!
//! Every message says what went wrong, which path is involved, and what the
//! operator can do about it: these errors end up in front of someone at
//! 3 a.m. who has a broken node and no patience for riddles.

use std::io;
use std::path::{Path, PathBuf};

use cassette_format::FormatError;

/// Everything that can go wrong while reading or writing the repository.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RepoError {
    /// A backup name does not follow the naming rule.
    #[error(
        "invalid backup name {name:?}: use 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit"
    )]
    InvalidBackupName {
        /// The refused name, as given.
        name: String,
    },

    /// A cluster name, host ID, keyspace or table name cannot be used as a directory name.
    #[error(
        "invalid {kind} {value:?}: {reason}; it is used as a directory name in the repository, pick one without '/' or control characters"
    )]
    InvalidComponent {
        /// What the value is (e.g. "cluster name", "keyspace").
        kind: String,
        /// The refused value, as given.
        value: String,
        /// Which rule it breaks.
        reason: &'static str,
    },

    /// An I/O operation on a path failed.
    #[error("cannot {action} {}: {source}; {}", path.display(), io_hint(source))]
    Io {
        /// What we were doing ("open", "write", "rename", ...).
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },

    /// The repository root does not exist.
    #[error("no backup repository at {}: check the repository path (it must exist and be readable)", path.display())]
    NoRepository {
        /// The repository root that was given.
        path: PathBuf,
    },

    /// No backup directory at this path.
    #[error("no backup at {}: check the backup name, cluster name and host ID ('cassette list' shows the existing backups)", path.display())]
    NotFound {
        /// The backup directory that was looked for.
        path: PathBuf,
    },

    /// The backup directory exists but has no manifest: it was interrupted or is still running.
    #[error("backup at {} is incomplete (no manifest.json): it was interrupted or is still running; resume it or delete it, it cannot be restored", path.display())]
    Incomplete {
        /// The backup directory.
        path: PathBuf,
    },

    /// The manifest is JSON but not a cassette backup manifest.
    #[error("{} is not a cassette backup manifest (format {found:?}, expected {expected:?}): point cassette at a backup directory it wrote", path.display())]
    ManifestFormat {
        /// The manifest file.
        path: PathBuf,
        /// The `format` field found (empty if absent).
        found: String,
        /// The `format` this version writes.
        expected: &'static str,
    },

    /// The manifest has a format version this build does not know.
    #[error("{} has manifest format version {found}, this cassette reads version {supported}: written by a newer cassette? upgrade cassette to read it", path.display())]
    ManifestVersion {
        /// The manifest file.
        path: PathBuf,
        /// The version found.
        found: u64,
        /// The version this build reads.
        supported: u32,
    },

    /// The manifest cannot be parsed.
    #[error("cannot parse manifest {}: {source}; the file is damaged: restore it from a copy of the repository or delete this backup", path.display())]
    ManifestParse {
        /// The manifest file.
        path: PathBuf,
        /// The parse error.
        source: serde_json::Error,
    },

    /// The bytes copied do not match Cassandra's `Digest.crc32`.
    #[error("CRC32 mismatch for {}: Digest.crc32 says {expected}, the copied bytes give {actual}; the SSTable is corrupt on disk or changed during the copy: run 'nodetool verify'/'nodetool scrub' on that table, then take a new backup", path.display())]
    ChecksumMismatch {
        /// The source file.
        path: PathBuf,
        /// The CRC32 from `Digest.crc32`.
        expected: u32,
        /// The CRC32 of the bytes read.
        actual: u32,
    },

    /// The source file changed while it was being copied.
    #[error("file changed while copying {}: {detail}; snapshot files must not change: make sure nothing writes to the snapshot, take a new snapshot and retry", path.display())]
    ChangedWhileCopying {
        /// The source file.
        path: PathBuf,
        /// What changed (size, mtime).
        detail: String,
    },

    /// A `Digest.crc32` file does not contain a decimal CRC32.
    #[error("cannot read Cassandra digest {}: expected a decimal CRC32, found {content:?}; the file is damaged: run 'nodetool verify' on that table", path.display())]
    InvalidDigest {
        /// The digest file.
        path: PathBuf,
        /// What it contains (truncated).
        content: String,
    },

    /// Another job holds the node lock.
    #[error("another cassette job ({}) is running for this node; wait for it to finish (lock file {})", holder_text(*pid, since.as_deref()), path.display())]
    LockHeld {
        /// The lock file.
        path: PathBuf,
        /// The holder's pid, if it could be read.
        pid: Option<u32>,
        /// When the holder started (RFC 3339), if it could be read.
        since: Option<String>,
    },

    /// A line in the middle of the journal is not valid.
    #[error("journal {} line {line} is corrupt: {source}; delete the journal to restart this backup from scratch (files already copied will be copied again)", path.display())]
    JournalCorrupt {
        /// The journal file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The parse error.
        source: serde_json::Error,
    },

    /// The output path already exists and will not be overwritten.
    #[error("{} already exists: choose another output path or remove it first", path.display())]
    AlreadyExists {
        /// The existing path.
        path: PathBuf,
    },

    /// A path is not inside the directory it must be relative to, or is not UTF-8.
    #[error("path {} cannot be stored relative to {}: {reason}; this is a bug in the caller, report it", path.display(), base.display())]
    BadRelativePath {
        /// The path.
        path: PathBuf,
        /// The directory it should be inside.
        base: PathBuf,
        /// Why it cannot be made relative.
        reason: &'static str,
    },

    /// A path in the repository is a symbolic link, or not the kind of file it must be, or
    /// leaves the repository: cassette refuses it rather than follow it.
    #[error("refusing {}: {problem}; cassette follows no symbolic link and reads only regular files in a repository, so that whoever can write the repository cannot make it touch anything outside: remove or replace it (a backup holding it can be checked with `cassette verify` and removed with `cassette delete`)", path.display())]
    Unsafe {
        /// The path refused.
        path: PathBuf,
        /// What was found there.
        problem: String,
    },

    /// A path named in a manifest cannot be used.
    #[error("manifest {} lists the path {entry:?}, which {reason}: paths in a manifest are relative to the backup and stay inside it; the manifest is damaged or was tampered with: do not restore this backup", path.display())]
    ManifestPath {
        /// The manifest file.
        path: PathBuf,
        /// The path as listed.
        entry: String,
        /// Which rule it breaks.
        reason: String,
    },

    /// The manifest belongs to another backup (copied or swapped in).
    #[error("manifest {} names the backup {found:?}, but it is in the directory of {expected:?}: it was copied or swapped from another backup; the backup is damaged: restore the manifest from a copy of the repository or delete this backup", path.display())]
    ManifestMismatch {
        /// The manifest file.
        path: PathBuf,
        /// The backup name it holds.
        found: String,
        /// The name of its directory.
        expected: String,
    },

    /// cassette's state directory (locks, upload journals) cannot be trusted.
    #[error("cannot use the state directory {}: {problem}; it must be a directory owned by the user running cassette and not writable by group or others (set CASSETTE_STATE_DIR to choose another)", path.display())]
    StateDir {
        /// The state directory.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },

    /// A document of the repository (a journal, the repository format file) breaks the format,
    /// or was written by a newer cassette.
    #[error("cannot use {}: {source}", path.display())]
    Document {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        source: FormatError,
    },

    /// A name or document breaks the repository format (no file involved).
    #[error(transparent)]
    Format(FormatError),

    /// The archive would be written inside the backup being archived.
    #[error("cannot write archive {} inside the backup it archives ({}): choose an output path outside the backup directory", out.display(), backup_dir.display())]
    ArchiveInsideBackup {
        /// The requested output.
        out: PathBuf,
        /// The backup directory.
        backup_dir: PathBuf,
    },
}

impl RepoError {
    /// Wraps an I/O error with the action and path it happened on.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        RepoError::Io { action, path: path.into(), source }
    }

    /// `e`, found in the manifest at `path`: the manifest errors name their file.
    pub fn in_manifest(path: &Path, e: FormatError) -> Self {
        let path = path.to_owned();
        match e {
            FormatError::UnknownFormat { found, expected, .. } => RepoError::ManifestFormat { path, found, expected },
            FormatError::NewerVersion { found, supported, .. } => RepoError::ManifestVersion { path, found, supported },
            FormatError::Parse { source, .. } => RepoError::ManifestParse { path, source },
            FormatError::ManifestPath { entry, reason } => RepoError::ManifestPath { path, entry, reason },
            other => RepoError::in_file(&path, other),
        }
    }

    /// `e`, found in the file at `path`.
    pub fn in_file(path: &Path, e: FormatError) -> Self {
        match RepoError::from(e) {
            RepoError::Format(source) => RepoError::Document { path: path.to_owned(), source },
            named => named,
        }
    }

    /// The underlying I/O error kind, if this is an I/O error.
    pub fn io_kind(&self) -> Option<io::ErrorKind> {
        match self {
            RepoError::Io { source, .. } => Some(source.kind()),
            _ => None,
        }
    }
}

/// Name errors keep the variants they always had (callers match on them); the rest of the
/// format's errors are wrapped.
impl From<FormatError> for RepoError {
    fn from(e: FormatError) -> Self {
        match e {
            FormatError::InvalidBackupName { name } => RepoError::InvalidBackupName { name },
            FormatError::InvalidComponent { kind, value, reason } => {
                RepoError::InvalidComponent { kind, value, reason }
            }
            FormatError::BadRelativePath { path, base, reason } => RepoError::BadRelativePath { path, base, reason },
            other => RepoError::Format(other),
        }
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = RepoError> = std::result::Result<T, E>;

/// Adds path context to `io::Result`s, so no I/O error leaves the crate without its path.
pub(crate) trait IoContext<T> {
    fn ctx(self, action: &'static str, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, action: &'static str, path: &Path) -> Result<T> {
        self.map_err(|e| RepoError::io(action, path, e))
    }
}

/// What to do about an I/O error, by kind.
fn io_hint(e: &io::Error) -> &'static str {
    use io::ErrorKind::*;
    match e.kind() {
        NotFound => "check that the path exists",
        PermissionDenied => {
            "check the permissions (cassette must run as a user that can read Cassandra's data and write the repository)"
        }
        StorageFull | QuotaExceeded => "free some space on that filesystem or use another repository",
        ReadOnlyFilesystem => "the filesystem is read-only: remount it read-write or use another repository",
        AlreadyExists => "remove it or choose another path",
        _ => "check the filesystem and retry",
    }
}

fn holder_text(pid: Option<u32>, since: Option<&str>) -> String {
    match (pid, since) {
        (Some(p), Some(s)) => format!("pid {p}, since {s}"),
        (Some(p), None) => format!("pid {p}"),
        _ => "pid unknown".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_error_names_path_and_hint() {
        let e = RepoError::io("open", "/repo/x", io::Error::from(io::ErrorKind::PermissionDenied));
        let msg = e.to_string();
        assert!(msg.contains("cannot open /repo/x"), "{msg}");
        assert!(msg.contains("check the permissions"), "{msg}");
        assert_eq!(e.io_kind(), Some(io::ErrorKind::PermissionDenied));
    }

    #[test]
    fn lock_held_message() {
        let e = RepoError::LockHeld { path: "/r/c/h/.lock".into(), pid: Some(42), since: Some("T".into()) };
        assert!(
            e.to_string()
                .starts_with("another cassette job (pid 42, since T) is running for this node; wait for it to finish")
        );
    }
}
