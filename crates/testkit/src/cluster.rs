//! Starting (once) and describing the shared test clusters.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use cassette_cassandra::{Cql, CqlTarget, Nodetool};
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use serde::Deserialize;

use crate::secure::{SecureFiles, SecureNode};

/// A running test cluster, as `cassandra.sh` describes it in `cluster.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct Cluster {
    /// The cluster's name (also its `cluster_name`).
    pub name: String,
    /// Cassandra's version, e.g. "5.0.9".
    pub cassandra_version: String,
    /// This cluster's nodetool: the launcher with the jars of the nodes' version.
    pub nodetool: PathBuf,
    /// Its nodes.
    pub nodes: Vec<Node>,
    /// How to reach it when it is secured ([`Cluster::solo_secure`]): certificates and logins.
    #[serde(skip)]
    pub secure: Option<SecureNode>,
    #[serde(default, rename = "secure")]
    secure_files: Option<SecureFiles>,
}

/// One node of a test cluster.
#[derive(Debug, Clone, Deserialize)]
pub struct Node {
    /// 1-based index.
    pub index: u32,
    /// Its address (listen, rpc and CQL).
    pub ip: String,
    /// Its JMX port (on 127.0.0.1).
    pub jmx_port: u16,
    /// Its directory (conf, logs, data).
    pub dir: PathBuf,
    /// Its `data_file_directories`.
    pub data_dirs: Vec<PathBuf>,
    /// Its system.log.
    pub log: PathBuf,
    /// Its cluster's nodetool (the jars of the node's version).
    pub nodetool: PathBuf,
    /// Its cluster's [`Cluster::secure`], so that its helpers log in.
    #[serde(skip)]
    pub secure: Option<SecureNode>,
}

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repo root")
}

/// Where the test clusters live: `$CASSETTE_CLUSTER_ROOT`, default `/tmp/cassette-clusters`.
pub fn cluster_root() -> PathBuf {
    PathBuf::from(std::env::var("CASSETTE_CLUSTER_ROOT").unwrap_or_else(|_| "/tmp/cassette-clusters".into()))
}

/// `harness/cassandra/cassandra.sh`.
pub fn harness_script() -> PathBuf {
    repo_root().join("harness/cassandra/cassandra.sh")
}

/// `harness/cassandra/nodetool`: nodetool from the jars of the default version's nodes (5.0);
/// a cluster of another version has its own ([`Node::nodetool`]).
pub fn nodetool_launcher() -> PathBuf {
    repo_root().join("harness/cassandra/nodetool")
}

