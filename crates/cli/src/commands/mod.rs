//! One module per command; each returns the exit code of a job that ran, or an error.

mod agent;
mod archive;
mod backup;
mod commitlog;
mod config;
mod delete;
mod list;
mod node;
mod purge;
mod quarantine;
mod repo;
mod restore;
mod server;
mod verify;

use std::process::ExitCode;

use cassette_backup::Node;
use cassette_cassandra::{Cql, CqlTarget, CqlTls, JmxSecurity, Nodetool};

use crate::cli::{Cli, Command, ConfigCommand, NodeArgs};

pub async fn run(cli: Cli, config: &crate::config::Config) -> anyhow::Result<ExitCode> {
    let json = cli.global.json;
    match cli.command {
        Command::Node { node } => node::run(&node, json).await,
        Command::Backup(args) => backup::run(args, json).await,
        Command::Restore(args) => restore::run(args, json).await,
        Command::Quarantine(cmd) => quarantine::run(cmd, json).await,
        Command::Repo(cmd) => repo::run(cmd, json).await,
        Command::Key(cmd) => repo::key(cmd, json),
        Command::List { repo, cluster, host_id, commitlog: true, spool, .. } => {
            commitlog::list(&repo, cluster.as_deref(), host_id.as_deref(), spool.as_deref(), json).await
        }
        Command::List { repo, cluster, host_id, rebuild_index, .. } => {
            list::run(&repo, cluster.as_deref(), host_id.as_deref(), rebuild_index, json).await
        }
        Command::Commitlog(cmd) => commitlog::run(cmd, json).await,
        Command::Purge(args) => purge::run(&args, json).await,
        Command::Verify { repo, name, host_id, quick, parallel } => {
            verify::run(&repo, name.as_deref(), host_id.as_deref(), quick, parallel, json).await
        }
        Command::Delete { name, repo, host_id } => delete::run(&name, &repo, host_id.as_deref(), json).await,
        Command::Archive { name, repo, host_id, out } => {
            archive::run(&name, &repo, host_id.as_deref(), out, json).await
        }
        Command::Agent(args) => agent::run(args).await,
        Command::Server(args) => server::run(args).await,
        Command::Config(ConfigCommand::Show { command }) => config::show(config, &command, json),
    }
}

/// Connects to the node: CQL pinned to it, and its nodetool.
pub async fn connect(args: &NodeArgs) -> anyhow::Result<Node> {
    let (target, nodetool) = node_target(args)?;
    let cql = Cql::connect(&target).await?;
    Ok(Node { cql, nodetool })
}

/// How to reach the node, without connecting (it may be down). Reads the password files now.
pub fn node_target(args: &NodeArgs) -> anyhow::Result<(CqlTarget, Nodetool)> {
    warn_of_password_flags();
    let mut target = CqlTarget::new(args.cql_host.clone(), args.cql_port);
    if let Some(user) = &args.cql_user {
        let password = match (&args.cql_password_file, &args.cql_password) {
            (Some(file), _) => first_line(file)?,
            (None, Some(password)) => password.clone(),
            (None, None) => String::new(),
        };
        target.credentials = Some((user.clone(), password));
    }
    if args.cql_tls || args.cql_tls_ca.is_some() || args.cql_tls_cert.is_some() {
        let Some(ca) = &args.cql_tls_ca else {
            return Err(crate::exit::InvalidInput(
                "CQL over TLS needs the CA that signed the nodes' certificates: give --cql-tls-ca FILE (PEM)".into(),
            )
            .into());
        };
        let mut tls = CqlTls::new(ca);
        // Checked here, not by clap: the two may come from different places (flag, file).
        tls.client_cert = match (&args.cql_tls_cert, &args.cql_tls_key) {
            (Some(cert), Some(key)) => Some((cert.clone(), key.clone())),
            (None, None) => None,
            _ => {
                return Err(crate::exit::InvalidInput(
                    "a client certificate needs its key: give both --cql-tls-cert and --cql-tls-key".into(),
                )
                .into());
            }
        };
        tls.server_name = args.cql_tls_server_name.clone();
        tls.verify_hostname = !args.cql_tls_no_verify_hostname;
        target.tls = Some(tls);
    }
    let security = match (&args.jmx_password_file, &args.jmx_password) {
        (Some(file), _) => JmxSecurity::from_password_file(args.jmx_user.clone(), file)?,
        (None, password) => {
            JmxSecurity { user: args.jmx_user.clone(), password: password.clone(), ..Default::default() }
        }
    };
    let security = JmxSecurity { tls: args.jmx_tls, ssl_properties: args.jmx_tls_properties.clone(), ..security };
    let nodetool =
        Nodetool::new(args.nodetool.clone(), args.jmx_host.clone(), args.jmx_port).with_security(security)?;
    Ok((target, nodetool))
}

/// The first line of a password file (without its line end).
fn first_line(file: &std::path::Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| anyhow::Error::new(e).context(format!("cannot read the CQL password file {}", file.display())))?;
    Ok(text.lines().next().unwrap_or_default().to_string())
}

/// A password given as a flag is in `ps` output and shell history for everyone on the machine.
fn warn_of_password_flags() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        for flag in ["--cql-password", "--jmx-password"] {
            if std::env::args().any(|a| a == flag || a.starts_with(&format!("{flag}="))) {
                let env = flag.trim_start_matches("--").replace('-', "_").to_uppercase();
                eprintln!(
                    "cassette: warning: {flag} on the command line is visible to every user of this machine (ps); set CASSETTE_{env} or use {flag}-file"
                );
            }
        }
    });
}

pub fn print_json(value: &impl serde::Serialize) {
    println!("{}", serde_json::to_string_pretty(value).expect("serializable"));
}

/// 1.5 GiB, 320 KiB, 12 B.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{n} B") } else { format!("{v:.1} {}", UNITS[u]) }
}

/// The backups of the repository, a directory or an object store.
pub async fn list_backups(
    repo: &crate::cli::RepoArgs,
    cluster: Option<&str>,
    host: Option<&str>,
) -> anyhow::Result<Vec<cassette_repo::BackupSummary>> {
    Ok(repo.open()?.list(cluster, host).await?)
}

/// The one backup named `name` in the repository (of `host`, when given); an error that says
/// what to do when there is none or several.
pub async fn find_one_backup(
    repo: &crate::cli::RepoArgs,
    name: &cassette_repo::BackupName,
    host: Option<&str>,
) -> anyhow::Result<cassette_repo::BackupSummary> {
    let mut found: Vec<_> =
        list_backups(repo, None, host).await?.into_iter().filter(|b| b.name == name.as_str()).collect();
    let message = match found.len() {
        1 => return Ok(found.remove(0)),
        0 => format!(
            "no backup named '{name}' in {}{}: `cassette list` shows the backups there",
            repo.backup_dir.display(),
            host.map(|h| format!(" for host {h}")).unwrap_or_default()
        ),
        n => format!(
            "{n} nodes have a backup named '{name}' ({}): choose one with --host-id",
            found.iter().map(|b| b.host_id.as_str()).collect::<Vec<_>>().join(", ")
        ),
    };
    Err(crate::exit::InvalidInput(message).into())
}
