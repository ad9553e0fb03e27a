//! Archived commitlog segments: their names, the record stored beside each, and the rule that
//! turns a node's segments and backups into the times a restore can reach.
//!
//! Layout, under a node's directory (`<cluster>/<host ID>/`):
//!
//! ```text
//! commitlog/CommitLog-7-1733139300000.log        the segment, byte for byte as Cassandra wrote it
//! commitlog/CommitLog-7-1733139300000.log.json   its record (SegmentRecord), written after it
//! ```
//!
//! A segment counts as archived only once its record exists: a writer stores the segment, then
//! the record, each create-only (or through `.partial` and a rename); a reader ignores a
//! segment without its record.
//!
//! Cassandra numbers the segments of one run of a node consecutively, from an id base that is
//! the time of its start in milliseconds (or one more than the largest id already on disk). So
//! consecutive ids leave nothing out; a jump in ids is a restart when the new run's base is
//! after the last write of the segment before it, and a gap otherwise.

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{FormatError, Result};

/// The directory of a node's archived segments, beside its backups. No backup may have this
/// name ([`crate::BackupName::parse`] refuses it).
pub const COMMITLOG_DIR: &str = "commitlog";
/// The suffix of a segment's record, after the segment's own name.
pub const RECORD_SUFFIX: &str = ".json";
/// The `format` field of a segment record.
pub const SEGMENT_RECORD_FORMAT: &str = "cassette.commitlog-segment";
/// The segment record version this build writes and the newest it reads.
pub const SEGMENT_RECORD_VERSION: u32 = 1;

/// Ids of this size or more are read as milliseconds since the epoch (a run's id base); a
/// smaller one cannot be a run's start time (ids before 2001-09-09).
const MS_IDS_FROM: u64 = 1_000_000_000_000;

/// A commitlog segment's file name: `CommitLog-<version>-<id>.log`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SegmentName {
    /// The segment's id (first: names sort by id).
    pub id: u64,
    /// The commitlog format version (7 in Cassandra 4.0 to 5.0).
    pub version: u32,
}

impl SegmentName {
    /// Parses a segment's file name; `None` for anything else (a CDC index file, a temporary).
    pub fn parse(name: &str) -> Option<SegmentName> {
        let rest = name.strip_prefix("CommitLog-")?.strip_suffix(".log")?;
        let (version, id) = rest.split_once('-')?;
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(version) || !digits(id) {
            return None;
        }
        Some(SegmentName { version: version.parse().ok()?, id: id.parse().ok()? })
    }

    /// Like [`SegmentName::parse`], refusing anything else with a message.
    pub fn parse_or_refuse(name: &str) -> Result<SegmentName> {
        SegmentName::parse(name).ok_or_else(|| FormatError::InvalidComponent {
            kind: "commitlog segment name".into(),
            value: name.into(),
            reason: "Cassandra names its segments CommitLog-<version>-<id>.log",
        })
    }

    /// The file name.
    pub fn file_name(&self) -> String {
        format!("CommitLog-{}-{}.log", self.version, self.id)
    }

    /// The segment's path relative to the node directory.
    pub fn relative_path(&self) -> String {
        format!("{COMMITLOG_DIR}/{}", self.file_name())
    }

    /// Its record's path relative to the node directory.
    pub fn record_path(&self) -> String {
        format!("{COMMITLOG_DIR}/{}{RECORD_SUFFIX}", self.file_name())
    }

    /// The time the id stands for when it is a run's id base (milliseconds since the epoch).
    fn id_time(&self) -> Option<DateTime<Utc>> {
        (self.id >= MS_IDS_FROM).then(|| Utc.timestamp_millis_opt(self.id as i64).single()).flatten()
    }
}

impl std::fmt::Display for SegmentName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.file_name())
    }
}

/// What is stored beside an archived segment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentRecord {
    /// Always [`SEGMENT_RECORD_FORMAT`].
    pub format: String,
    /// [`SEGMENT_RECORD_VERSION`] when written.
    pub format_version: u32,
    /// The segment's file name.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// BLAKE3 of its bytes, lowercase hex.
    pub blake3: String,
    /// When Cassandra last wrote it (its modification time when archived): no mutation in it
    /// arrived later.
    pub last_write: DateTime<Utc>,
    /// When Cassandra handed it to the archive command.
    pub archived_at: DateTime<Utc>,
    /// When it was stored in the repository.
    pub shipped_at: DateTime<Utc>,
    /// When archiving was set up on the node (`cassette commitlog install`): a run of the node
    /// that started later archived every one of its segments.
    pub archiving_since: DateTime<Utc>,
    /// How the stored segment is encoded, in an encoded repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoded: Option<crate::encoding::Encoded>,
}