impl Cluster {
    /// The one-node cluster (two data directories), started on first use.
    pub fn solo() -> &'static Cluster {
        static SOLO: OnceLock<Cluster> = OnceLock::new();
        SOLO.get_or_init(|| start("solo", &["--nodes", "1", "--data-dirs", "2"], "127.0.1.1", 7400))
    }

    /// The three-node cluster, started on first use.
    pub fn trio() -> &'static Cluster {
        static TRIO: OnceLock<Cluster> = OnceLock::new();
        TRIO.get_or_init(|| start("trio", &["--nodes", "3"], "127.0.0.1", 7100))
    }

    /// A one-node cluster of its own, for tests that stop and start their node (offline
    /// restore): never shared with tests that need their node up. Started on first use.
    pub fn offline() -> &'static Cluster {
        static OFFLINE: OnceLock<Cluster> = OnceLock::new();
        OFFLINE.get_or_init(|| start("offline", &["--nodes", "1"], "127.0.7.1", 7900))
    }

    /// A one-node cluster of its own for point-in-time recovery (`pitr`): 1 MiB commitlog
    /// segments, so that a test fills a few quickly; its tests stop and start it. Started on
    /// first use.
    pub fn pitr() -> &'static Cluster {
        static PITR: OnceLock<Cluster> = OnceLock::new();
        PITR.get_or_init(|| {
            start_dedicated("pitr", &["--nodes", "1", "--commitlog-segment-mb", "1"], "127.0.3.1", 8300)
        })
    }

    /// Three nodes of their own for cluster restores to a point in time (`pitr3`): 1 MiB
    /// commitlog segments; its tests stop and start its nodes. Started on first use.
    pub fn pitr3() -> &'static Cluster {
        static PITR3: OnceLock<Cluster> = OnceLock::new();
        PITR3.get_or_init(|| {
            start_dedicated("pitr3", &["--nodes", "3", "--commitlog-segment-mb", "1"], "127.0.2.1", 9100)
        })
    }

    /// One Cassandra 4.1 node with 1 MiB commitlog segments (`pitr41`), for the focused
    /// point-in-time round trip on 4.1; its tests stop and start it.
    pub fn pitr_v41() -> &'static Cluster {
        static PITR41: OnceLock<Cluster> = OnceLock::new();
        PITR41.get_or_init(|| {
            start_dedicated(
                "pitr41",
                &["--version", "4.1", "--nodes", "1", "--commitlog-segment-mb", "1"],
                "127.0.10.1",
                9400,
            )
        })
    }

    /// [`Cluster::pitr_v41`] on Cassandra 4.0 (`pitr40`).
    pub fn pitr_v40() -> &'static Cluster {
        static PITR40: OnceLock<Cluster> = OnceLock::new();
        PITR40.get_or_init(|| {
            start_dedicated(
                "pitr40",
                &["--version", "4.0", "--nodes", "1", "--commitlog-segment-mb", "1"],
                "127.0.11.1",
                9500,
            )
        })
    }

    /// A one-node Cassandra 4.1 cluster (`solo41`), started on first use: the version round
    /// trips run on it.
    pub fn solo_v41() -> &'static Cluster {
        static SOLO41: OnceLock<Cluster> = OnceLock::new();
        SOLO41.get_or_init(|| start("solo41", &["--version", "4.1", "--nodes", "1"], "127.0.4.1", 7500))
    }

    /// A one-node Cassandra 4.0 cluster (`solo40`), started on first use.
    pub fn solo_v40() -> &'static Cluster {
        static SOLO40: OnceLock<Cluster> = OnceLock::new();
        SOLO40.get_or_init(|| start("solo40", &["--version", "4.0", "--nodes", "1"], "127.0.5.1", 7600))
    }

    /// A one-node Cassandra 5.0 cluster secured like a production one (`secure`), started on
    /// first use: CQL `PasswordAuthenticator` and `CassandraAuthorizer`, client-to-node TLS with
    /// `require_client_auth`, JMX authentication. [`Cluster::secure`] holds its CA, client
    /// certificates and logins; [`Cluster::session`], [`Node::cql`] and the nodetool helpers log
    /// in with them (the cluster's `nodetool` program itself adds no login).
    pub fn solo_secure() -> &'static Cluster {
        static SECURE: OnceLock<Cluster> = OnceLock::new();
        SECURE.get_or_init(|| start("secure", &["--secure", "--nodes", "1"], "127.0.6.1", 7700))
    }

    /// [`Cluster::solo_secure`]'s twin (`securetls`) whose JMX is over TLS too, started on
    /// first use: nodetool needs `--ssl` and the trust store of
    /// [`SecureNode::nodetool_ssl_properties`].
    pub fn solo_secure_jmx_tls() -> &'static Cluster {
        static SECURE_TLS: OnceLock<Cluster> = OnceLock::new();
        SECURE_TLS.get_or_init(|| start("securetls", &["--jmx-tls", "--nodes", "1"], "127.0.8.1", 7800))
    }

    /// A one-node cluster of its own (`topo1`), a target (and a source) of the restores onto
    /// another topology, whose data centre is `dc-west` (the others' is `datacenter1`). Started
    /// on first use.
    pub fn topo_one() -> &'static Cluster {
        static TOPO1: OnceLock<Cluster> = OnceLock::new();
        TOPO1.get_or_init(|| {
            start_dedicated("topo1", &["--nodes", "1", "--heap", "256m", "--dc", TOPO_ONE_DC], "127.0.12.1", 9600)
        })
    }

    /// A three-node cluster of its own (`topo3`): the same node count as [`Cluster::trio`],
    /// other tokens (each moved by a third of the spacing between nodes). Started on first use.
    pub fn topo_three() -> &'static Cluster {
        static TOPO3: OnceLock<Cluster> = OnceLock::new();
        TOPO3.get_or_init(|| {
            start_dedicated("topo3", &["--nodes", "3", "--heap", "256m", "--token-shift", "33"], "127.0.13.1", 9700)
        })
    }

    /// A shell command that stops node `index` (1-based) of this cluster through the harness
    /// script (for `restore --stop-command`).
    pub fn stop_node_command(&self, index: u32) -> String {
        self.harness_command("stop-node", index)
    }

    /// A shell command that starts node `index` again and waits until it is UN.
    pub fn start_node_command(&self, index: u32) -> String {
        self.harness_command("start-node", index)
    }

    fn harness_command(&self, sub: &str, index: u32) -> String {
        format!(
            "CASSETTE_CLUSTER_ROOT='{}' bash '{}' {sub} --name {} --node {index}",
            cluster_root().display(),
            harness_script().display(),
            self.name
        )
    }

    /// A driver session over the whole cluster (for loading and reading data); on a secured
    /// cluster over TLS, as [`crate::secure::CQL_ROLE`].
    pub async fn session(&self) -> Session {
        let mut builder = SessionBuilder::new();
        for n in &self.nodes {
            builder = builder.known_node(format!("{}:9042", n.ip));
        }
        if let Some(secure) = &self.secure {
            let tls = secure.cql_tls().client_config().unwrap_or_else(|e| panic!("{e}"));
            builder = builder.user(&secure.cql_user, &secure.cql_password).tls_context(Some(tls));
        }
        match builder.build().await {
            Ok(s) => s,
            Err(e) => panic!("cannot connect to test cluster {}: {e}\n{}", self.name, self.log_tails()),
        }
    }

    /// The last lines of every node's log, for failure messages.
    pub fn log_tails(&self) -> String {
        self.nodes.iter().map(|n| n.log_tail(30)).collect::<Vec<_>>().join("\n")
    }

    /// Flushes every table of `keyspace` on every node (one SSTable per flush and data directory).
    pub fn flush(&self, keyspace: &str) {
        for n in &self.nodes {
            n.nodetool(&["flush", keyspace]);
        }
    }
}

