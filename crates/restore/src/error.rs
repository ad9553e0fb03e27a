use cassette_cassandra::CassandraError;
use cassette_repo::RepoError;

/// A file of the backup that failed verification.
pub use cassette_repo::BadFile;

/// Why a restore could not run (or stopped). Table-level failures while loading are not
/// errors: they are reported in [`crate::RestoreReport`].
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// Bad input: a name, a filter, a rename.
    #[error("{0}")]
    InvalidInput(String),
    /// No backup of that name for the node.
    #[error("no backup named '{name}' for host ID {host_id} in cluster '{cluster}' (looked in {path}). {hint}")]
    NotFound {
        /// The backup name.
        name: String,
        /// The cluster looked in.
        cluster: String,
        /// The host ID looked for.
        host_id: String,
        /// The directory looked for.
        path: String,
        /// The backups that exist, and what to do.
        hint: String,
    },
    /// The backup has no manifest.
    #[error(
        "incomplete backup, cannot be restored: {path} has no manifest.json (the backup was interrupted or is still running). Run the same backup again to finish it, or restore another backup (`cassette list`)"
    )]
    Incomplete {
        /// The backup directory.
        path: String,
    },
    /// Files of the backup are missing, truncated or corrupted. Nothing was truncated.
    #[error(
        "the backup at {path} failed verification, nothing was truncated or loaded: {}. Restore another backup (`cassette list`), or repair the repository from a copy",
        describe_bad(files)
    )]
    Corrupt {
        /// The backup directory.
        path: String,
        /// Every bad file.
        files: Vec<BadFile>,
    },
    /// Backed-up tables that do not exist in the live schema.
    #[error("these backed-up tables do not exist on the node: {}. Create them (same columns), pass --create-schema to create them from the backup's schema, or map names with --rename OLD=NEW", missing.join(", "))]
    SchemaMissing {
        /// `keyspace.table`, live names.
        missing: Vec<String>,
    },
    /// Truncating would wipe data another restore of this backup already loaded.
    #[error(
        "refusing to truncate {table}: {detail}. TRUNCATE is cluster-wide, so truncating now would wipe the data already restored. If a cluster restore is under way, run `cassette restore --no-truncate` on the remaining nodes; to start a new restore of this backup from scratch, pass --new-restore"
    )]
    WouldWipeRestoredData {
        /// `keyspace.table`.
        table: String,
        /// Which journal shows the load.
        detail: String,
    },
    /// The node's state (or an unfinished offline restore) does not allow this restore now.
    #[error("{0}")]
    OfflineRefused(String),
    /// A step of an offline restore failed.
    #[error("offline restore, step {step}: {message}")]
    Offline {
        /// drain, stop, place, start.
        step: String,
        /// What happened, and what to do.
        message: String,
    },
    /// Talking to Cassandra failed.
    #[error(transparent)]
    Cassandra(#[from] CassandraError),
    /// The repository (backup directory, journal, staging) failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
    /// The object store holding the backup failed or refused.
    #[error(transparent)]
    Store(#[from] cassette_store::StoreError),
}

fn describe_bad(files: &[BadFile]) -> String {
    const SHOWN: usize = 20;
    let mut parts: Vec<String> = files.iter().take(SHOWN).map(|f| format!("{} ({})", f.path, f.problem)).collect();
    if files.len() > SHOWN {
        parts.push(format!("and {} more", files.len() - SHOWN));
    }
    format!("{} bad file(s): {}", files.len(), parts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrupt_names_every_file_and_says_nothing_was_touched() {
        let e = RestoreError::Corrupt {
            path: "/b/c/h/n".into(),
            files: vec![
                BadFile { path: "ks/t/nb-1-big-Data.db".into(), problem: "BLAKE3 differs".into() },
                BadFile { path: "ks/t/nb-1-big-Index.db".into(), problem: "missing".into() },
            ],
        };
        let msg = e.to_string();
        assert!(
            msg.contains("nb-1-big-Data.db (BLAKE3 differs)") && msg.contains("nb-1-big-Index.db (missing)"),
            "{msg}"
        );
        assert!(msg.contains("nothing was truncated"), "{msg}");
    }
}
