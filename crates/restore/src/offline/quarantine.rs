//! The quarantine: where an offline restore moves the files it replaces (renames, same
//! relative layout, nothing deleted, nothing replaced), and `cassette-quarantine.json`, which
//! says what moved there from where.

use std::path::{Path, PathBuf};

use cassette_repo::RepoError;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::plan::{OfflinePlan, OfflineTable, QuarantineMove};
use super::run::Run;
use crate::journal::Record;
use crate::{RestoreError, Stage};

/// The file in each quarantine directory that describes it.
pub const QUARANTINE_INFO: &str = "cassette-quarantine.json";
/// The directory, beside a data (or commitlog) directory, that holds quarantines by default.
pub const QUARANTINE_DIR_NAME: &str = "cassette-quarantine";

/// What a table directory holds besides live SSTables: never quarantined.
pub(super) const TABLE_SKIP: &[&str] = &["snapshots", "backups"];

/// `cassette-quarantine.json`: what a quarantine directory holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantineInfo {
    /// The backup restored.
    pub backup: String,
    /// Its directory.
    pub backup_path: PathBuf,
    /// The node restored.
    pub host_id: String,
    /// When the offline restore planned it.
    pub created_at: DateTime<Utc>,
    /// When the node was up again with the restored files (`None`: unfinished).
    pub finished_at: Option<DateTime<Utc>>,
    /// What moved here from where (move the files back by hand to undo the restore).
    pub moves: Vec<QuarantineMove>,
    /// The tables whose live files are here.
    pub tables: Vec<String>,
}

/// Writes `cassette-quarantine.json` into every quarantine directory of the plan.
pub(super) fn write_quarantine_info(
    p: &OfflinePlan,
    backup: &str,
    backup_path: &Path,
    finished_at: Option<DateTime<Utc>>,
) -> Result<(), RestoreError> {
    for root in &p.quarantine_dirs {
        let file = root.join(QUARANTINE_INFO);
        let created_at = read_quarantine_info(root).map(|i| i.created_at).unwrap_or_else(Utc::now);
        let info = QuarantineInfo {
            backup: backup.into(),
            backup_path: backup_path.into(),
            host_id: p.host_id.clone(),
            created_at,
            finished_at,
            moves: p.moves().filter(|m| m.dest.starts_with(root)).cloned().collect(),
            tables: p.tables.iter().map(OfflineTable::live_name).collect(),
        };
        cassette_repo::write_file_atomically(&file, &serde_json::to_vec_pretty(&info).expect("serializable"))?;
    }
    Ok(())
}

/// Reads a quarantine directory's `cassette-quarantine.json`.
pub fn read_quarantine_info(dir: &Path) -> Option<QuarantineInfo> {
    serde_json::from_slice(&std::fs::read(dir.join(QUARANTINE_INFO)).ok()?).ok()
}

/// Quarantines the files of the commitlog and saved caches directories (unless the journal
/// says an interrupted run did).
pub(super) fn quarantine_node_dirs(run: &mut Run<'_>, p: &OfflinePlan) -> Result<(), RestoreError> {
    for (item, mv) in p.node_moves() {
        if run.state.quarantined.contains(item) {
            run.step("quarantine", format!("{item}: skipped, already quarantined (journal)"));
            continue;
        }
        run.progress.stage(Stage::Quarantine, item);
        let n = move_tree(&mv.source, &mv.dest, &[])?;
        run.record(Record::Quarantined { at: Utc::now(), item: item.into(), files: n })?;
        run.step("quarantine", format!("{item}: moved {n} files of {} to {}", mv.source.display(), mv.dest.display()));
    }
    Ok(())
}

/// Quarantines the live SSTables of `t` from every data directory; returns how many files moved.
pub(super) fn quarantine_table(run: &mut Run<'_>, p: &OfflinePlan, t: &OfflineTable) -> Result<u64, RestoreError> {
    let name = t.live_name();
    run.progress.stage(Stage::Quarantine, &name);
    let mut files = 0;
    for mv in &p.data {
        files += move_tree(&t.dir_in(&mv.source), &t.dir_in(&mv.dest), TABLE_SKIP)?;
    }
    run.record(Record::Quarantined { at: Utc::now(), item: name, files })?;
    Ok(files)
}

