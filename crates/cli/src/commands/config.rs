//! `cassette config show`: the configuration in effect, option by option, and where each value
//! comes from (flag, environment variable, file, default). Passwords and tokens are masked.

use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{ArgMatches, Command, CommandFactory};
use serde_json::{Map, Value, json};

use crate::cli::Cli;
use crate::config::{Config, DEFAULT_PATH, Key, Schema};

const MASK: &str = "********";

/// One option as shown.
struct Shown {
    key: Key,
    /// The values clap has for it; None when it has none.
    values: Option<Vec<String>>,
    source: Source,
}

enum Source {
    Flag,
    Env(String),
    File,
    Default,
    Unset,
}

/// Shows the options `command_line` (`backup --cql-host h`) would run with, or without one,
/// every section.
pub fn show(config: &Config, command_line: &[String], mut json: bool) -> anyhow::Result<ExitCode> {
    // Parsed as cassette parses (file values as defaults), except that nothing is required:
    // a section is shown without the backup name or the agents a run needs.
    let schema = Schema::of(&Cli::command());
    let cmd = not_required(config.apply(Cli::command()));
    let mut sections: Vec<(String, Vec<Shown>)> = Vec::new();
    if command_line.is_empty() {
        for section in &schema.sections {
            let (_, matches) = parse(&cmd, &section.command);
            let options = Schema::options_of(&cmd, &section.command).into_iter().filter(|(s, _)| *s == section.name);
            sections.push((section.name.clone(), shown(config, &matches, options)));
        }
    } else {
        let (path, matches) = parse(&cmd, command_line);
        // `config show backup --json`: the --json of the command line shown is this one's too.
        json |= matches.try_get_one::<bool>("json").ok().flatten().copied().unwrap_or(false);
        for (section, option) in Schema::options_of(&cmd, &path) {
            let i = match sections.iter().position(|(s, _)| *s == section) {
                Some(i) => i,
                None => {
                    sections.push((section.clone(), Vec::new()));
                    sections.len() - 1
                }
            };
            sections[i].1.extend(shown(config, &matches, std::iter::once((section, option))));
        }
        sections.sort_by_key(|(name, _)| schema.sections.iter().position(|s| s.name == *name));
    }
    if json {
        super::print_json(&as_json(config, &sections));
    } else {
        print_text(config, &sections);
    }
    Ok(ExitCode::SUCCESS)
}

/// The subcommand path of `cassette ARGS` and the matches of its innermost subcommand; clap's
/// own error (exit 2) when cassette would refuse that command line.
fn parse(cmd: &Command, args: &[String]) -> (Vec<String>, ArgMatches) {
    let matches = cmd.clone().try_get_matches_from(std::iter::once("cassette".to_string()).chain(args.iter().cloned()));
    let mut leaf = matches.unwrap_or_else(|e| e.exit());
    let mut path = Vec::new();
    while let Some((name, sub)) = leaf.remove_subcommand() {
        path.push(name);
        leaf = sub;
    }
    (path, leaf)
}

fn shown(config: &Config, matches: &ArgMatches, options: impl Iterator<Item = (String, Key)>) -> Vec<Shown> {
    options
        .map(|(section, key)| {
            let id = key.arg.get_id().as_str();
            let values = matches
                .try_get_raw(id)
                .ok()
                .flatten()
                .map(|raw| raw.map(|v| v.to_string_lossy().into_owned()).collect::<Vec<_>>());
            let source = match matches.value_source(id) {
                Some(ValueSource::CommandLine) => Source::Flag,
                Some(ValueSource::EnvVariable) => {
                    Source::Env(key.arg.get_env().map(|e| e.to_string_lossy().into_owned()).unwrap_or_default())
                }
                Some(_) if config.value(&section, &key.name).is_some() => Source::File,
                Some(_) => Source::Default,
                None => Source::Unset,
            };
            Shown { key, values, source }
        })
        .collect()
}

