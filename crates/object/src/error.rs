//! Errors of the object-storage repository. Each says what went wrong, with the object's URL,
//! and what to do.

/// A result with an [`ObjectError`].
pub type Result<T> = std::result::Result<T, ObjectError>;

/// What can go wrong with a repository on object storage.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    /// The URL cannot be used.
    #[error("invalid backup location '{url}': {reason}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// Why it is refused, and what is accepted.
        reason: String,
    },
    /// A request to the object store failed (after the store client's retries).
    #[error(
        "object storage: cannot {action} {url}: {source} (check the credentials, the endpoint and that the bucket exists; transient errors were already retried)"
    )]
    Store {
        /// What was being done.
        action: &'static str,
        /// The object or prefix.
        url: String,
        /// The store's error.
        #[source]
        source: object_store::Error,
    },
    /// A local file could not be read or written.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The local path.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A file's content does not match what it must be.
    #[error("{what}: {detail}")]
    Mismatch {
        /// The file or object.
        what: String,
        /// What differs.
        detail: String,
    },
    /// The manifest of this backup exists already: another writer completed it.
    #[error(
        "backup {url} is already complete (its manifest exists): another cassette completed it; choose another name"
    )]
    AlreadyComplete {
        /// The manifest's URL.
        url: String,
    },
    /// The name belongs to a deleted backup whose files later backups still use.
    #[error(
        "the name '{name}' belonged to a deleted backup whose files later backups still use ({url}): choose another name"
    )]
    NameInUse {
        /// The backup's URL.
        url: String,
        /// The name.
        name: String,
    },
    /// There is no such backup.
    #[error("no backup at {url}")]
    NotFound {
        /// The backup's URL.
        url: String,
    },
    /// The backup has no manifest.
    #[error(
        "incomplete backup, cannot be restored: {url} has no manifest.json (interrupted or failed; run the same backup again to finish it)"
    )]
    Incomplete {
        /// The backup's URL.
        url: String,
    },
    /// A manifest or index could not be parsed, or is of another version.
    #[error("cannot read {url}: {detail}")]
    Format {
        /// The object's URL.
        url: String,
        /// What is wrong.
        detail: String,
    },
    /// The backup is under an object lock that still holds: it cannot be deleted yet.
    #[error(
        "backup {url} is locked until {} ({mode} mode, S3 Object Lock): it cannot be deleted before then; run the delete again after that time",
        .until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    )]
    Locked {
        /// The backup's URL.
        url: String,
        /// Until when.
        until: chrono::DateTime<chrono::Utc>,
        /// The retention mode.
        mode: cassette_format::LockMode,
    },
    /// An object lock was asked of a repository that cannot keep one.
    #[error("cannot lock backups in {url}: {detail}")]
    LockUnsupported {
        /// The repository.
        url: String,
        /// Why, and what to do.
        detail: String,
    },
    /// An error of the repository format shared with local repositories.
    #[error(transparent)]
    Repo(#[from] cassette_repo::RepoError),
    /// An encoded repository's object that cannot be read: no key for it, or it is damaged.
    #[error(transparent)]
    Sealed(#[from] cassette_seal::SealError),
}

impl ObjectError {
    pub(crate) fn store(action: &'static str, url: impl Into<String>, source: object_store::Error) -> Self {
        ObjectError::Store { action, url: url.into(), source }
    }

    pub(crate) fn io(action: &'static str, path: &std::path::Path, source: std::io::Error) -> Self {
        ObjectError::Io { action, path: path.display().to_string(), source }
    }

    /// Whether the object or file read is not there.
    pub fn is_not_found(&self) -> bool {
        match self {
            ObjectError::Store { source: object_store::Error::NotFound { .. }, .. } | ObjectError::NotFound { .. } => {
                true
            }
            ObjectError::Io { source, .. } => source.kind() == std::io::ErrorKind::NotFound,
            ObjectError::Repo(cassette_repo::RepoError::Io { source, .. }) => {
                source.kind() == std::io::ErrorKind::NotFound
            }
            _ => false,
        }
    }
}
