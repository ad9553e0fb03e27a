//! `restore --offline --until T`: the offline restore, then Cassandra's own commitlog replay up
//! to T.
//!
//! Before anything is touched, the backup's archived segments that bring it forward to T are
//! fetched into the quarantine (`replay-segments/`), each checked against its record (size,
//! BLAKE3); a missing or damaged segment, or a T that no recoverable window holds, stops the
//! restore with the node untouched. Once the backup's files are in place, the restore settings
//! go into `commitlog_archiving.properties` (`restore_directories` = those segments,
//! `restore_command` = `cp`, `restore_point_in_time` = T) and the node starts: Cassandra copies
//! the segments into its commitlog directory and replays every mutation up to T (the live
//! tables not restored skip it all: their SSTables already hold those positions). Once the
//! node is up, the settings are removed, so the next start does not replay again; each of these
//! steps is idempotent, so a rerun after a crash does them again.

use std::path::{Path, PathBuf};

use cassette_commitlog::{RestorePlan, node_recovery, settings};
use cassette_store::Store;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{failed, refused};
use crate::{Progress, RestoreError, Stage};

/// What a restore to a point in time needs.
#[derive(Debug, Clone)]
pub struct PointInTime {
    /// Replay mutations up to this time (whole seconds: Cassandra reads no finer before
    /// 4.1.10 and 5.0.9).
    pub until: DateTime<Utc>,
    /// The node's `commitlog_archiving.properties`.
    pub properties: PathBuf,
    /// The node's `system.log`, read for the number of mutations replayed (optional).
    pub system_log: Option<PathBuf>,
}

/// What the replay did, for the report.
#[derive(Debug, Clone, Serialize)]
pub struct ReplayOutcome {
    /// The point in time.
    pub until: DateTime<Utc>,
    /// The segments replayed, oldest first.
    pub segments: Vec<String>,
    /// Their bytes.
    pub bytes: u64,
    /// Where they were staged (verified).
    pub staged_in: PathBuf,
    /// Mutations Cassandra says it replayed (from its log; `None`: not read).
    pub replayed_mutations: Option<u64>,
    /// Mutations it skipped for tables it does not know (a dropped table).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped_unknown_table: Option<u64>,
}

/// The directory of the quarantine `main` that holds the segments to replay.
pub(super) fn staging_dir(main_quarantine: &Path) -> PathBuf {
    main_quarantine.join("replay-segments")
}

/// Plans the replay of backup `name` of node (`cluster`, `host_id`) to `pit.until`: refused when
/// no window holds it or when the backup ended later.
pub(super) async fn plan(
    store: &dyn Store,
    cluster: &str,
    host_id: &str,
    name: &str,
    pit: &PointInTime,
) -> Result<RestorePlan, RestoreError> {
    let recovery = node_recovery(store, cluster, host_id).await.map_err(commitlog_error)?;
    if let Some((path, why)) = recovery.damaged.first() {
        return Err(refused(format!(
            "the record of an archived commitlog segment cannot be read ({path}: {why}): nothing was touched. Check the repository"
        )));
    }
    recovery.plan(pit.until, Some(name)).map_err(commitlog_error)
}

/// Fetches every segment of `plan` into `dir` (emptied first), verified; or, for a dry run,
/// reads each where it is stored. Returns the bytes.
pub(super) async fn stage_segments(
    store: &dyn Store,
    cluster: &str,
    host_id: &str,
    plan: &RestorePlan,
    dir: &Path,
    dry_run: bool,
    progress: &dyn Progress,
) -> Result<u64, RestoreError> {
    let archive = store.segments(cluster, host_id)?;
    progress.stage(Stage::Verify, "commitlog segments");
    if !dry_run {
        empty_dir(dir)?;
    }
    let mut bytes = 0;
    for s in &plan.segments {
        let problem = if dry_run {
            archive.check(s).await?
        } else {
            match archive.fetch(s, &dir.join(&s.name)).await {
                Ok(()) => None,
                Err(cassette_store::StoreError::Mismatch { detail, .. }) => Some(detail),
                Err(e) if e.is_not_found() => Some("missing".into()),
                Err(e) => return Err(e.into()),
            }
        };
        if let Some(problem) = problem {
            return Err(failed(
                "verify",
                format!(
                    "the archived commitlog segment {} in {} is {problem}: restoring to {} needs it, so nothing was touched. \
                 Restore to a time before the segment's last write ({}), or from a later backup",
                    s.name,
                    archive.location(),
                    plan.until,
                    s.last_write
                ),
            ));
        }
        bytes += s.size;
    }
    Ok(bytes)
}

