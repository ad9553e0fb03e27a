//! What can go wrong archiving, shipping or configuring commitlog archiving.

use std::path::{Path, PathBuf};

/// An error of this crate; each says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommitlogError {
    /// A local file or directory could not be read or written.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The request cannot be done as given (the message says why and what to do).
    #[error("{0}")]
    Refused(String),
    /// Another shipper is running on this spool.
    #[error("another cassette is shipping the spool {} (it holds {}): let it finish, or stop it", spool.display(), lock.display())]
    Busy {
        /// The spool.
        spool: PathBuf,
        /// Its lock file.
        lock: PathBuf,
    },
    /// The repository refused or failed.
    #[error(transparent)]
    Store(#[from] cassette_store::StoreError),
    /// A stored document breaks the repository format.
    #[error(transparent)]
    Format(#[from] cassette_format::FormatError),
}

impl CommitlogError {
    pub(crate) fn io(action: &'static str, path: &Path, source: std::io::Error) -> Self {
        CommitlogError::Io { action, path: path.to_owned(), source }
    }
}

/// The result of this crate's operations.
pub type Result<T, E = CommitlogError> = std::result::Result<T, E>;
