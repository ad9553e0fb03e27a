//! Backup schedules: cron expressions, each with a retention policy, stored in the server's
//! database. A schedule whose time came while the server was down runs once when it is back
//! (its next time is computed from now, not from the missed slots).

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use croner::Cron;
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::coordinator::{Coordinator, StartError, now_ms};
use crate::model::{JobParams, JobType, Retention};
use crate::store::{Store, StoreError};

/// A backup schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Schedule {
    /// Its ID.
    #[serde(default)]
    pub id: i64,
    /// Its name; each backup is named `<name>-<UTC time>`.
    pub name: String,
    /// When: a cron expression (5 fields, or 6 with seconds first), in UTC.
    pub cron: String,
    /// Keyspaces (empty: every non-system keyspace).
    #[serde(default)]
    pub keyspaces: Vec<String>,
    /// Nodes at once.
    #[serde(default = "one")]
    pub parallel: usize,
    /// Snapshot every node first.
    #[serde(default)]
    pub snapshot_together: bool,
    /// What to keep of this schedule's backups after each successful run.
    #[serde(default)]
    pub retention: Option<Retention>,
    /// S3 Object Lock on every run's backup (locked from the run's start).
    #[serde(flatten)]
    pub object_lock: crate::model::ObjectLockOptions,
    /// Next run (epoch ms).
    #[serde(default)]
    pub next_run: i64,
    /// Last run (epoch ms).
    #[serde(default)]
    pub last_run: Option<i64>,
    /// The job of the last run.
    #[serde(default)]
    pub last_job: Option<i64>,
}

fn one() -> usize {
    1
}

/// Parses a cron expression, or says what is wrong with it.
pub fn parse_cron(expr: &str) -> Result<Cron, String> {
    Cron::from_str(expr).map_err(|e| {
        format!("'{expr}' is not a cron expression ({e}); e.g. '0 2 * * *' (02:00 UTC daily) or '*/30 * * * * *' (every 30 s)")
    })
}

/// The first time after `after` that `cron` matches.
pub fn next_after(cron: &Cron, after: i64) -> Result<i64, String> {
    let t: DateTime<Utc> = Utc.timestamp_millis_opt(after).single().unwrap_or_else(Utc::now);
    cron.find_next_occurrence(&t, false).map(|d| d.timestamp_millis()).map_err(|e| e.to_string())
}

impl Store {
    /// Adds a schedule (its next run computed from now).
    pub async fn add_schedule(&self, mut s: Schedule) -> Result<Schedule, StoreError> {
        let doc = serde_json::to_string(&s).expect("a schedule serializes");
        let (name, next) = (s.name.clone(), s.next_run);
        s.id = self
            .with(move |c| {
                c.execute("INSERT INTO schedules (name, doc, next_run) VALUES (?1, ?2, ?3)", params![name, doc, next])?;
                Ok(c.last_insert_rowid())
            })
            .await?;
        self.save_schedule(&s).await?;
        Ok(s)
    }

    /// Saves a schedule's document and next run.
    pub async fn save_schedule(&self, s: &Schedule) -> Result<(), StoreError> {
        let (doc, next, id) = (serde_json::to_string(s).expect("a schedule serializes"), s.next_run, s.id);
        self.with(move |c| {
            c.execute("UPDATE schedules SET doc = ?1, next_run = ?2 WHERE id = ?3", params![doc, next, id]).map(drop)
        })
        .await
    }

    /// Every schedule, by ID.
    pub async fn schedules(&self) -> Result<Vec<Schedule>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare("SELECT doc FROM schedules ORDER BY id")?;
            stmt.query_map([], schedule_of)?.collect()
        })
        .await
    }

    /// Whether a schedule of that name exists.
    pub async fn schedule_named(&self, name: &str) -> Result<Option<Schedule>, StoreError> {
        let name = name.to_string();
        self.with(move |c| c.query_row("SELECT doc FROM schedules WHERE name = ?1", [name], schedule_of).optional())
            .await
    }

    /// Removes a schedule; false when there was none.
    pub async fn remove_schedule(&self, id: i64) -> Result<bool, StoreError> {
        self.with(move |c| c.execute("DELETE FROM schedules WHERE id = ?1", [id]).map(|n| n > 0)).await
    }
}

fn schedule_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<Schedule> {
    let doc: String = r.get(0)?;
    serde_json::from_str(&doc)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))
}

/// Checks a new schedule and sets its ID-independent fields.
pub fn prepare(mut s: Schedule) -> Result<Schedule, String> {
    // The schedule's name is a backup name by the same rule, and so is every backup name it
    // makes (with room for the time suffix): an empty name would make backups named `-<time>`.
    cassette_repo::BackupName::parse(&s.name).map_err(|e| format!("schedule name: {e}"))?;
    cassette_repo::BackupName::parse(&backup_name(&s.name, 0))
        .map_err(|e| format!("schedule name '{}' leaves no room for the time in its backups' names: {e}", s.name))?;
    let cron = parse_cron(&s.cron)?;
    s.object_lock.check()?;
    s.next_run = next_after(&cron, now_ms())?;
    s.last_run = None;
    s.last_job = None;
    Ok(s)
}

/// The name of schedule `schedule`'s backup of time `at` (epoch ms): `<schedule>-<UTC time>`.
fn backup_name(schedule: &str, at: i64) -> String {
    let stamp = Utc.timestamp_millis_opt(at).single().unwrap_or_else(Utc::now).format("%Y%m%dT%H%M%SZ");
    format!("{schedule}-{stamp}")
}

/// Runs due schedules, once a second, for as long as the server runs.
pub async fn run_scheduler(coordinator: Arc<Coordinator>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        if let Err(e) = run_due(&coordinator).await {
            tracing::error!(error = %e, "scheduler");
        }
    }
}

async fn run_due(coordinator: &Arc<Coordinator>) -> Result<(), String> {
    let now = now_ms();
    for mut s in coordinator.store().schedules().await.map_err(|e| e.to_string())? {
        if s.next_run > now {
            continue;
        }
        let params = JobParams {
            name: Some(backup_name(&s.name, now)),
            keyspaces: s.keyspaces.clone(),
            parallel: s.parallel,
            snapshot_together: s.snapshot_together,
            repair: false,
            until: None,
            schedule: Some(s.name.clone()),
            retention: s.retention.clone(),
            object_lock: s.object_lock,
        };
        match coordinator.start(JobType::Backup, params).await {
            Ok(job) => {
                tracing::info!(schedule = %s.name, job = job.id, "scheduled backup started");
                s.last_job = Some(job.id);
            }
            // Another job runs: this slot's backup waits for it, once.
            Err(StartError::Conflict(_)) => continue,
            Err(e) => {
                tracing::error!(schedule = %s.name, error = %e, "scheduled backup not started");
            }
        }
        s.last_run = Some(now);
        // From now, not from the missed slot: slots missed while down run once, not once each.
        s.next_run = next_after(&parse_cron(&s.cron)?, now)?;
        coordinator.store().save_schedule(&s).await.map_err(|e| e.to_string())?;
    }
    Ok(())
}
