//! Cassandra's own bulk loader (`org.apache.cassandra.tools.BulkLoader`, what `sstableloader`
//! runs): streams a directory `<keyspace>/<table>/` of SSTables to the replicas that own each
//! row's token, whatever the target cluster's topology.
//!
//! It runs from the same jars, on the same Java, as the node's nodetool launcher: the launcher
//! is run once with `JDK_JAVA_OPTIONS=-XshowSettings:properties` (any launcher, the stock script
//! or another, ends in one `java` whose settings that prints) and its `java.home` and
//! `java.class.path` are read back. The loader's arguments, the CQL password among them, go in
//! a Java argument file (`java @FILE`) that lives only in cassette's memory (`memfd`): the loader
//! takes a password only as `-pw`, and no password goes on a command line (invariant 14).

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::Command;

use crate::CassandraError;
use crate::nodetool::SECRET_ENV;

/// The loader's JVM: where Java is, and the Cassandra jars nodetool runs with.
#[derive(Debug, Clone)]
pub struct BulkLoader {
    java: PathBuf,
    classpath: String,
    logback: Option<String>,
}

/// Where and how the loader reaches the target cluster.
#[derive(Clone)]
pub struct LoadTarget {
    /// Initial contact points (`-d`): the loader learns the ring from them.
    pub hosts: Vec<String>,
    /// Native transport port (`-p`).
    pub port: u16,
    /// CQL user and password, when the cluster has authentication on.
    pub credentials: Option<(String, String)>,
}

impl std::fmt::Debug for LoadTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadTarget")
            .field("hosts", &self.hosts)
            .field("port", &self.port)
            .field("user", &self.credentials.as_ref().map(|(u, _)| u))
            .finish()
    }
}

impl BulkLoader {
    /// The loader of the installation `nodetool` (a launcher program) runs from.
    pub async fn of_nodetool(nodetool: &Path) -> Result<BulkLoader, CassandraError> {
        let mut cmd = Command::new(nodetool);
        cmd.arg("help").env("JDK_JAVA_OPTIONS", "-XshowSettings:properties");
        for var in SECRET_ENV {
            cmd.env_remove(var);
        }
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        let out = crate::children::output(cmd)
            .await
            .map_err(|source| CassandraError::NodetoolMissing { program: nodetool.to_owned(), source })?;
        let settings = String::from_utf8_lossy(&out.stderr);
        parse_settings(&settings).ok_or_else(|| CassandraError::BulkLoader {
            message: format!(
                "cannot tell which Java and jars the nodetool launcher {} runs (no java.home and java.class.path in its -XshowSettings:properties output): {}",
                nodetool.display(),
                tail(&settings, 4)
            ),
        })
    }

    /// Streams the SSTables of `table_dir` (`.../<keyspace>/<table>`, the names it loads into)
    /// to their replicas in `target`; returns the loader's output. Killed with cassette.
    pub async fn load(&self, target: &LoadTarget, table_dir: &Path) -> Result<String, CassandraError> {
        let mut args: Vec<String> = vec![
            "org.apache.cassandra.tools.BulkLoader".into(),
            "--no-progress".into(),
            "-d".into(),
            target.hosts.join(","),
            "-p".into(),
            target.port.to_string(),
        ];
        if let Some((user, password)) = &target.credentials {
            args.extend(["-u".into(), user.clone(), "-pw".into(), password.clone()]);
        }
        args.push(table_dir.display().to_string());
        let argfile = ArgFile::new(&args)?;
        let mut cmd = Command::new(&self.java);
        cmd.args(["-Xmx256m", "-XX:+UseSerialGC", "-Dio.netty.tryReflectionSetAccessible=true"]);
        cmd.args(JAVA17_OPENS.iter().flat_map(|(flag, what)| [*flag, *what]));
        if let Some(logback) = &self.logback {
            cmd.arg(format!("-Dlogback.configurationFile={logback}"));
        }
        cmd.arg("-cp").arg(&self.classpath).arg(format!("@{}", argfile.path()));
        for var in SECRET_ENV {
            cmd.env_remove(var);
        }
        cmd.env_remove("JDK_JAVA_OPTIONS");
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        tracing::debug!(java = %self.java.display(), dir = %table_dir.display(), hosts = ?target.hosts, "bulk loader");
        let out = crate::children::output(cmd)
            .await
            .map_err(|e| CassandraError::BulkLoader { message: format!("cannot run {}: {e}", self.java.display()) })?;
        drop(argfile);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() {
            return Ok(stdout);
        }
        let both = format!("{}\n{stdout}", String::from_utf8_lossy(&out.stderr));
        let hint = if both.contains("Authentication") || both.contains("credentials") {
            "the target refused the CQL login: check --cql-user and the password"
        } else if both.contains("All host(s) tried") || both.contains("NoHostAvailable") {
            "no target node answered CQL: are they up (`nodetool status`), and is --cql-port right?"
        } else if both.contains("Unknown keyspace") || both.contains("Unknown table") {
            "the keyspace or table does not exist on the target: create it, or pass --create-schema"
        } else {
            "check that every target node is up (`nodetool status`) and reachable on its storage port, then run the same restore again: tables already loaded are skipped"
        };
        Err(CassandraError::BulkLoader {
            message: format!(
                "the bulk loader failed for {} (exit {}): {}; {hint}",
                table_dir.display(),
                out.status.code().unwrap_or(-1),
                tail(&both, 8)
            ),
        })
    }
}

