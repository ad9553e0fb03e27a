//! `cassette.toml`: every option of the command line, set once in a file.
//!
//! The keys are not a list kept here: they are read off clap's `Command`. An argument of a
//! `NodeArgs` or `RepoArgs` group (whatever command flattens it) is a key of `[node]` or
//! `[repository]`; any other option of a command is a key of that command's section (`[agent]`,
//! `[server]`, `[backup]`, ...). A key is the option's long name with `_` for `-`
//! (`--cql-host` is `cql_host`, `--data-dir` is `data_dir`). The file's values become clap's
//! default values, so clap's own layering gives: flag > environment variable > file > built-in
//! default.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::{Arg, ArgAction, Command};

use crate::exit::InvalidInput;

/// The file read when neither `--config` nor `CASSETTE_CONFIG` names one (if it exists).
pub const DEFAULT_PATH: &str = "/etc/cassette/cassette.toml";

/// The environment variable that names the file.
pub const ENV: &str = "CASSETTE_CONFIG";

/// Sections shared by several commands, and the `#[derive(Args)]` group holding their options.
const SHARED_SECTIONS: [(&str, &str); 2] = [("node", "NodeArgs"), ("repository", "RepoArgs")];

/// Options that say what one run does (which backup, a dry run, a step of a cluster restore), not
/// how cassette is set up: in the file they would apply to every run, and a switch set there
/// cannot be turned off with a flag.
const PER_RUN: [&str; 9] = [
    "name",
    "dry_run",
    "truncate_only",
    "no_truncate",
    "new_restore",
    "from_node",
    "from_cluster",
    "renames",
    "object_lock_until",
];

/// What TOML type a key takes, from the option's clap action and value parser.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Boolean,
    Integer,
    Number,
    Text,
}

impl Kind {
    fn of(arg: &Arg) -> Kind {
        use std::any::TypeId;
        let t = arg.get_value_parser().type_id();
        let integers = [
            TypeId::of::<u8>(),
            TypeId::of::<u16>(),
            TypeId::of::<u32>(),
            TypeId::of::<u64>(),
            TypeId::of::<usize>(),
            TypeId::of::<i8>(),
            TypeId::of::<i16>(),
            TypeId::of::<i32>(),
            TypeId::of::<i64>(),
        ];
        if matches!(arg.get_action(), ArgAction::SetTrue | ArgAction::SetFalse) || t == TypeId::of::<bool>() {
            Kind::Boolean
        } else if integers.iter().any(|i| t == *i) {
            Kind::Integer
        } else if t == TypeId::of::<f64>() || t == TypeId::of::<f32>() {
            Kind::Number
        } else {
            Kind::Text
        }
    }

    fn describe(self, list: bool) -> &'static str {
        match (self, list) {
            (Kind::Boolean, _) => "a boolean (true or false)",
            (Kind::Integer, false) => "an integer",
            (Kind::Number, false) => "a number",
            (Kind::Text, false) => "a string",
            (Kind::Integer, true) => "an array of integers",
            (Kind::Number, true) => "an array of numbers",
            (Kind::Text, true) => "an array of strings, such as [\"a\", \"b\"]",
        }
    }
}

/// One key of the file: the option it sets.
#[derive(Debug, Clone)]
pub struct Key {
    pub name: String,
    /// The clap argument id, when it differs from the name (`data_dirs` for `data_dir`); also
    /// accepted as the key.
    alias: Option<String>,
    pub arg: Arg,
    kind: Kind,
    list: bool,
}

impl Key {
    fn of(arg: &Arg) -> Key {
        let name = key_name(arg);
        let alias = Some(arg.get_id().to_string()).filter(|id| *id != name);
        let list = matches!(arg.get_action(), ArgAction::Append);
        Key { name, alias, arg: arg.clone(), kind: Kind::of(arg), list }
    }

    /// A password or token: never printed, and a file holding it must be private.
    pub fn is_secret(&self) -> bool {
        is_secret(&self.arg)
    }

    pub fn is_list(&self) -> bool {
        self.list
    }

