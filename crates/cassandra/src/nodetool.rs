//! The node's own `nodetool`, run as a subprocess exactly as an operator would.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use tokio::process::Command;

use crate::jmx::{Answer, JmxState};
use crate::jmx_security::PasswordFile;
use crate::{CassandraError, JmxSecurity};

/// How to reach one node's nodetool: the program, and the node's JMX host and port. Snapshots
/// and clears go through a long-lived JMX client when one can run (see the `jmx` module),
/// shared by the clones of this value; everything else runs nodetool.
#[derive(Debug, Clone)]
pub struct Nodetool {
    program: PathBuf,
    host: String,
    port: u16,
    extra_args: Vec<String>,
    security: JmxSecurity,
    /// `-u USER -pwf FILE --ssl`, from `security`.
    security_args: Vec<String>,
    /// The in-memory password file `security_args` names, if cassette wrote one.
    _password_file: Option<Arc<PasswordFile>>,
    jmx: Arc<tokio::sync::Mutex<JmxState>>,
}

/// Environment variables holding cassette's secrets, removed from the processes it starts.
pub(crate) const SECRET_ENV: [&str; 2] = ["CASSETTE_CQL_PASSWORD", "CASSETTE_JMX_PASSWORD"];

/// One line of `nodetool listsnapshots`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotListing {
    /// The snapshot's tag.
    pub tag: String,
    /// Its keyspace.
    pub keyspace: String,
    /// Its table.
    pub table: String,
}

/// Options of `nodetool import` that a restore sets.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// `--copy-data`: copy the files instead of moving them (keeps the source).
    pub copy_data: bool,
    /// `--keep-level`: keep the SSTables' compaction level.
    pub keep_level: bool,
    /// `--no-verify`: skip Cassandra's own verification of the SSTables.
    pub no_verify: bool,
}

impl Nodetool {
    /// A nodetool that reaches the node's JMX at `host:port` (Cassandra's default is 7199).
    pub fn new(program: impl Into<PathBuf>, host: impl Into<String>, port: u16) -> Self {
        Nodetool {
            program: program.into(),
            host: host.into(),
            port,
            extra_args: Vec::new(),
            security: JmxSecurity::default(),
            security_args: Vec::new(),
            _password_file: None,
            jmx: Arc::new(tokio::sync::Mutex::new(JmxState::NotStarted)),
        }
    }

    /// Extra arguments given before the command. The long-lived JMX client knows none of them,
    /// so every call then goes through nodetool (JMX logins and TLS: [`Nodetool::with_security`]).
    pub fn with_extra_args(mut self, args: Vec<String>) -> Self {
        self.extra_args = args;
        self
    }

    /// Logs in to a node whose JMX has authentication or TLS on, through nodetool and the JMX
    /// client alike; the password goes on no command line.
    pub fn with_security(mut self, security: JmxSecurity) -> Result<Self, CassandraError> {
        let (args, file) = security.nodetool_args()?;
        self.security_args = args;
        self._password_file = file;
        self.security = security;
        Ok(self)
    }

    /// The JMX login and TLS settings.
    pub fn security(&self) -> &JmxSecurity {
        &self.security
    }

    /// Starts the long-lived JMX client in the background, so that its JVM start overlaps
    /// whatever the caller does before its first snapshot.
    pub fn warm_up(&self) {
        if !self.jmx_client_allowed() {
            return;
        }
        let (jmx, host, port, security) = (self.jmx.clone(), self.host.clone(), self.port, self.security.clone());
        tokio::spawn(async move { jmx.lock().await.ensure_started(&host, port, &security).await });
    }

    /// The JMX client knows none of the extra arguments: with any, nodetool makes every call.
    fn jmx_client_allowed(&self) -> bool {
        self.extra_args.is_empty()
    }

    /// Proves the node's JMX answers this login before a job changes anything (a snapshot, a
    /// TRUNCATE that a later `nodetool import` must undo): the JMX client's connection when it
    /// can run, else `nodetool version`, whose error says what is wrong.
    pub async fn check_reachable(&self) -> Result<(), CassandraError> {
        if self.jmx_client_allowed() {
            let mut jmx = self.jmx.lock().await;
            jmx.ensure_started(&self.host, self.port, &self.security).await;
            if matches!(*jmx, JmxState::Ready(_)) {
                return Ok(());
            }
        }
        self.run(&["version"]).await.map(drop)
    }

