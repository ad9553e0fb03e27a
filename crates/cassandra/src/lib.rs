//! Everything cassette knows about a Cassandra node: its `nodetool`, its CQL, and its files on disk.
//!
//! This is the only crate that runs nodetool or talks CQL (an architecture invariant: the backup
//! and restore engines ask this crate, never a process or a socket of their own).
//!
//! - [`Nodetool`] runs the node's own `nodetool` (snapshot, clearsnapshot, listsnapshots, flush,
//!   import, ...) as a subprocess and turns failures into errors that say what to do. Snapshots
//!   and clears go through a long-lived JMX client (`java/CassetteJmx.java`, compiled on first
//!   use) when a JDK is there, so that a job does not wait for a JVM start per call.
//! - [`Cql`] is a CQL session pinned to one node, for what only that node can answer
//!   (`system.local`: host ID, tokens, data directories) and for schema.
//! - [`disk`] knows the data directory layout: `<data dir>/<keyspace>/<table>-<table id>/`,
//!   `snapshots/<tag>/`, SSTable component names.
//! - [`keyspaces`] classifies system keyspaces.
//! - [`version`] tells the supported Cassandra versions (4.0, 4.1, 5.0) from the others.
//!
//! ```no_run
//! # async fn demo() -> Result<(), cassette_cassandra::CassandraError> {
//! use cassette_cassandra::{Cql, CqlTarget, Nodetool};
//! let cql = Cql::connect(&CqlTarget::new("127.0.0.1", 9042)).await?;
//! let node = cql.local_node().await?;
//! println!("host ID {} in cluster {}", node.host_id, node.cluster_name);
//! Nodetool::new("nodetool", "127.0.0.1", 7199).snapshot("cassette-demo", &["ks".to_string()], &[]).await?;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod bulk_loader;
pub mod children;
mod cql;
pub mod disk;
mod error;
mod jmx;
mod jmx_security;
pub mod keyspaces;
mod node;
mod nodetool;
mod tls;
pub mod version;

pub use bulk_loader::{BulkLoader, LoadTarget};
pub use cql::{Cql, CqlTarget, KeyspaceInfo, LocalNode, Peer, TableInfo};
pub use error::CassandraError;
pub use jmx_security::JmxSecurity;
pub use node::Node;
pub use nodetool::{ImportOptions, Nodetool, SnapshotListing, status_shows_up_normal};
pub use tls::CqlTls;

/// True when a TCP connection to `host:port` opens within a second: the node's CQL or JMX
/// port answers (a stopped node's ports refuse).
pub async fn port_answers(host: &str, port: u16) -> bool {
    let host = host.to_string();
    tokio::task::spawn_blocking(move || {
        use std::net::ToSocketAddrs;
        let Ok(addrs) = (host.as_str(), port).to_socket_addrs() else { return false };
        addrs.into_iter().any(|a| std::net::TcpStream::connect_timeout(&a, std::time::Duration::from_secs(1)).is_ok())
    })
    .await
    .unwrap_or(false)
}
