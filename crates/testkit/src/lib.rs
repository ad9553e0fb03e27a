//! Real Cassandra clusters and sample data for cassette's integration tests.
//!
//! [`Cluster::solo`] and [`Cluster::trio`] return a running cluster of real Cassandra 5.0 nodes
//! ([`Cluster::solo_v41`] and [`Cluster::solo_v40`]: Cassandra 4.1 and 4.0, on Java 11),
//! started by the project's own `harness/cassandra/cassandra.sh` (jars fetched by Maven) the
//! first time a test asks for it, and shared by every test of the run. A cluster that cannot
//! start makes the test panic with the reason and the node's log tail: these tests are never
//! skipped.
//!
//! | cluster | nodes | addresses | JMX ports | data directories per node |
//! |---------|-------|-----------|-----------|---------------------------|
//! | `solo`  | 1     | 127.0.1.1 | 7400      | 2 (JBOD)                  |
//! | `trio`  | 3     | 127.0.0.1-3 | 7100, 7200, 7300 | 1                |
//! | `offline` | 1   | 127.0.7.1 | 7900      | 1 (stopped and started by offline-restore tests) |
//! | `pitr`  | 1     | 127.0.3.1 | 8300      | 1 (1 MiB commitlog segments; stopped and started by point-in-time tests) |
//! | `solo41` | 1    | 127.0.4.1 | 7500      | 1 (Cassandra 4.1)         |
//! | `solo40` | 1    | 127.0.5.1 | 7600      | 1 (Cassandra 4.0)         |
//! | `secure` | 1    | 127.0.6.1 | 7700      | 1 (CQL login + TLS with client certificates, JMX login) |
//! | `securetls` | 1 | 127.0.8.1 | 7800      | 1 (as `secure`, and JMX over TLS) |
//!
//! (`CASSETTE_TEST_SLOT` moves the addresses to `127.<slot>.x.y` and adds `10 × slot` to the ports.)
//!
//! [`s3::StoreServer`] starts a real object store server on loopback through `harness/s3/s3.sh`,
//! one per call, with a bucket (container) `cassette`: s3s-fs or moto for S3, Azurite for Azure
//! Blob, fake-gcs-server for GCS.
//!
//! [`backend::Backend`] is where a test's backups go on any kind of repository (a directory, or
//! a bucket on one of those servers), with a listing of what is stored and ways to read and
//! corrupt it, so that one test body runs on every kind.
//!
//! [`dataset`] loads keyspaces of several table shapes (clustering keys, collections, counters,
//! TTL'd rows, deletes, a secondary index) and dumps tables for before/after comparisons.
//!
//! ```no_run
//! # async fn demo() {
//! let cluster = cassette_testkit::Cluster::solo();
//! let session = cluster.session().await;
//! let ks = cassette_testkit::unique_name("demo");
//! cassette_testkit::dataset::load(&session, cluster, &ks, 1, &cassette_testkit::dataset::Shape::small()).await;
//! # }
//! ```
#![deny(missing_docs)]

pub mod backend;
mod cluster;
pub mod dataset;
pub mod s3;
pub mod secure;

pub use cluster::{Cluster, Node, TOPO_ONE_DC, cluster_root, harness_script, nodetool_launcher, repo_root};
pub use secure::SecureNode;

/// A keyspace-safe name unique to this test process and call: `<prefix>_<pid>_<n>`.
pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let secs =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() % 100_000).unwrap_or(0);
    format!("{prefix}_{secs}_{}_{n}", std::process::id())
}
