//! `cassette agent`: the node engines behind HTTP, for `cassette server`.

use std::process::ExitCode;

use cassette_server::agent::{AgentConfig, router};

use crate::cli::AgentArgs;

pub async fn run(args: AgentArgs) -> anyhow::Result<ExitCode> {
    let token = super::server::token(&args.service)?;
    let limits = super::server::limits(&args.service)?;
    let (cql, nodetool) = super::node_target(&args.node)?;
    let config_dirs = if args.config_dirs.is_empty() {
        std::env::var_os("CASSANDRA_HOME").map(|h| vec![std::path::PathBuf::from(h).join("conf")]).unwrap_or_default()
    } else {
        args.config_dirs
    };
    let config = AgentConfig {
        cql,
        nodetool,
        transfer: args.repo.transfer(),
        backup_root: args.repo.backup_dir,
        data_dirs: (!args.node.data_dirs.is_empty()).then_some(args.node.data_dirs),
        config_dirs,
        allow_same_disk: args.allow_same_disk,
        alias: args.alias,
        commitlog_spool: args.commitlog_spool,
        commitlog_ship_interval: std::time::Duration::from_secs(args.commitlog_ship_interval.max(1)),
        offline: match (args.stop_command, args.start_command) {
            (Some(stop_command), Some(start_command)) => Some(cassette_server::agent::AgentOffline {
                stop_command,
                start_command,
                commitlog_archiving_properties: args.commitlog_archiving_properties,
                cassandra_log: args.cassandra_log,
            }),
            _ => None,
        },
    };
    tracing::info!(listen = %args.listen, backup_dir = %config.backup_root.display(), "cassette agent listening");
    eprintln!("cassette agent: listening on {} (backup directory {})", args.listen, config.backup_root.display());
    cassette_server::serve(router(config, token), args.listen, super::server::tls(&args.service)?, limits).await?;
    Ok(ExitCode::SUCCESS)
}
