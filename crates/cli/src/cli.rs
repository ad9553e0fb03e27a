//! The command line: commands, their options, and the environment variables behind them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Backup and restore for Apache Cassandra.
///
/// Exit codes: 0 success; 1 the job ran and failed (see the report); 2 invalid input
/// (name, keyspace, option); 3 conflict (the backup exists, another job runs);
/// 4 environment (Cassandra unreachable, backup directory unwritable or full).
#[derive(Debug, Parser)]
#[command(name = "cassette", version, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// More logs on stderr (-v info, -vv debug). CASSETTE_LOG takes a tracing filter.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Logs as JSON lines on stderr.
    #[arg(long, global = true)]
    pub log_json: bool,
    /// Print the result as JSON on stdout (for scripts); no progress bar.
    #[arg(long, global = true)]
    pub json: bool,
    /// The configuration file (TOML); default /etc/cassette/cassette.toml, when it exists.
    // Read by `config::Config::load` before clap parses; declared here for --help and for clap.
    #[arg(long, global = true, env = crate::config::ENV, value_name = "FILE")]
    #[allow(dead_code)]
    pub config: Option<PathBuf>,
}

/// How to reach the node cassette runs beside.
#[derive(Debug, Args, Clone)]
pub struct NodeArgs {
    /// The node's CQL address.
    #[arg(long, env = "CASSETTE_CQL_HOST", default_value = "127.0.0.1")]
    pub cql_host: String,
    /// The node's CQL port.
    #[arg(long, env = "CASSETTE_CQL_PORT", default_value_t = 9042)]
    pub cql_port: u16,
    /// CQL user, when the node has PasswordAuthenticator on.
    #[arg(long, env = "CASSETTE_CQL_USER")]
    pub cql_user: Option<String>,
    /// File whose first line is the CQL password (or set CASSETTE_CQL_PASSWORD).
    #[arg(long, env = "CASSETTE_CQL_PASSWORD_FILE", value_name = "FILE")]
    pub cql_password_file: Option<PathBuf>,
    /// The CQL password. A flag shows in `ps`: set CASSETTE_CQL_PASSWORD or use --cql-password-file.
    #[arg(long, env = "CASSETTE_CQL_PASSWORD", hide_env_values = true, hide = true)]
    pub cql_password: Option<String>,
    /// CQL over TLS (the node's client_encryption_options); implied by --cql-tls-ca.
    #[arg(long, env = "CASSETTE_CQL_TLS")]
    pub cql_tls: bool,
    /// PEM file of the CA that signed the nodes' certificates.
    #[arg(long, env = "CASSETTE_CQL_TLS_CA", value_name = "FILE")]
    pub cql_tls_ca: Option<PathBuf>,
    /// PEM client certificate, for nodes with require_client_auth (with --cql-tls-key).
    #[arg(long, env = "CASSETTE_CQL_TLS_CERT", value_name = "FILE")]
    pub cql_tls_cert: Option<PathBuf>,
    /// PEM private key of the client certificate.
    #[arg(long, env = "CASSETTE_CQL_TLS_KEY", value_name = "FILE")]
    pub cql_tls_key: Option<PathBuf>,
    /// The name the node's certificate carries, when not --cql-host (e.g. a DNS name).
    #[arg(long, env = "CASSETTE_CQL_TLS_SERVER_NAME", value_name = "NAME")]
    pub cql_tls_server_name: Option<String>,
    /// Accept a node certificate for any name (the CA is still checked). Not recommended.
    #[arg(long, env = "CASSETTE_CQL_TLS_NO_VERIFY_HOSTNAME")]
    pub cql_tls_no_verify_hostname: bool,
    /// The nodetool program.
    #[arg(long, env = "CASSETTE_NODETOOL", default_value = "nodetool")]
    pub nodetool: PathBuf,
    /// The node's JMX host, for nodetool.
    #[arg(long, env = "CASSETTE_JMX_HOST", default_value = "127.0.0.1")]
    pub jmx_host: String,
    /// The node's JMX port, for nodetool.
    #[arg(long, env = "CASSETTE_JMX_PORT", default_value_t = 7199)]
    pub jmx_port: u16,
    /// JMX user, when the node has JMX authentication on (nodetool's -u).
    #[arg(long, env = "CASSETTE_JMX_USER")]
    pub jmx_user: Option<String>,
    /// JMX password file in nodetool's --password-file format (`USER PASSWORD` lines), or set
    /// CASSETTE_JMX_PASSWORD.
    #[arg(long, env = "CASSETTE_JMX_PASSWORD_FILE", value_name = "FILE")]
    pub jmx_password_file: Option<PathBuf>,
    /// The JMX password. A flag shows in `ps`: set CASSETTE_JMX_PASSWORD or use --jmx-password-file.
    #[arg(long, env = "CASSETTE_JMX_PASSWORD", hide_env_values = true, hide = true)]
    pub jmx_password: Option<String>,
    /// JMX over TLS (nodetool's --ssl); the trust store from --jmx-tls-properties.
    #[arg(long, env = "CASSETTE_JMX_TLS")]
    pub jmx_tls: bool,
    /// JVM properties for JMX over TLS, as `-Dname=value` lines (the format of nodetool's
    /// ~/.cassandra/nodetool-ssl.properties, the default).
    #[arg(long, env = "CASSETTE_JMX_TLS_PROPERTIES", value_name = "FILE")]
    pub jmx_tls_properties: Option<PathBuf>,
    /// Data directories (repeatable); by default the node's own `data_file_directories`.
    #[arg(long = "data-dir", env = "CASSETTE_DATA_DIRS", value_delimiter = ',')]
    pub data_dirs: Vec<PathBuf>,
}

