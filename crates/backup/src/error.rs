use cassette_cassandra::CassandraError;
use cassette_repo::RepoError;

/// Why a backup could not run (or stopped). Table-level failures are not errors: they are
/// reported in [`crate::BackupReport`] and leave the backup incomplete.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// Bad input: a name, a filter.
    #[error("{0}")]
    InvalidInput(String),
    /// A keyspace or table asked for does not exist on the node.
    #[error("{0}")]
    UnknownSelection(String),
    /// A complete backup with this name already exists for this node.
    #[error(
        "backup '{name}' already exists and is complete at {path}: choose another name (cassette never merges into an existing backup)"
    )]
    AlreadyExists {
        /// The name.
        name: String,
        /// Its directory.
        path: String,
    },
    /// The backup directory is on the same filesystem as a data directory.
    #[error(
        "the backup directory {backup} is on the same filesystem as the Cassandra data directory {data}: a disk failure would lose both. Use a backup directory on another disk, or pass --allow-same-disk if you know what you are doing"
    )]
    SameDisk {
        /// Backup directory.
        backup: String,
        /// Data directory.
        data: String,
    },
    /// A `--data-dir` that is not one of the node's own data directories.
    #[error(
        "--data-dir {given} is not one of the node's data_file_directories ({node}, as CQL reports them): a backup would copy whatever {given} holds, not the node's data. Leave out --data-dir to use the node's own; if {given} is one of them as this machine mounts it (a container with other mount paths), add --data-dir-override"
    )]
    ForeignDataDir {
        /// The directory given.
        given: String,
        /// The node's own, as CQL reports them.
        node: String,
    },
    /// Not enough free space on the backup target.
    #[error(
        "not enough free space in {path}: the keyspace '{keyspace}' needs {needed} bytes more, {available} are available. Free space or choose another --backup-dir; nothing complete was written, and running the same backup again resumes it"
    )]
    NoSpace {
        /// The backup directory.
        path: String,
        /// The keyspace being copied.
        keyspace: String,
        /// Bytes needed.
        needed: u64,
        /// Bytes available.
        available: u64,
    },
    /// A stage after `prepare` stopped the job: its error, with the stage's name.
    #[error("{stage} stage: {error}")]
    InStage {
        /// The stage's name, as progress shows it (`schema`, `copy`, `manifest`, ...).
        stage: crate::Stage,
        /// What stopped it.
        error: Box<BackupError>,
    },
    /// Talking to Cassandra failed.
    #[error(transparent)]
    Cassandra(#[from] CassandraError),
    /// The repository (backup directory) failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
    /// The store holding the repository (a directory or an object store) failed or refused.
    #[error(transparent)]
    Store(#[from] cassette_store::StoreError),
}

impl BackupError {
    /// Wraps an error of `stage` (once: an error already wrapped keeps its stage).
    pub(crate) fn in_stage(stage: crate::Stage) -> impl FnOnce(BackupError) -> BackupError {
        move |error| match error {
            BackupError::InStage { .. } => error,
            error => BackupError::InStage { stage, error: Box::new(error) },
        }
    }
}