    pub fn is_boolean(&self) -> bool {
        self.kind == Kind::Boolean
    }

    pub fn is_integer(&self) -> bool {
        self.kind == Kind::Integer
    }

    pub fn is_number(&self) -> bool {
        self.kind == Kind::Number
    }
}

/// Options that take a value and whose id ends in `password` or `token`, or whose environment
/// value clap hides (`--insecure-no-token` is a switch, not a secret).
pub fn is_secret(arg: &Arg) -> bool {
    let id = arg.get_id().as_str();
    let named = id.ends_with("password") || id.ends_with("token") || arg.is_hide_env_values_set();
    named && arg.get_action().takes_values()
}

/// A section of the file and its keys, in the order the command line defines them.
#[derive(Debug)]
pub struct Section {
    pub name: String,
    pub keys: Vec<Key>,
    /// The subcommand path of a command that has this section's options (`["backup"]`).
    pub command: Vec<String>,
}

/// Every section and key the command line allows.
#[derive(Debug)]
pub struct Schema {
    pub sections: Vec<Section>,
}

impl Schema {
    pub fn of(cmd: &Command) -> Schema {
        let mut schema = Schema { sections: Vec::new() };
        walk(cmd, &mut Vec::new(), &mut |path, sub| {
            let mut args: Vec<&Arg> = sub.get_arguments().collect();
            args.sort_by_key(|a| a.get_display_order());
            for arg in args {
                let Some(section) = section_of(path, sub, arg) else { continue };
                let name = key_name(arg);
                let i = match schema.sections.iter().position(|s| s.name == section) {
                    Some(i) => i,
                    None => {
                        let command = path.to_vec();
                        schema.sections.push(Section { name: section, keys: Vec::new(), command });
                        schema.sections.len() - 1
                    }
                };
                let keys = &mut schema.sections[i].keys;
                if !keys.iter().any(|k| k.name == name) {
                    keys.push(Key::of(arg));
                }
            }
        });
        schema
    }

    /// The options of the subcommand at `path` that the file may set, with their sections.
    pub fn options_of(cmd: &Command, path: &[String]) -> Vec<(String, Key)> {
        let mut sub = cmd;
        for name in path {
            match sub.find_subcommand(name) {
                Some(s) => sub = s,
                None => return Vec::new(),
            }
        }
        let mut options: Vec<(String, Key)> =
            sub.get_arguments().filter_map(|arg| Some((section_of(path, sub, arg)?, Key::of(arg)))).collect();
        // `Command::mut_arg` moves an option to the end; help's order is the definition's.
        options.sort_by_key(|(_, key)| key.arg.get_display_order());
        options
    }

    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }
}

impl Section {
    fn key(&self, name: &str) -> Option<&Key> {
        self.keys.iter().find(|k| k.name == name || k.alias.as_deref() == Some(name))
    }
}

/// Calls `f` with every subcommand, at any depth, and its path of names.
fn walk(cmd: &Command, path: &mut Vec<String>, f: &mut impl FnMut(&[String], &Command)) {
    for sub in cmd.get_subcommands() {
        path.push(sub.get_name().to_string());
        f(path, sub);
        walk(sub, path, f);
        path.pop();
    }
}

/// The section of an option of the subcommand at `path`, if it may be set in the file.
fn section_of(path: &[String], sub: &Command, arg: &Arg) -> Option<String> {
    let not_an_option =
        matches!(arg.get_action(), ArgAction::Help | ArgAction::HelpShort | ArgAction::HelpLong | ArgAction::Version);
    if not_an_option || arg.is_positional() || arg.is_global_set() || PER_RUN.contains(&arg.get_id().as_str()) {
        return None;
    }
    for (section, group) in SHARED_SECTIONS {
        let in_group = sub.get_groups().any(|g| g.get_id() == group && g.get_args().any(|id| id == arg.get_id()));
        if in_group {
            return Some(section.to_string());
        }
    }
    // A command's own options; those of nested commands (`quarantine purge`) are not in the file.
    (path.len() == 1).then(|| path[0].clone())
}