impl Node {
    /// Runs its cluster's nodetool against this node; panics with its output when it fails.
    pub fn nodetool(&self, args: &[&str]) -> String {
        let login = self.secure.as_ref().map(SecureNode::nodetool_login_args).unwrap_or_default();
        let env = self.secure.as_ref().map(SecureNode::nodetool_env).unwrap_or_default();
        let out = Command::new(&self.nodetool)
            .args(["-h", "127.0.0.1", "-p", &self.jmx_port.to_string()])
            .args(login)
            .args(args)
            .envs(env)
            .output()
            .expect("run nodetool launcher");
        if !out.status.success() {
            panic!(
                "nodetool {args:?} on node {} failed:\n{}{}\n{}",
                self.ip,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                self.log_tail(30)
            );
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// cassette's own nodetool client for this node (logged in to a secured node's JMX).
    pub fn nodetool_client(&self) -> Nodetool {
        let nodetool = Nodetool::new(&self.nodetool, "127.0.0.1", self.jmx_port);
        match &self.secure {
            None => nodetool,
            Some(secure) => nodetool.with_security(secure.jmx_security()).unwrap_or_else(|e| panic!("{e}")),
        }
    }

    /// Where this node answers CQL, and how to log in (TLS and role on a secured node).
    pub fn cql_target(&self) -> CqlTarget {
        match &self.secure {
            None => CqlTarget::new(self.ip.clone(), 9042),
            Some(secure) => secure.cql_target(&self.ip),
        }
    }

    /// A CQL session pinned to this node.
    pub async fn cql(&self) -> Cql {
        match Cql::connect(&self.cql_target()).await {
            Ok(c) => c,
            Err(e) => panic!("{e}\n{}", self.log_tail(30)),
        }
    }

    /// The last `lines` lines of the node's system.log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text =
            std::fs::read_to_string(&self.log).unwrap_or_else(|e| format!("(cannot read {}: {e})", self.log.display()));
        let all: Vec<&str> = text.lines().collect();
        format!(
            "----- {} (last {lines} lines) -----\n{}",
            self.log.display(),
            all[all.len().saturating_sub(lines)..].join("\n")
        )
    }
}

/// `CASSETTE_TEST_SLOT` (0 to 9, default 0): two checkouts whose tests run at once on one
/// machine each take a slot, and with it their own loopback addresses (`127.<slot>.x.y`) and JMX
/// ports (`+ 10 × slot`); give each its own `CASSETTE_CLUSTER_ROOT` too.
pub fn test_slot() -> u8 {
    match std::env::var("CASSETTE_TEST_SLOT") {
        Err(_) => 0,
        Ok(s) => match s.parse::<u8>() {
            Ok(n) if n <= 9 => n,
            _ => panic!("CASSETTE_TEST_SLOT must be a number from 0 to 9, not {s:?}"),
        },
    }
}

/// `ip` (`127.0.x.y`) and `jmx_base` moved into this run's slot.
fn in_slot(ip: &str, jmx_base: u16) -> (String, u16) {
    let slot = test_slot();
    let rest = ip.strip_prefix("127.0.").expect("test clusters live in 127.0.0.0/16");
    (format!("127.{slot}.{rest}"), jmx_base + 10 * u16::from(slot))
}

/// Starts (or finds running) a cluster through the harness script. Idempotent, and serialised
/// across test processes by a lock file, so concurrent test binaries share one cluster.
/// [`Cluster::topo_one`]'s data centre.
pub const TOPO_ONE_DC: &str = "dc-west";

/// Set (by CI) to stop each cluster that only one test binary uses when that binary exits:
/// idle nodes take CPU and memory from the binaries after it. Unset, clusters stay up between
/// runs, for quick reruns.
pub const STOP_DEDICATED_ENV: &str = "CASSETTE_STOP_DEDICATED_CLUSTERS";

/// [`start`] for a cluster only one test binary uses (its tests stop and start its nodes, or
/// it is a restore target of its own): stopped when the binary exits, with
/// [`STOP_DEDICATED_ENV`] set.
fn start_dedicated(name: &'static str, args: &[&str], first_ip: &str, jmx_base: u16) -> Cluster {
    let cluster = start(name, args, first_ip, jmx_base);
    if std::env::var(STOP_DEDICATED_ENV).is_ok_and(|v| v == "1") {
        stop_at_exit(name);
    }
    cluster
}

static STOP_AT_EXIT: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());

