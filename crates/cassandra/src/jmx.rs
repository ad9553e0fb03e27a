//! A long-lived JMX client for the calls every backup makes (snapshot and clear snapshot) and
//! those of a restore (one import per table).
//!
//! nodetool is a new JVM per command, about a second of start-up before it reaches the node; a
//! backup makes two such calls, so a backup with nothing new to copy was mostly JVM starts.
//! This client is one small Java program (`java/CassetteJmx.java`, JDK classes only) that
//! connects once and answers requests on its stdin for as long as the [`Nodetool`] that started
//! it lives: once per job from the command line, once per agent for the agent. It is compiled
//! with the JDK's `javac` into cassette's cache directory the first time.
//!
//! Cassandra versions differ in these operations' signatures (`clearSnapshot` has an options map
//! first since 5.0; 4.0 and 4.1 have only `(tag, keyspaces)`). The client reads the operations
//! the node's StorageService MBean offers when it connects (`MBeanInfo`) and calls the newest
//! signature it knows, so nothing here needs the node's version.
//!
//! On a node with JMX authentication or TLS it logs in as nodetool does (see `jmx_security`):
//! the user and password come in its environment, never on its command line.
//!
//! It only accelerates: when it cannot run (no JDK, `CASSETTE_JMX_CLIENT=nodetool`) or a call
//! through it fails, the same call goes through nodetool, whose errors are the ones reported.
//!
//! [`Nodetool`]: crate::Nodetool

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::JmxSecurity;

const SOURCE: &str = include_str!("../java/CassetteJmx.java");
const CLASS: &str = "CassetteJmx";
/// After a failed start, how long before trying again (an agent outlives node restarts).
const RETRY_AFTER: Duration = Duration::from_secs(60);
/// How long the JVM may take to start and connect.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The client's state, shared by the clones of one `Nodetool`.
#[derive(Debug, Default)]
pub(crate) enum JmxState {
    /// Not started yet (or dropped after a failed call: the next call starts a fresh one).
    #[default]
    NotStarted,
    /// Connected and waiting for requests.
    Ready(Box<JmxClient>),
    /// Could not start: calls go through nodetool until `RETRY_AFTER` has passed.
    Unavailable(Instant),
}

/// The running Java process and its pipes.
#[derive(Debug)]
pub(crate) struct JmxClient {
    _child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

/// A request that went through the client: done, or the node's error.
pub(crate) enum Answer {
    Ok,
    Failed(String),
    /// The client died after the request was sent: whether the node did it is unknown.
    Lost(String),
}

impl JmxState {
    /// Sends one request (fields joined by tabs) and reads its answer, starting the client
    /// first if needed. `None`: the client is not usable, use nodetool.
    pub(crate) async fn call(
        &mut self,
        host: &str,
        port: u16,
        security: &JmxSecurity,
        fields: &[&str],
    ) -> Option<Answer> {
        if fields.iter().any(|f| f.contains(['\t', '\n', '\r'])) {
            return None;
        }
        self.ensure_started(host, port, security).await;
        let JmxState::Ready(client) = self else { return None };
        match client.request(&fields.join("\t")).await {
            Ok(answer) => {
                if matches!(answer, Answer::Failed(_)) {
                    // The connection may be what failed: the next call starts afresh.
                    *self = JmxState::NotStarted;
                }
                Some(answer)
            }
            Err(e) => {
                tracing::warn!(error = %e, "the JMX client stopped answering");
                *self = JmxState::NotStarted;
                Some(Answer::Lost(e.to_string()))
            }
        }
    }

