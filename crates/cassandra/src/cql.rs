//! A CQL session pinned to one node.
//!
//! Pinned, because much of what a backup needs is node-local: `system.local` answers for the
//! coordinator it reaches, so a session free to pick any node would report another node's
//! host ID and tokens.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::policies::host_filter::AllowListHostFilter;
use scylla::value::Row;
use uuid::Uuid;

use crate::CassandraError;
use crate::tls::CqlTls;

/// Where and how to connect with CQL.
#[derive(Clone)]
pub struct CqlTarget {
    /// The node's CQL address (its `rpc_address`).
    pub host: String,
    /// The native transport port (9042 by default).
    pub port: u16,
    /// User and password, when the cluster has authentication on (`PasswordAuthenticator`).
    pub credentials: Option<(String, String)>,
    /// TLS, when the node's `client_encryption_options` are enabled.
    pub tls: Option<CqlTls>,
}

/// Never prints the password.
impl std::fmt::Debug for CqlTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CqlTarget")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.credentials.as_ref().map(|(user, _)| user))
            .field("tls", &self.tls)
            .finish()
    }
}

impl CqlTarget {
    /// A target without credentials or TLS.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        CqlTarget { host: host.into(), port, credentials: None, tls: None }
    }

    fn address(&self) -> String {
        match self.host.parse::<IpAddr>() {
            Ok(IpAddr::V6(ip)) => format!("[{ip}]:{}", self.port),
            _ => format!("{}:{}", self.host, self.port),
        }
    }
}

/// A CQL session whose requests all go to one node.
pub struct Cql {
    session: Session,
    address: String,
}

/// What `system.local` says about the node.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LocalNode {
    /// The node's host ID: stable across restarts, the node's identity in backups.
    pub host_id: Uuid,
    /// The cluster's name.
    pub cluster_name: String,
    /// Datacenter.
    pub datacenter: String,
    /// Rack.
    pub rack: String,
    /// The tokens the node owns.
    pub tokens: Vec<String>,
    /// Cassandra's version, e.g. "5.0.9".
    pub release_version: String,
    /// The address other nodes know it by.
    pub broadcast_address: Option<IpAddr>,
    /// The address it listens on for clients.
    pub rpc_address: Option<IpAddr>,
}

/// Another node of the ring, from `system.peers_v2`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Peer {
    /// Its host ID.
    pub host_id: Uuid,
    /// The address other nodes know it by.
    pub address: IpAddr,
    /// Datacenter.
    pub datacenter: String,
    /// Rack.
    pub rack: String,
}

/// A keyspace of the live schema.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeyspaceInfo {
    /// Its name.
    pub name: String,
    /// Its replication options (class, replication_factor or per-DC factors).
    pub replication: Vec<(String, String)>,
}

/// A table of the live schema.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TableInfo {
    /// Keyspace.
    pub keyspace: String,
    /// Table name.
    pub name: String,
    /// The table id: the suffix of its data directory `<name>-<id as 32 hex>`.
    pub id: Uuid,
}

impl TableInfo {
    /// The table id as it appears in the table's directory name (32 hex digits, no dashes).
    pub fn id_hex(&self) -> String {
        self.id.simple().to_string()
    }
}

/// The driver's message, with what to check: credentials or certificates when it says so.
fn connect_err(target: &CqlTarget, address: &str, message: String) -> CassandraError {
    // The driver's messages run over several indented lines: one line reads better.
    let message = message.split_whitespace().collect::<Vec<_>>().join(" ");
    let lower = message.to_lowercase();
    let says = |words: &[&str]| words.iter().any(|w| lower.contains(w));
    let hint = if says(&["authenticat", "credentials", "password"]) {
        if target.credentials.is_some() {
            "the node refused the user or password: check --cql-user and the password (CASSETTE_CQL_PASSWORD or --cql-password-file)"
        } else {
            "the node requires a login: give --cql-user and the password (CASSETTE_CQL_PASSWORD or --cql-password-file)"
        }
    } else if says(&["connection refused", "timed out", "no route", "unreachable"]) {
        "is Cassandra running there (check `nodetool status`, --cql-host/--cql-port)?"
    } else {
        match &target.tls {
            // A node with require_client_auth closes the connection of a client with no
            // certificate after the handshake: the driver sees only a broken connection.
            Some(tls) if tls.client_cert.is_none() => {
                "the node closed the TLS connection: if it has require_client_auth, give --cql-tls-cert and --cql-tls-key; check --cql-tls-ca"
            }
            Some(_) => {
                "the TLS handshake failed or the node closed the connection: check --cql-tls-ca, the client certificate and key (signed by a CA the node trusts), and the name in the node's certificate (--cql-tls-server-name)"
            }
            None if says(&["tls", "ssl", "certificate", "handshake", "broken", "closed", "reset"]) => {
                "the node closed the connection: if its client_encryption_options are enabled, give --cql-tls-ca (and a client certificate if it has require_client_auth)"
            }
            None => {
                "is Cassandra running there (check `nodetool status`, --cql-host/--cql-port)? If its client_encryption_options are enabled, give --cql-tls-ca"
            }
        }
    };
    CassandraError::CqlConnect { address: address.to_string(), message, hint }
}

