//! Real S3-compatible servers on loopback, for the object-storage tests.
//!
//! [`S3Server::start`] starts one server of the chosen [`S3Kind`] through the project's own
//! `harness/s3/s3.sh` (installed by `bash harness/s3/s3.sh install`, which `scripts/test` runs),
//! in a directory of its own under [`cluster_root`] (`s3-<pid>-<n>`), and creates the bucket
//! `cassette` in it. Each call starts a new, empty server; dropping the [`S3Server`] stops it.
//! A server that cannot start makes the test panic with the reason and the server's log tail:
//! these tests are never skipped.
//!
//! | kind | what | signatures | conditional puts | request log |
//! |------|------|------------|------------------|-------------|
//! | [`S3Kind::S3sFs`] | s3s-fs 0.14.1 (crates.io): objects are plain files under `root/cassette/` | checked (SigV4) | `If-None-Match: *` and `If-Match` | no: look at [`S3Server::object_files`] |
//! | [`S3Kind::Moto`] | moto 5 (PyPI) server, in memory | not checked | `If-None-Match: *` and `If-Match` | yes: [`S3Server::requests`] |
//!
//! ```no_run
//! use cassette_testkit::s3::{S3Kind, S3Server};
//! let s3 = S3Server::start(S3Kind::S3sFs);
//! let url = s3.url("backups"); // s3://cassette/backups
//! // run cassette with `.envs(s3.env())` and `url`, then look at what it stored:
//! let files = s3.object_files();
//! # let _ = (url, files);
//! ```

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::{cluster_root, repo_root};

/// The access key both servers are started with.
pub const ACCESS_KEY: &str = "cassette-test";
/// The secret key both servers are started with (moto accepts any; s3s-fs only this one).
pub const SECRET_KEY: &str = "cassette-test-secret";
/// The bucket [`S3Server::start`] creates.
pub const BUCKET: &str = "cassette";

/// Which S3-compatible server to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum S3Kind {
    /// s3s-fs 0.14.1: a Rust S3 server over a directory. Checks SigV4 signatures, stores each
    /// object as a plain file `root/<bucket>/<key>` (its metadata and multipart parts live in
    /// hidden files directly under `root`, never under the bucket directory), refuses non-last
    /// multipart parts under 5 MiB. Does not implement ListMultipartUploads.
    S3sFs,
    /// moto 5's server (Python, in memory). Accepts any signature and any key, logs one line per
    /// request, so tests can count requests per HTTP method ([`S3Server::requests`]).
    Moto,
}

impl S3Kind {
    /// The name the harness script knows it by: `s3s-fs` or `moto`.
    pub fn name(self) -> &'static str {
        match self {
            S3Kind::S3sFs => "s3s-fs",
            S3Kind::Moto => "moto",
        }
    }
}

/// One request in moto's log: `"PUT /cassette/key?partNumber=1&uploadId=… HTTP/1.1" 200`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedRequest {
    /// The HTTP method, e.g. `PUT`.
    pub method: String,
    /// The path with its query string, decoded as the server logs it, e.g. `/cassette/a/b?uploads`.
    pub path: String,
    /// The response status, e.g. 200 (0 if the line has none).
    pub status: u16,
}

/// A running S3-compatible server on 127.0.0.1 with one bucket, [`BUCKET`]. Stopped on drop.
#[derive(Debug)]
pub struct S3Server {
    /// Which server this is.
    pub kind: S3Kind,
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    /// The bucket made by [`S3Server::start`]: `cassette`.
    pub bucket: String,
    /// The access key: [`ACCESS_KEY`].
    pub access_key: String,
    /// The secret key: [`SECRET_KEY`].
    pub secret_key: String,
    /// The server's data directory: s3s-fs's root (the bucket is the directory `root/<bucket>`);
    /// for moto only its working and temporary directory.
    pub root: PathBuf,
    /// The server's log (`<dir>/<kind>.log`, beside `root`).
    pub log: PathBuf,
    /// The port on 127.0.0.1.
    pub port: u16,
    /// This server's own directory (`root`, the log, the pid file), removed on drop unless the
    /// test is panicking.
    dir: PathBuf,
    /// The length of the log once the bucket was made: [`S3Server::requests`] counts after it.
    log_start: u64,
}

/// `harness/s3/s3.sh`.
pub fn s3_harness_script() -> PathBuf {
    repo_root().join("harness/s3/s3.sh")
}

