//! The server's job history in SQLite: one row per cluster job, its JSON document beside the
//! columns that queries need. Survives restarts; jobs that were running when the server
//! stopped are marked interrupted at the next start.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, params};

use crate::model::{ClusterJob, JobState, JobType, KnownNode};

/// Schema versions, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE jobs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        type TEXT NOT NULL,
        state TEXT NOT NULL,
        backup_name TEXT,
        started INTEGER NOT NULL,
        finished INTEGER,
        doc TEXT NOT NULL
    );
    CREATE INDEX jobs_by_type ON jobs (type, id);",
    "CREATE TABLE schedules (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL UNIQUE,
        doc TEXT NOT NULL,
        next_run INTEGER NOT NULL
    );",
    // Which node each agent served when it last answered: a node whose agent is down is
    // still known by its host ID. Keyed by the agent's URL without credentials.
    "CREATE TABLE agents (
        url TEXT PRIMARY KEY,
        host_id TEXT NOT NULL,
        hostname TEXT NOT NULL,
        address TEXT NOT NULL,
        seen INTEGER NOT NULL
    );",
];

/// A store error: what failed, on which database.
#[derive(Debug, thiserror::Error)]
#[error("job database {path}: {message}")]
pub struct StoreError {
    path: String,
    message: String,
}

/// The job history. Cheap to clone; calls run on tokio's blocking pool.
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
    path: String,
}

impl Store {
    /// Opens (creating and migrating) the database at `path`.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let display = path.display().to_string();
        let err = |e: rusqlite::Error| StoreError {
            path: display.clone(),
            message: format!("{e}; check that the file is a cassette job database and its directory is writable"),
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StoreError {
                path: display.clone(),
                message: format!("cannot create its directory: {e}"),
            })?;
        }
        let mut conn = Connection::open(path).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(err)?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(err)?;
        let done: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(err)?;
        for (n, sql) in MIGRATIONS.iter().enumerate().skip(done as usize) {
            let tx = conn.transaction().map_err(err)?;
            tx.execute_batch(sql).map_err(err)?;
            tx.pragma_update(None, "user_version", n as i64 + 1).map_err(err)?;
            tx.commit().map_err(err)?;
        }
        Ok(Store { conn: Arc::new(Mutex::new(conn)), path: display })
    }

    pub(crate) async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = self.conn.clone();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let conn = conn.lock().unwrap_or_else(|e| e.into_inner());
            f(&conn)
        })
        .await
        .map_err(|e| StoreError { path: path.clone(), message: e.to_string() })?
        .map_err(|e| StoreError { path, message: e.to_string() })
    }

    /// Records a new job and returns it with its ID.
    pub async fn insert(&self, mut job: ClusterJob) -> Result<ClusterJob, StoreError> {
        let row = Row::of(&job);
        let id = self
            .with(move |c| {
                c.execute(
                    "INSERT INTO jobs (type, state, backup_name, started, finished, doc) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![row.job_type, row.state, row.backup_name, row.started, row.finished, row.doc],
                )?;
                Ok(c.last_insert_rowid())
            })
            .await?;
        job.id = id;
        self.update(&job).await?;
        Ok(job)
    }

    /// Saves the job's current document.
    pub async fn update(&self, job: &ClusterJob) -> Result<(), StoreError> {
        let row = Row::of(job);
        let id = job.id;
        self.with(move |c| {
            c.execute(
                "UPDATE jobs SET state = ?1, finished = ?2, doc = ?3 WHERE id = ?4",
                params![row.state, row.finished, row.doc, id],
            )
            .map(drop)
        })
        .await
    }

    /// One job by ID.
    pub async fn get(&self, id: i64) -> Result<Option<ClusterJob>, StoreError> {
        self.with(move |c| c.query_row("SELECT id, doc FROM jobs WHERE id = ?1", [id], doc_of).optional()).await
    }

    /// The newest finished job of a type (succeeded, failed, aborted or interrupted).
    pub async fn last(&self, job_type: JobType) -> Result<Option<ClusterJob>, StoreError> {
        let t = key(job_type);
        self.with(move |c| {
            c.query_row(
                "SELECT id, doc FROM jobs WHERE type = ?1 AND state != 'running' ORDER BY id DESC LIMIT 1",
                [t],
                doc_of,
            )
            .optional()
        })
        .await
    }

    /// The newest jobs, newest first, optionally of one type.
    pub async fn history(&self, job_type: Option<JobType>, limit: u32) -> Result<Vec<ClusterJob>, StoreError> {
        let t = job_type.map(key);
        self.with(move |c| {
            let mut stmt =
                c.prepare("SELECT id, doc FROM jobs WHERE (?1 IS NULL OR type = ?1) ORDER BY id DESC LIMIT ?2")?;
            stmt.query_map(params![t, limit], doc_of)?.collect()
        })
        .await
    }

    /// Records the node `agent` (its URL without credentials) served when it answered now.
    pub async fn remember_agent(&self, agent: &str, node: KnownNode) -> Result<(), StoreError> {
        let agent = agent.to_string();
        self.with(move |c| {
            c.execute(
                "INSERT INTO agents (url, host_id, hostname, address, seen) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (url) DO UPDATE SET host_id = ?2, hostname = ?3, address = ?4, seen = ?5",
                params![agent, node.host_id, node.hostname, node.address, node.seen],
            )
            .map(drop)
        })
        .await
    }

    /// The node `agent` served when it last answered, if it ever did.
    pub async fn known_agent(&self, agent: &str) -> Result<Option<KnownNode>, StoreError> {
        let agent = agent.to_string();
        self.with(move |c| {
            c.query_row("SELECT host_id, hostname, address, seen FROM agents WHERE url = ?1", [agent], |r| {
                Ok(KnownNode { host_id: r.get(0)?, hostname: r.get(1)?, address: r.get(2)?, seen: r.get(3)? })
            })
            .optional()
        })
        .await
    }

    /// The names of the backups schedule `schedule`'s runs made on node `host_id` (the node
    /// succeeded in the run): what its retention may purge there, and nothing else.
    pub async fn schedule_backups(&self, schedule: &str, host_id: &str) -> Result<Vec<String>, StoreError> {
        let (schedule, host_id) = (schedule.to_string(), host_id.to_string());
        let jobs: Vec<ClusterJob> = self
            .with(move |c| {
                let mut stmt = c.prepare(
                    "SELECT id, doc FROM jobs WHERE type = 'BACKUP' AND json_extract(doc, '$.params.schedule') = ?1",
                )?;
                stmt.query_map([schedule], doc_of)?.collect()
            })
            .await?;
        Ok(jobs
            .into_iter()
            .filter(|j| j.completed_nodes.iter().any(|n| n.executor_id == host_id && n.failure.is_none()))
            .filter_map(|j| j.backup_name)
            .collect())
    }

    /// Marks the jobs left running by a server that stopped as interrupted; returns them.
    pub async fn interrupt_running(&self, now: i64) -> Result<Vec<ClusterJob>, StoreError> {
        let running: Vec<ClusterJob> = self
            .with(|c| {
                let mut stmt = c.prepare("SELECT id, doc FROM jobs WHERE state = 'running'")?;
                stmt.query_map([], doc_of)?.collect()
            })
            .await?;
        let mut out = Vec::new();
        for mut job in running {
            job.state = JobState::Interrupted;
            job.finished = Some(now);
            job.error.get_or_insert_with(|| {
                "the server stopped while this job ran; resume it with POST /v1/jobs/{id}/resume".to_string()
            });
            for node in job.running_nodes.drain(..) {
                let mut node = node;
                node.fail("the server stopped while this node's part ran; its outcome is unknown");
                node.finished_timestamp = Some(now);
                job.completed_nodes.push(node);
            }
            job.current_node = None;
            self.update(&job).await?;
            out.push(job);
        }
        Ok(out)
    }
}