    /// True when the long-lived JMX client is connected (calls skip nodetool's JVM start).
    pub async fn jmx_client_ready(&self) -> bool {
        matches!(*self.jmx.lock().await, JmxState::Ready(_))
    }

    /// Runs a snapshot or clear through the JMX client; `true` when it did it. When the client
    /// cannot run or the call fails, the caller runs nodetool, whose error is the one reported.
    async fn via_jmx(&self, fields: &[&str]) -> bool {
        if !self.jmx_client_allowed() {
            return false;
        }
        let started = std::time::Instant::now();
        match self.jmx.lock().await.call(&self.host, self.port, &self.security, fields).await {
            Some(Answer::Ok) => {
                tracing::debug!(
                    request = fields[0],
                    ms = started.elapsed().as_millis() as u64,
                    "done through the JMX client"
                );
                true
            }
            Some(Answer::Failed(message)) => {
                tracing::warn!(request = fields[0], %message, "the JMX client's call failed; running nodetool");
                false
            }
            // Snapshots and clears may be asked again: nodetool does it.
            Some(Answer::Lost(_)) | None => false,
        }
    }

    /// The program this runs.
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// The JMX host and port nodetool reaches (answering as long as the node's process runs).
    pub fn jmx_address(&self) -> (&str, u16) {
        (&self.host, self.port)
    }

