use std::path::PathBuf;

/// What went wrong talking to a Cassandra node. Every message says what to check or do.
#[derive(Debug, thiserror::Error)]
pub enum CassandraError {
    /// The nodetool program could not be started at all.
    #[error("cannot run nodetool `{program}`: {source}; install Cassandra's nodetool or pass --nodetool PATH")]
    NodetoolMissing {
        /// The program that was run.
        program: PathBuf,
        /// Why it could not start.
        #[source]
        source: std::io::Error,
    },
    /// nodetool ran and failed: most often the node is down or its JMX port is wrong.
    #[error("`nodetool {args}` failed (exit {code}): {stderr}{hint}")]
    NodetoolFailed {
        /// The arguments given to nodetool.
        args: String,
        /// Its exit code (-1 when killed by a signal).
        code: i32,
        /// The last lines it printed on stderr/stdout.
        stderr: String,
        /// What to do about it, when we can tell.
        hint: &'static str,
    },
    /// The node runs a Cassandra version cassette does not support.
    #[error(
        "the node runs Cassandra {release:?}, which cassette does not support: it supports {supported}; upgrade the node or use a cassette that supports its version"
    )]
    UnsupportedVersion {
        /// `system.local.release_version`.
        release: String,
        /// The supported release lines.
        supported: String,
    },
    /// The CQL connection could not be opened.
    #[error("cannot connect with CQL to {address}: {message}; {hint}")]
    CqlConnect {
        /// host:port tried.
        address: String,
        /// The driver's message.
        message: String,
        /// What to check.
        hint: &'static str,
    },
    /// The JMX user or password could not be found or held.
    #[error("JMX credentials: {message}; check --jmx-user and --jmx-password-file (or CASSETTE_JMX_PASSWORD)")]
    JmxCredentials {
        /// What is wrong.
        message: String,
    },
    /// The TLS files could not be used (missing, unreadable, not PEM, key and certificate apart).
    #[error("cannot set up TLS: {message}; check the --cql-tls-* files")]
    Tls {
        /// Which file, and what is wrong with it.
        message: String,
    },
    /// A CQL statement failed.
    #[error("CQL `{statement}` failed: {message}")]
    Cql {
        /// The statement (shortened).
        statement: String,
        /// The driver's or server's message.
        message: String,
    },
    /// Cassandra's bulk loader could not run, or failed (its output's tail, and what to do).
    #[error("{message}")]
    BulkLoader {
        /// What happened.
        message: String,
    },
    /// Cassandra answered something this crate did not expect.
    #[error("unexpected answer from Cassandra: {0}")]
    Unexpected(String),
    /// A file or directory of the node could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl CassandraError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        CassandraError::Io { path: path.into(), source }
    }
}
