//! Object lock: a backup whose objects the store keeps from being deleted or overwritten until
//! a date (S3 Object Lock retention, set on every object the backup writes). The manifest
//! records the lock so that `delete` and `purge` refuse the backup before sending a request,
//! and `list` shows it; the store enforces it whatever tool asks.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// S3 Object Lock's retention modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LockMode {
    /// A user with `s3:BypassGovernanceRetention` may still delete an object version.
    Governance,
    /// Nobody, the bucket's owner included, can delete an object version before the date.
    Compliance,
}

impl LockMode {
    /// The mode as S3 spells it in `x-amz-object-lock-mode`.
    pub fn s3_name(self) -> &'static str {
        match self {
            LockMode::Governance => "GOVERNANCE",
            LockMode::Compliance => "COMPLIANCE",
        }
    }
}

impl std::fmt::Display for LockMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LockMode::Governance => "governance",
            LockMode::Compliance => "compliance",
        })
    }
}

/// The lock of a backup's objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectLock {
    /// The retention mode.
    pub mode: LockMode,
    /// The objects cannot be deleted before this time (whole seconds, as S3 stores it).
    pub until: DateTime<Utc>,
}

impl ObjectLock {
    /// A lock in `mode` until `until`, cut to whole seconds.
    pub fn new(mode: LockMode, until: DateTime<Utc>) -> ObjectLock {
        let until = DateTime::from_timestamp(until.timestamp(), 0).unwrap_or(until);
        ObjectLock { mode, until }
    }

    /// Whether the lock still holds at `now`.
    pub fn holds_at(&self, now: DateTime<Utc>) -> bool {
        self.until > now
    }

    /// The lock as JSON, as a backup records it beside its files.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a lock serializes")
    }

    /// `until` as S3's `x-amz-object-lock-retain-until-date` wants it (RFC 3339, UTC).
    pub fn until_rfc3339(&self) -> String {
        self.until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }
}

/// How much longer than asked `--object-lock-days` locks new objects, at most: the backups of
/// the following days then reference them instead of storing them again (a new copy at most
/// every this many days). Veeam calls this a block generation; it uses 10 days too.
pub const REUSE_DAYS: i64 = 10;

/// What a locked backup asks for: the lock its new objects get, and the least a stored copy
/// must be locked for it to be referenced instead of stored again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockRequest {
    /// The lock of every object the backup puts.
    pub put: ObjectLock,
    /// A stored copy is referenced only if it is locked at least until this (and in a mode at
    /// least as strict).
    pub at_least: DateTime<Utc>,
}

impl LockRequest {
    /// Locked for `days` days from `now` at least: new objects for `days` plus up to
    /// [`REUSE_DAYS`] (at most `days`) more, so that later backups can reference them.
    pub fn for_days(mode: LockMode, now: DateTime<Utc>, days: u32) -> LockRequest {
        let days = i64::from(days);
        let at_least = ObjectLock::new(mode, now + chrono::Duration::days(days)).until;
        let put = ObjectLock::new(mode, at_least + chrono::Duration::days(days.min(REUSE_DAYS)));
        LockRequest { put, at_least }
    }

    /// Locked until `until` exactly.
    pub fn until(mode: LockMode, until: DateTime<Utc>) -> LockRequest {
        let put = ObjectLock::new(mode, until);
        LockRequest { put, at_least: put.until }
    }

    /// Whether a stored copy under `copy` (`None`: not locked) can stand in this backup.
    pub fn reuses(&self, copy: Option<&ObjectLock>) -> bool {
        copy.is_some_and(|c| {
            c.until >= self.at_least && (self.put.mode == LockMode::Governance || c.mode == LockMode::Compliance)
        })
    }

    /// The lock of a backup whose manifest lists `files`: until the earliest end among its
    /// own objects (`put`) and the copies it references.
    pub fn lock_of<'a>(&self, files: impl IntoIterator<Item = &'a crate::FileEntry>) -> ObjectLock {
        let until = files.into_iter().filter_map(|f| f.lock.map(|l| l.until)).fold(self.put.until, DateTime::min);
        ObjectLock { mode: self.put.mode, until }
    }
}

/// Whether a stored copy under `copy` can stand in a backup locked by `request` (any copy can
/// when the backup is not locked).
pub fn covers(copy: Option<&ObjectLock>, request: Option<&LockRequest>) -> bool {
    request.is_none_or(|r| r.reuses(copy))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_is_reused_only_when_locked_at_least_as_long_and_as_strictly() {
        let t = |s: i64| DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap();
        let (gov, comp) = (LockMode::Governance, LockMode::Compliance);
        let request = LockRequest::until(gov, t(100));
        assert!(covers(None, None) && covers(Some(&ObjectLock::new(gov, t(0))), None));
        assert!(!covers(None, Some(&request)), "an unlocked copy never stands in a locked backup");
        assert!(!request.reuses(Some(&ObjectLock::new(gov, t(99)))));
        assert!(
            request.reuses(Some(&ObjectLock::new(gov, t(100)))) && request.reuses(Some(&ObjectLock::new(comp, t(500))))
        );
        let strict = LockRequest::until(comp, t(100));
        assert!(
            !strict.reuses(Some(&ObjectLock::new(gov, t(500)))),
            "governance copies never stand in a compliance backup"
        );

        let lock = ObjectLock::new(gov, t(100));
        assert!(lock.holds_at(t(99)) && !lock.holds_at(t(100)));
        let json = serde_json::to_string(&lock).unwrap();
        assert_eq!(json, r#"{"mode":"governance","until":"2027-01-15T08:01:40Z"}"#);
        assert_eq!(lock.until_rfc3339(), "2027-01-15T08:01:40Z");
        assert_eq!(ObjectLock::new(comp, t(1) + chrono::Duration::milliseconds(700)).until, t(1));
    }

    #[test]
    fn days_lock_new_objects_longer_so_that_the_next_backups_reuse_them() {
        let day = chrono::Duration::days(1);
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let monday = LockRequest::for_days(LockMode::Governance, now, 30);
        assert_eq!((monday.at_least, monday.put.until), (now + day * 30, now + day * 40));
        for later in [1, 10] {
            let next = LockRequest::for_days(LockMode::Governance, now + day * later, 30);
            assert!(next.reuses(Some(&monday.put)), "{later} days later");
        }
        assert!(!LockRequest::for_days(LockMode::Governance, now + day * 11, 30).reuses(Some(&monday.put)));
        assert_eq!(
            LockRequest::for_days(LockMode::Governance, now, 2).put.until,
            now + day * 4,
            "short locks: at most double"
        );

        // A backup is locked until its earliest object: its own, or a referenced copy.
        let mut reused = crate::manifest::samples::file("ks/t/nb-1-big-Data.db", 1);
        reused.lock = Some(ObjectLock::new(LockMode::Governance, now + day * 35));
        let own = crate::manifest::samples::file("ks/t/nb-2-big-Data.db", 1);
        assert_eq!(monday.lock_of([&own]).until, now + day * 40);
        assert_eq!(monday.lock_of([&own, &reused]).until, now + day * 35);
    }
}