/// The options Cassandra's tools need on Java 17 (those of its `jvm17-clients.options`).
const JAVA17_OPENS: &[(&str, &str)] = &[
    ("--add-exports", "java.base/jdk.internal.misc=ALL-UNNAMED"),
    ("--add-exports", "java.base/jdk.internal.ref=ALL-UNNAMED"),
    ("--add-exports", "jdk.unsupported/sun.misc=ALL-UNNAMED"),
    ("--add-opens", "java.base/java.lang=ALL-UNNAMED"),
    ("--add-opens", "java.base/java.nio=ALL-UNNAMED"),
    ("--add-opens", "java.base/java.io=ALL-UNNAMED"),
    ("--add-opens", "java.base/java.util=ALL-UNNAMED"),
    ("--add-opens", "java.base/java.lang.reflect=ALL-UNNAMED"),
    ("--add-opens", "java.base/jdk.internal.ref=ALL-UNNAMED"),
    ("--add-opens", "java.base/jdk.internal.reflect=ALL-UNNAMED"),
    ("--add-opens", "java.base/sun.nio.ch=ALL-UNNAMED"),
];

/// The last `n` non-blank lines, on one line.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

/// `java.home`, `java.class.path` (one entry per line after the first, indented) and
/// `logback.configurationFile` from `-XshowSettings:properties` output.
fn parse_settings(text: &str) -> Option<BulkLoader> {
    let mut java_home = None;
    let mut classpath: Vec<String> = Vec::new();
    let mut logback = None;
    let mut in_classpath = false;
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim();
        if in_classpath && indent > 4 && !trimmed.contains(" = ") {
            classpath.push(trimmed.to_string());
            continue;
        }
        in_classpath = false;
        let Some((key, value)) = trimmed.split_once(" = ") else { continue };
        match key {
            "java.home" => java_home = Some(value.to_string()),
            "java.class.path" => {
                classpath.push(value.to_string());
                in_classpath = true;
            }
            "logback.configurationFile" => logback = Some(value.to_string()),
            _ => {}
        }
    }
    let java = Path::new(&java_home?).join("bin/java");
    let classpath = classpath.into_iter().filter(|c| !c.is_empty()).collect::<Vec<_>>().join(":");
    (!classpath.is_empty()).then_some(BulkLoader { java, classpath, logback })
}

/// A Java argument file (one argument a line, quoted) that exists only in this process's
/// memory, named by its `/proc/<pid>/fd/<n>` path (as [`crate::jmx_security`]'s password file).
struct ArgFile {
    fd: std::os::fd::OwnedFd,
}

impl ArgFile {
    fn new(args: &[String]) -> Result<ArgFile, CassandraError> {
        use std::io::Write;
        let err =
            |e: String| CassandraError::BulkLoader { message: format!("cannot hold the loader's arguments: {e}") };
        let fd = nix::sys::memfd::memfd_create(c"cassette-loader-args", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
            .map_err(|e| err(e.to_string()))?;
        let mut file = std::fs::File::from(fd);
        let text: String = args.iter().map(|a| format!("\"{}\"\n", java_quote(a))).collect();
        file.write_all(text.as_bytes()).map_err(|e| err(e.to_string()))?;
        Ok(ArgFile { fd: file.into() })
    }

    fn path(&self) -> String {
        use std::os::fd::AsRawFd;
        format!("/proc/{}/fd/{}", std::process::id(), self.fd.as_raw_fd())
    }
}

/// An argument inside double quotes of a Java argument file: `\` and `"` escaped.
fn java_quote(arg: &str) -> String {
    arg.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_java_and_its_jars_from_the_launchers_settings() {
        let text = "Property settings:\n    file.encoding = UTF-8\n    java.class.path = /l/a.jar\n        /l/b.jar\n    java.home = /jvm/17\n    logback.configurationFile = file:///x.xml\n";
        let l = parse_settings(text).unwrap();
        assert_eq!(l.java, Path::new("/jvm/17/bin/java"));
        assert_eq!(l.classpath, "/l/a.jar:/l/b.jar");
        assert_eq!(l.logback.as_deref(), Some("file:///x.xml"));
        assert!(parse_settings("nothing").is_none());
    }

    #[test]
    fn the_argument_file_is_in_memory_and_quoted() {
        let f = ArgFile::new(&["-pw".into(), "a \"b\\c".into()]).unwrap();
        assert_eq!(std::fs::read_to_string(f.path()).unwrap(), "\"-pw\"\n\"a \\\"b\\\\c\"\n");
        assert!(std::fs::read_link(f.path()).unwrap().to_string_lossy().starts_with("/memfd:"));
    }
}
