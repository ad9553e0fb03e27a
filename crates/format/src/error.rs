//! The crate's error type: what is wrong with a name or a document, without the file it came
//! from (the crate reads no file). A store wraps these with the path or URL it read.

use std::path::PathBuf;

/// A name, path or document that breaks the repository format.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// A backup name does not follow the naming rule.
    #[error(
        "invalid backup name {name:?}: use 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit"
    )]
    InvalidBackupName {
        /// The refused name, as given.
        name: String,
    },

    /// The name of a directory the layout keeps for something else than backups.
    #[error(
        "the backup name {name:?} is reserved: the node's archived commitlog segments are stored under it; choose another name"
    )]
    ReservedBackupName {
        /// The refused name.
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

    /// The document is JSON but not of the kind expected (its `format` field).
    #[error("not a {kind} (format {found:?}, expected {expected:?}): point cassette at a repository it wrote")]
    UnknownFormat {
        /// What was expected, in words ("cassette backup manifest").
        kind: &'static str,
        /// The `format` field found (empty if absent).
        found: String,
        /// The `format` this version writes.
        expected: &'static str,
    },

    /// The document was written by a newer cassette, in a version this build cannot read.
    #[error(
        "{kind} format version {found}, this cassette reads versions up to {supported}: it was written by a newer cassette; upgrade cassette to read it"
    )]
    NewerVersion {
        /// What the document is, in words ("manifest", "backup journal").
        kind: &'static str,
        /// The version found.
        found: u64,
        /// The newest version this build reads.
        supported: u32,
    },

    /// The document's version is missing, or one no cassette writes (older than 1).
    #[error("{kind} has no valid format version (found {found}): the file is damaged")]
    InvalidVersion {
        /// What the document is, in words.
        kind: &'static str,
        /// The version found (0 when absent).
        found: u64,
    },

    /// The document is not valid JSON, or lacks fields its version requires.
    #[error("cannot parse {kind}: {source}; the file is damaged")]
    Parse {
        /// What the document is, in words.
        kind: &'static str,
        /// The parse error.
        source: serde_json::Error,
    },

    /// A path or name inside a manifest breaks the path rules.
    #[error(
        "it lists the path {entry:?}, which {reason}: paths in a manifest are relative to the backup and stay inside it; the manifest is damaged or was tampered with: do not restore this backup"
    )]
    ManifestPath {
        /// The path as listed.
        entry: String,
        /// Which rule it breaks.
        reason: String,
    },

    /// The repository format file says the repository needs a newer cassette.
    #[error(
        "this repository has format version {found} and needs {needs}; this cassette knows versions up to {supported}: upgrade cassette on every machine that uses this repository (an older cassette must not write to it)"
    )]
    RepositoryTooNew {
        /// The version found.
        found: u32,
        /// The newest version this build knows.
        supported: u32,
        /// What it needs: "cassette 0.3.0 or later" (the release the file names), or "a
        /// newer cassette".
        needs: String,
    },
}

/// Shorthand for results of this crate.
pub type Result<T, E = FormatError> = std::result::Result<T, E>;