fn key_name(arg: &Arg) -> String {
    arg.get_long().unwrap_or(arg.get_id().as_str()).replace('-', "_")
}

/// The file read, and its values as clap default values.
#[derive(Debug, Default)]
pub struct Config {
    /// The file, when one was read.
    pub path: Option<PathBuf>,
    /// Section → key name → the values clap gets as default values.
    values: BTreeMap<String, BTreeMap<String, Vec<String>>>,
}

impl Config {
    /// Finds the file (`--config` in `args`, else `CASSETTE_CONFIG`, else [`DEFAULT_PATH`] if it
    /// exists), reads it and checks it against the options of `cmd`.
    pub fn load(cmd: &Command, args: &[OsString]) -> anyhow::Result<Config> {
        let given = config_flag(args).or_else(|| std::env::var_os(ENV).filter(|v| !v.is_empty()).map(PathBuf::from));
        let explicit = given.is_some();
        let path = given.unwrap_or_else(|| PathBuf::from(DEFAULT_PATH));
        let text = match std::fs::read(&path) {
            Ok(bytes) => String::from_utf8(bytes)
                .map_err(|_| InvalidInput(format!("the configuration file {} is not UTF-8 text", path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => return Ok(Config::default()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(InvalidInput(format!(
                    "the configuration file {} does not exist (named by --config or {ENV})",
                    path.display()
                ))
                .into());
            }
            Err(e) => return Err(anyhow::Error::new(e).context(format!("cannot read {}", path.display()))),
        };
        let schema = Schema::of(cmd);
        let config = Config::parse(&schema, &path, &text)?;
        config.warn_if_readable(&schema);
        Ok(config)
    }

    /// Checks `text`, the file at `path`, against `schema`: every section and key known, every
    /// value of the right type and accepted by the option's own parser.
    pub fn parse(schema: &Schema, path: &Path, text: &str) -> Result<Config, InvalidInput> {
        let file = path.display();
        let table: toml::Table = text.parse().map_err(|e| InvalidInput(format!("{file} is not valid TOML: {e}")))?;
        let mut values = BTreeMap::new();
        for (section_name, body) in table {
            let Some(section) = schema.section(&section_name) else {
                let known: Vec<&str> = schema.sections.iter().map(|s| s.name.as_str()).collect();
                return Err(InvalidInput(format!(
                    "unknown section [{section_name}] in {file}{}: {}sections are {}",
                    line_of(text, &section_name, None),
                    did_you_mean(&section_name, &known).map(|s| format!("did you mean [{s}]? ")).unwrap_or_default(),
                    known.iter().map(|s| format!("[{s}]")).collect::<Vec<_>>().join(", ")
                )));
            };
            let toml::Value::Table(body) = body else {
                return Err(InvalidInput(format!(
                    "'{section_name}' in {file} is not a section: write [{section_name}] on a line, and its keys below"
                )));
            };
            let section_values: &mut BTreeMap<String, Vec<String>> = values.entry(section_name.clone()).or_default();
            for (name, value) in body {
                let Some(key) = section.key(&name) else {
                    let known: Vec<&str> = section.keys.iter().map(|k| k.name.as_str()).collect();
                    return Err(InvalidInput(format!(
                        "unknown key '{name}' in section [{section_name}] of {file}{}: {}known keys are {}",
                        line_of(text, &section_name, Some(&name)),
                        did_you_mean(&name, &known).map(|s| format!("did you mean '{s}'? ")).unwrap_or_default(),
                        known.join(", ")
                    )));
                };
                if section_values.contains_key(&key.name) {
                    return Err(InvalidInput(format!(
                        "section [{section_name}] of {file} sets '{}' twice (as '{name}' too): keep one",
                        key.name
                    )));
                }
                let at = format!(
                    "key '{name}' in section [{section_name}] of {file}{}",
                    line_of(text, &section_name, Some(&name))
                );
                let raw = to_clap_values(key, &value)
                    .map_err(|got| InvalidInput(format!("{at} must be {}, not {got}", key.kind.describe(key.list))))?;
                check_with_clap(&key.arg, &raw)
                    .map_err(|why| InvalidInput(format!("{at} has an invalid value: {why}")))?;
                section_values.insert(key.name.clone(), raw);
            }
        }
        Ok(Config { path: Some(path.to_path_buf()), values })
    }

    /// The values the file gives `key` of `section`, if it sets it.
    pub fn value(&self, section: &str, key: &str) -> Option<&[String]> {
        self.values.get(section)?.get(key).map(Vec::as_slice)
    }

    /// `cmd` with the file's values as the default values of its options. A required option
    /// (or group) the file sets is no longer required, since clap does not count a default.
    pub fn apply(&self, cmd: Command) -> Command {
        if self.values.is_empty() {
            return cmd;
        }
        self.apply_below(cmd, &mut Vec::new())
    }

    fn apply_below(&self, mut cmd: Command, path: &mut Vec<String>) -> Command {
        let names: Vec<String> = cmd.get_subcommands().map(|s| s.get_name().to_string()).collect();
        for name in names {
            path.push(name.clone());
            cmd = cmd.mut_subcommand(&name, |mut sub| {
                let mut set = Vec::new();
                for arg in sub.get_arguments() {
                    let Some(section) = section_of(path, &sub, arg) else { continue };
                    let Some(values) = self.value(&section, &key_name(arg)) else { continue };
                    // --help shows default values: not a secret's, nor a URL's credentials.
                    let hide = is_secret(arg) || values.iter().any(|v| cassette_server::client::redact_url(v) != *v);
                    set.push((arg.get_id().clone(), values.to_vec(), hide));
                }
                for (id, values, hide) in &set {
                    sub =
                        sub.mut_arg(id, |a| a.default_values(values.clone()).required(false).hide_default_value(*hide));
                }
                let groups: Vec<_> = sub
                    .get_groups()
                    .filter(|g| g.is_required_set() && g.get_args().any(|a| set.iter().any(|(id, ..)| id == a)))
                    .map(|g| g.get_id().clone())
                    .collect();
                for g in groups {
                    sub = sub.mut_group(g, |g| g.required(false));
                }
                self.apply_below(sub, path)
            });
            path.pop();
        }
        cmd
    }

    /// A file that holds a password or a token should be readable only by its owner.
    fn warn_if_readable(&self, schema: &Schema) {
        use std::os::unix::fs::PermissionsExt;
        let Some(path) = &self.path else { return };
        let secret = self.values.iter().find_map(|(section, keys)| {
            let s = schema.section(section)?;
            keys.keys().find(|k| s.key(k).is_some_and(Key::is_secret)).map(|k| (section, k))
        });
        let Some((section, key)) = secret else { return };
        let Ok(meta) = std::fs::metadata(path) else { return };
        if meta.permissions().mode() & 0o044 != 0 {
            eprintln!(
                "cassette: warning: {} holds a secret ('{key}' in [{section}]) and is readable by group or others: \
                 run `chmod 600 {}`",
                path.display(),
                path.display()
            );
        }
    }
}

/// ` (line N)`: where `key` of `section` (or the section) is written in `text`, for errors.
fn line_of(text: &str, section: &str, key: Option<&str>) -> String {
    fn find<'a, 'i>(
        table: &'a toml::de::DeTable<'i>,
        name: &str,
    ) -> Option<(std::ops::Range<usize>, &'a toml::de::DeValue<'i>)> {
        table.iter().find(|(k, _)| k.get_ref() == name).map(|(k, v)| (k.span(), v.get_ref()))
    }
    let Ok(document) = toml::de::DeTable::parse(text) else { return String::new() };
    let Some((mut span, body)) = find(document.get_ref(), section) else { return String::new() };
    if let Some(key) = key {
        match body.as_table().and_then(|body| find(body, key)) {
            Some((key_span, _)) => span = key_span,
            None => return String::new(),
        }
    }
    format!(" (line {})", text[..span.start].matches('\n').count() + 1)
}

/// The value of `--config FILE` or `--config=FILE`, read before clap parses the command line
/// (the file's values must be in the `Command` clap parses with).
fn config_flag(args: &[OsString]) -> Option<PathBuf> {
    let mut args = args.iter().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--" {
            break;
        }
        if arg == "--config" {
            return args.next().map(PathBuf::from);
        }
        if let Some(value) = arg.to_str().and_then(|a| a.strip_prefix("--config=")) {
            return Some(PathBuf::from(value));
        }
    }
    None
}

/// The TOML value as the strings clap parses, or the TOML type it has when it is not the type
/// the key takes.
fn to_clap_values(key: &Key, value: &toml::Value) -> Result<Vec<String>, String> {
    let scalar = |v: &toml::Value| -> Result<String, String> {
        let text = match (key.kind, v) {
            (Kind::Boolean, toml::Value::Boolean(b)) => b.to_string(),
            (Kind::Integer | Kind::Number, toml::Value::Integer(i)) => i.to_string(),
            (Kind::Number, toml::Value::Float(f)) => f.to_string(),
            (Kind::Text, toml::Value::String(s)) => s.clone(),
            (_, other) => return Err(describe_toml(other, key.is_secret())),
        };
        Ok(text)
    };
    match value {
        toml::Value::Array(items) if key.list => items.iter().map(scalar).collect(),
        other if key.list => Err(describe_toml(other, key.is_secret())),
        other => Ok(vec![scalar(other)?]),
    }
}

/// `a string ("abc")`, `an array`: what the file holds, without a secret's value.
fn describe_toml(value: &toml::Value, secret: bool) -> String {
    let article = if matches!(value, toml::Value::Integer(_) | toml::Value::Array(_)) { "an" } else { "a" };
    let shown = match value {
        toml::Value::Array(_) | toml::Value::Table(_) => String::new(),
        _ if secret => String::new(),
        v => format!(" ({v})"),
    };
    format!("{article} {}{shown}", value.type_str())
}

/// Runs the option's own value parser on `values` (a port above 65535, a bad duration, an
/// unknown URL scheme), so a bad value is named with its key and file, not as a default value.
fn check_with_clap(arg: &Arg, values: &[String]) -> Result<(), String> {
    let probe = Arg::new("value").long("value").value_parser(arg.get_value_parser().clone()).action(ArgAction::Append);
    let cmd = Command::new("cassette").no_binary_name(true).disable_help_flag(true).arg(probe);
    let argv = values.iter().map(|v| format!("--value={v}"));
    let Err(e) = cmd.try_get_matches_from(argv) else { return Ok(()) };
    if is_secret(arg) {
        return Err("the value is not accepted".into());
    }
    Err(match std::error::Error::source(&e) {
        Some(why) => why.to_string(),
        None => e.render().to_string().lines().next().unwrap_or_default().trim_start_matches("error: ").to_string(),
    })
}

/// The known name closest to `unknown`, if one is close.
fn did_you_mean<'a>(unknown: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (strsim::jaro_winkler(unknown, k), *k))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use clap::{Args, CommandFactory};