/// Where backups live.
#[derive(Debug, Args, Clone)]
pub struct RepoArgs {
    /// The backup directory (Cassandra-Mesos' CASSANDRA_BACKUP_DIRECTORY), or an object store:
    /// s3://BUCKET/PREFIX (credentials, region, endpoint from AWS_* variables), gs://BUCKET/PREFIX
    /// (GOOGLE_*), az://CONTAINER/PREFIX (AZURE_*); file:///PATH is a directory. Any other URL
    /// (`S3://`, `gcs://`, `s3:/`) is refused.
    #[arg(long, env = "CASSANDRA_BACKUP_DIRECTORY", default_value = "./backup", value_parser = backup_location)]
    pub backup_dir: PathBuf,
    /// Object stores: limit transfers to this many MiB per second (all files together).
    #[arg(long, env = "CASSETTE_BANDWIDTH_LIMIT", value_name = "MIB_PER_S")]
    pub bandwidth_limit: Option<f64>,
    /// Object stores: files transferred at once.
    #[arg(long, env = "CASSETTE_TRANSFERS", default_value_t = 8)]
    pub transfers: usize,
    /// Object stores: multipart part size in MiB; memory in flight is at most 8 parts.
    #[arg(long, env = "CASSETTE_PART_SIZE_MIB", default_value_t = 5)]
    pub part_size_mib: usize,
    /// An encrypted repository's key file: age X25519 identities (`AGE-SECRET-KEY-1…` lines,
    /// as `cassette key generate` or `age-keygen` write them). It must hold the identity of
    /// every key the backups read were stored under; new objects are encrypted for the
    /// repository's current key. Repeat it to give several files (after `repo rotate-key`,
    /// the old key and the new). Never shown: errors and listings name keys by fingerprint.
    #[arg(long, env = "CASSETTE_KEY_FILE", value_name = "FILE", value_parser = key_file, action = clap::ArgAction::Append)]
    pub key_file: Vec<std::sync::Arc<cassette_seal::Keyring>>,
}

/// `--key-file`: read when the arguments are parsed, so a bad file is refused (exit 2) before
/// any work, naming the file and never its contents.
fn key_file(s: &str) -> Result<std::sync::Arc<cassette_seal::Keyring>, String> {
    Ok(std::sync::Arc::new(cassette_seal::Keyring::load(std::path::Path::new(s)).map_err(|e| e.to_string())?))
}

/// `--backup-dir`: a URL-looking value that is not a known store is an error (exit 2), not a
/// relative directory.
fn backup_location(s: &str) -> Result<PathBuf, String> {
    cassette_store::parse_location(s).map_err(|e| e.to_string())
}

impl RepoArgs {
    /// How transfers to and from an object store run.
    pub fn transfer(&self) -> cassette_store::Transfer {
        cassette_store::Transfer {
            part_size: self.part_size_mib.max(5) << 20,
            parallel_files: self.transfers.max(1),
            bandwidth: self.bandwidth_limit.map(|m| (m * 1024.0 * 1024.0) as u64),
            keyring: self.keyring(),
            ..Default::default()
        }
    }

    /// Every identity of the `--key-file`s, as one keyring.
    pub fn keyring(&self) -> Option<std::sync::Arc<cassette_seal::Keyring>> {
        match self.key_file.as_slice() {
            [] => None,
            [one] => Some(one.clone()),
            many => Some(std::sync::Arc::new(cassette_seal::Keyring::join(many.iter().map(|k| k.as_ref())))),
        }
    }

