//! Which backups of a node a retention policy keeps, and why: a pure function of the backups,
//! the policy and the time, shared by `cassette purge`, its `--dry-run` and the tests.
//!
//! - A complete backup is kept if it is one of the newest `keep_last`, or finished less than
//!   `keep_days` days ago (either policy keeping it is enough). The newest complete backup of a
//!   node is always kept, whatever the policy.
//! - An incomplete backup (interrupted: no manifest) is deleted once nothing was written to it
//!   for longer than the grace period; until then it may be running, or about to be resumed.
//! - A backup whose manifest cannot be read (damaged, or written by a newer cassette) is kept:
//!   purge never deletes what it cannot understand.
//!
//! "Newest" and "age" use `finished_at`, the time the deduplication of the next backup uses too.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::summary::BackupSummary;

/// What to keep.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Policy {
    /// Keep the newest N complete backups of each node.
    pub keep_last: Option<usize>,
    /// Keep the complete backups that finished less than D days ago.
    pub keep_days: Option<u32>,
    /// Incomplete backups written to more recently than this are kept (seconds, in JSON).
    #[serde(serialize_with = "seconds")]
    pub grace: std::time::Duration,
}

impl Policy {
    /// The grace period as a chrono duration (to compare with ages).
    pub fn grace(&self) -> Duration {
        Duration::from_std(self.grace).unwrap_or(Duration::MAX)
    }
}

fn seconds<S: serde::Serializer>(d: &std::time::Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_secs())
}

/// Why a backup is kept or deleted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Kept: the newest complete backup of the node (always kept).
    NewestComplete,
    /// Kept: one of the newest `keep_last` complete backups.
    WithinLast,
    /// Kept: finished less than `keep_days` days ago.
    WithinDays,
    /// Kept: incomplete, but written to within the grace period.
    InGrace,
    /// Kept: its manifest cannot be read, or its age is unknown.
    Unreadable,
    /// Kept: a restore used it within the grace period.
    RestoreActive,
    /// Kept: its object lock holds (the store would refuse to delete its objects).
    Locked,
    /// Deleted: complete, and no policy keeps it.
    Expired,
    /// Deleted: incomplete, and untouched for longer than the grace period.
    Abandoned,
}

impl Reason {
    /// Whether the backup stays.
    pub fn keeps(&self) -> bool {
        !matches!(self, Reason::Expired | Reason::Abandoned)
    }

    /// The reason in words, for `b` under `policy` at `now`.
    pub fn describe(&self, b: &BackupSummary, policy: &Policy, now: DateTime<Utc>) -> String {
        let written = b.last_written_at.or(b.started_at).map(|t| age(now - t)).unwrap_or_else(|| "?".into());
        let grace = age(policy.grace());
        match self {
            Reason::NewestComplete => "the newest complete backup of this node (always kept)".into(),
            Reason::WithinLast => format!("one of the last {} complete backups", policy.keep_last.unwrap_or(0)),
            Reason::WithinDays => format!("finished less than {} days ago", policy.keep_days.unwrap_or(0)),
            Reason::InGrace => format!(
                "incomplete, last written {written} ago, within the grace period ({grace}): it may be running or about to be resumed"
            ),
            Reason::Unreadable => format!(
                "{}{}: kept; check it with `cassette verify`, remove it with `cassette delete`",
                if b.damaged { "DAMAGED, " } else { "" },
                b.error.as_deref().unwrap_or("its age is unknown")
            ),
            Reason::RestoreActive => format!("a restore used it within the grace period ({grace})"),
            Reason::Locked => match b.object_lock {
                Some(lock) => format!(
                    "locked until {} ({} mode): the store refuses to delete it before then",
                    lock.until_rfc3339(),
                    lock.mode
                ),
                None => "locked".into(),
            },
            Reason::Expired => {
                let mut why = Vec::new();
                if let Some(n) = policy.keep_last {
                    why.push(format!("not one of the last {n}"));
                }
                if let Some(d) = policy.keep_days {
                    why.push(format!("finished more than {d} days ago"));
                }
                format!("complete, {}", why.join(" and "))
            }
            Reason::Abandoned => {
                format!(
                    "incomplete (interrupted), nothing written for {written}, longer than the grace period ({grace})"
                )
            }
        }
    }
}

