//! Real object-storage servers on loopback, for the object-storage tests: S3 (s3s-fs, moto),
//! Azure Blob (Azurite) and Google Cloud Storage (fake-gcs-server).
//!
//! [`StoreServer::start`] starts one server of the chosen [`StoreKind`] through the project's own
//! `harness/s3/s3.sh` (installed by `bash harness/s3/s3.sh install`, which `scripts/test` runs),
//! in a directory of its own under [`cluster_root`] (`s3-<pid>-<n>`), and creates the bucket (or
//! container) `cassette` in it. Each call starts a new, empty server; dropping the
//! [`StoreServer`] stops it. A server that cannot start makes the test panic with the reason and
//! the server's log tail: these tests are never skipped.
//!
//! | kind | what | URL | signatures | request log |
//! |------|------|-----|------------|-------------|
//! | [`StoreKind::S3sFs`] | s3s-fs 0.14.1 (crates.io): objects are plain files under `root/cassette/` | `s3://` | checked (SigV4) | no: look at [`StoreServer::object_files`] |
//! | [`StoreKind::Moto`] | moto 5 (PyPI) server, in memory | `s3://` | not checked | yes: [`StoreServer::requests`] |
//! | [`StoreKind::Azurite`] | Azurite 3.37 (npm), blob service, in memory | `az://` | checked (Shared Key) | no |
//! | [`StoreKind::FakeGcs`] | fake-gcs-server 1.56 (Go), objects under `root/cassette/` | `gs://` | any bearer token | no |
//!
//! On every kind, [`StoreServer::objects`], [`StoreServer::get`], [`StoreServer::put`] and
//! [`StoreServer::delete`] reach the stored objects through the server's own API (object_store,
//! as cassette does).
//!
//! ```no_run
//! use cassette_testkit::s3::{StoreKind, StoreServer};
//! let s3 = StoreServer::start(StoreKind::Azurite);
//! let url = s3.url("backups"); // az://cassette/backups
//! // run cassette with `.envs(s3.env())` and `url`.
//! # let _ = url;
//! ```

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::path::Path as ObjectPath;
use object_store::{ClientOptions, ObjectMeta, ObjectStore, ObjectStoreExt};

use crate::{cluster_root, repo_root};

/// The access key both S3 servers are started with.
pub const ACCESS_KEY: &str = "cassette-test";
/// The secret key both S3 servers are started with (moto accepts any; s3s-fs only this one).
pub const SECRET_KEY: &str = "cassette-test-secret";
/// Azurite's well-known development account (the default of Azurite and of object_store's
/// emulator mode).
pub const AZURITE_ACCOUNT: &str = "devstoreaccount1";
/// The published key of [`AZURITE_ACCOUNT`] (from Azurite's README: not a secret).
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
/// The bucket (Azure: container) [`StoreServer::start`] creates.
pub const BUCKET: &str = "cassette";

/// The names the S3-only fixture had; every kind works through them.
pub type S3Kind = StoreKind;
/// See [`S3Kind`].
pub type S3Server = StoreServer;

/// Which object-storage server to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoreKind {
    /// s3s-fs 0.14.1: a Rust S3 server over a directory. Checks SigV4 signatures, stores each
    /// object as a plain file `root/<bucket>/<key>` (its metadata and multipart parts live in
    /// hidden files directly under `root`, never under the bucket directory), refuses non-last
    /// multipart parts under 5 MiB. Does not implement ListMultipartUploads.
    S3sFs,
    /// moto 5's server (Python, in memory). Accepts any signature and any key, logs one line per
    /// request, so tests can count requests per HTTP method ([`StoreServer::requests`]).
    Moto,
    /// Azurite 3.37's blob service (Node.js, in memory): Azure Blob Storage with the well-known
    /// development account [`AZURITE_ACCOUNT`], Shared Key signatures checked, path-style URLs
    /// `http://127.0.0.1:<port>/<account>/<container>/<blob>`. cassette reaches it as `az://`.
    Azurite,
    /// fake-gcs-server 1.56 (Go): Google Cloud Storage's JSON and XML APIs, objects stored under
    /// `root/<bucket>/`, any bearer token accepted (cassette signs its JWTs with a throwaway
    /// service-account key all the same). cassette reaches it as `gs://`.
    FakeGcs,
}