    /// The repository `--backup-dir` names: a directory or an object store.
    pub fn open(&self) -> Result<std::sync::Arc<dyn cassette_store::Store>, cassette_store::StoreError> {
        cassette_store::open(&self.backup_dir, self.transfer())
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show what cassette sees of the node: identity, tokens, data directories, keyspaces.
    Node {
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Back up the node: snapshot, copy (verified, deduplicated), clear, manifest last.
    Backup(BackupArgs),
    /// Restore the node from a backup, online: locate, verify every file, check the schema,
    /// then per table TRUNCATE and `nodetool import`. Resumable: run it again after a crash.
    ///
    /// Cluster restore (TRUNCATE is cluster-wide): run `restore --truncate-only` once, on any
    /// node, then `restore --no-truncate` on every node.
    Restore(RestoreArgs),
    /// The files an offline restore replaced (`restore --offline` moves them to a quarantine
    /// directory and keeps them until they are purged here).
    #[command(subcommand)]
    Quarantine(QuarantineCommand),
    /// List the backups in the backup directory, complete or not: size, bytes added, age.
    ///
    /// Complete backups come from each node's index (`<node>/.index.json`), so listing
    /// thousands of backups reads a few files; backups the index lacks are read from disk and
    /// added to it.
    List {
        #[command(flatten)]
        repo: RepoArgs,
        /// Only this cluster.
        #[arg(long)]
        cluster: Option<String>,
        /// Only this node (host ID).
        #[arg(long, visible_alias = "host")]
        host_id: Option<String>,
        /// Rewrite each node's index from its manifests first (it is also rebuilt
        /// automatically when missing or damaged).
        #[arg(long)]
        rebuild_index: bool,
        /// Show, per node, the times a restore can reach (from the oldest complete backup to the
        /// newest archived commitlog segment), gaps, and the archived segments.
        #[arg(long)]
        commitlog: bool,
        /// With --commitlog: also what waits in this node's spool.
        #[arg(long, requires = "commitlog", env = "CASSETTE_COMMITLOG_SPOOL", value_name = "DIR")]
        spool: Option<PathBuf>,
    },
    /// Check stored files against their manifests: every byte hashed again (or --quick: present
    /// with the right size). Names each missing, truncated or corrupted file; exit 1 on any.
    Verify {
        #[command(flatten)]
        repo: RepoArgs,
        /// Only the backups of this name (default: every backup in the directory).
        #[arg(long)]
        name: Option<String>,
        /// Only this node's backups (host ID).
        #[arg(long)]
        host_id: Option<String>,
        /// Presence and size only; no file is read.
        #[arg(long)]
        quick: bool,
        /// Files hashed at once.
        #[arg(long, default_value_t = 2)]
        parallel: usize,
    },
    /// Delete one backup (complete or not). Files it shares with other backups stay theirs.
    Delete {
        /// The backup's name.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        repo: RepoArgs,
        /// Which node's backup, when several nodes have one of that name.
        #[arg(long)]
        host_id: Option<String>,
    },
    /// Delete the backups a retention policy no longer keeps, interrupted backups, and the
    /// leftovers of killed jobs, node by node.
    ///
    /// A complete backup is kept if either policy keeps it (--keep-last N: the newest N of its
    /// node; --keep-days D: finished less than D days ago); the newest complete backup of each
    /// node is always kept. An incomplete backup is deleted once nothing was written to it for
    /// longer than --grace. A node whose lock a running job holds is skipped (exit 3). Files
    /// shared with the backups that stay are theirs: only unshared bytes are freed.
    Purge(PurgeArgs),
    /// Pack one complete backup into a single .tar.zst archive.
    Archive {
        /// The backup's name.
        name: String,
        #[command(flatten)]
        repo: RepoArgs,
        /// Which node's backup, when several nodes have one of that name.
        #[arg(long)]
        host_id: Option<String>,
        /// The archive to write (default: ./<name>.tar.zst).
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
    /// Run beside a Cassandra node and serve its backups and restores to `cassette server`.
    Agent(AgentArgs),
    /// Run the cluster coordinator: the Cassandra-Mesos-compatible REST API (/cluster/backup/start?name=...) and
    /// the /v1 API, over the agents of every node, with the job history in SQLite.
    Server(ServerArgs),
    /// The configuration file: every option of the command line, set once in cassette.toml.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Point-in-time recovery: archive the node's commitlog segments into the repository
    /// (`install`, then Cassandra runs `archive`; `ship` stores them). `list --commitlog`
    /// shows what each node can be restored to; `restore --offline --until TIME` does it.
    #[command(subcommand)]
    Commitlog(CommitlogCommand),
    /// Make a repository (an encrypted or compressed one: a plain repository is made by its
    /// first backup).
    #[command(subcommand)]
    Repo(RepoCommand),
    /// Encryption keys.
    #[command(subcommand)]
    Key(KeyCommand),
}

#[derive(Debug, Subcommand)]
pub enum RepoCommand {
    /// Make a new repository whose objects (SSTables, manifests, schema, configuration,
    /// commitlog segments, indexes) are encrypted for the key file's first identity
    /// (`--encrypt`) and/or compressed with zstd (`--compress`). Refused where a repository is.
    Init {
        #[command(flatten)]
        repo: RepoArgs,
        /// Encrypt with age (X25519) for the key file's first identity; needs --key-file.
        #[arg(long, requires = "key_file")]
        encrypt: bool,
        /// Compress with zstd (a file whose first 256 KiB do not shrink by 5% is stored as is).
        #[arg(long)]
        compress: bool,
        /// zstd's level, 1 to 19. Level 1 by default: what shrinks (commitlog segments,
        /// uncompressed tables) shrinks about as much as at 3, for less CPU on the backup path.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..=19))]
        compress_level: i32,
    },
    /// Make a new key the one new objects of an encrypted repository are encrypted for. What
    /// is stored already stays under the key it was stored with (it is never re-encrypted):
    /// keep the old identity, and give both key files to read backups from before and after.
    /// Needs --key-file with the repository's current key.
    RotateKey {
        #[command(flatten)]
        repo: RepoArgs,
        /// The new key's identity file (`cassette key generate`); its first identity is used.
        #[arg(long, value_name = "FILE", value_parser = key_file)]
        new_key_file: std::sync::Arc<cassette_seal::Keyring>,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Write a new age X25519 identity to FILE (mode 0600; an existing file is refused) and
    /// print its fingerprint and public key. Keep a copy away from the backups: without it,
    /// they cannot be read.
    Generate {
        /// Where to write it.
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the configuration in effect: each section's options, their values and where each
    /// comes from (flag, environment variable, file, default); passwords and tokens masked.
    Show {
        /// A command line to show the options of, as that command would see them (such as
        /// `backup --name x --cql-host 10.0.0.5`); default: every section.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "COMMAND")]
        command: Vec<String>,
    },
}

/// The bearer token and TLS of an HTTP service.
#[derive(Debug, Args, Clone)]
pub struct ServiceArgs {
    /// The bearer token callers must send (`Authorization: Bearer ...`).
    #[arg(long, env = "CASSETTE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Run without a token: anyone who reaches the port can start jobs (tests, closed networks).
    #[arg(long, conflicts_with = "token")]
    pub insecure_no_token: bool,
    /// TLS certificate chain (PEM); with --tls-key, the service speaks HTTPS.
    #[arg(long, env = "CASSETTE_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, env = "CASSETTE_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Time a connection has to send a request's headers; also how long an idle one stays open.
    #[arg(long, env = "CASSETTE_HEADER_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub header_timeout: std::time::Duration,
    /// Time a request has to send its body.
    #[arg(long, env = "CASSETTE_BODY_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub body_timeout: std::time::Duration,
    /// Connections served at once (lowered to stay below `ulimit -n`); more wait to be accepted.
    #[arg(long, env = "CASSETTE_MAX_CONNECTIONS", default_value_t = 512)]
    pub max_connections: usize,
}

#[derive(Debug, Args)]
pub struct AgentArgs {
    /// Address to listen on.
    #[arg(long, env = "CASSETTE_AGENT_LISTEN", default_value = "127.0.0.1:7081")]
    pub listen: std::net::SocketAddr,
    #[command(flatten)]
    pub service: ServiceArgs,
    #[command(flatten)]
    pub repo: RepoArgs,
    #[command(flatten)]
    pub node: NodeArgs,
    /// Configuration directories stored with each backup; default $CASSANDRA_HOME/conf.
    #[arg(long = "config-dir")]
    pub config_dirs: Vec<PathBuf>,
    /// A name for this node, recorded beside its host ID.
    #[arg(long)]
    pub alias: Option<String>,
    /// Allow a backup directory on the same filesystem as a data directory.
    #[arg(long)]
    pub allow_same_disk: bool,
    /// Ship the node's archived commitlog segments from this spool (set up by `cassette
    /// commitlog install`) into the backup directory, continuously: point-in-time recovery.
    #[arg(long, env = "CASSETTE_COMMITLOG_SPOOL", value_name = "DIR")]
    pub commitlog_spool: Option<PathBuf>,
    /// Seconds between two shipping runs.
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    pub commitlog_ship_interval: u64,
    /// The command that stops the node (run with `sh -c`), for cluster restores to a point in
    /// time, which restore each node offline: e.g. "systemctl stop cassandra".
    #[arg(long, value_name = "COMMAND", requires = "start_command")]
    pub stop_command: Option<String>,
    /// The command that starts the node (`sh -c`; it must return once the node is launched).
    #[arg(long, value_name = "COMMAND", requires = "stop_command")]
    pub start_command: Option<String>,
    /// The node's commitlog_archiving.properties, where a restore to a point in time writes
    /// (then removes) the restore settings.
    #[arg(long, env = "CASSETTE_COMMITLOG_ARCHIVING_PROPERTIES", default_value = DEFAULT_ARCHIVING_PROPERTIES, value_name = "FILE")]
    pub commitlog_archiving_properties: PathBuf,
    /// The node's system.log, read after a restore to a point in time for the number of
    /// mutations Cassandra replayed.
    #[arg(long, env = "CASSETTE_CASSANDRA_LOG", value_name = "FILE")]
    pub cassandra_log: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Address to listen on.
    #[arg(long, env = "CASSETTE_SERVER_LISTEN", default_value = "127.0.0.1:7080")]
    pub listen: std::net::SocketAddr,
    /// The agent of each node, as a URL (repeatable or comma-separated), in the order nodes
    /// are worked on.
    #[arg(long = "agent", env = "CASSETTE_AGENTS", value_delimiter = ',', required = true)]
    pub agents: Vec<String>,
    /// The job history database (SQLite; created when missing).
    #[arg(long, env = "CASSETTE_DB", default_value = "./cassette-server.db")]
    pub db: PathBuf,
    #[command(flatten)]
    pub service: ServiceArgs,
    /// The token the agents want (default: --token).
    #[arg(long, env = "CASSETTE_AGENT_TOKEN", hide_env_values = true)]
    pub agent_token: Option<String>,
    /// A CA certificate (PEM) to trust for agents served over HTTPS.
    #[arg(long, env = "CASSETTE_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
    /// How often running agent jobs are polled, in milliseconds.
    #[arg(long, default_value_t = 500)]
    pub poll_ms: u64,
    /// A URL that gets a JSON POST when a job ends (repeatable or comma-separated); retried
    /// with backoff when it fails.
    #[arg(long = "webhook", env = "CASSETTE_WEBHOOKS", value_delimiter = ',')]
    pub webhooks: Vec<String>,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The backup's name: 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit.
    #[arg(long)]
    pub name: String,
    #[command(flatten)]
    pub repo: RepoArgs,
    #[command(flatten)]
    pub node: NodeArgs,
    /// Only these keyspaces (repeatable or comma-separated); default: every non-system keyspace.
    #[arg(long = "keyspace", short = 'k', value_delimiter = ',')]
    pub keyspaces: Vec<String>,
    /// Only these tables, as keyspace.table (repeatable or comma-separated).
    #[arg(long = "table", short = 't', value_delimiter = ',')]
    pub tables: Vec<String>,
    /// Also back up system_auth, system_distributed and system_traces.
    #[arg(long)]
    pub include_system: bool,
    /// Configuration directories to store with the backup (repeatable); default:
    /// $CASSANDRA_HOME/conf when CASSANDRA_HOME is set.
    #[arg(long = "config-dir")]
    pub config_dirs: Vec<PathBuf>,
    /// A name for this node, recorded beside its host ID.
    #[arg(long)]
    pub alias: Option<String>,
    /// Allow a backup directory on the same filesystem as a data directory.
    #[arg(long)]
    pub allow_same_disk: bool,
    /// The --data-dir paths are the node's data directories as this machine mounts them (a
    /// container whose mount paths differ from the node's): do not require them to be among
    /// the data_file_directories the node reports. The snapshot's own file list is still checked.
    #[arg(long)]
    pub data_dir_override: bool,
    /// Files copied at once.
    #[arg(long, default_value_t = 2)]
    pub parallel: usize,
    /// Lock the backup for N days at least (S3 Object Lock, in a bucket made with Object Lock
    /// enabled): nobody can delete it before then, and `delete` and `purge` refuse it. New
    /// objects are locked up to 10 days longer (at most N), so that the next backups can
    /// reference them instead of storing them again.
    #[arg(long, value_name = "N", conflicts_with = "object_lock_until", value_parser = clap::value_parser!(u32).range(1..))]
    pub object_lock_days: Option<u32>,
    /// Lock every object this backup writes until this time (RFC 3339, e.g.
    /// 2027-01-31T00:00:00Z), instead of --object-lock-days.
    #[arg(long, value_name = "TIME")]
    pub object_lock_until: Option<chrono::DateTime<chrono::Utc>>,
    /// The lock's mode: governance (a user allowed to bypass governance retention can still
    /// delete) or compliance (nobody can, not even the bucket's owner).
    #[arg(long, value_name = "MODE", default_value = "governance")]
    pub object_lock_mode: LockModeArg,
}

/// `--object-lock-mode`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LockModeArg {
    /// S3's GOVERNANCE mode.
    Governance,
    /// S3's COMPLIANCE mode.
    Compliance,
}

impl BackupArgs {
    /// The lock `--object-lock-days` or `--object-lock-until` asks for; a time already past is
    /// refused.
    pub fn object_lock(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<cassette_repo::LockRequest>, String> {
        let mode = match self.object_lock_mode {
            LockModeArg::Governance => cassette_repo::LockMode::Governance,
            LockModeArg::Compliance => cassette_repo::LockMode::Compliance,
        };
        Ok(match (self.object_lock_days, self.object_lock_until) {
            (Some(days), _) => Some(cassette_repo::LockRequest::for_days(mode, now, days)),
            (None, Some(until)) if until <= now => {
                return Err(format!("--object-lock-until {until} is not in the future: give a later time"));
            }
            (None, Some(until)) => Some(cassette_repo::LockRequest::until(mode, until)),
            (None, None) => None,
        })
    }
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("policy").required(true).multiple(true).args(["keep_last", "keep_days"])))]
pub struct PurgeArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// Keep the newest N complete backups of each node.
    #[arg(long, value_name = "N")]
    pub keep_last: Option<usize>,
    /// Keep the complete backups that finished less than D days ago.
    #[arg(long, value_name = "D")]
    pub keep_days: Option<u32>,
    /// Incomplete backups written to within this period are kept (they may be running or
    /// about to be resumed): 90s, 30m, 1h, 2d, 1h30m.
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    pub grace: std::time::Duration,
    /// Print what would be deleted; delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Only this cluster.
    #[arg(long)]
    pub cluster: Option<String>,
    /// Only this node (host ID).
    #[arg(long, visible_alias = "host")]
    pub host_id: Option<String>,
    /// Only backups whose names start with this (e.g. one schedule's); others are untouched.
    #[arg(long, value_name = "PREFIX")]
    pub name_prefix: Option<String>,
}

/// `90s`, `30m`, `1h`, `2d`, `1h30m`, `0s`: numbers each followed by a unit (s, m, h, d).
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let bad = || format!("invalid duration {text:?}: use numbers with units s, m, h, d, such as 90s, 30m, 1h30m, 2d");
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            _ => return Err(bad()),
        };
        let n: u64 = digits.parse().map_err(|_| bad())?;
        total = n.checked_mul(unit).and_then(|v| total.checked_add(v)).ok_or_else(bad)?;
        digits.clear();
    }
    if !digits.is_empty() || text.trim().is_empty() {
        return Err(bad());
    }
    Ok(std::time::Duration::from_secs(total))
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup's name (required, unless --until chooses it: the newest complete backup that
    /// finished before that time).
    #[arg(long)]
    pub name: Option<String>,
    #[command(flatten)]
    pub repo: RepoArgs,
    #[command(flatten)]
    pub node: NodeArgs,
    /// Restore another node's backup (its host ID), e.g. on a node replacing a dead one.
    #[arg(long, value_name = "HOST_ID")]
    pub from_node: Option<String>,
    /// Restore a backup of another cluster (its name), e.g. into a new cluster.
    #[arg(long, value_name = "CLUSTER")]
    pub from_cluster: Option<String>,
    /// Only these keyspaces of the backup (repeatable or comma-separated); default: every
    /// keyspace backed up except system ones.
    #[arg(long = "keyspace", short = 'k', value_delimiter = ',')]
    pub keyspaces: Vec<String>,
    /// Only these tables of the backup, as keyspace.table (repeatable or comma-separated).
    #[arg(long = "table", short = 't', value_delimiter = ',')]
    pub tables: Vec<String>,
    /// Restore under other names: OLD_KS=NEW_KS or OLD_KS.TABLE=NEW_KS.TABLE (repeatable).
    #[arg(long = "rename", value_name = "OLD=NEW")]
    pub renames: Vec<String>,
    /// Create missing keyspaces and tables from the backup's schema (after --rename).
    #[arg(long)]
    pub create_schema: bool,
    /// With --create-schema: a data centre of the backup's NetworkTopologyStrategy keyspaces
    /// and this cluster's name for it (repeatable), for a cluster whose data centres have other
    /// names. A keyspace replicated to a data centre this cluster lacks is refused first.
    #[arg(long = "dc-map", value_name = "SOURCE_DC=TARGET_DC", requires = "create_schema")]
    pub dc_map: Vec<String>,
    /// Load without truncating: nodes of a cluster restore, after `--truncate-only` ran once.
    #[arg(long, conflicts_with = "truncate_only")]
    pub no_truncate: bool,
    /// Only truncate the tables (cluster-wide), the first step of a cluster restore.
    #[arg(long)]
    pub truncate_only: bool,
    /// Start a new restore of this backup: earlier restore journals no longer count (allows
    /// truncating tables that an earlier restore of this backup loaded).
    #[arg(long)]
    pub new_restore: bool,
    /// Clear the `truncated-*` snapshots TRUNCATE leaves on this node, once a table is loaded
    /// (by default they are kept, as the pre-restore copy, and reported).
    #[arg(long)]
    pub clear_truncate_snapshots: bool,
    /// Where to stage SSTables for `nodetool import` (default: <backup-dir>/.restore-staging);
    /// not inside Cassandra's data directories.
    #[arg(long)]
    pub staging_dir: Option<PathBuf>,
    /// Verify the backup and print what would be truncated and loaded; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Run `nodetool repair -pr --full KEYSPACE` after loading each keyspace.
    #[arg(long)]
    pub repair: bool,
    /// Restore onto another topology (other node count, other tokens): every source node's
    /// backup of --name (of --from-cluster) is verified, each table truncated once, and each
    /// node's SSTables streamed by Cassandra's bulk loader (BulkLoader, from the jars of
    /// --nodetool) to the replicas that own their rows. Run once, against any node of the target.
    #[arg(long, conflicts_with_all = ["truncate_only", "clear_truncate_snapshots", "repair"])]
    pub to_topology: bool,
    /// Files hashed at once while verifying.
    #[arg(long, default_value_t = 2)]
    pub parallel: usize,
    #[command(flatten)]
    pub offline: OfflineArgs,
}