/// The reason for each backup of one node, in the order given.
pub fn select(backups: &[BackupSummary], policy: &Policy, now: DateTime<Utc>) -> Vec<Reason> {
    let mut complete: Vec<usize> =
        (0..backups.len()).filter(|&i| backups[i].complete && backups[i].finished_at.is_some()).collect();
    // Newest first; the name breaks ties so that the choice never depends on listing order.
    complete
        .sort_by(|&a, &b| (backups[b].finished_at, &backups[b].name).cmp(&(backups[a].finished_at, &backups[a].name)));
    let mut reasons = vec![Reason::Unreadable; backups.len()];
    for (rank, &i) in complete.iter().enumerate() {
        let finished = backups[i].finished_at.expect("filtered");
        reasons[i] = if rank == 0 {
            Reason::NewestComplete
        } else if policy.keep_last.is_some_and(|n| rank < n) {
            Reason::WithinLast
        } else if policy.keep_days.is_some_and(|d| now - finished < Duration::days(i64::from(d))) {
            Reason::WithinDays
        } else {
            Reason::Expired
        };
    }
    for (i, b) in backups.iter().enumerate() {
        if b.complete || b.damaged || b.error.is_some() {
            continue;
        }
        reasons[i] = match b.last_written_at.or(b.started_at) {
            Some(t) if now - t > policy.grace() => Reason::Abandoned,
            Some(_) => Reason::InGrace,
            None => Reason::Unreadable,
        };
    }
    reasons
}