fn stop_at_exit(name: &'static str) {
    extern "C" fn stop_registered() {
        let names = std::mem::take(&mut *STOP_AT_EXIT.lock().unwrap_or_else(|e| e.into_inner()));
        for name in names {
            let _ = Command::new("bash").arg(harness_script()).args(["stop", "--name", name]).output();
        }
    }
    let mut names = STOP_AT_EXIT.lock().unwrap_or_else(|e| e.into_inner());
    if names.is_empty() {
        // SAFETY: registers a plain function once; it runs at process exit (libtest's exit
        // after the last test, or a panic's), when no test thread uses the cluster any more.
        unsafe { libc::atexit(stop_registered) };
    }
    names.push(name);
}

fn start(name: &str, args: &[&str], first_ip: &str, jmx_base: u16) -> Cluster {
    let (first_ip, jmx_base) = in_slot(first_ip, jmx_base);
    let root = cluster_root();
    std::fs::create_dir_all(&root).expect("create cluster root");
    let lock = std::fs::File::create(Path::new(&root).join(format!("{name}.start-lock"))).expect("lock file");
    lock.lock().expect("lock cluster start");
    let out = Command::new("bash")
        .arg(harness_script())
        .args(["start", "--name", name])
        .args(args)
        .args(["--first-ip", &first_ip, "--jmx-base", &jmx_base.to_string()])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", harness_script().display()));
    if !out.status.success() {
        panic!(
            "the real Cassandra test cluster '{name}' could not be started, so this test cannot run.\n\
             Fix the cause below (Java 17? Maven? pip for 4.x's Java 11? ports taken?) and run the tests again.\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let json_path = Path::new(&root).join(name).join("cluster.json");
    let json = std::fs::read_to_string(&json_path).unwrap_or_else(|e| panic!("read {}: {e}", json_path.display()));
    let mut cluster: Cluster =
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("parse {}: {e}", json_path.display()));
    // Still under the start lock: one test process at a time sets up the CQL role.
    if let Some(files) = &cluster.secure_files {
        let secure = SecureNode::provision(files, &cluster.nodes[0].ip).unwrap_or_else(|e| {
            panic!(
                "the secured test cluster '{name}' is up, but the fixture could not log in to it: {e}\n{}",
                cluster.log_tails()
            )
        });
        for node in &mut cluster.nodes {
            node.secure = Some(secure.clone());
        }
        cluster.secure = Some(secure);
    }
    drop(lock);
    cluster
}