/// `restore --offline`: the manual procedure (drain, stop, replace the files, start).
#[derive(Debug, Default, Args)]
pub struct OfflineArgs {
    /// Restore with the node stopped: verify the backup, `nodetool drain`, run --stop-command,
    /// move the commitlog, saved caches and the restored tables' live SSTables into a
    /// quarantine directory (kept until `cassette quarantine purge`), put the backup's files
    /// in place, run --start-command, wait for CQL and UN. Resumable, even with the node down.
    #[arg(long, conflicts_with_all = ["no_truncate", "truncate_only", "clear_truncate_snapshots", "staging_dir"])]
    pub offline: bool,
    /// The command that stops the node (run with `sh -c`), e.g. "systemctl stop cassandra".
    #[arg(long, value_name = "COMMAND", requires = "offline")]
    pub stop_command: Option<String>,
    /// The command that starts the node (run with `sh -c`; it must return once the node is
    /// launched), e.g. "systemctl start cassandra".
    #[arg(long, value_name = "COMMAND", requires = "offline")]
    pub start_command: Option<String>,
    /// The node's commitlog directory (default: its `commitlog_directory`, asked by CQL).
    #[arg(long, requires = "offline")]
    pub commitlog_dir: Option<PathBuf>,
    /// The node's saved caches directory (default: its `saved_caches_directory`, asked by CQL).
    #[arg(long, requires = "offline")]
    pub saved_caches_dir: Option<PathBuf>,
    /// Where the replaced files are moved (same filesystem as them: moves are renames).
    /// Default: <first data dir>/../cassette-quarantine/<time>-<backup name>/.
    #[arg(long, requires = "offline")]
    pub quarantine_dir: Option<PathBuf>,
    /// Seconds the stop command and the node's shutdown may take.
    #[arg(long, default_value_t = 120, value_name = "SECONDS")]
    pub stop_timeout: u64,
    /// Seconds the start command and the node's start-up (CQL, UN) may take.
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    pub start_timeout: u64,
    /// Restore to this point in time (UTC, to the second: 2026-12-02T10:15:00Z): the backup,
    /// then the node's archived commitlog segments replayed up to it (see `cassette commitlog`).
    /// Offline only; a time outside the node's recoverable windows is refused before anything
    /// is touched.
    #[arg(long, requires = "offline", value_name = "TIME", value_parser = point_in_time)]
    pub until: Option<chrono::DateTime<chrono::Utc>>,
    /// The node's commitlog_archiving.properties, where a restore to a point in time writes
    /// (then removes) the restore settings.
    #[arg(long, env = "CASSETTE_COMMITLOG_ARCHIVING_PROPERTIES", default_value = DEFAULT_ARCHIVING_PROPERTIES, value_name = "FILE")]
    pub commitlog_archiving_properties: PathBuf,
    /// The node's system.log, read after a restore to a point in time for the number of
    /// mutations Cassandra replayed.
    #[arg(long, env = "CASSETTE_CASSANDRA_LOG", value_name = "FILE")]
    pub cassandra_log: Option<PathBuf>,
}