fn cql_err(statement: &str, e: impl std::fmt::Display) -> CassandraError {
    let statement: String = statement.chars().take(120).collect();
    CassandraError::Cql { statement, message: e.to_string() }
}

impl Cql {
    /// Connects to exactly this node (other nodes of the cluster are never contacted).
    pub async fn connect(target: &CqlTarget) -> Result<Self, CassandraError> {
        let address = target.address();
        let filter =
            AllowListHostFilter::new([address.as_str()]).map_err(|e| connect_err(target, &address, e.to_string()))?;
        let mut builder = SessionBuilder::new().known_node(&address).host_filter(Arc::new(filter));
        if let Some((user, password)) = &target.credentials {
            builder = builder.user(user, password);
        }
        if let Some(tls) = &target.tls {
            builder = builder.tls_context(Some(tls.client_config()?));
        }
        let session = builder.build().await.map_err(|e| connect_err(target, &address, e.to_string()))?;
        Ok(Cql { session, address })
    }

    /// The address this session is pinned to.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The driver session, for callers that load or read data (tests, verification).
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Runs one statement without values and returns its rows (empty for DDL/DML).
    pub async fn rows(&self, statement: &str) -> Result<Vec<Row>, CassandraError> {
        let result = self.session.query_unpaged(statement, ()).await.map_err(|e| cql_err(statement, e))?;
        if !result.is_rows() {
            return Ok(Vec::new());
        }
        let rows = result.into_rows_result().map_err(|e| cql_err(statement, e))?;
        rows.rows::<Row>()
            .map_err(|e| cql_err(statement, e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| cql_err(statement, e))
    }

    /// Runs a statement (DDL, DML) and waits for schema agreement after DDL.
    pub async fn execute(&self, statement: &str) -> Result<(), CassandraError> {
        self.session.query_unpaged(statement, ()).await.map_err(|e| cql_err(statement, e))?;
        Ok(())
    }

    /// `TRUNCATE keyspace.table`: removes every row of the table on every node (all nodes must
    /// be up). With `auto_snapshot: true` each node first takes a `truncated-<ms>-<table>`
    /// snapshot.
    pub async fn truncate(&self, keyspace: &str, table: &str) -> Result<(), CassandraError> {
        self.execute(&truncate_statement(keyspace, table)).await
    }

    /// Whether the table holds at least one row, read at consistency ALL (as TRUNCATE needs
    /// every node up): a restore asks before truncating a table it would load nothing into.
    pub async fn has_rows(&self, keyspace: &str, table: &str) -> Result<bool, CassandraError> {
        use scylla::statement::unprepared::Statement;
        let q = format!("SELECT * FROM {}.{} LIMIT 1", quote_identifier(keyspace), quote_identifier(table));
        let mut statement = Statement::new(q.as_str());
        statement.set_consistency(scylla::statement::Consistency::All);
        let result = self.session.query_unpaged(statement, ()).await.map_err(|e| cql_err(&q, e))?;
        let rows = result.into_rows_result().map_err(|e| cql_err(&q, e))?;
        Ok(rows.rows_num() > 0)
    }

    /// Runs a schema statement (`CREATE ...`); `Ok(false)` when what it creates already exists.
    pub async fn execute_schema(&self, statement: &str) -> Result<bool, CassandraError> {
        match self.execute(statement).await {
            Ok(()) => Ok(true),
            Err(CassandraError::Cql { message, .. }) if is_already_exists(&message) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Waits until every node agrees on the schema version (after DDL).
    pub async fn await_schema_agreement(&self) -> Result<(), CassandraError> {
        self.session.await_schema_agreement().await.map(drop).map_err(|e| cql_err("schema agreement", e))
    }

    /// The node's identity and placement, from `system.local`.
    pub async fn local_node(&self) -> Result<LocalNode, CassandraError> {
        let q = "SELECT host_id, cluster_name, data_center, rack, tokens, release_version, \
                 broadcast_address, rpc_address FROM system.local WHERE key = 'local'";
        let result = self.session.query_unpaged(q, ()).await.map_err(|e| cql_err(q, e))?;
        let rows = result.into_rows_result().map_err(|e| cql_err(q, e))?;
        type LocalRow = (
            Option<Uuid>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<Vec<String>>,
            Option<String>,
            Option<IpAddr>,
            Option<IpAddr>,
        );
        let (host_id, cluster, dc, rack, tokens, version, broadcast, rpc) =
            rows.single_row::<LocalRow>().map_err(|e| cql_err(q, e))?;
        let mut tokens = tokens.unwrap_or_default();
        tokens.sort_by_key(|t| t.parse::<i128>().unwrap_or(0));
        Ok(LocalNode {
            host_id: host_id.ok_or_else(|| CassandraError::Unexpected("system.local has no host_id".into()))?,
            cluster_name: cluster.unwrap_or_default(),
            datacenter: dc.unwrap_or_default(),
            rack: rack.unwrap_or_default(),
            tokens,
            release_version: version.unwrap_or_default(),
            broadcast_address: broadcast,
            rpc_address: rpc,
        })
    }

    /// The node's `data_file_directories`, from the `system_views.settings` virtual table.
    pub async fn data_file_directories(&self) -> Result<Vec<PathBuf>, CassandraError> {
        let q = "SELECT value FROM system_views.settings WHERE name = 'data_file_directories'";
        let result = self.session.query_unpaged(q, ()).await.map_err(|e| cql_err(q, e))?;
        let rows = result.into_rows_result().map_err(|e| cql_err(q, e))?;
        let (value,) = rows.single_row::<(Option<String>,)>().map_err(|e| cql_err(q, e))?;
        let value = value.unwrap_or_default();
        let dirs = parse_directory_list(&value);
        if dirs.is_empty() {
            return Err(CassandraError::Unexpected(format!(
                "system_views.settings gives no data_file_directories ({value:?}); pass --data-dir"
            )));
        }
        Ok(dirs)
    }

    /// One setting of the node's `system_views.settings` virtual table (`None` when unset or
    /// unknown).
    pub async fn setting(&self, name: &str) -> Result<Option<String>, CassandraError> {
        let q = "SELECT value FROM system_views.settings WHERE name = ?";
        let result = self.session.query_unpaged(q, (name,)).await.map_err(|e| cql_err(q, e))?;
        let rows = result.into_rows_result().map_err(|e| cql_err(q, e))?;
        let mut values = rows.rows::<(Option<String>,)>().map_err(|e| cql_err(q, e))?;
        match values.next() {
            Some(row) => Ok(row.map_err(|e| cql_err(q, e))?.0.filter(|v| !v.trim().is_empty() && v != "null")),
            None => Ok(None),
        }
    }

    /// The node's `commitlog_directory` (absolute), from `system_views.settings`.
    pub async fn commitlog_directory(&self) -> Result<PathBuf, CassandraError> {
        self.directory_setting("commitlog_directory", "--commitlog-dir").await
    }

    /// The node's `saved_caches_directory` (absolute), from `system_views.settings`.
    pub async fn saved_caches_directory(&self) -> Result<PathBuf, CassandraError> {
        self.directory_setting("saved_caches_directory", "--saved-caches-dir").await
    }

    async fn directory_setting(&self, name: &str, flag: &str) -> Result<PathBuf, CassandraError> {
        match self.setting(name).await? {
            Some(v) if PathBuf::from(v.trim()).is_absolute() => Ok(PathBuf::from(v.trim())),
            other => Err(CassandraError::Unexpected(format!(
                "system_views.settings gives no absolute {name} ({other:?}); pass {flag}"
            ))),
        }
    }

    /// The other nodes of the ring as this node knows them (`system.peers_v2`): host ID and
    /// the address they are known by, sorted by address.
    pub async fn peers(&self) -> Result<Vec<Peer>, CassandraError> {
        let q = "SELECT host_id, peer, data_center, rack FROM system.peers_v2";
        let result = self.session.query_unpaged(q, ()).await.map_err(|e| cql_err(q, e))?;
        let rows = result.into_rows_result().map_err(|e| cql_err(q, e))?;
        let mut out = Vec::new();
        for row in rows.rows::<(Option<Uuid>, IpAddr, Option<String>, Option<String>)>().map_err(|e| cql_err(q, e))? {
            let (host_id, address, dc, rack) = row.map_err(|e| cql_err(q, e))?;
            // A peer being removed can lack its host ID for a moment: not a node to back up.
            let Some(host_id) = host_id else { continue };
            out.push(Peer { host_id, address, datacenter: dc.unwrap_or_default(), rack: rack.unwrap_or_default() });
        }
        out.sort_by_key(|p| p.address);
        Ok(out)
    }

    /// Keyspaces of the live schema, sorted by name.
    pub async fn keyspaces(&self) -> Result<Vec<KeyspaceInfo>, CassandraError> {
        let q = "SELECT keyspace_name, replication FROM system_schema.keyspaces";
        let result = self.session.query_unpaged(q, ()).await.map_err(|e| cql_err(q, e))?;
        let rows = result.into_rows_result().map_err(|e| cql_err(q, e))?;
        let mut out = Vec::new();
        for row in
            rows.rows::<(String, Option<std::collections::BTreeMap<String, String>>)>().map_err(|e| cql_err(q, e))?
        {
            let (name, replication) = row.map_err(|e| cql_err(q, e))?;
            out.push(KeyspaceInfo { name, replication: replication.unwrap_or_default().into_iter().collect() });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Tables of one keyspace with their ids, sorted by name.
    pub async fn tables(&self, keyspace: &str) -> Result<Vec<TableInfo>, CassandraError> {
        let q = "SELECT table_name, id FROM system_schema.tables WHERE keyspace_name = ?";
        let result = self.session.query_unpaged(q, (keyspace,)).await.map_err(|e| cql_err(q, e))?;
        let rows = result.into_rows_result().map_err(|e| cql_err(q, e))?;
        let mut out = Vec::new();
        for row in rows.rows::<(String, Uuid)>().map_err(|e| cql_err(q, e))? {
            let (name, id) = row.map_err(|e| cql_err(q, e))?;
            out.push(TableInfo { keyspace: keyspace.to_string(), name, id });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// `DESCRIBE KEYSPACE ks`, run by the server (Cassandra 4.0+): the CQL that recreates the
    /// keyspace, its types, tables, indexes and views.
    pub async fn describe_keyspace(&self, keyspace: &str) -> Result<String, CassandraError> {
        let q = format!("DESCRIBE KEYSPACE {}", quote_identifier(keyspace));
        let result = self.session.query_unpaged(q.as_str(), ()).await.map_err(|e| cql_err(&q, e))?;
        let rows = result.into_rows_result().map_err(|e| cql_err(&q, e))?;
        let mut cql = String::new();
        for row in rows.rows::<(String, String, String, String)>().map_err(|e| cql_err(&q, e))? {
            let (_ks, _type, _name, statement) = row.map_err(|e| cql_err(&q, e))?;
            cql.push_str(&statement);
            cql.push_str("\n\n");
        }
        Ok(cql)
    }
}

/// Quotes a CQL identifier when it needs it (mixed case or not a plain word).
pub fn quote_identifier(name: &str) -> String {
    let plain = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if plain { name.to_string() } else { format!("\"{}\"", name.replace('"', "\"\"")) }
}

fn truncate_statement(keyspace: &str, table: &str) -> String {
    format!("TRUNCATE {}.{}", quote_identifier(keyspace), quote_identifier(table))
}

/// The server's "already exists" answers to CREATE (keyspace, table, type, index).
fn is_already_exists(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("already exist") || m.contains("already existing") || m.contains("duplicate index")
}

/// `system_views.settings` renders lists as `[a, b]`.
fn parse_directory_list(value: &str) -> Vec<PathBuf> {
    value
        .trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_settings_lists() {
        assert_eq!(
            parse_directory_list("[/var/lib/cassandra/data1, /var/lib/cassandra/data2]"),
            vec![PathBuf::from("/var/lib/cassandra/data1"), PathBuf::from("/var/lib/cassandra/data2")]
        );
        assert!(parse_directory_list("[]").is_empty());
    }

    #[test]
    fn truncate_quotes_names() {
        assert_eq!(truncate_statement("shop", "Orders"), "TRUNCATE shop.\"Orders\"");
    }

    #[test]
    fn recognises_already_exists() {
        assert!(is_already_exists(
            "Database returned an error: Attempted to create an already existing keyspace or table"
        ));
        assert!(is_already_exists("Cannot add already existing table \"t\" to keyspace \"ks\""));
        assert!(is_already_exists("Index profiles_by_name already exists"));
        assert!(!is_already_exists("Unknown keyspace ks"));
    }

    #[test]
    fn quotes_only_when_needed() {
        assert_eq!(quote_identifier("shop_1"), "shop_1");
        assert_eq!(quote_identifier("Shop"), "\"Shop\"");
    }
}