impl S3Server {
    /// Starts a new server of this kind on a free port of 127.0.0.1 and creates the bucket
    /// `cassette` (s3s-fs: a directory under its root, which is what its CreateBucket does;
    /// moto: an unsigned CreateBucket request, as moto checks no signatures).
    ///
    /// Panics, with the harness's output and the server's log tail, if the server is not
    /// installed (`bash harness/s3/s3.sh install`) or does not start.
    pub fn start(kind: S3Kind) -> S3Server {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = cluster_root().join(format!("s3-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let root = dir.join("data");
        std::fs::create_dir_all(&root).unwrap_or_else(|e| panic!("create {}: {e}", root.display()));
        let log = dir.join(format!("{}.log", kind.name()));

        // A free port can be taken between the harness choosing it and the server binding it:
        // retry that case only.
        let mut attempt = 0;
        let port = loop {
            attempt += 1;
            match run_start(kind, &root) {
                Ok(port) => break port,
                Err(msg) if attempt < 3 && (msg.contains("Address already in use") || msg.contains("is taken")) => {
                    continue;
                }
                Err(msg) => {
                    let log_tail = tail(&log, 40);
                    if !log.exists() {
                        let _ = std::fs::remove_dir_all(&dir); // nothing to inspect
                    }
                    panic!(
                        "the {} S3 test server could not be started, so this test cannot run.\n\
                         Is it installed? Run: bash {} install\n{msg}\n{log_tail}",
                        kind.name(),
                        s3_harness_script().display(),
                    )
                }
            }
        };

        let mut server = S3Server {
            kind,
            endpoint: format!("http://127.0.0.1:{port}"),
            bucket: BUCKET.to_string(),
            access_key: ACCESS_KEY.to_string(),
            secret_key: SECRET_KEY.to_string(),
            root,
            log,
            port,
            dir,
            log_start: 0,
        };
        match kind {
            S3Kind::S3sFs => {
                let b = server.root.join(BUCKET);
                std::fs::create_dir(&b).unwrap_or_else(|e| panic!("create bucket directory {}: {e}", b.display()));
            }
            S3Kind::Moto => {
                let status = server.unsigned_request("PUT", &format!("/{BUCKET}"));
                if status != 200 {
                    panic!("moto answered {status} to CreateBucket {BUCKET}\n{}", server.log_tail(30));
                }
            }
        }
        server.log_start = std::fs::metadata(&server.log).map(|m| m.len()).unwrap_or(0);
        server
    }

    /// `s3://cassette/<prefix>` (no trailing slash added; an empty prefix gives `s3://cassette`).
    pub fn url(&self, prefix: &str) -> String {
        let prefix = prefix.trim_start_matches('/');
        if prefix.is_empty() { format!("s3://{}", self.bucket) } else { format!("s3://{}/{prefix}", self.bucket) }
    }

    /// The environment cassette (object_store's `AmazonS3Builder::from_env`) needs to reach this
    /// server: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION=us-east-1`,
    /// `AWS_ENDPOINT` and `AWS_ENDPOINT_URL` (the endpoint), `AWS_ALLOW_HTTP=true`.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ACCESS_KEY_ID", self.access_key.as_str()),
            ("AWS_SECRET_ACCESS_KEY", self.secret_key.as_str()),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ENDPOINT", self.endpoint.as_str()),
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
            ("AWS_ALLOW_HTTP", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// Moto only: how many requests with this HTTP method (`PUT`, `GET`, `HEAD`, `POST`,
    /// `DELETE`; any case) the server has logged since [`S3Server::start`] made the bucket.
    /// Multipart uploads count as: POST (create), PUT per part, POST (complete).
    ///
    /// Panics for s3s-fs, which logs no requests: use [`S3Server::object_files`] there.
    pub fn requests(&self, method: &str) -> usize {
        self.request_log().iter().filter(|r| r.method.eq_ignore_ascii_case(method)).count()
    }

    /// Moto only: every request the server has logged since [`S3Server::start`] made the bucket,
    /// in order. Panics for s3s-fs, which logs no requests.
    pub fn request_log(&self) -> Vec<LoggedRequest> {
        if self.kind != S3Kind::Moto {
            panic!(
                "S3Server::requests/request_log: {} does not log requests; count its stored objects \
                 with S3Server::object_files() instead, or start S3Kind::Moto",
                self.kind.name()
            );
        }
        let mut f = std::fs::File::open(&self.log).unwrap_or_else(|e| panic!("open {}: {e}", self.log.display()));
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes).unwrap_or_else(|e| panic!("read {}: {e}", self.log.display()));
        let text = String::from_utf8_lossy(&bytes[(self.log_start as usize).min(bytes.len())..]).into_owned();
        text.lines().filter_map(|l| parse_request_line(&strip_ansi(l))).collect()
    }

    /// S3s-fs only: the files under `root/<bucket>` (sorted), i.e. one per stored object, at
    /// `root/<bucket>/<key>`. s3s-fs keeps nothing else there: object metadata
    /// (`.bucket-*.object-*.metadata.json`, `.internal.json` with the ETag), upload ids
    /// (`.upload-*.json`), uploaded parts (`.upload_id-*.part-N`) and writes in progress
    /// (`.tmp.N.internal.part`, renamed into place when complete) are all directly under `root`.
    /// Empty directories left by deleted keys are not listed.
    ///
    /// Panics for moto, which keeps objects in memory.
    pub fn object_files(&self) -> Vec<PathBuf> {
        if self.kind != S3Kind::S3sFs {
            panic!(
                "S3Server::object_files: {} keeps objects in memory; list them through the S3 API \
                 or count requests with S3Server::requests()",
                self.kind.name()
            );
        }
        let mut out = Vec::new();
        walk(&self.root.join(&self.bucket), &mut out);
        out.sort();
        out
    }

    /// The files under `root` that are s3s-fs's own bookkeeping (metadata, ETags, multipart
    /// uploads and parts, writes in progress), not objects. S3s-fs only.
    pub fn internal_files(&self) -> Vec<PathBuf> {
        assert_eq!(self.kind, S3Kind::S3sFs, "S3Server::internal_files is for s3s-fs");
        let mut out: Vec<PathBuf> = std::fs::read_dir(&self.root)
            .unwrap_or_else(|e| panic!("read {}: {e}", self.root.display()))
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
            .map(|e| e.path())
            .collect();
        out.sort();
        out
    }

    /// The last `lines` lines of the server's log, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log, lines)
    }

    /// Sends one unsigned request with an empty body and returns the response status.
    fn unsigned_request(&self, method: &str, path: &str) -> u16 {
        let addr = format!("127.0.0.1:{}", self.port);
        let mut s = TcpStream::connect(&addr).unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        s.set_read_timeout(Some(Duration::from_secs(30))).ok();
        write!(s, "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .unwrap_or_else(|e| panic!("send to {addr}: {e}"));
        let mut resp = String::new();
        let _ = s.read_to_string(&mut resp);
        resp.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = Command::new("bash").arg(s3_harness_script()).arg("stop").arg("--dir").arg(&self.root).output();
        if std::thread::panicking() {
            eprintln!(
                "{} S3 test server kept for inspection: {}\n{}",
                self.kind.name(),
                self.dir.display(),
                self.log_tail(20)
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn run_start(kind: S3Kind, root: &Path) -> Result<u16, String> {
    let out = Command::new("bash")
        .arg(s3_harness_script())
        .args(["start", "--kind", kind.name(), "--owner", &std::process::id().to_string(), "--dir"])
        .arg(root)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", s3_harness_script().display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!("{stdout}{stderr}"));
    }
    stdout.trim().parse().map_err(|_| format!("the harness printed no port:\n{stdout}{stderr}"))
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.filter_map(|e| e.ok()) {
        match e.file_type() {
            Ok(t) if t.is_dir() => walk(&e.path(), out),
            Ok(t) if t.is_file() => out.push(e.path()),
            _ => {}
        }
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| format!("(cannot read {}: {e})", path.display()));
    let all: Vec<&str> = text.lines().collect();
    format!(
        "----- {} (last {lines} lines) -----\n{}",
        path.display(),
        all[all.len().saturating_sub(lines)..].join("\n")
    )
}

/// Removes ANSI colour sequences (`ESC [ ... m`), in case werkzeug colours its log after all.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Parses werkzeug's `127.0.0.1 - - [date] "PUT /path HTTP/1.1" 200 -`.
fn parse_request_line(line: &str) -> Option<LoggedRequest> {
    let start = line.find("] \"")? + 3;
    let rest = &line[start..];
    let end = rest.rfind('"')?;
    let request = &rest[..end];
    let (method, after) = request.split_once(' ')?;
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let path = after.rsplit_once(' ').map(|(p, _)| p).unwrap_or(after).to_string();
    let status = rest[end + 1..].split_whitespace().next().and_then(|s| s.parse().ok()).unwrap_or(0);
    Some(LoggedRequest { method: method.to_string(), path, status })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_werkzeug_request_lines() {
        let l = "127.0.0.1 - - [01/Dec/2026 06:32:59] \"PUT /cassette/a/b.txt?partNumber=1&uploadId=x HTTP/1.1\" 200 -";
        assert_eq!(
            parse_request_line(l),
            Some(LoggedRequest {
                method: "PUT".into(),
                path: "/cassette/a/b.txt?partNumber=1&uploadId=x".into(),
                status: 200
            })
        );
        let coloured =
            "127.0.0.1 - - [01/Dec/2026 06:32:59] \"\u{1b}[31m\u{1b}[1mGET /cassette/x HTTP/1.1\u{1b}[0m\" 404 -";
        let r = parse_request_line(&strip_ansi(coloured)).unwrap();
        assert_eq!((r.method.as_str(), r.path.as_str(), r.status), ("GET", "/cassette/x", 404));
        assert_eq!(parse_request_line(" * Running on http://127.0.0.1:5000"), None);
        assert_eq!(parse_request_line("Press CTRL+C to quit"), None);
    }

    #[test]
    fn urls() {
        let s = S3Server {
            kind: S3Kind::Moto,
            endpoint: "http://127.0.0.1:1".into(),
            bucket: BUCKET.into(),
            access_key: ACCESS_KEY.into(),
            secret_key: SECRET_KEY.into(),
            root: PathBuf::from("/nonexistent"),
            log: PathBuf::from("/nonexistent/moto.log"),
            port: 1,
            dir: PathBuf::from("/nonexistent"),
            log_start: 0,
        };
        assert_eq!(s.url("a/b"), "s3://cassette/a/b");
        assert_eq!(s.url(""), "s3://cassette");
        assert!(s.env().contains(&("AWS_ENDPOINT".to_string(), "http://127.0.0.1:1".to_string())));
        std::mem::forget(s); // no server to stop
    }
}
