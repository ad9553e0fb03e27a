//! `cassette server` and three `cassette agent`s (one per node of the trio) as processes on
//! free ports, driven over HTTP.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cassette_testkit::Cluster;
use serde_json::Value;

/// A token as strong as the services want (`openssl rand -hex 24`).
pub const TOKEN: &str = "5f1c0e9a7b3d42c8a61f9e0b7d2c4a85e3f1b6d09c7a2e48";

/// Three agents (one per node of the trio) and a server, as processes on free ports.
pub struct Services {
    cluster: &'static Cluster,
    root: PathBuf,
    db: PathBuf,
    agent_ports: Vec<u16>,
    agents: Vec<Option<Child>>,
    server_port: u16,
    server: Option<Child>,
    logs: tempfile::TempDir,
    pub http: reqwest::Client,
    /// More options for the server (e.g. webhooks).
    pub server_args: Vec<String>,
    /// More environment for the agents (e.g. a test hook).
    agent_env: Vec<(String, String)>,
    /// More options for the agents (e.g. a secured node's logins).
    agent_args: Vec<String>,
    /// More options for one agent each (e.g. its node's stop and start commands).
    each_agent_args: Vec<Vec<String>>,
}

/// A port free now and never handed out before in this process: the kernel may give the same
/// ephemeral port to two binds in a row once the first is closed, and an agent and a server on
/// one port make the second fail to start while the test talks to the first.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

impl Services {
    pub fn start(root: &Path) -> Services {
        Services::start_with(root, Vec::new())
    }

    pub fn start_with(root: &Path, server_args: Vec<String>) -> Services {
        Services::start_with_env(root, server_args, Vec::new())
    }

    /// Services whose agents also get `agent_env`.
    pub fn start_with_env(root: &Path, server_args: Vec<String>, agent_env: Vec<(String, String)>) -> Services {
        Services::start_on(Cluster::trio(), root, server_args, agent_env, Vec::new())
    }

    /// An agent per node of `cluster`, each also given `agent_args`, and a server.
    pub fn start_on(
        cluster: &'static Cluster,
        root: &Path,
        server_args: Vec<String>,
        agent_env: Vec<(String, String)>,
        agent_args: Vec<String>,
    ) -> Services {
        Services::start_each(cluster, root, server_args, agent_env, agent_args, Vec::new())
    }

    /// [`Services::start_on`], agent `i` also given `each_agent_args[i]`.
    pub fn start_each(
        cluster: &'static Cluster,
        root: &Path,
        server_args: Vec<String>,
        agent_env: Vec<(String, String)>,
        agent_args: Vec<String>,
        each_agent_args: Vec<Vec<String>>,
    ) -> Services {
        let logs = tempfile::tempdir().unwrap();
        let mut s = Services {
            cluster,
            root: root.to_path_buf(),
            db: logs.path().join("jobs.db"),
            agent_ports: cluster.nodes.iter().map(|_| free_port()).collect(),
            agents: cluster.nodes.iter().map(|_| None).collect(),
            server_port: free_port(),
            server: None,
            logs,
            // Idle connections are dropped before the services' header timeout (10 s) closes them.
            http: reqwest::Client::builder().pool_idle_timeout(Duration::from_secs(5)).build().unwrap(),
            server_args,
            agent_env,
            agent_args,
            each_agent_args,
        };
        for i in 0..cluster.nodes.len() {
            s.start_agent(i);
        }
        s.start_server();
        s
    }

    pub fn start_agent(&mut self, i: usize) {
        let node = &self.cluster.nodes[i];
        let log = std::fs::File::create(self.logs.path().join(format!("agent{i}.log"))).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_cassette"))
            .args(["agent", "--listen", &format!("127.0.0.1:{}", self.agent_ports[i])])
            .args(["--backup-dir", self.root.to_str().unwrap()])
            .args(&self.agent_args)
            .args(self.each_agent_args.get(i).into_iter().flatten())
            .env("CASSETTE_TOKEN", TOKEN)
            .env("CASSETTE_CQL_HOST", &node.ip)
            .env("CASSETTE_JMX_PORT", node.jmx_port.to_string())
            .env("CASSETTE_NODETOOL", cassette_testkit::nodetool_launcher())
            .env("CASSETTE_LOG", "info,cassette_cassandra=debug")
            .envs(self.agent_env.iter().map(|(k, v)| (k, v)))
            .env_remove("CASSANDRA_HOME")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start cassette agent");
        self.agents[i] = Some(child);
        if !wait_listening(self.agent_ports[i]) {
            panic!("agent {i} did not start:\n{}", self.log("agent", i));
        }
    }

