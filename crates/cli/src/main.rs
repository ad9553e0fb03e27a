//! `cassette`: backup and restore for Apache Cassandra. This binary parses the command line,
//! runs the library command, prints (text or `--json`), and maps the outcome to an exit code.

mod cli;
mod commands;
mod exit;
mod progress;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    init_logging(&cli.global);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    let outcome = runtime.block_on(commands::run(cli));
    match outcome {
        Ok(code) => code,
        Err(err) => {
            let code = exit::code_of(&err);
            eprintln!("cassette: error: {err:#}");
            code.into()
        }
    }
}

fn init_logging(global: &cli::Global) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    // Without -v only cassette's own warnings: the CQL driver's reconnection warnings would
    // come before, and bury, the one error cassette prints (a target `cassette` covers every
    // `cassette_*` crate).
    let default = match global.verbose {
        0 => "cassette=warn",
        1 => "info,cassette=info",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_env("CASSETTE_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    if global.log_json {
        builder.json().init();
    } else {
        builder.init();
    }
}
