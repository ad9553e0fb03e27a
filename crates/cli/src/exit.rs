//! Exit codes that mean something to scripts.

use cassette_backup::BackupError;
use cassette_cassandra::CassandraError;
use cassette_repo::RepoError;
use cassette_restore::RestoreError;
use cassette_store::StoreError as ObjectError;

/// The job ran and failed (see its report).
pub const FAILED: u8 = 1;
/// Invalid input: a name, a keyspace, an option.
pub const INVALID_INPUT: u8 = 2;
/// Conflict: the backup exists, another job is running.
pub const CONFLICT: u8 = 3;
/// Environment: Cassandra unreachable, backup directory unwritable or full.
pub const ENVIRONMENT: u8 = 4;

/// Input that names something that is not there (a backup, a node): exit 2.
#[derive(Debug)]
pub struct InvalidInput(pub String);

impl std::fmt::Display for InvalidInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidInput {}

pub fn code_of(err: &anyhow::Error) -> u8 {
    if err.downcast_ref::<InvalidInput>().is_some() {
        return INVALID_INPUT;
    }
    if let Some(e) = err.downcast_ref::<BackupError>() {
        return backup_code(e);
    }
    if let Some(e) = err.downcast_ref::<RestoreError>() {
        return match e {
            RestoreError::InvalidInput(_)
            | RestoreError::NotFound { .. }
            | RestoreError::Incomplete { .. }
            | RestoreError::SchemaMissing { .. } => INVALID_INPUT,
            RestoreError::WouldWipeRestoredData { .. } | RestoreError::OfflineRefused(_) => CONFLICT,
            RestoreError::Offline { .. } => FAILED,
            RestoreError::Corrupt { .. } => FAILED,
            RestoreError::Cassandra(_) => ENVIRONMENT,
            RestoreError::Repo(r) => repo_code(r),
            RestoreError::Store(o) => object_code(o),
        };
    }
    if let Some(r) = err.downcast_ref::<RepoError>() {
        return repo_code(r);
    }
    if let Some(c) = err.downcast_ref::<cassette_commitlog::CommitlogError>() {
        use cassette_commitlog::CommitlogError as C;
        return match c {
            C::Refused(_) => INVALID_INPUT,
            C::Busy { .. } => CONFLICT,
            C::Io { .. } => ENVIRONMENT,
            C::Store(o) => object_code(o),
            _ => FAILED,
        };
    }
    if let Some(f) = err.downcast_ref::<cassette_repo::FormatError>() {
        return match f {
            cassette_repo::FormatError::InvalidBackupName { .. }
            | cassette_repo::FormatError::ReservedBackupName { .. }
            | cassette_repo::FormatError::InvalidComponent { .. } => INVALID_INPUT,
            _ => FAILED,
        };
    }
    if let Some(o) = err.downcast_ref::<ObjectError>() {
        return object_code(o);
    }
    if err.downcast_ref::<CassandraError>().is_some() {
        return ENVIRONMENT;
    }
    // A file, a port, a socket of this machine (a listen address in use, an unreadable file).
    if err.downcast_ref::<std::io::Error>().is_some() {
        return ENVIRONMENT;
    }
    FAILED
}

fn backup_code(e: &BackupError) -> u8 {
    match e {
        BackupError::InvalidInput(_) | BackupError::UnknownSelection(_) => INVALID_INPUT,
        BackupError::AlreadyExists { .. } => CONFLICT,
        BackupError::SameDisk { .. }
        | BackupError::ForeignDataDir { .. }
        | BackupError::NoSpace { .. }
        | BackupError::Cassandra(_) => ENVIRONMENT,
        BackupError::Repo(r) => repo_code(r),
        BackupError::Store(o) => object_code(o),
        BackupError::InStage { error, .. } => backup_code(error),
    }
}

fn object_code(e: &ObjectError) -> u8 {
    match e {
        ObjectError::InvalidUrl { .. }
        | ObjectError::NameInUse { .. }
        | ObjectError::NotFound { .. }
        | ObjectError::Incomplete { .. }
        | ObjectError::LockUnsupported { .. } => INVALID_INPUT,
        ObjectError::AlreadyComplete { .. } | ObjectError::Locked { .. } => CONFLICT,
        ObjectError::Store { .. } | ObjectError::Io { .. } => ENVIRONMENT,
        ObjectError::Repo(r) => repo_code(r),
        ObjectError::Mismatch { .. } | ObjectError::Format { .. } => FAILED,
        // No key for the repository, or a key file that cannot be used: the user's to give.
        ObjectError::Sealed(s) if !s.is_damage() => INVALID_INPUT,
        ObjectError::Sealed(_) => FAILED,
    }
}

fn repo_code(e: &RepoError) -> u8 {
    match e {
        // A backup that is not there, or cannot be used as asked (incomplete), was named by the user.
        RepoError::InvalidBackupName { .. }
        | RepoError::InvalidComponent { .. }
        | RepoError::NotFound { .. }
        | RepoError::Incomplete { .. }
        | RepoError::NoRepository { .. }
        | RepoError::Format(cassette_repo::FormatError::ReservedBackupName { .. }) => INVALID_INPUT,
        RepoError::LockHeld { .. } | RepoError::AlreadyExists { .. } => CONFLICT,
        RepoError::Io { .. } | RepoError::StateDir { .. } => ENVIRONMENT,
        _ => FAILED,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_wrapped_in_its_stage_keeps_its_exit_code_and_says_the_stage() {
        let no_space =
            BackupError::NoSpace { path: "/backup/c/h/b".into(), keyspace: "shop".into(), needed: 10, available: 1 };
        let wrapped = anyhow::Error::from(BackupError::InStage {
            stage: cassette_backup::Stage::Copy,
            error: Box::new(no_space),
        });
        assert_eq!(code_of(&wrapped), ENVIRONMENT);
        let message = wrapped.to_string();
        assert!(message.starts_with("copy stage: not enough free space in /backup/c/h/b"), "{message}");
    }
}