/// 45s, 12m, 3h, 3h05m, 2d, 2d03h.
pub fn age(d: Duration) -> String {
    let s = d.num_seconds().max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 if s % 3600 / 60 == 0 => format!("{}h", s / 3600),
        3600..86400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ if s % 86400 / 3600 == 0 => format!("{}d", s / 86400),
        _ => format!("{}d{:02}h", s / 86400, s % 86400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2024-07-01T12:00:00Z".parse().unwrap()
    }

    /// A complete backup that finished `days` days and `hours` hours before `now()`.
    fn complete(name: &str, days: i64, hours: i64) -> BackupSummary {
        let finished = now() - Duration::days(days) - Duration::hours(hours);
        BackupSummary {
            cluster: "c".into(),
            host_id: "h".into(),
            name: name.into(),
            path: name.into(),
            complete: true,
            files: 1,
            bytes: 1,
            bytes_added: 1,
            started_at: Some(finished - Duration::minutes(10)),
            finished_at: Some(finished),
            last_written_at: None,
            error: None,
            damaged: false,
            object_lock: None,
        }
    }

    fn incomplete(name: &str, written_ago: Duration) -> BackupSummary {
        BackupSummary {
            complete: false,
            finished_at: None,
            started_at: Some(now() - written_ago - Duration::minutes(30)),
            last_written_at: Some(now() - written_ago),
            ..complete(name, 0, 0)
        }
    }

    fn policy(keep_last: Option<usize>, keep_days: Option<u32>) -> Policy {
        Policy { keep_last, keep_days, grace: std::time::Duration::from_secs(3600) }
    }

    fn kept(backups: &[BackupSummary], p: &Policy) -> Vec<String> {
        let reasons = select(backups, p, now());
        backups.iter().zip(&reasons).filter(|(_, r)| r.keeps()).map(|(b, _)| b.name.clone()).collect()
    }

    /// 30 daily backups, d0 the newest, listed in a shuffled order.
    fn thirty_days() -> Vec<BackupSummary> {
        let mut v: Vec<BackupSummary> = (0..30).map(|d| complete(&format!("d{d}"), d, 0)).collect();
        v.reverse();
        v.swap(3, 17);
        v
    }

    #[test]
    fn keep_last_keeps_the_newest_n() {
        let b = thirty_days();
        let mut k = kept(&b, &policy(Some(7), None));
        k.sort();
        assert_eq!(k, ["d0", "d1", "d2", "d3", "d4", "d5", "d6"]);
        let reasons = select(&b, &policy(Some(7), None), now());
        let of = |n: &str| &reasons[b.iter().position(|x| x.name == n).unwrap()];
        assert_eq!(*of("d0"), Reason::NewestComplete);
        assert_eq!(*of("d6"), Reason::WithinLast);
        assert_eq!(*of("d7"), Reason::Expired);
    }

    #[test]
    fn keep_days_keeps_what_finished_within_the_period() {
        let b = thirty_days();
        let mut k = kept(&b, &policy(None, Some(10)));
        k.sort_by_key(|n| n[1..].parse::<u32>().unwrap());
        assert_eq!(k, (0..10).map(|d| format!("d{d}")).collect::<Vec<_>>());
        // Exactly 10 days old is out; a minute less is in.
        let edge = [complete("new", 0, 0), complete("ten", 10, 0), complete("almost", 9, 23)];
        assert_eq!(kept(&edge, &policy(None, Some(10))), ["new", "almost"]);
    }

    #[test]
    fn either_policy_keeping_a_backup_is_enough() {
        let b = thirty_days();
        let mut k = kept(&b, &policy(Some(3), Some(5)));
        k.sort();
        assert_eq!(k, ["d0", "d1", "d2", "d3", "d4"]);
        let mut k = kept(&b, &policy(Some(12), Some(5)));
        k.sort_by_key(|n| n[1..].parse::<u32>().unwrap());
        assert_eq!(k.len(), 12);
        let reasons = select(&b, &policy(Some(3), Some(5)), now());
        let of = |n: &str| &reasons[b.iter().position(|x| x.name == n).unwrap()];
        assert_eq!((of("d2"), of("d4"), of("d5")), (&Reason::WithinLast, &Reason::WithinDays, &Reason::Expired));
    }

    #[test]
    fn the_newest_complete_backup_is_always_kept() {
        // All older than the period, and keep-last 0: the newest stays anyway.
        let b = [complete("old", 40, 0), complete("older", 50, 0), incomplete("newer-but-broken", Duration::days(2))];
        assert_eq!(kept(&b, &policy(Some(0), Some(30))), ["old"]);
        assert_eq!(kept(&b, &policy(None, Some(1))), ["old"]);
    }

    #[test]
    fn incomplete_backups_go_after_the_grace_period() {
        let b = [
            complete("done", 1, 0),
            incomplete("running", Duration::minutes(5)),
            incomplete("interrupted", Duration::hours(3)),
        ];
        let reasons = select(&b, &policy(Some(1), None), now());
        assert_eq!(reasons, [Reason::NewestComplete, Reason::InGrace, Reason::Abandoned]);
        let long_grace = Policy { grace: std::time::Duration::from_secs(4 * 3600), ..policy(Some(1), None) };
        assert_eq!(select(&b, &long_grace, now())[2], Reason::InGrace);
        assert!(Reason::Abandoned.describe(&b[2], &policy(Some(1), None), now()).contains("nothing written for 3h"));
    }

    #[test]
    fn unreadable_backups_and_unknown_ages_are_kept() {
        let mut newer = incomplete("from-a-newer-cassette", Duration::days(90));
        newer.error = Some("manifest format version 2".into());
        let mut unknown = incomplete("no-times", Duration::days(90));
        (unknown.started_at, unknown.last_written_at) = (None, None);
        let b = [complete("a", 60, 0), newer, unknown];
        assert_eq!(
            select(&b, &policy(Some(1), None), now()),
            [Reason::NewestComplete, Reason::Unreadable, Reason::Unreadable]
        );
        assert!(
            Reason::Unreadable.describe(&b[1], &policy(Some(1), None), now()).starts_with("manifest format version 2")
        );
    }

    #[test]
    fn ties_are_broken_by_name_not_listing_order() {
        let b = [complete("b", 1, 0), complete("a", 1, 0), complete("c", 1, 0)];
        assert_eq!(kept(&b, &policy(Some(2), None)), ["b", "c"]);
        let r: Vec<BackupSummary> = b.iter().rev().cloned().collect();
        assert_eq!(kept(&r, &policy(Some(2), None)), ["c", "b"]);
    }

    #[test]
    fn ages_read_well() {
        let f = |s| age(Duration::seconds(s));
        assert_eq!(
            [f(5), f(125), f(3600), f(3900), f(86400 * 2), f(86400 * 2 + 3 * 3600)],
            ["5s", "2m", "1h", "1h05m", "2d", "2d03h"]
        );
    }
}