    /// Runs `nodetool <args>` and returns its stdout. A non-zero exit is an error carrying the
    /// tail of what it printed and a hint.
    pub async fn run(&self, args: &[&str]) -> Result<String, CassandraError> {
        let mut cmd = Command::new(&self.program);
        cmd.arg("-h").arg(&self.host).arg("-p").arg(self.port.to_string());
        cmd.args(&self.security_args).args(&self.extra_args).args(args);
        // The trust store for --ssl: a nodetool launcher that reads NODETOOL_SSL_PROPERTIES
        // uses this file; the stock script reads only ~/.cassandra/nodetool-ssl.properties.
        if let Some(props) = self.security.ssl_properties.as_ref().filter(|_| self.security.tls) {
            cmd.env("NODETOOL_SSL_PROPERTIES", props);
        }
        // Secrets of cassette's own environment are not nodetool's business.
        for var in SECRET_ENV {
            cmd.env_remove(var);
        }
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        tracing::debug!(program = %self.program.display(), ?args, "nodetool");
        // Killed with cassette (even kill -9) and with a dropped job: see `children`.
        let out = crate::children::output(cmd)
            .await
            .map_err(|source| CassandraError::NodetoolMissing { program: self.program.clone(), source })?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() {
            return Ok(stdout);
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let both = format!("{stderr}\n{stdout}");
        let tail: Vec<&str> = both.lines().filter(|l| !l.trim().is_empty()).collect();
        let tail = tail[tail.len().saturating_sub(6)..].join(" | ");
        let hint = if both.contains("Authentication failed") || both.contains("Invalid username or password") {
            "; the node's JMX refused the login: check --jmx-user and --jmx-password-file (or CASSETTE_JMX_PASSWORD)"
        } else if both.contains("Credentials required") {
            "; the node's JMX requires a login: give --jmx-user and --jmx-password-file (or CASSETTE_JMX_PASSWORD)"
        } else if both.contains("SSL") || both.contains("non-JRMP server") || both.contains("certification path") {
            "; the node's JMX and nodetool disagree on TLS: check --jmx-tls and nodetool's TLS properties"
        } else if both.contains("Connection refused") || both.contains("Failed to connect") {
            "; the node's JMX port does not answer: is Cassandra running, and is --jmx-port right?"
        } else if both.contains("Keyspace") && both.contains("does not exist") {
            "; check the keyspace name (`cassette` lists only existing keyspaces)"
        } else {
            ""
        };
        Err(CassandraError::NodetoolFailed {
            args: args.join(" "),
            code: out.status.code().unwrap_or(-1),
            stderr: tail,
            hint,
        })
    }

    /// `nodetool snapshot -t TAG [-kt ks.t,...] [keyspaces...]`: hard links of every SSTable,
    /// after a flush. With `tables` (as `ks.table`) only those tables are snapshotted.
    pub async fn snapshot(&self, tag: &str, keyspaces: &[String], tables: &[String]) -> Result<(), CassandraError> {
        let entities = if tables.is_empty() { keyspaces } else { tables };
        let mut fields = vec!["snapshot", tag];
        fields.extend(entities.iter().map(String::as_str));
        if !entities.is_empty() && self.via_jmx(&fields).await {
            return Ok(());
        }
        let mut args = vec!["snapshot", "-t", tag];
        let kt = tables.join(",");
        if !tables.is_empty() {
            args.push("-kt");
            args.push(&kt);
        } else {
            args.extend(keyspaces.iter().map(String::as_str));
        }
        self.run(&args).await.map(drop)
    }

    /// `nodetool clearsnapshot -t TAG [keyspaces...]`.
    pub async fn clear_snapshot(&self, tag: &str, keyspaces: &[String]) -> Result<(), CassandraError> {
        let mut fields = vec!["clearsnapshot", tag];
        fields.extend(keyspaces.iter().map(String::as_str));
        if self.via_jmx(&fields).await {
            return Ok(());
        }
        let mut args = vec!["clearsnapshot", "-t", tag];
        args.extend(keyspaces.iter().map(String::as_str));
        self.run(&args).await.map(drop)
    }

    /// `nodetool listsnapshots`: one entry per (tag, keyspace, table).
    pub async fn list_snapshots(&self) -> Result<Vec<SnapshotListing>, CassandraError> {
        Ok(parse_list_snapshots(&self.run(&["listsnapshots"]).await?))
    }

    /// `nodetool flush [keyspace [tables...]]`.
    pub async fn flush(&self, keyspace: Option<&str>, tables: &[&str]) -> Result<(), CassandraError> {
        let mut args = vec!["flush"];
        if let Some(ks) = keyspace {
            args.push(ks);
            args.extend_from_slice(tables);
        }
        self.run(&args).await.map(drop)
    }

    /// `nodetool import KS TABLE DIR...`: loads the SSTables of those directories into the
    /// live table. nodetool prints the directories that failed and exits non-zero.
    ///
    /// Through the JMX client when it runs (the table's `importNewSSTables`, no JVM start per
    /// table). The node's own refusal is the error then: nodetool is not run again, since the
    /// SSTables of the directories that did import are loaded already.
    pub async fn import(
        &self,
        keyspace: &str,
        table: &str,
        dirs: &[PathBuf],
        opts: &ImportOptions,
    ) -> Result<String, CassandraError> {
        let dir_args: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        if self.jmx_client_allowed() {
            let flag = |b: bool| if b { "1" } else { "0" };
            let mut fields =
                vec!["import", keyspace, table, flag(opts.copy_data), flag(opts.keep_level), flag(!opts.no_verify)];
            fields.extend(dir_args.iter().map(String::as_str));
            let started = std::time::Instant::now();
            match self.jmx.lock().await.call(&self.host, self.port, &self.security, &fields).await {
                Some(Answer::Ok) => {
                    tracing::debug!(
                        keyspace,
                        table,
                        ms = started.elapsed().as_millis() as u64,
                        "imported through the JMX client"
                    );
                    return Ok(String::new());
                }
                Some(Answer::Failed(message) | Answer::Lost(message)) => {
                    return Err(CassandraError::NodetoolFailed {
                        args: format!("import {keyspace} {table} {}", dir_args.join(" ")),
                        code: -1,
                        stderr: format!("through the JMX client: {message}"),
                        hint: "",
                    });
                }
                None => {}
            }
        }
        let mut args: Vec<String> = vec!["import".into()];
        if opts.copy_data {
            args.push("--copy-data".into());
        }
        if opts.keep_level {
            args.push("--keep-level".into());
        }
        if opts.no_verify {
            args.push("--no-verify".into());
        }
        args.push(keyspace.into());
        args.push(table.into());
        args.extend(dir_args);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        self.run(&refs).await
    }

    /// `nodetool repair -pr --full KS`: a full repair of the token ranges this node is primary
    /// for (run it on every node to repair the keyspace once). Returns nodetool's output.
    pub async fn repair(&self, keyspace: &str) -> Result<String, CassandraError> {
        self.run(&repair_args(keyspace)).await
    }

    /// `nodetool cleanup KEYSPACE`: drops the partitions this node no longer owns (after the
    /// ring changed, or after a restore loaded another node's SSTables).
    pub async fn cleanup(&self, keyspace: &str) -> Result<String, CassandraError> {
        self.run(&["cleanup", keyspace]).await
    }

    /// `nodetool drain`: flushes every memtable, stops accepting writes and client connections
    /// (the CQL port closes), so the commitlog holds nothing that is not in an SSTable. The
    /// node's process keeps running until it is stopped.
    pub async fn drain(&self) -> Result<(), CassandraError> {
        self.run(&["drain"]).await.map(drop)
    }

    /// `nodetool status`, raw.
    pub async fn status(&self) -> Result<String, CassandraError> {
        self.run(&["status"]).await
    }
}

/// True when `nodetool status` output shows `address` Up and Normal (`UN`).
pub fn status_shows_up_normal(status: &str, address: &str) -> bool {
    status.lines().any(|l| {
        let cols: Vec<&str> = l.split_whitespace().collect();
        cols.len() >= 2 && cols[0] == "UN" && cols[1] == address
    })
}

fn repair_args(keyspace: &str) -> [&str; 4] {
    ["repair", "-pr", "--full", keyspace]
}

/// Parses `nodetool listsnapshots`. Its table starts after a header line that begins with
/// "Snapshot name"; the first three columns are tag, keyspace and table.
fn parse_list_snapshots(out: &str) -> Vec<SnapshotListing> {
    let mut in_table = false;
    let mut found = Vec::new();
    for line in out.lines() {
        if line.starts_with("Snapshot name") {
            in_table = true;
            continue;
        }
        if !in_table || line.trim().is_empty() || line.starts_with("Total") {
            continue;
        }
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() >= 3 {
            found.push(SnapshotListing {
                tag: cols[0].to_string(),
                keyspace: cols[1].to_string(),
                table: cols[2].to_string(),
            });
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_listsnapshots() {
        let out = "Snapshot Details: \n\
Snapshot name         Keyspace name Column family name True size Size on disk Creation time            Expiration time\n\
cassette-nightly-1    shop          orders             0 bytes   5.1 KiB      2026-11-22T11:40:01.123Z\n\
truncated-1763-orders shop          orders             0 bytes   5.1 KiB      2026-11-22T11:41:01.123Z\n\
\n\
Total TrueDiskSpaceUsed: 0 bytes\n";
        let got = parse_list_snapshots(out);
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[0],
            SnapshotListing { tag: "cassette-nightly-1".into(), keyspace: "shop".into(), table: "orders".into() }
        );
        assert_eq!(got[1].tag, "truncated-1763-orders");
    }

    #[test]
    fn repair_is_primary_range_and_full() {
        assert_eq!(repair_args("shop"), ["repair", "-pr", "--full", "shop"]);
    }

    #[test]
    fn finds_up_normal_nodes() {
        let out = "Datacenter: datacenter1\n===\n--  Address    Load  Tokens  Owns  Host ID  Rack\nUN  127.0.7.1  1 MiB  1  100%  5d3c  rack1\nDN  127.0.7.2  1 MiB  1  0%  6e4d  rack1\n";
        assert!(status_shows_up_normal(out, "127.0.7.1"));
        assert!(!status_shows_up_normal(out, "127.0.7.2"));
        assert!(!status_shows_up_normal(out, "127.0.7.11"));
    }

    #[test]
    fn no_snapshots() {
        assert!(parse_list_snapshots("Snapshot Details: \nThere are no snapshots\n").is_empty());
    }

    #[tokio::test]
    async fn missing_program_says_how_to_fix() {
        let nt = Nodetool::new("/nonexistent/nodetool", "127.0.0.1", 7199);
        let err = nt.status().await.unwrap_err().to_string();
        assert!(err.contains("--nodetool"), "{err}");
    }
}