    pub fn start_server(&mut self) {
        let agents: Vec<String> = self.agent_ports.iter().map(|p| format!("http://127.0.0.1:{p}")).collect();
        let log =
            std::fs::OpenOptions::new().create(true).append(true).open(self.logs.path().join("server.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_cassette"))
            .args(["server", "--listen", &format!("127.0.0.1:{}", self.server_port)])
            .args(["--agent", &agents.join(","), "--db", self.db.to_str().unwrap(), "--poll-ms", "200"])
            .args(&self.server_args)
            .env("CASSETTE_TOKEN", TOKEN)
            .env("CASSETTE_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start cassette server");
        self.server = Some(child);
        if !wait_listening(self.server_port) {
            panic!("server did not start:\n{}", self.log("server", 0));
        }
    }

    pub fn kill_agent(&mut self, i: usize) {
        if let Some(mut c) = self.agents[i].take() {
            c.kill().unwrap(); // SIGKILL
            c.wait().unwrap();
        }
    }

    pub fn kill_server(&mut self) {
        if let Some(mut c) = self.server.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    pub fn log(&self, what: &str, i: usize) -> String {
        let file = if what == "server" { "server.log".to_string() } else { format!("agent{i}.log") };
        std::fs::read_to_string(self.logs.path().join(file)).unwrap_or_default()
    }

    pub fn logs(&self) -> String {
        let mut out = self.log("server", 0);
        for i in 0..self.agents.len() {
            out.push_str(&format!("\n--- agent {i}\n{}", self.log("agent", i)));
        }
        out
    }

    /// The server's history database.
    pub fn db(&self) -> &Path {
        &self.db
    }

    /// The process IDs of the running agents and server.
    pub fn pids(&self) -> Vec<u32> {
        self.agents.iter().chain(std::iter::once(&self.server)).flatten().map(Child::id).collect()
    }

    /// Agent `i`'s URL, as the server is given it.
    pub fn agent_url(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.agent_ports[i])
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.server_port)
    }

    pub async fn get(&self, path: &str) -> Value {
        let resp = self.http.get(self.url(path)).send().await.unwrap();
        let status = resp.status();
        let body = resp.text().await.unwrap();
        assert!(status.is_success(), "GET {path}: {status}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    /// Polls `/v1/jobs` until a run of schedule `name` has ended, and returns that job.
    pub async fn first_scheduled_run(&self, name: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let jobs = self.get("/v1/jobs").await;
            let ended =
                jobs.as_array().unwrap().iter().find(|j| j["params"]["schedule"] == name && !j["finished"].is_null());
            if let Some(run) = ended {
                return run.clone();
            }
            assert!(Instant::now() < deadline, "no run of schedule '{name}' ended:\n{}", self.logs());
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// POST with the token: (status, body).
    pub async fn post(&self, path: &str) -> (u16, Value) {
        let resp = self.http.post(self.url(path)).bearer_auth(TOKEN).send().await.unwrap();
        (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
    }

    /// Polls `/cluster/<job>/status` until the job ends, calling `seen` with each status.
    pub async fn wait(&self, job: &str, mut seen: impl FnMut(&Value)) -> Value {
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let status = self.get(&format!("/cluster/{job}/status")).await;
            if status["running"] == false {
                return self.get(&format!("/cluster/{job}/last")).await;
            }
            seen(&status[job]);
            assert!(Instant::now() < deadline, "{job} did not finish in 10 minutes:\n{}", self.logs());
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    pub async fn host_ids(&self) -> Vec<String> {
        let cluster = self.get("/v1/cluster").await;
        cluster.as_array().unwrap().iter().map(|n| n["node"]["hostId"].as_str().unwrap().to_string()).collect()
    }
}

impl Drop for Services {
    fn drop(&mut self) {
        for c in self.agents.iter_mut().chain(std::iter::once(&mut self.server)).flatten() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn wait_listening(port: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}