impl SegmentRecord {
    /// The record as stored: one line of JSON.
    pub fn to_json(&self) -> Vec<u8> {
        let mut json = serde_json::to_vec(self).expect("a segment record serializes");
        json.push(b'\n');
        json
    }

    /// Parses and checks a stored record: its format, version, and a segment name.
    pub fn from_json(bytes: &[u8]) -> Result<SegmentRecord> {
        let value: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|source| FormatError::Parse { kind: "commitlog segment record", source })?;
        let found = value.get("format").and_then(|f| f.as_str()).unwrap_or_default();
        if found != SEGMENT_RECORD_FORMAT {
            return Err(FormatError::UnknownFormat {
                kind: "commitlog segment record",
                found: found.into(),
                expected: SEGMENT_RECORD_FORMAT,
            });
        }
        let version = value.get("format_version").and_then(|v| v.as_u64()).unwrap_or(0);
        crate::version::check_version("commitlog segment record", version, SEGMENT_RECORD_VERSION)?;
        let record: SegmentRecord = serde_json::from_value(value)
            .map_err(|source| FormatError::Parse { kind: "commitlog segment record", source })?;
        SegmentName::parse_or_refuse(&record.name)?;
        Ok(record)
    }

    /// The segment's name, parsed (checked by [`SegmentRecord::from_json`]).
    pub fn segment(&self) -> SegmentName {
        SegmentName::parse(&self.name).expect("records hold segment names")
    }
}

/// A complete backup, as far as point-in-time recovery needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupSpan {
    /// The backup's name.
    pub name: String,
    /// When it started (its snapshot was taken later).
    pub started_at: DateTime<Utc>,
    /// When it finished: a restore to an earlier time cannot start from it.
    pub finished_at: DateTime<Utc>,
}

/// Segments that follow each other with nothing missing between them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chain {
    /// From when on the chain holds every write: the start of the node's run when its first
    /// segment began a run started after archiving was set up, else the last write of its first
    /// segment (what came before may be in a segment that was never archived).
    pub covers_from: DateTime<Utc>,
    /// Until when it holds every write: the last write of its newest segment.
    pub covers_until: DateTime<Utc>,
    /// Its segments, oldest first.
    pub segments: Vec<SegmentRecord>,
}

/// Segments are missing between two chains.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Gap {
    /// The last segment before it.
    pub after: String,
    /// The first segment after it.
    pub before: String,
    /// Writes between these times may be lost: the last write before the gap...
    pub from: DateTime<Utc>,
    /// ...and the last write of the first segment after it.
    pub until: DateTime<Utc>,
}

/// A span of time a restore can reach: from the end of a backup to the last write archived
/// after it with nothing missing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Window {
    /// The earliest reachable time: the end of the oldest backup the chain covers.
    pub from: DateTime<Utc>,
    /// The latest: the last write of the chain's newest segment.
    pub until: DateTime<Utc>,
    /// That oldest backup.
    pub backup: String,
}

/// Splits `records` (any order) into chains; also says what is missing between them.
pub fn chains(records: &[SegmentRecord]) -> (Vec<Chain>, Vec<Gap>) {
    let mut sorted: Vec<&SegmentRecord> = records.iter().collect();
    sorted.sort_by_key(|r| r.segment());
    let mut chains: Vec<Chain> = Vec::new();
    let mut gaps = Vec::new();
    for r in sorted {
        let name = r.segment();
        // Every id of a run reads as a time just after its start; only the jump to a new run
        // makes that time the start of the segment.
        let start_of_run = name.id_time();
        if let Some(chain) = chains.last_mut() {
            let prev = chain.segments.last().expect("chains are not empty");
            let prev_name = prev.segment();
            if name.id == prev_name.id + 1 {
                chain.covers_until = chain.covers_until.max(r.last_write);
                chain.segments.push(r.clone());
                continue;
            }
            if start_of_run.is_some_and(|base| base >= prev.last_write) {
                // A restart: the new run began after the old one's last write. Nothing is lost
                // as long as the old run's last segments were archived (Cassandra archives the
                // segments it finds at start-up), which is the newest segment before `r`.
                chain.covers_until = chain.covers_until.max(r.last_write);
                chain.segments.push(r.clone());
                continue;
            }
            gaps.push(Gap {
                after: prev.name.clone(),
                before: r.name.clone(),
                from: prev.last_write,
                until: r.last_write,
            });
            chains.push(Chain { covers_from: r.last_write, covers_until: r.last_write, segments: vec![r.clone()] });
            continue;
        }
        // The oldest segment archived: it began a run if its id is a start time after archiving
        // was set up (Cassandra reads archive_command at start-up only, and archives in order).
        let covers_from =
            start_of_run.filter(|t| *t >= r.archiving_since && *t <= r.last_write).unwrap_or(r.last_write);
        chains.push(Chain { covers_from, covers_until: r.last_write, segments: vec![r.clone()] });
    }
    (chains, gaps)
}

