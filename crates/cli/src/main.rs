//! `cassette`: backup and restore for Apache Cassandra. This binary parses the command line,
//! runs the library command, prints (text or `--json`), and maps the outcome to an exit code.

mod cli;
mod commands;
mod config;
mod exit;
mod progress;

use clap::{CommandFactory, FromArgMatches};

fn main() -> std::process::ExitCode {
    // The configuration file is read first: its values are the defaults clap parses with.
    let args: Vec<_> = std::env::args_os().collect();
    let command = cli::Cli::command();
    let config = match config::Config::load(&command, &args) {
        Ok(config) => config,
        Err(err) => return fail(&err),
    };
    let matches = config.apply(command).get_matches_from(args);
    let cli = cli::Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    init_logging(&cli.global);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    match runtime.block_on(commands::run(cli, &config)) {
        Ok(code) => code,
        Err(err) => fail(&err),
    }
}

fn fail(err: &anyhow::Error) -> std::process::ExitCode {
    eprintln!("cassette: error: {}", error_message(err));
    exit::code_of(err).into()
}

/// The error and its causes, each cause once. `{:#}` would append every cause, but many errors
/// already include their source's text (object_store's, and cassette's that name their source):
/// one failed request to Azure printed its server answer five times.
fn error_message(err: &anyhow::Error) -> String {
    let mut text = err.to_string();
    for cause in err.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
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

#[cfg(test)]
mod tests {
    use super::error_message;

    /// An error whose text includes its source's, as object_store's and cassette's do.
    #[derive(Debug)]
    struct Names(std::io::Error);

    impl std::fmt::Display for Names {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "cannot list az://c/p: {} (check the credentials)", self.0)
        }
    }

    impl std::error::Error for Names {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn each_cause_is_printed_once() {
        let io = || std::io::Error::other("403 Forbidden: AuthorizationFailure");
        // A cause the error's own text already includes is not repeated...
        let err = anyhow::Error::new(Names(io()));
        let text = error_message(&err);
        assert_eq!(text, "cannot list az://c/p: 403 Forbidden: AuthorizationFailure (check the credentials)");
        // ...one it does not include is appended, as `{:#}` does.
        let err = anyhow::Error::new(io()).context("cannot read /etc/cassette/token");
        assert_eq!(error_message(&err), "cannot read /etc/cassette/token: 403 Forbidden: AuthorizationFailure");
    }
}