impl StoreKind {
    /// The name the harness script knows it by: `s3s-fs`, `moto`, `azurite` or `fake-gcs`.
    pub fn name(self) -> &'static str {
        match self {
            StoreKind::S3sFs => "s3s-fs",
            StoreKind::Moto => "moto",
            StoreKind::Azurite => "azurite",
            StoreKind::FakeGcs => "fake-gcs",
        }
    }

    /// The URL scheme cassette reaches it by: `s3`, `az` or `gs`.
    pub fn scheme(self) -> &'static str {
        match self {
            StoreKind::S3sFs | StoreKind::Moto => "s3",
            StoreKind::Azurite => "az",
            StoreKind::FakeGcs => "gs",
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

/// A running object-storage server on 127.0.0.1 with one bucket, [`BUCKET`]. Stopped on drop.
#[derive(Debug)]
pub struct StoreServer {
    /// Which server this is.
    pub kind: StoreKind,
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    /// The bucket (Azure: container) made by [`StoreServer::start`]: `cassette`.
    pub bucket: String,
    /// The access key: [`ACCESS_KEY`]; Azurite: the account name, [`AZURITE_ACCOUNT`];
    /// fake-gcs-server: the service account's e-mail.
    pub access_key: String,
    /// The secret key: [`SECRET_KEY`]; Azurite: the account key, [`AZURITE_KEY`];
    /// fake-gcs-server: empty (the key is in [`StoreServer::service_account`]).
    pub secret_key: String,
    /// fake-gcs-server only: the service-account JSON file (a throwaway RSA key the harness made
    /// with openssl) cassette signs its tokens with.
    pub service_account: Option<PathBuf>,
    /// The server's data directory: s3s-fs's and fake-gcs-server's root (the bucket is the
    /// directory `root/<bucket>`); for moto only its working and temporary directory; unused by
    /// Azurite (in memory).
    pub root: PathBuf,
    /// The server's log (`<dir>/<kind>.log`, beside `root`).
    pub log: PathBuf,
    /// The port on 127.0.0.1.
    pub port: u16,
    /// This server's own directory (`root`, the log, the pid file), removed on drop unless the
    /// test is panicking.
    dir: PathBuf,
    /// The length of the log once the bucket was made: [`StoreServer::requests`] counts after it.
    log_start: u64,
}

/// `harness/s3/s3.sh`.
pub fn s3_harness_script() -> PathBuf {
    repo_root().join("harness/s3/s3.sh")
}

impl StoreServer {
    /// Starts a new server of this kind on a free port of 127.0.0.1 and creates the bucket
    /// `cassette` (s3s-fs: a directory under its root, which is what its CreateBucket does;
    /// moto: an unsigned CreateBucket request, as moto checks no signatures; Azurite: a Create
    /// Container request signed with the account key, by the harness; fake-gcs-server: a JSON
    /// API bucket insert).
    ///
    /// Panics, with the harness's output and the server's log tail, if the server is not
    /// installed (`bash harness/s3/s3.sh install`) or does not start.
    pub fn start(kind: StoreKind) -> StoreServer {
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
                Err(msg)
                    if attempt < 3
                        && (msg.contains("Address already in use")
                            || msg.contains("is taken")
                            || msg.contains("EADDRINUSE")) =>
                {
                    continue;
                }
                Err(msg) => {
                    let log_tail = tail(&log, 40);
                    if !log.exists() {
                        let _ = std::fs::remove_dir_all(&dir); // nothing to inspect
                    }
                    panic!(
                        "the {} object-storage test server could not be started, so this test cannot run.\n\
                         Is it installed? Run: bash {} install\n{msg}\n{log_tail}",
                        kind.name(),
                        s3_harness_script().display(),
                    )
                }
            }
        };

        let (access_key, secret_key, service_account) = match kind {
            StoreKind::S3sFs | StoreKind::Moto => (ACCESS_KEY.to_string(), SECRET_KEY.to_string(), None),
            StoreKind::Azurite => (AZURITE_ACCOUNT.to_string(), AZURITE_KEY.to_string(), None),
            StoreKind::FakeGcs => {
                let file = dir.join("fake-gcs.service-account.json");
                let json: serde_json::Value = std::fs::read_to_string(&file)
                    .ok()
                    .and_then(|t| serde_json::from_str(&t).ok())
                    .unwrap_or_else(|| panic!("the harness wrote no service account file {}", file.display()));
                (json["client_email"].as_str().unwrap_or_default().to_string(), String::new(), Some(file))
            }
        };
        let mut server = StoreServer {
            kind,
            endpoint: format!("http://127.0.0.1:{port}"),
            bucket: BUCKET.to_string(),
            access_key,
            secret_key,
            service_account,
            root,
            log,
            port,
            dir,
            log_start: 0,
        };
        match kind {
            StoreKind::S3sFs => {
                let b = server.root.join(BUCKET);
                std::fs::create_dir(&b).unwrap_or_else(|e| panic!("create bucket directory {}: {e}", b.display()));
            }
            StoreKind::Moto => {
                let (status, _) = server.unsigned_request("PUT", &format!("/{BUCKET}"), "");
                if status != 200 {
                    panic!("moto answered {status} to CreateBucket {BUCKET}\n{}", server.log_tail(30));
                }
            }
            StoreKind::Azurite => {
                let out = Command::new("bash")
                    .arg(s3_harness_script())
                    .args(["azurite-container", &port.to_string(), BUCKET])
                    .output()
                    .unwrap_or_else(|e| panic!("cannot run {}: {e}", s3_harness_script().display()));
                if !out.status.success() {
                    panic!(
                        "Azurite: creating the container {BUCKET} failed: {}\n{}",
                        String::from_utf8_lossy(&out.stderr),
                        server.log_tail(30)
                    );
                }
            }
            StoreKind::FakeGcs => {
                // fake-gcs-server checks no credentials: an unauthenticated JSON API insert.
                let (status, body) = server.unsigned_request(
                    "POST",
                    "/storage/v1/b?project=cassette",
                    &format!(r#"{{"name":"{BUCKET}"}}"#),
                );
                if status != 200 {
                    panic!(
                        "fake-gcs-server answered {status} to creating bucket {BUCKET}: {body}\n{}",
                        server.log_tail(30)
                    );
                }
            }
        }
        server.log_start = std::fs::metadata(&server.log).map(|m| m.len()).unwrap_or(0);
        server
    }

    /// Stops the server, keeping its data (s3s-fs and fake-gcs-server keep it on disk): the
    /// repository is unreachable until [`StoreServer::restart`].
    pub fn stop_for_now(&self) {
        let out =
            Command::new("bash").arg(s3_harness_script()).arg("stop").arg("--dir").arg(&self.root).output().unwrap();
        assert!(out.status.success(), "stopping {}: {}", self.kind.name(), String::from_utf8_lossy(&out.stderr));
    }

    /// Starts the server again on the same data, on a new port ([`StoreServer::env`] gives the
    /// new endpoint).
    pub fn restart(&mut self) {
        assert!(
            matches!(self.kind, StoreKind::S3sFs | StoreKind::FakeGcs),
            "{} keeps no data across a restart",
            self.kind.name()
        );
        let port = run_start(self.kind, &self.root).unwrap_or_else(|e| panic!("restarting {}: {e}", self.kind.name()));
        self.port = port;
        self.endpoint = format!("http://127.0.0.1:{port}");
    }

    /// `s3://cassette/<prefix>` (Azurite: `az://`, fake-gcs-server: `gs://`; no trailing slash
    /// added; an empty prefix gives `s3://cassette`).
    pub fn url(&self, prefix: &str) -> String {
        let prefix = prefix.trim_start_matches('/');
        let scheme = self.kind.scheme();
        if prefix.is_empty() {
            format!("{scheme}://{}", self.bucket)
        } else {
            format!("{scheme}://{}/{prefix}", self.bucket)
        }
    }

    /// The environment cassette needs to reach this server (what object_store's builders read
    /// in `from_env`):
    /// - S3: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION=us-east-1`, `AWS_ENDPOINT`
    ///   and `AWS_ENDPOINT_URL` (the endpoint), `AWS_ALLOW_HTTP=true`;
    /// - Azurite: `AZURE_STORAGE_USE_EMULATOR=true`, `AZURITE_BLOB_STORAGE_URL` (the endpoint),
    ///   `AZURE_STORAGE_ACCOUNT_NAME`, `AZURE_STORAGE_ACCOUNT_KEY`;
    /// - fake-gcs-server: `GOOGLE_SERVICE_ACCOUNT` (the JSON file), `GOOGLE_BASE_URL` (the
    ///   endpoint), `GOOGLE_ALLOW_HTTP=true`.
    pub fn env(&self) -> Vec<(String, String)> {
        let sa = self.service_account.as_ref().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
        let pairs: Vec<(&str, &str)> = match self.kind {
            StoreKind::S3sFs | StoreKind::Moto => vec![
                ("AWS_ACCESS_KEY_ID", self.access_key.as_str()),
                ("AWS_SECRET_ACCESS_KEY", self.secret_key.as_str()),
                ("AWS_REGION", "us-east-1"),
                ("AWS_ENDPOINT", self.endpoint.as_str()),
                ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
                ("AWS_ALLOW_HTTP", "true"),
            ],
            StoreKind::Azurite => vec![
                ("AZURE_STORAGE_USE_EMULATOR", "true"),
                ("AZURITE_BLOB_STORAGE_URL", self.endpoint.as_str()),
                ("AZURE_STORAGE_ACCOUNT_NAME", self.access_key.as_str()),
                ("AZURE_STORAGE_ACCOUNT_KEY", self.secret_key.as_str()),
            ],
            StoreKind::FakeGcs => vec![
                ("GOOGLE_SERVICE_ACCOUNT", sa.as_str()),
                ("GOOGLE_BASE_URL", self.endpoint.as_str()),
                ("GOOGLE_ALLOW_HTTP", "true"),
            ],
        };
        pairs.into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// A client of this server's bucket, configured explicitly (not from this process's
    /// environment), as cassette would reach it.
    pub fn store(&self) -> Arc<dyn ObjectStore> {
        self.store_of(&self.bucket)
    }

    /// A client of another bucket of this server (S3 only; others: [`StoreServer::store`]).
    pub fn store_of(&self, bucket: &str) -> Arc<dyn ObjectStore> {
        let allow_http = ClientOptions::new().with_allow_http(true);
        let built: object_store::Result<Arc<dyn ObjectStore>> = match self.kind {
            StoreKind::S3sFs | StoreKind::Moto => AmazonS3Builder::new()
                .with_bucket_name(bucket)
                .with_endpoint(&self.endpoint)
                .with_access_key_id(&self.access_key)
                .with_secret_access_key(&self.secret_key)
                .with_region("us-east-1")
                .with_client_options(allow_http)
                .build()
                .map(|s| Arc::new(s) as _),
            // Azurite's path-style URLs: the account is the endpoint's first path segment.
            StoreKind::Azurite => MicrosoftAzureBuilder::new()
                .with_account(&self.access_key)
                .with_access_key(&self.secret_key)
                .with_container_name(&self.bucket)
                .with_endpoint(format!("{}/{}", self.endpoint, self.access_key))
                .with_client_options(allow_http)
                .build()
                .map(|s| Arc::new(s) as _),
            StoreKind::FakeGcs => GoogleCloudStorageBuilder::new()
                .with_bucket_name(&self.bucket)
                .with_service_account_path(self.service_account.as_ref().unwrap().to_string_lossy())
                .with_base_url(&self.endpoint)
                .with_client_options(allow_http)
                .build()
                .map(|s| Arc::new(s) as _),
        };
        built.unwrap_or_else(|e| panic!("an object_store client for {}: {e}", self.kind.name()))
    }

    /// Every object of the bucket, by key, through the server's API (sorted).
    pub async fn objects(&self) -> BTreeMap<String, ObjectMeta> {
        self.objects_of(&self.bucket).await
    }

    /// Every object of `bucket` of this server, by key (S3 only).
    pub async fn objects_of(&self, bucket: &str) -> BTreeMap<String, ObjectMeta> {
        let list: Vec<ObjectMeta> = self
            .store_of(bucket)
            .list(None)
            .try_collect()
            .await
            .unwrap_or_else(|e| panic!("list the objects of {}: {e}\n{}", self.kind.name(), self.log_tail(20)));
        list.into_iter().map(|m| (m.location.to_string(), m)).collect()
    }

    /// The bytes of object `key`.
    pub async fn get(&self, key: &str) -> Vec<u8> {
        let got = self.store().get(&ObjectPath::from(key)).await;
        let bytes = match got {
            Ok(r) => r.bytes().await,
            Err(e) => Err(e),
        };
        bytes.unwrap_or_else(|e| panic!("get {key} from {}: {e}", self.kind.name())).to_vec()
    }

    /// Writes (or overwrites) object `key`.
    pub async fn put(&self, key: &str, bytes: Vec<u8>) {
        self.store()
            .put(&ObjectPath::from(key), bytes.into())
            .await
            .unwrap_or_else(|e| panic!("put {key} on {}: {e}", self.kind.name()));
    }

    /// Deletes object `key`.
    pub async fn delete(&self, key: &str) {
        self.store()
            .delete(&ObjectPath::from(key))
            .await
            .unwrap_or_else(|e| panic!("delete {key} on {}: {e}", self.kind.name()));
    }

    /// Moto only: how many requests with this HTTP method (`PUT`, `GET`, `HEAD`, `POST`,
    /// `DELETE`; any case) the server has logged since [`StoreServer::start`] made the bucket.
    /// Multipart uploads count as: POST (create), PUT per part, POST (complete).
    ///
    /// Panics for s3s-fs, which logs no requests: use [`StoreServer::objects`] there.
    pub fn requests(&self, method: &str) -> usize {
        self.request_log().iter().filter(|r| r.method.eq_ignore_ascii_case(method)).count()
    }

    /// Moto only: every request the server has logged since [`StoreServer::start`] made the bucket,
    /// in order. Panics for s3s-fs, which logs no requests.
    pub fn request_log(&self) -> Vec<LoggedRequest> {
        if self.kind != StoreKind::Moto {
            panic!(
                "StoreServer::requests/request_log: {} does not log requests; look at its stored \
                 objects with StoreServer::objects() instead, or start StoreKind::Moto",
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
        if self.kind != StoreKind::S3sFs {
            panic!(
                "StoreServer::object_files: is for s3s-fs; list the objects of {} with \
                 StoreServer::objects()",
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
        assert_eq!(self.kind, StoreKind::S3sFs, "StoreServer::internal_files is for s3s-fs");
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

    /// Sends one unsigned request (a JSON body, or none if empty) and returns the response
    /// status and the whole response, for messages.
    fn unsigned_request(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        self.unsigned_request_with(method, path, "", body)
    }

    /// `headers`: extra header lines, each ending in `\r\n`.
    fn unsigned_request_with(&self, method: &str, path: &str, headers: &str, body: &str) -> (u16, String) {
        let addr = format!("127.0.0.1:{}", self.port);
        let mut s = TcpStream::connect(&addr).unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        s.set_read_timeout(Some(Duration::from_secs(30))).ok();
        let content_type = if body.is_empty() { "" } else { "Content-Type: application/json\r\n" };
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{content_type}{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap_or_else(|e| panic!("send to {addr}: {e}"));
        let mut resp = String::new();
        let _ = s.read_to_string(&mut resp);
        (resp.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0), resp)
    }
}

/// Moto only: S3 Object Lock, through unsigned requests (moto checks no signatures).
impl StoreServer {
    /// Makes bucket `bucket` with Object Lock enabled (and so versioning).
    pub fn create_locked_bucket(&self, bucket: &str) {
        assert_eq!(self.kind, StoreKind::Moto, "only moto's buckets are made with Object Lock here");
        let (status, body) =
            self.unsigned_request_with("PUT", &format!("/{bucket}"), "x-amz-bucket-object-lock-enabled: true\r\n", "");
        assert_eq!(status, 200, "CreateBucket {bucket} with Object Lock: {body}");
    }

    /// The retention of the current version of `key` in `bucket`, as a HEAD reports it: (mode,
    /// retain-until date), or `None` when it has none.
    pub fn retention(&self, bucket: &str, key: &str) -> Option<(String, String)> {
        let path = format!("/{bucket}/{}", encode_key(key));
        let (status, response) = self.unsigned_request_with("HEAD", &path, &moto_authorization(), "");
        assert_eq!(status, 200, "HEAD {bucket}/{key}: {response}");
        let header = |name: &str| {
            response.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
            })
        };
        Some((header("x-amz-object-lock-mode")?, header("x-amz-object-lock-retain-until-date")?))
    }

    /// The version IDs of `key` in `bucket`, newest first (delete markers included).
    pub fn versions(&self, bucket: &str, key: &str) -> Vec<String> {
        let path = format!("/{bucket}?versions&prefix={}", encode_key(key));
        let (status, body) = self.unsigned_request_with("GET", &path, &moto_authorization(), "");
        assert_eq!(status, 200, "ListObjectVersions {bucket}/{key}: {body}");
        body.split("<VersionId>").skip(1).filter_map(|s| s.split("</VersionId>").next()).map(str::to_owned).collect()
    }

    /// Deletes one version of `key` (what a lock forbids): the HTTP status.
    pub fn delete_version(&self, bucket: &str, key: &str, version: &str) -> u16 {
        let path = format!("/{bucket}/{}?versionId={version}", encode_key(key));
        self.unsigned_request_with("DELETE", &path, &moto_authorization(), "").0
    }
}

/// An Authorization header naming [`ACCESS_KEY`]: moto checks no signature, but answers 403
/// to anonymous reads of a private object.
fn moto_authorization() -> String {
    format!(
        "Authorization: AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0\r\n"
    )
}

/// A key for a request line: each byte but unreserved ones and `/` percent-encoded.
fn encode_key(key: &str) -> String {
    key.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Drop for StoreServer {
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

fn run_start(kind: StoreKind, root: &Path) -> Result<u16, String> {
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

    /// A server value that was never started (dropping it would run the harness: forget it).
    fn unstarted(kind: StoreKind, access_key: &str, service_account: Option<PathBuf>) -> StoreServer {
        StoreServer {
            kind,
            endpoint: "http://127.0.0.1:1".into(),
            bucket: BUCKET.into(),
            access_key: access_key.into(),
            secret_key: SECRET_KEY.into(),
            service_account,
            root: PathBuf::from("/nonexistent"),
            log: PathBuf::from("/nonexistent/server.log"),
            port: 1,
            dir: PathBuf::from("/nonexistent"),
            log_start: 0,
        }
    }

    #[test]
    fn urls() {
        let endpoint = "http://127.0.0.1:1".to_string();
        let s = unstarted(StoreKind::Moto, ACCESS_KEY, None);
        assert_eq!(s.url("a/b"), "s3://cassette/a/b");
        assert_eq!(s.url(""), "s3://cassette");
        assert!(s.env().contains(&("AWS_ENDPOINT".to_string(), endpoint.clone())));
        let az = unstarted(StoreKind::Azurite, AZURITE_ACCOUNT, None);
        assert_eq!(az.url("a/b"), "az://cassette/a/b");
        assert!(az.env().contains(&("AZURITE_BLOB_STORAGE_URL".to_string(), endpoint.clone())));
        assert!(az.env().contains(&("AZURE_STORAGE_ACCOUNT_NAME".to_string(), AZURITE_ACCOUNT.to_string())));
        let gs = unstarted(StoreKind::FakeGcs, "", Some("/sa.json".into()));
        assert_eq!(gs.url(""), "gs://cassette");
        assert!(gs.env().contains(&("GOOGLE_SERVICE_ACCOUNT".to_string(), "/sa.json".to_string())));
        assert!(gs.env().contains(&("GOOGLE_BASE_URL".to_string(), endpoint)));
        for server in [s, az, gs] {
            std::mem::forget(server);
        }
    }
}