/// The chain that can bring `backup` forward to `until`: it covers from before the backup
/// started to `until` or later.
pub fn chain_for<'a>(chains: &'a [Chain], backup: &BackupSpan, until: DateTime<Utc>) -> Option<&'a Chain> {
    chains.iter().find(|c| c.covers_from <= backup.started_at && c.covers_until >= until)
}

/// The times a restore can reach, one window per chain that covers a backup.
pub fn windows(chains: &[Chain], backups: &[BackupSpan]) -> Vec<Window> {
    let mut out = Vec::new();
    for c in chains {
        let from = c.covers_from;
        let oldest = backups
            .iter()
            .filter(|b| b.started_at >= from && b.finished_at <= c.covers_until)
            .min_by_key(|b| b.finished_at);
        if let Some(b) = oldest {
            out.push(Window { from: b.finished_at, until: c.covers_until, backup: b.name.clone() });
        }
    }
    out
}

/// The segments a restore of `backup` to `until` replays, from `chain`: every one that may
/// hold a write after the backup started, up to the first whose last write is at or after
/// `until`, and the one after it (a write of `until` or before may land in the next segment
/// when segments switch under concurrent writes; replay skips what is newer).
///
/// A segment may hold writes up to when it was archived, which is after it was finished: its
/// modification time (`last_write`) can be older than its last writes, since Cassandra writes
/// a segment through a memory map and a write to a page already dirty does not touch it.
pub fn segments_to_replay<'a>(chain: &'a Chain, backup: &BackupSpan, until: DateTime<Utc>) -> Vec<&'a SegmentRecord> {
    let mut out = Vec::new();
    let mut past_until = 0;
    for s in &chain.segments {
        if s.last_write.max(s.archived_at) < backup.started_at {
            continue;
        }
        if past_until == 2 {
            break;
        }
        if s.last_write >= until || past_until > 0 {
            past_until += 1;
        }
        out.push(s);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + s, 0).unwrap()
    }

    /// A segment of the run started at second `run`, `n`th of it, last written at second `w`.
    fn seg(run: i64, n: u64, w: i64) -> SegmentRecord {
        let id = (1_800_000_000 + run) as u64 * 1000 + n;
        SegmentRecord {
            format: SEGMENT_RECORD_FORMAT.into(),
            format_version: SEGMENT_RECORD_VERSION,
            name: format!("CommitLog-7-{id}.log"),
            size: 1 << 20,
            blake3: "00".repeat(32),
            last_write: at(w),
            archived_at: at(w),
            shipped_at: at(w + 1),
            archiving_since: at(-1000),
            encoded: None,
        }
    }

    fn backup(name: &str, start: i64, end: i64) -> BackupSpan {
        BackupSpan { name: name.into(), started_at: at(start), finished_at: at(end) }
    }

    #[test]
    fn segment_names_parse_and_sort_by_id() {
        let n = SegmentName::parse("CommitLog-7-1733139300000.log").unwrap();
        assert_eq!((n.version, n.id), (7, 1_733_139_300_000));
        assert_eq!(n.file_name(), "CommitLog-7-1733139300000.log");
        assert_eq!(n.record_path(), "commitlog/CommitLog-7-1733139300000.log.json");
        for bad in [
            "CommitLog-7-.log",
            "CommitLog-7-12.log.partial",
            "CommitLog-7-1_2.log",
            "CommitLog-7-12.idx",
            "x",
            "CommitLog--1.log",
        ] {
            assert_eq!(SegmentName::parse(bad), None, "{bad}");
        }
        assert!(SegmentName::parse("CommitLog-6-9.log") < SegmentName::parse("CommitLog-7-10.log"));
    }

    #[test]
    fn records_round_trip_and_newer_ones_are_refused() {
        let r = seg(0, 0, 10);
        assert_eq!(SegmentRecord::from_json(&r.to_json()).unwrap(), r);
        let newer = String::from_utf8(r.to_json()).unwrap().replace("\"format_version\":1", "\"format_version\":9");
        assert!(matches!(SegmentRecord::from_json(newer.as_bytes()), Err(FormatError::NewerVersion { found: 9, .. })));
        let not_a_segment = String::from_utf8(r.to_json()).unwrap().replace("CommitLog-7-", "../");
        assert!(SegmentRecord::from_json(not_a_segment.as_bytes()).is_err());
    }

    #[test]
    fn consecutive_ids_and_restarts_make_one_chain_a_missing_id_a_gap() {
        // Run 0: segments 0, 1, 2; restart at second 100: segments 0, 1; segment 1 of run 0 missing.
        let with_restart = [seg(0, 0, 10), seg(0, 1, 20), seg(0, 2, 30), seg(100, 0, 110), seg(100, 1, 120)];
        let (chains, gaps) = chains(&with_restart);
        assert_eq!((chains.len(), gaps.len()), (1, 0));
        assert_eq!(chains[0].covers_from, at(0), "from the start of the first run");
        assert_eq!(chains[0].covers_until, at(120));

        let missing = [seg(0, 0, 10), seg(0, 2, 30), seg(0, 3, 40)];
        let (chains, gaps) = super::chains(&missing);
        assert_eq!(chains[0].covers_from, at(0));
        assert_eq!(chains.len(), 2);
        assert_eq!(
            gaps,
            vec![Gap { after: missing[0].name.clone(), before: missing[1].name.clone(), from: at(10), until: at(30) }]
        );
        // After a gap, every write is known to be there only from the first segment's last write.
        assert_eq!(chains[1].covers_from, at(30));
    }

    #[test]
    fn segments_left_from_a_run_before_archiving_was_set_up_cover_only_from_their_last_write() {
        // Archiving set up at -100 while a run started at -500 went on; the node restarted at 0
        // and archived the one segment the old run left.
        let mut leftover = seg(-500, 97, -150);
        leftover.archiving_since = at(-100);
        let (chains, _) = chains(&[leftover, seg(0, 0, 20)]);
        assert_eq!(chains.len(), 1);
        assert_eq!(chains[0].covers_from, at(-150), "the old run's first 97 segments were never archived");
    }

    #[test]
    fn a_window_runs_from_the_oldest_covered_backup_to_the_last_write() {
        let segs = [seg(0, 0, 10), seg(0, 1, 20), seg(0, 2, 30), seg(0, 3, 40)];
        let (chains, _) = chains(&segs);
        // `early` started before archiving began: the chain cannot bring it forward.
        let backups = [backup("early", -50, -40), backup("b1", 5, 8), backup("b2", 25, 27)];
        assert_eq!(windows(&chains, &backups), vec![Window { from: at(8), until: at(40), backup: "b1".into() }]);
        assert!(chain_for(&chains, &backups[1], at(35)).is_some());
        assert!(chain_for(&chains, &backups[1], at(41)).is_none(), "past the last write");
        assert!(chain_for(&chains, &backups[0], at(35)).is_none(), "before archiving began");
    }

    #[test]
    fn a_restore_replays_from_the_backup_start_to_one_segment_past_the_time() {
        let segs = [seg(0, 0, 10), seg(0, 1, 20), seg(0, 2, 30), seg(0, 3, 40), seg(0, 4, 50)];
        let (chains, _) = chains(&segs);
        let b = backup("b1", 15, 18);
        let names: Vec<&str> = segments_to_replay(&chains[0], &b, at(25)).iter().map(|s| s.name.as_str()).collect();
        let want: Vec<&str> = segs[1..4].iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, want);
    }

    #[test]
    fn a_segment_whose_modification_time_lags_is_replayed_by_its_archive_time() {
        // Segment 0 was last modified (by its first write to a clean page) before the backup,
        // got more writes after it into pages already dirty, and was archived at second 22.
        let lagging = SegmentRecord { archived_at: at(22), ..seg(0, 0, 10) };
        let segs = [lagging, seg(0, 1, 30), seg(0, 2, 40)];
        let (chains, _) = chains(&segs);
        let b = backup("b1", 15, 18);
        let names: Vec<&str> = segments_to_replay(&chains[0], &b, at(25)).iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, [segs[0].name.as_str(), segs[1].name.as_str(), segs[2].name.as_str()]);
    }
}
