//! `cassette node`: what cassette sees of the node it runs beside.

use std::process::ExitCode;

use cassette_cassandra::{LocalNode, TableInfo, keyspaces};
use serde::Serialize;

use crate::cli::NodeArgs;

#[derive(Serialize)]
struct NodeView {
    node: LocalNode,
    /// Whether cassette supports the node's Cassandra version (backup and restore refuse others).
    cassandra_supported: bool,
    data_file_directories: Vec<std::path::PathBuf>,
    keyspaces: Vec<KeyspaceView>,
}

#[derive(Serialize)]
struct KeyspaceView {
    name: String,
    system: bool,
    replication: Vec<(String, String)>,
    tables: Vec<TableInfo>,
}

pub async fn run(args: &NodeArgs, json: bool) -> anyhow::Result<ExitCode> {
    let node = super::connect(args).await?;
    let local = node.cql.local_node().await?;
    let data_dirs =
        if args.data_dirs.is_empty() { node.cql.data_file_directories().await? } else { args.data_dirs.clone() };
    let status = node.nodetool.status().await?;
    let mut views = Vec::new();
    for ks in node.cql.keyspaces().await? {
        let tables = node.cql.tables(&ks.name).await?;
        views.push(KeyspaceView {
            system: keyspaces::is_system(&ks.name),
            name: ks.name,
            replication: ks.replication,
            tables,
        });
    }
    let cassandra_supported = cassette_cassandra::version::check_supported(&local.release_version).is_ok();
    let view = NodeView { node: local, cassandra_supported, data_file_directories: data_dirs, keyspaces: views };
    if json {
        super::print_json(&view);
        return Ok(ExitCode::SUCCESS);
    }
    let n = &view.node;
    println!("cluster      {}", n.cluster_name);
    println!("host ID      {}", n.host_id);
    println!("address      {}", n.broadcast_address.map(|a| a.to_string()).unwrap_or_default());
    println!("datacenter   {} / rack {}", n.datacenter, n.rack);
    println!("Cassandra    {}", version_line(&n.release_version));
    println!("tokens       {}", n.tokens.join(", "));
    for d in &view.data_file_directories {
        println!("data dir     {}", d.display());
    }
    println!("nodetool     {} (JMX {}:{}): reachable", args.nodetool.display(), args.jmx_host, args.jmx_port);
    let up = status.lines().filter(|l| l.starts_with("UN")).count();
    println!("ring         {up} node(s) up/normal");
    for ks in view.keyspaces.iter().filter(|k| !k.system) {
        let tables: Vec<&str> = ks.tables.iter().map(|t| t.name.as_str()).collect();
        println!("keyspace     {} ({} tables: {})", ks.name, tables.len(), tables.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}

/// The node's version and whether cassette supports it.
fn version_line(release: &str) -> String {
    use cassette_cassandra::version::{check_supported, supported_lines_text};
    match check_supported(release) {
        Ok(_) => format!("{release} (supported: backup, online and offline restore)"),
        Err(_) => format!(
            "{release} (NOT supported: cassette supports {}; backup and restore refuse this node)",
            supported_lines_text()
        ),
    }
}