fn key(t: JobType) -> String {
    t.upper().to_string()
}

/// A job from its row; the ID column is the truth (the document is first written before the
/// ID is known).
fn doc_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<ClusterJob> {
    let (id, doc): (i64, String) = (r.get(0)?, r.get(1)?);
    let mut job: ClusterJob = serde_json::from_str(&doc)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Text, Box::new(e)))?;
    job.id = id;
    Ok(job)
}

/// The columns of a job's row.
struct Row {
    job_type: String,
    state: String,
    backup_name: Option<String>,
    started: i64,
    finished: Option<i64>,
    doc: String,
}

impl Row {
    fn of(job: &ClusterJob) -> Row {
        let state =
            serde_json::to_value(job.state).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
        Row {
            job_type: key(job.job_type),
            state,
            backup_name: job.backup_name.clone(),
            started: job.started,
            finished: job.finished,
            doc: serde_json::to_string(job).expect("a job serializes"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::JobParams;

    #[tokio::test]
    async fn history_survives_reopening_and_running_jobs_become_interrupted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jobs.db");
        let store = Store::open(&path).unwrap();
        let params = JobParams { name: Some("n1".into()), parallel: 1, ..Default::default() };
        let mut done = store.insert(ClusterJob::new(JobType::Backup, params.clone(), 1)).await.unwrap();
        done.state = JobState::Succeeded;
        done.finished = Some(2);
        store.update(&done).await.unwrap();
        let running = store.insert(ClusterJob::new(JobType::Backup, params, 3)).await.unwrap();
        drop(store);

        let store = Store::open(&path).unwrap();
        assert_eq!(store.last(JobType::Backup).await.unwrap().unwrap().id, done.id);
        let interrupted = store.interrupt_running(4).await.unwrap();
        assert_eq!(interrupted.len(), 1);
        let last = store.last(JobType::Backup).await.unwrap().unwrap();
        assert_eq!((last.id, last.state, last.finished), (running.id, JobState::Interrupted, Some(4)));
        assert!(store.last(JobType::Restore).await.unwrap().is_none());
        assert_eq!(store.history(None, 10).await.unwrap().len(), 2);
    }
}