fn empty_dir(dir: &Path) -> Result<(), RestoreError> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| cassette_repo::RepoError::io("empty", dir, e))?;
    }
    std::fs::create_dir_all(dir).map_err(|e| cassette_repo::RepoError::io("create directory", dir, e))?;
    Ok(())
}

/// Writes the restore settings (keeping every other line of the file).
pub(super) fn write_settings(pit: &PointInTime, segments: &Path) -> Result<(), RestoreError> {
    let text = settings::read(&pit.properties).map_err(commitlog_error)?.unwrap_or_default();
    let values = settings::restore_settings(segments, pit.until);
    let changes: Vec<(&str, Option<&str>)> = values.iter().map(|(k, v)| (*k, Some(v.as_str()))).collect();
    settings::write(&pit.properties, &settings::set(&text, &changes))
        .map_err(|e| failed("replay", format!("{e}; nothing was started: fix it and run the same restore again")))
}

/// Removes the restore settings, so the next start does not replay again.
pub(super) fn remove_settings(pit: &PointInTime) -> Result<(), RestoreError> {
    let Some(text) = settings::read(&pit.properties).map_err(commitlog_error)? else { return Ok(()) };
    let changes: Vec<(&str, Option<&str>)> = settings::RESTORE_KEYS.iter().map(|k| (*k, None)).collect();
    let cleaned = settings::set(&text, &changes);
    if cleaned == text {
        return Ok(());
    }
    settings::write(&pit.properties, &cleaned).map_err(|e| {
        failed(
            "replay",
            format!(
                "{e}. The node is up and restored, but remove the restore_* lines of {} yourself, or its next start replays the segments again",
                pit.properties.display()
            ),
        )
    })
}

/// The length of the node's log now: what it writes from here on is this start's.
pub(super) fn log_offset(pit: &PointInTime) -> u64 {
    pit.system_log.as_ref().and_then(|l| std::fs::metadata(l).ok()).map_or(0, |m| m.len())
}

/// Reads what Cassandra logged of its replay after `offset`: (mutations replayed, mutations
/// skipped for unknown tables).
pub(super) fn replayed(pit: &PointInTime, offset: u64) -> (Option<u64>, Option<u64>) {
    let Some(log) = &pit.system_log else { return (None, None) };
    let Ok(bytes) = std::fs::read(log) else { return (None, None) };
    let start = (offset as usize).min(bytes.len());
    let text = String::from_utf8_lossy(&bytes[start..]);
    parse_replay_log(&text)
}

fn parse_replay_log(text: &str) -> (Option<u64>, Option<u64>) {
    let number_before = |line: &str, marker: &str| -> Option<u64> {
        let head = &line[..line.find(marker)?];
        head.split_whitespace().last()?.trim_matches(|c: char| !c.is_ascii_digit()).parse().ok()
    };
    let mut replayed = None;
    let mut skipped = None;
    for line in text.lines() {
        if let Some(n) = number_before(line, " replayed mutations") {
            replayed = Some(replayed.unwrap_or(0) + n);
        }
        if line.contains("unknown (probably removed)")
            && let Some(n) = line
                .split("Skipped ")
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .and_then(|n| n.parse::<u64>().ok())
        {
            skipped = Some(skipped.unwrap_or(0) + n);
        }
    }
    (replayed, skipped)
}

fn commitlog_error(e: cassette_commitlog::CommitlogError) -> RestoreError {
    match e {
        cassette_commitlog::CommitlogError::Store(s) => RestoreError::Store(s),
        // A time no window holds, a backup that is not there: the request, not the node.
        cassette_commitlog::CommitlogError::Refused(m) => RestoreError::InvalidInput(m),
        other => RestoreError::OfflineRefused(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_replay_is_read_from_cassandras_log() {
        let log = "INFO  [main] 2026-12-02 10:15:01,000 CommitLog.java:200 - Replaying /x/CommitLog-7-1.log\n\
                   WARN  [main] 2026-12-02 10:15:01,100 CommitLogReplayer.java:300 - Skipped 12 mutations from unknown (probably removed) CF with id 5a1c\n\
                   INFO  [main] 2026-12-02 10:15:02,000 CommitLog.java:210 - Log replay complete, 50 replayed mutations\n";
        assert_eq!(parse_replay_log(log), (Some(50), Some(12)));
        assert_eq!(parse_replay_log("INFO nothing to replay\n"), (None, None));
    }
}
