//! `cassette.toml`, as an operator uses it: values from the file reach the commands, the
//! environment and flags override them, mistakes in the file are named with key and file (exit
//! 2), `config show` tells where each value comes from and never prints a secret, and a file
//! holding a secret that others can read is warned about. No Cassandra is needed.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

/// An environment variable and its value.
type Env<'a> = (&'a str, &'a str);

/// `cassette ARGS` with only `env` in the environment (no CASSETTE_* of the machine running it).
fn cassette(env: &[Env], args: &[&str]) -> Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_cassette"));
    cmd.env_clear().envs(std::env::var_os("PATH").map(|p| ("PATH", p))).envs(env.iter().copied()).args(args);
    cmd.output().expect("run cassette")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A cassette.toml with `text`, readable by its owner only.
fn config_file(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("cassette.toml");
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// `cassette --json config show ARGS` with the file, parsed; panics unless it exits 0.
fn show_json(file: &Path, env: &[(&str, &str)], args: &[&str]) -> Value {
    let mut all = vec!["--json", "--config", file.to_str().unwrap(), "config", "show"];
    all.extend_from_slice(args);
    let out = cassette(env, &all);
    assert!(out.status.success(), "config show failed ({:?}):\n{}", out.status, stderr(&out));
    serde_json::from_str(&stdout(&out)).expect("config show --json prints JSON")
}

#[test]
fn the_file_sets_a_value_the_environment_overrides_it_and_a_flag_overrides_both() {
    let dir = tempfile::tempdir().unwrap();
    let file = config_file(dir.path(), "[node]\ncql_host = \"10.9.8.7\"\njmx_port = 7299\n");
    let path = file.to_str().unwrap();

    let shown = show_json(&file, &[], &[]);
    assert_eq!(shown["file"], path);
    let host = &shown["sections"]["node"]["cql_host"];
    assert_eq!(host["value"], "10.9.8.7", "{shown}");
    assert_eq!(host["source"], "file");
    assert_eq!(host["file"], path);
    let port = &shown["sections"]["node"]["cql_port"];
    assert_eq!((port["value"].as_i64(), port["source"].as_str()), (Some(9042), Some("default")), "{shown}");
    assert_eq!(shown["sections"]["node"]["jmx_port"]["value"], 7299, "an integer stays one");

    let env = [("CASSETTE_CQL_HOST", "10.1.1.1")];
    let host = &show_json(&file, &env, &["backup"])["sections"]["node"]["cql_host"];
    assert_eq!((host["value"].as_str(), host["source"].as_str()), (Some("10.1.1.1"), Some("env")), "{host}");
    assert_eq!(host["env"], "CASSETTE_CQL_HOST");

    let host = &show_json(&file, &env, &["backup", "--cql-host", "10.2.2.2"])["sections"]["node"]["cql_host"];
    assert_eq!((host["value"].as_str(), host["source"].as_str()), (Some("10.2.2.2"), Some("flag")), "{host}");

    // The text form says the same, one option a line.
    let out = cassette(&env, &["--config", path, "config", "show", "node"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let line = |key: &str| text.lines().find(|l| l.starts_with(&format!("{key} = "))).unwrap_or("").to_string();
    assert!(
        line("cql_host").contains("\"10.1.1.1\"") && line("cql_host").ends_with("# env CASSETTE_CQL_HOST"),
        "{text}"
    );
    assert!(line("jmx_port").contains("7299") && line("jmx_port").ends_with(&format!("# file {path}")), "{text}");
    assert!(line("cql_port").ends_with("# default"), "{text}");
}

#[test]
fn a_file_value_reaches_the_command() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("backups-from-the-file");
    std::fs::create_dir(&repo).unwrap();
    let file =
        config_file(dir.path(), &format!("[repository]\nbackup_dir = \"{}\"\n[node]\ncql_port = 1\n", repo.display()));
    let config = file.to_str().unwrap();

    let out = cassette(&[], &["--config", config, "list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), format!("no backups in {}", repo.display()));

    // The same through CASSETTE_CONFIG.
    let out = cassette(&[("CASSETTE_CONFIG", config)], &["list"]);
    assert_eq!(stdout(&out).trim(), format!("no backups in {}", repo.display()), "{}", stderr(&out));

    // A flag still wins over the file.
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    let out = cassette(&[], &["--config", config, "list", "--backup-dir", other.to_str().unwrap()]);
    assert_eq!(stdout(&out).trim(), format!("no backups in {}", other.display()), "{}", stderr(&out));

    // [node] reaches `cassette node`: it connects to the file's port (where nothing listens).
    let out = cassette(&[], &["--config", config, "node"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("127.0.0.1:1"), "{}", stderr(&out));
}

#[test]
fn a_required_option_may_come_from_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = cassette(&[], &["--config", config_file(dir.path(), "").to_str().unwrap(), "purge"]);
    assert_eq!(out.status.code(), Some(2), "purge wants a policy: {}", stderr(&out));
    let repo = dir.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    let file = config_file(
        dir.path(),
        &format!("[repository]\nbackup_dir = \"{}\"\n[purge]\nkeep_last = 3\n", repo.display()),
    );
    let out = cassette(&[], &["--config", file.to_str().unwrap(), "purge", "--dry-run"]);
    assert!(out.status.success(), "keep_last from the file: {}\n{}", stdout(&out), stderr(&out));
}

#[test]
fn mistakes_in_the_file_exit_2_naming_key_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[&str]); 5] = [
        (
            "[node]\ncql_hots = \"10.0.0.1\"\n",
            &["unknown key 'cql_hots' in section [node] of", "did you mean 'cql_host'?"],
        ),
        ("[nodes]\ncql_host = \"10.0.0.1\"\n", &["unknown section [nodes] in", "did you mean [node]?"]),
        ("[node]\ncql_port = \"9042\"\n", &["key 'cql_port' in section [node] of", "must be an integer, not a string"]),
        ("[node]\ndata_dir = \"/d\"\n", &["key 'data_dir' in section [node] of", "must be an array of strings"]),
        ("[server]\nheader_timeout = \"10x\"\n", &["key 'header_timeout' in section [server] of", "invalid duration"]),
    ];
    for (text, says) in cases {
        let file = config_file(dir.path(), text);
        let out = cassette(&[], &["--config", file.to_str().unwrap(), "list"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{text}: {err}");
        assert!(err.contains(file.to_str().unwrap()), "{text}: the file is named: {err}");
        for word in says {
            assert!(err.contains(word), "{text}: {word:?} in {err}");
        }
        assert!(out.stdout.is_empty(), "nothing ran: {}", stdout(&out));
    }
    let file = config_file(dir.path(), "[node\n");
    let out = cassette(&[], &["--config", file.to_str().unwrap(), "list"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("is not valid TOML") && stderr(&out).contains("line 1"), "{}", stderr(&out));
}

#[test]
fn a_missing_file_that_was_asked_for_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.toml");
    let missing = missing.to_str().unwrap();
    let flag = format!("--config={missing}");
    let by_env = [("CASSETTE_CONFIG", missing)];
    let runs: [(&[Env], &[&str]); 3] =
        [(&[], &["--config", missing, "list"]), (&[], &["list", &flag]), (&by_env, &["list"])];
    for (env, args) in runs {
        let out = cassette(env, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(&format!("{missing} does not exist")), "{}", stderr(&out));
    }
}

#[test]
fn secrets_are_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let password = "pw-Zq8x1mT4vK9s";
    let token = "tok-4e1c9a77b2d54f0e8a3b6c1d";
    let agent_token = "agt-9f2b3c4d5e6f7a8b9c0d1e2f";
    let file = config_file(
        dir.path(),
        &format!(
            "[node]\ncql_user = \"cassette\"\ncql_password = \"{password}\"\n\
             [server]\nagent = [\"http://10.0.0.1:7081\", \"http://ops:{password}@10.0.0.2:7081\"]\ntoken = \"{token}\"\nagent_token = \"{agent_token}\"\n\
             [agent]\ntoken = \"{token}\"\n"
        ),
    );
    let config = file.to_str().unwrap();
    let runs: Vec<Vec<&str>> = vec![
        vec!["--config", config, "config", "show"],
        vec!["--config", config, "--json", "config", "show"],
        vec!["--config", config, "config", "show", "server", "--json"],
        vec!["--config", config, "config", "show", "agent"],
        vec!["--config", config, "backup", "--help"],
        vec!["--config", config, "server", "--help"],
        vec!["--config", config, "agent", "--help"],
    ];
    for args in runs {
        let out = cassette(&[], &args);
        let all = format!("{}{}", stdout(&out), stderr(&out));
        assert!(out.status.success(), "{args:?}: {all}");
        for secret in [password, token, agent_token] {
            assert!(!all.contains(secret), "{args:?} printed a secret:\n{all}");
        }
        if args.contains(&"show") {
            assert!(all.contains("********"), "{args:?} shows the secret masked: {all}");
        }
    }
    let shown = show_json(&file, &[], &[]);
    assert_eq!(shown["sections"]["node"]["cql_password"]["value"], "********");
    assert_eq!(shown["sections"]["node"]["cql_password"]["source"], "file");
    assert_eq!(shown["sections"]["node"]["cql_user"]["value"], "cassette", "only secrets are masked");
    assert_eq!(
        shown["sections"]["server"]["agent"]["value"],
        serde_json::json!(["http://10.0.0.1:7081", "http://10.0.0.2:7081"]),
        "an agent URL is shown without its user and password"
    );
    // A secret from the environment is masked too.
    let shown = show_json(&file, &[("CASSETTE_CQL_PASSWORD", "env-pw-Hx72kQ")], &["node"]);
    assert!(!shown.to_string().contains("env-pw-Hx72kQ"), "{shown}");
    assert_eq!(shown["sections"]["node"]["cql_password"]["source"], "env");
    // A secret of the wrong type is not echoed in the error.
    let bad = config_file(dir.path(), "[node]\ncql_password = 31415926\n");
    let out = cassette(&[], &["--config", bad.to_str().unwrap(), "list"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!stderr(&out).contains("31415926") && stderr(&out).contains("cql_password"), "{}", stderr(&out));
}

#[test]
fn a_file_with_a_secret_that_others_can_read_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    let file = config_file(
        dir.path(),
        &format!("[repository]\nbackup_dir = \"{}\"\n[node]\ncql_password = \"pw-Lw3v\"\n", repo.display()),
    );
    let path = file.to_str().unwrap();
    let warned = |mode: u32| {
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
        let out = cassette(&[], &["--config", path, "list"]);
        assert!(out.status.success(), "a warning, not an error: {}", stderr(&out));
        stderr(&out)
    };
    for mode in [0o644, 0o640, 0o604] {
        let err = warned(mode);
        assert!(err.contains("warning") && err.contains(path) && err.contains("chmod 600"), "{mode:o}: {err}");
        assert!(err.contains("cql_password") && !err.contains("pw-Lw3v"), "{err}");
    }
    assert_eq!(warned(0o600), "", "a private file is not warned about");
    // No secret in it: nothing to warn about.
    let plain = config_file(dir.path(), &format!("[repository]\nbackup_dir = \"{}\"\n", repo.display()));
    std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = cassette(&[], &["--config", plain.to_str().unwrap(), "list"]);
    assert_eq!(stderr(&out), "");
}