    /// Starts the client unless it runs, is disabled, or failed to start less than
    /// `RETRY_AFTER` ago.
    pub(crate) async fn ensure_started(&mut self, host: &str, port: u16, security: &JmxSecurity) {
        match self {
            JmxState::Ready(_) => return,
            JmxState::Unavailable(since) if since.elapsed() < RETRY_AFTER => return,
            _ => {}
        }
        if std::env::var("CASSETTE_JMX_CLIENT").is_ok_and(|v| v == "nodetool") {
            *self = JmxState::Unavailable(Instant::now());
            return;
        }
        let started = Instant::now();
        *self = match JmxClient::start(host, port, security).await {
            Ok(client) => {
                tracing::debug!(host, port, ms = started.elapsed().as_millis() as u64, "JMX client connected");
                JmxState::Ready(Box::new(client))
            }
            Err(reason) => {
                tracing::info!(host, port, %reason, "no long-lived JMX client; snapshots go through nodetool");
                JmxState::Unavailable(Instant::now())
            }
        };
    }
}

impl JmxClient {
    async fn start(host: &str, port: u16, security: &JmxSecurity) -> Result<JmxClient, String> {
        let java = java_program();
        let classes = compiled_classes(&java, &cache_dir()).await?;
        let mut child = Command::new(&java)
            .args(["-Xmx32m", "-Xss512k", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xshare:auto"])
            .args(["-XX:-UsePerfData", "-cp"])
            .arg(&classes)
            .arg(CLASS)
            .arg(host)
            .arg(port.to_string())
            // The login goes in its environment, read once when it connects: never in argv.
            .env_remove("CASSETTE_JMX_USER")
            .env_remove("CASSETTE_JMX_TLS")
            .env_remove("CASSETTE_JMX_SSL_PROPERTIES")
            .env_remove("CASSETTE_CQL_PASSWORD")
            .env_remove("CASSETTE_JMX_PASSWORD")
            .envs(security.client_env())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", java.display()))?;
        let stdin = child.stdin.take().ok_or("no stdin")?;
        let stdout = BufReader::new(child.stdout.take().ok_or("no stdout")?);
        let mut client = JmxClient { _child: child, stdin, stdout };
        let first = tokio::time::timeout(START_TIMEOUT, client.read_line())
            .await
            .map_err(|_| format!("no answer within {START_TIMEOUT:?}"))?
            .map_err(|e| e.to_string())?;
        match first.as_str() {
            "ready" => Ok(client),
            other => Err(other.strip_prefix("error\t").unwrap_or(other).to_string()),
        }
    }

    async fn request(&mut self, line: &str) -> std::io::Result<Answer> {
        self.stdin.write_all(format!("{line}\n").as_bytes()).await?;
        self.stdin.flush().await?;
        let answer = self.read_line().await?;
        Ok(match answer.strip_prefix("error\t") {
            None if answer == "ok" => Answer::Ok,
            None => Answer::Failed(format!("unexpected answer: {answer}")),
            Some(message) => Answer::Failed(message.to_string()),
        })
    }

    async fn read_line(&mut self) -> std::io::Result<String> {
        let mut line = String::new();
        if self.stdout.read_line(&mut line).await? == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the JMX client exited"));
        }
        Ok(line.trim_end().to_string())
    }
}

/// `CASSETTE_JAVA`, else `$JAVA_HOME/bin/java`, else `java` on the PATH.
fn java_program() -> PathBuf {
    if let Some(java) = std::env::var_os("CASSETTE_JAVA") {
        return java.into();
    }
    match std::env::var_os("JAVA_HOME") {
        Some(home) => Path::new(&home).join("bin/java"),
        None => "java".into(),
    }
}

/// The directory holding the compiled client, compiling it on first use (`javac` beside
/// `java`, else on the PATH). Keyed by a hash of the source, so an upgrade recompiles.
async fn compiled_classes(java: &Path, cache: &Path) -> Result<PathBuf, String> {
    let dir = cache.join("jmx-client").join(format!("{:016x}", fnv1a(SOURCE.as_bytes())));
    if dir.join(format!("{CLASS}.class")).is_file() {
        return Ok(dir);
    }
    let javac = match java.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(bin) => bin.join("javac"),
        None => "javac".into(),
    };
    // Own staging per call: two clients of one process (an agent's nodes, parallel tests) may
    // compile at once, and one must not remove the other's files.
    static STAGING: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = STAGING.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let staging = dir.with_extension(format!("tmp-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(|e| format!("cannot create {}: {e}", staging.display()))?;
    let source = staging.join(format!("{CLASS}.java"));
    std::fs::write(&source, SOURCE).map_err(|e| format!("cannot write {}: {e}", source.display()))?;
    let out = Command::new(&javac)
        .arg("-d")
        .arg(&staging)
        .arg(&source)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| format!("cannot run {} (a JDK is needed, not only a JRE): {e}", javac.display()))?;
    if !out.status.success() {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(format!("javac failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    // Another process may have compiled it meanwhile: either copy is the same.
    if std::fs::rename(&staging, &dir).is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    if dir.join(format!("{CLASS}.class")).is_file() {
        Ok(dir)
    } else {
        Err(format!("the compiled client is not in {}", dir.display()))
    }
}

/// `CASSETTE_CACHE_DIR`, else `$XDG_CACHE_HOME/cassette`, else `~/.cache/cassette`.
fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CASSETTE_CACHE_DIR") {
        return dir.into();
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return Path::new(&dir).join("cassette");
    }
    match std::env::var_os("HOME") {
        Some(home) => Path::new(&home).join(".cache/cassette"),
        None => std::env::temp_dir().join("cassette-cache"),
    }
}

/// FNV-1a, 64 bits: a stable name for the compiled source (not a security hash).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}
