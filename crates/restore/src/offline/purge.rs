//! The quarantines on disk, for `cassette quarantine list` and `purge`: only a finished
//! quarantine written by cassette, old enough, is ever removed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use cassette_repo::RepoError;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::quarantine::{QUARANTINE_INFO, QuarantineInfo, for_each_file, read_quarantine_info};

/// One quarantine directory, as `cassette quarantine list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct QuarantineEntry {
    /// The directory.
    pub path: PathBuf,
    /// Its `cassette-quarantine.json` (`None`: not written by cassette, never purged).
    pub info: Option<QuarantineInfo>,
    /// Files it holds.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// The quarantine directories below `roots` (each a `cassette-quarantine` directory), oldest first.
pub fn list_quarantines(roots: &[PathBuf]) -> Vec<QuarantineEntry> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for root in roots {
        let Ok(entries) = std::fs::read_dir(root) else { continue };
        for e in entries.flatten() {
            let path = e.path();
            if !path.is_dir() || !seen.insert(path.clone()) {
                continue;
            }
            let (files, bytes) = size_of(&path);
            out.push(QuarantineEntry { info: read_quarantine_info(&path), path, files, bytes });
        }
    }
    out.sort_by_key(|q| (q.info.as_ref().map(|i| i.created_at), q.path.clone()));
    out
}

/// The files below `dir` and their bytes, not counting `cassette-quarantine.json`.
fn size_of(dir: &Path) -> (u64, u64) {
    let (mut files, mut bytes) = (0, 0);
    for_each_file(dir, &[], &mut |e| {
        if e.file_name() != QUARANTINE_INFO {
            files += 1;
            bytes += e.metadata().map(|m| m.len()).unwrap_or(0);
        }
    });
    (files, bytes)
}

/// Why a quarantine is kept by [`purge_quarantines`], or `None` when it is removed.
pub fn purge_refusal(
    q: &QuarantineEntry,
    older_than_days: u64,
    include_unfinished: bool,
    now: DateTime<Utc>,
) -> Option<String> {
    let Some(info) = &q.info else { return Some(format!("no {QUARANTINE_INFO}: not a cassette quarantine")) };
    if info.finished_at.is_none() && !include_unfinished {
        return Some(
            "its offline restore has not finished (run it again to finish it, or pass --include-unfinished)".into(),
        );
    }
    let age_days = (now - info.created_at).num_days().max(0) as u64;
    if age_days < older_than_days {
        return Some(format!("{age_days} day(s) old, younger than --older-than-days {older_than_days}"));
    }
    None
}

/// What [`purge_quarantines`] did.
#[derive(Debug, Default, Serialize)]
pub struct PurgeOutcome {
    /// The quarantine directories removed.
    pub removed: Vec<PathBuf>,
    /// Those kept, with why.
    pub kept: Vec<(PathBuf, String)>,
}

/// Removes the quarantines that [`purge_refusal`] does not keep.
pub fn purge_quarantines(
    entries: &[QuarantineEntry],
    older_than_days: u64,
    include_unfinished: bool,
) -> Result<PurgeOutcome, RepoError> {
    let now = Utc::now();
    let (mut removed, mut kept) = (Vec::new(), Vec::new());
    for q in entries {
        match purge_refusal(q, older_than_days, include_unfinished, now) {
            Some(why) => kept.push((q.path.clone(), why)),
            None => {
                std::fs::remove_dir_all(&q.path).map_err(|e| RepoError::io("remove", &q.path, e))?;
                removed.push(q.path.clone());
            }
        }
    }
    Ok(PurgeOutcome { removed, kept })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purge_keeps_unfinished_young_and_foreign_quarantines() {
        let info = |days: i64, finished: bool| QuarantineInfo {
            backup: "b".into(),
            backup_path: "/b".into(),
            host_id: "h".into(),
            created_at: Utc::now() - chrono::Duration::days(days),
            finished_at: finished.then(Utc::now),
            moves: vec![],
            tables: vec![],
        };
        let q = |info: Option<QuarantineInfo>| QuarantineEntry { path: "/q".into(), info, files: 0, bytes: 0 };
        let now = Utc::now();
        assert!(purge_refusal(&q(Some(info(10, true))), 7, false, now).is_none());
        assert!(purge_refusal(&q(Some(info(3, true))), 7, false, now).unwrap().contains("younger"));
        assert!(purge_refusal(&q(Some(info(10, false))), 0, false, now).unwrap().contains("not finished"));
        assert!(purge_refusal(&q(Some(info(10, false))), 0, true, now).is_none());
        assert!(purge_refusal(&q(None), 0, true, now).is_some());
    }

    #[test]
    fn list_counts_the_moved_files_not_the_description() {
        let d = tempfile::tempdir().unwrap();
        let q = d.path().join("20240101T000000Z-b1");
        std::fs::create_dir_all(q.join("data1/ks/t-00")).unwrap();
        std::fs::write(q.join(QUARANTINE_INFO), "not json").unwrap();
        std::fs::write(q.join("data1/ks/t-00/nb-1-big-Data.db"), "12345").unwrap();
        std::fs::write(q.join("stop-command.log"), "ok").unwrap();
        let listed = list_quarantines(&[d.path().to_path_buf(), d.path().join("missing")]);
        assert_eq!(listed.len(), 1);
        assert_eq!((listed[0].files, listed[0].bytes), (2, 7));
        assert!(listed[0].info.is_none());
    }
}