    use super::*;
    use crate::cli::{Cli, NodeArgs, RepoArgs};

    fn schema() -> Schema {
        Schema::of(&Cli::command())
    }

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(&schema(), Path::new("/etc/cassette/cassette.toml"), text).map_err(|e| e.0)
    }

    fn keys(section: &str) -> Vec<String> {
        schema()
            .section(section)
            .unwrap_or_else(|| panic!("no [{section}]"))
            .keys
            .iter()
            .map(|k| k.name.clone())
            .collect()
    }

    #[test]
    fn every_node_and_repository_option_is_a_key() {
        // Read off the structs themselves, so an option added to them is covered here too.
        for (section, cmd) in [
            ("node", NodeArgs::augment_args(Command::new("x"))),
            ("repository", RepoArgs::augment_args(Command::new("x"))),
        ] {
            let keys = keys(section);
            for arg in cmd.get_arguments() {
                assert!(keys.contains(&key_name(arg)), "--{:?} is not a key of [{section}]: {keys:?}", arg.get_long());
            }
        }
        assert!(keys("node").contains(&"data_dir".to_string()));
        assert!(keys("repository").contains(&"backup_dir".to_string()));
    }

    #[test]
    fn commands_have_their_own_sections() {
        let agent = keys("agent");
        assert!(agent.contains(&"listen".into()) && agent.contains(&"token".into()), "{agent:?}");
        assert!(!agent.contains(&"cql_host".into()), "node options are in [node]: {agent:?}");
        let server = keys("server");
        assert!(server.contains(&"agent".into()) && server.contains(&"db".into()), "{server:?}");
        let backup = keys("backup");
        assert!(backup.contains(&"parallel".into()) && backup.contains(&"keyspace".into()), "{backup:?}");
        assert!(!backup.contains(&"name".into()), "a backup's name is not configuration: {backup:?}");
        assert!(backup.contains(&"object_lock_days".into()) && backup.contains(&"object_lock_mode".into()));
        assert!(!backup.contains(&"object_lock_until".into()), "a date is one run's: {backup:?}");
        let restore = keys("restore");
        assert!(!restore.contains(&"dry_run".into()) && !restore.contains(&"truncate_only".into()), "{restore:?}");
        assert!(keys("restore").contains(&"stop_command".into()));
        assert!(schema().section("archive").is_none_or(|s| s.key("name").is_none()), "positionals are not keys");
        for global in ["json", "verbose", "config", "help"] {
            assert!(schema().sections.iter().all(|s| s.key(global).is_none()), "{global}");
        }
    }

    #[test]
    fn secrets_are_told_by_name() {
        let s = schema();
        let secret = |section: &str, key: &str| s.section(section).unwrap().key(key).unwrap().is_secret();
        assert!(secret("node", "cql_password"));
        assert!(secret("server", "token") && secret("server", "agent_token") && secret("agent", "token"));
        assert!(!secret("node", "cql_user") && !secret("server", "tls_key"));
        assert!(!secret("server", "insecure_no_token"), "a switch is not a secret");
    }

    #[test]
    fn values_become_clap_defaults_below_flags() {
        let config = parse(
            "[node]\ncql_host = \"10.1.2.3\"\ncql_port = 9142\ndata_dir = [\"/d1\", \"/d2\"]\n\
             [repository]\nbackup_dir = \"/srv/backup\"\n[backup]\nallow_same_disk = true\n",
        )
        .unwrap();
        let cmd = config.apply(Cli::command());
        let m = cmd.clone().try_get_matches_from(["cassette", "backup", "--name", "b", "--cql-port", "1"]).unwrap();
        let (_, m) = m.subcommand().unwrap();
        assert_eq!(m.get_one::<String>("cql_host").unwrap(), "10.1.2.3");
        assert_eq!(*m.get_one::<u16>("cql_port").unwrap(), 1, "a flag beats the file");
        let dirs: Vec<&PathBuf> = m.get_many("data_dirs").unwrap().collect();
        assert_eq!(dirs, [Path::new("/d1"), Path::new("/d2")]);
        assert_eq!(m.get_one::<PathBuf>("backup_dir").unwrap(), Path::new("/srv/backup"));
        assert!(m.get_flag("allow_same_disk"));
        assert_eq!(m.value_source("cql_host"), Some(clap::parser::ValueSource::DefaultValue));
        // Nested commands get [node] too.
        let m = cmd.try_get_matches_from(["cassette", "quarantine", "list"]).unwrap();
        let m = m.subcommand().unwrap().1.subcommand().unwrap().1;
        assert_eq!(m.get_one::<String>("cql_host").unwrap(), "10.1.2.3");
    }

    #[test]
    fn a_required_option_set_in_the_file_is_no_longer_required() {
        let cmd = Cli::command();
        assert!(cmd.clone().try_get_matches_from(["cassette", "server"]).is_err());
        let config = parse("[server]\nagent = [\"http://a:7081\"]\n[purge]\nkeep_last = 3\n").unwrap();
        let cmd = config.apply(cmd);
        cmd.clone().try_get_matches_from(["cassette", "server"]).expect("agents from the file");
        cmd.try_get_matches_from(["cassette", "purge"]).expect("a policy from the file");
    }

    #[test]
    fn unknown_keys_and_sections_are_named_with_a_suggestion() {
        let e = parse("[node]\ncql_hots = \"x\"\n").unwrap_err();
        assert!(e.contains("unknown key 'cql_hots' in section [node] of /etc/cassette/cassette.toml (line 2)"), "{e}");
        assert!(e.contains("did you mean 'cql_host'?"), "{e}");
        let e = parse("[repo]\nbackup_dir = \"/b\"\n").unwrap_err();
        assert!(e.contains("unknown section [repo]") && e.contains("did you mean [repository]?"), "{e}");
        let e = parse("cql_host = \"x\"\n").unwrap_err();
        assert!(e.contains("unknown section [cql_host]"), "{e}");
        let e = parse("node = 1\n").unwrap_err();
        assert!(e.contains("'node'") && e.contains("not a section"), "{e}");
        let e = parse("[node]\ndata_dir = [\"/a\"]\ndata_dirs = [\"/b\"]\n").unwrap_err();
        assert!(e.contains("twice"), "{e}");
    }

    #[test]
    fn wrong_types_and_values_are_named_with_what_is_expected() {
        let e = parse("[node]\ncql_host = \"h\"\n\ncql_port = \"abc\"\n").unwrap_err();
        assert!(e.contains("(line 4)"), "{e}");
        assert!(
            e.contains("key 'cql_port' in section [node]") && e.contains("must be an integer, not a string"),
            "{e}"
        );
        let e = parse("[node]\ncql_port = 70000\n").unwrap_err();
        assert!(e.contains("cql_port") && e.contains("65535"), "{e}");
        let e = parse("[node]\ndata_dir = \"/a\"\n").unwrap_err();
        assert!(e.contains("must be an array of strings"), "{e}");
        let e = parse("[backup]\nallow_same_disk = \"yes\"\n").unwrap_err();
        assert!(e.contains("must be a boolean"), "{e}");
        let e = parse("[repository]\nbackup_dir = \"S3://b/x\"\n").unwrap_err();
        assert!(e.contains("backup_dir") && e.contains("s3://BUCKET/PREFIX"), "{e}");
        let e = parse("[server]\nheader_timeout = \"10x\"\n").unwrap_err();
        assert!(e.contains("invalid duration"), "{e}");
        let e = parse("[node]\ncql_password = 12345678\n").unwrap_err();
        assert!(e.contains("must be a string") && !e.contains("12345678"), "a secret is not echoed: {e}");
        parse("[repository]\nbandwidth_limit = 10\n").expect("an integer is a number");
    }

    #[test]
    fn the_readme_example_is_a_valid_file() {
        let readme = include_str!("../../../README.md");
        let section = &readme[readme.find("## Configuration file").expect("the README's section")..];
        let start = section.find("```toml\n").expect("an example") + "```toml\n".len();
        let example = &section[start..start + section[start..].find("```").unwrap()];
        let config = parse(example).unwrap_or_else(|e| panic!("the README's example: {e}"));
        assert!(config.value("node", "cql_tls_ca").is_some() && config.value("server", "agent").is_some());
    }

    #[test]
    fn the_config_flag_is_found_before_parsing() {
        let args = |a: &[&str]| a.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(config_flag(&args(&["cassette", "list", "--config", "/c.toml"])), Some("/c.toml".into()));
        assert_eq!(config_flag(&args(&["cassette", "--config=/c.toml", "list"])), Some("/c.toml".into()));
        assert_eq!(config_flag(&args(&["cassette", "list", "--", "--config", "/c"])), None);
        assert_eq!(config_flag(&args(&["cassette", "list"])), None);
    }
}