/// `cmd` with no option, group or subcommand required, at any depth.
fn not_required(mut cmd: Command) -> Command {
    let groups: Vec<_> = cmd.get_groups().map(|g| g.get_id().clone()).collect();
    for g in groups {
        cmd = cmd.mut_group(g, |g| g.required(false));
    }
    cmd = cmd.subcommand_required(false).mut_args(|a| a.required(false));
    let names: Vec<String> = cmd.get_subcommands().map(|s| s.get_name().to_string()).collect();
    for name in names {
        cmd = cmd.mut_subcommand(name, not_required);
    }
    cmd
}

impl Shown {
    fn source_text(&self, config: &Config) -> String {
        match &self.source {
            Source::Flag => "flag".into(),
            Source::Env(var) => format!("env {var}"),
            Source::File => format!("file {}", file_name(config)),
            Source::Default => "default".into(),
            Source::Unset => "not set".into(),
        }
    }

    /// The value as TOML (a string quoted, a list as an array), masked when a secret, without
    /// the credentials of a URL.
    fn toml(&self) -> Option<toml::Value> {
        let values = self.values.as_ref()?;
        if self.key.is_secret() {
            return Some(toml::Value::String(MASK.into()));
        }
        let one = |v: &String| {
            let parsed = if self.key.is_boolean() {
                v.parse().ok().map(toml::Value::Boolean)
            } else if self.key.is_integer() {
                v.parse().ok().map(toml::Value::Integer)
            } else if self.key.is_number() {
                v.parse().ok().map(toml::Value::Float)
            } else {
                None
            };
            // An agent's or a webhook's URL may carry a user and password: never shown.
            parsed.unwrap_or_else(|| toml::Value::String(cassette_server::client::redact_url(v)))
        };
        Some(if self.key.is_list() {
            toml::Value::Array(values.iter().map(one).collect())
        } else {
            values.first().map(one).unwrap_or_else(|| toml::Value::String(String::new()))
        })
    }
}

fn file_name(config: &Config) -> String {
    config.path.as_ref().map(|p| p.display().to_string()).unwrap_or_default()
}

fn print_text(config: &Config, sections: &[(String, Vec<Shown>)]) {
    match &config.path {
        Some(path) => println!("# configuration file: {}", path.display()),
        None => {
            println!("# no configuration file ({DEFAULT_PATH} does not exist; --config or CASSETTE_CONFIG name one)")
        }
    }
    for (section, options) in sections {
        println!("\n[{section}]");
        let lines: Vec<(String, String)> = options
            .iter()
            .map(|o| {
                let setting = match o.toml() {
                    Some(v) => format!("{} = {v}", o.key.name),
                    None => format!("# {}", o.key.name),
                };
                (setting, o.source_text(config))
            })
            .collect();
        let width = lines.iter().map(|(s, _)| s.chars().count()).max().unwrap_or(0);
        for (setting, source) in lines {
            println!("{setting:<width$}  # {source}");
        }
    }
}

fn as_json(config: &Config, sections: &[(String, Vec<Shown>)]) -> Value {
    let mut out = Map::new();
    for (section, options) in sections {
        let mut keys = Map::new();
        for o in options {
            let value = o.toml().map(|v| serde_json::to_value(v).expect("a TOML value is JSON")).unwrap_or(Value::Null);
            let mut entry = json!({ "value": value });
            let (source, from) = match &o.source {
                Source::Flag => ("flag", None),
                Source::Env(var) => ("env", Some(("env", var.clone()))),
                Source::File => ("file", Some(("file", file_name(config)))),
                Source::Default => ("default", None),
                Source::Unset => ("unset", None),
            };
            entry["source"] = source.into();
            if let Some((field, what)) = from {
                entry[field] = what.into();
            }
            keys.insert(o.key.name.clone(), entry);
        }
        out.insert(section.clone(), Value::Object(keys));
    }
    json!({ "file": config.path, "sections": out })
}