/// Where packages put the file (the Debian and RPM packages' configuration directory).
pub const DEFAULT_ARCHIVING_PROPERTIES: &str = "/etc/cassandra/commitlog_archiving.properties";

/// `--until`: RFC 3339, whole seconds (Cassandra before 4.1.10 and 5.0.9 reads no finer).
fn point_in_time(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    let t = chrono::DateTime::parse_from_rfc3339(s)
        .map_err(|e| format!("{e}: give a UTC time such as 2026-12-02T10:15:00Z"))?
        .to_utc();
    if chrono::Timelike::nanosecond(&t) != 0 {
        return Err(
            "give the time to the second (Cassandra's restore_point_in_time has no finer unit before 4.1.10 and 5.0.9)"
                .into(),
        );
    }
    Ok(t)
}

/// `cassette commitlog`: point-in-time recovery on the node.
#[derive(Debug, Subcommand)]
pub enum CommitlogCommand {
    /// Set the node up for point-in-time recovery: write the archive_command line of its
    /// commitlog_archiving.properties (it calls `cassette commitlog archive`) and the spool's
    /// identity (cluster name and host ID, asked by CQL). Cassandra reads the file at start-up:
    /// restart the node afterwards.
    Install {
        /// The spool directory: segments wait there to be shipped. On the commitlog's filesystem,
        /// segments are hard-linked, not copied. No spaces (Cassandra splits the command on them).
        #[arg(long, env = "CASSETTE_COMMITLOG_SPOOL", value_name = "DIR")]
        spool: PathBuf,
        /// The file to change.
        #[arg(long, env = "CASSETTE_COMMITLOG_ARCHIVING_PROPERTIES", default_value = DEFAULT_ARCHIVING_PROPERTIES, value_name = "FILE")]
        commitlog_archiving_properties: PathBuf,
        /// The cassette executable the command calls (default: this one).
        #[arg(long, value_name = "FILE")]
        cassette_path: Option<PathBuf>,
        /// Print the line and the file it would write; change nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// The archive command Cassandra runs for each finished segment: hard-link (or copy) it into
    /// the spool, fsync, exit 0. No network: it never makes Cassandra wait on the repository.
    Archive {
        /// The spool directory.
        #[arg(long, value_name = "DIR")]
        spool: PathBuf,
        /// The segment's path (Cassandra's %path).
        path: PathBuf,
        /// The segment's name (Cassandra's %name).
        name: String,
    },
    /// Ship the spooled segments into the repository (each stored with its BLAKE3 and size,
    /// then removed from the spool), once; `cassette agent --commitlog-spool` does it
    /// continuously. Exit 1 if some could not be shipped (they wait for the next run).
    Ship {
        /// The spool directory.
        #[arg(long, env = "CASSETTE_COMMITLOG_SPOOL", value_name = "DIR")]
        spool: PathBuf,
        #[command(flatten)]
        repo: RepoArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum QuarantineCommand {
    /// List the quarantine directories: backup restored, when, finished or not, size.
    List(QuarantineArgs),
    /// Remove quarantine directories (of finished offline restores only, unless told).
    Purge {
        #[command(flatten)]
        args: QuarantineArgs,
        /// Only those created at least this many days ago (default: every one).
        #[arg(long, default_value_t = 0, value_name = "N")]
        older_than_days: u64,
        /// Also those of offline restores that have not finished.
        #[arg(long)]
        include_unfinished: bool,
    },
}

#[derive(Debug, Args)]
pub struct QuarantineArgs {
    /// `cassette-quarantine` directories to look in (repeatable); default: the one beside each
    /// data directory (`--data-dir`, or the node's own), commitlog and saved caches directory.
    #[arg(long = "dir", value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    #[command(flatten)]
    pub node: NodeArgs,
}

#[cfg(test)]
mod tests {
    use super::parse_duration;

    #[test]
    fn durations() {
        let secs = |t| parse_duration(t).map(|d| d.as_secs());
        assert_eq!(secs("90s"), Ok(90));
        assert_eq!(secs("1h"), Ok(3600));
        assert_eq!(secs("1h30m"), Ok(5400));
        assert_eq!(secs("2d"), Ok(172_800));
        assert_eq!(secs("0s"), Ok(0));
        for bad in ["", "1", "h", "1x", "-1h", "1.5h"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }
}