/// Moves every file below `src` to the same relative path below `dest` (renames: same
/// filesystem), except the top-level directories named in `skip`. Returns the files moved.
/// Refuses to replace a file in `dest`. A missing `src` moves nothing.
pub(super) fn move_tree(src: &Path, dest: &Path, skip: &[&str]) -> Result<u64, RepoError> {
    let entries = match std::fs::read_dir(src) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(RepoError::io("read directory", src, e)),
    };
    let mut moved = 0;
    for entry in entries {
        let entry = entry.map_err(|e| RepoError::io("read directory", src, e))?;
        let name = entry.file_name();
        let from = entry.path();
        let to = dest.join(&name);
        let kind = entry.file_type().map_err(|e| RepoError::io("stat", &from, e))?;
        if kind.is_dir() {
            if skip.iter().any(|s| name == *s) {
                continue;
            }
            moved += move_tree(&from, &to, &[])?;
            continue;
        }
        std::fs::create_dir_all(dest).map_err(|e| RepoError::io("create directory", dest, e))?;
        if to.symlink_metadata().is_ok() {
            return Err(RepoError::io(
                "move into the quarantine (a file of that name is already there; nothing is replaced)",
                &to,
                std::io::Error::from(std::io::ErrorKind::AlreadyExists),
            ));
        }
        std::fs::rename(&from, &to).map_err(|e| RepoError::io("move into the quarantine", &from, e))?;
        moved += 1;
    }
    if moved > 0 {
        cassette_repo::sync_dir(src)?;
        if dest.is_dir() {
            cassette_repo::sync_dir(dest)?;
        }
    }
    Ok(moved)
}

/// Calls `f` with every file below `dir` that [`move_tree`] would move with this `skip` (an
/// unreadable directory holds nothing: this only counts and cleans, it never moves).
pub(super) fn for_each_file(dir: &Path, skip: &[&str], f: &mut dyn FnMut(&std::fs::DirEntry)) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            if !skip.iter().any(|s| e.file_name() == *s) {
                for_each_file(&e.path(), &[], f);
            }
        } else {
            f(&e);
        }
    }
}

/// How many files [`move_tree`] would move.
pub(super) fn count_files(dir: &Path, skip: &[&str]) -> u64 {
    let mut n = 0;
    for_each_file(dir, skip, &mut |_| n += 1);
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn move_tree_keeps_layout_skips_snapshots_and_never_replaces() {
        let d = tempfile::tempdir().unwrap();
        let table = d.path().join("data/ks/t-00");
        std::fs::create_dir_all(table.join(".idx")).unwrap();
        std::fs::create_dir_all(table.join("snapshots/s1")).unwrap();
        for f in ["nb-1-big-Data.db", "nb-1-big-TOC.txt", ".idx/nb-1-big-Data.db", "snapshots/s1/nb-1-big-Data.db"] {
            std::fs::write(table.join(f), f).unwrap();
        }
        assert_eq!(count_files(&table, TABLE_SKIP), 3);
        let q = d.path().join("q/data1/ks/t-00");
        assert_eq!(move_tree(&table, &q, TABLE_SKIP).unwrap(), 3);
        assert_eq!(std::fs::read_to_string(q.join(".idx/nb-1-big-Data.db")).unwrap(), ".idx/nb-1-big-Data.db");
        assert!(table.join("snapshots/s1/nb-1-big-Data.db").exists() && !table.join("nb-1-big-Data.db").exists());
        // Again: nothing left to move. A name already in the quarantine is not replaced.
        assert_eq!(move_tree(&table, &q, TABLE_SKIP).unwrap(), 0);
        std::fs::write(table.join("nb-1-big-TOC.txt"), "new").unwrap();
        assert!(move_tree(&table, &q, TABLE_SKIP).is_err());
        assert_eq!(std::fs::read_to_string(q.join("nb-1-big-TOC.txt")).unwrap(), "nb-1-big-TOC.txt");
        assert_eq!(move_tree(&d.path().join("missing"), &q, &[]).unwrap(), 0);
    }
}
