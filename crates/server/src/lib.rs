//! cassette's cluster side: `cassette agent` beside each Cassandra node, and `cassette server`,
//! the coordinator that runs cluster jobs through the agents.
//!
//! - [`agent`]: the node engines (`cassette-backup`, `cassette-restore`) and nodetool repair and
//!   cleanup behind HTTP, one job at a time, with live progress per keyspace.
//! - [`coordinator`]: one cluster job at a time (backup, restore, repair, cleanup), node by
//!   node or `parallel` at once; a restore verifies every node's backup before it truncates
//!   each table once for the whole cluster, then loads node by node.
//! - [`api`]: seed 000's REST API (`/cluster/<job>/start|status|last|abort`, same JSON) and the
//!   versioned API (`/v1/...`), described by `/openapi.json`.
//! - [`store`]: the job history in SQLite; jobs cut off by a server stop are marked interrupted
//!   and can be resumed.
//! - [`model`]: the JSON both sides speak.
//! - [`schedule`]: cron schedules with retention; [`notify`]: webhooks when a job ends;
//!   [`metrics`]: `/metrics` for Prometheus; the dashboard at `/`, built into the binary.
//!
//! Security: a bearer token between server and agents and on every mutating call; TLS with
//! [`serve`] when a certificate is given.
#![deny(missing_docs)]

pub mod agent;
pub mod api;
mod api_error;
pub mod auth;
pub mod client;
pub mod coordinator;
mod dashboard;
pub mod metrics;
pub mod model;
pub mod notify;
pub mod schedule;
mod serve;
pub mod store;

pub use serve::{Limits, Tls, serve};
