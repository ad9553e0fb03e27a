//! Placing a table's backed-up files into its live directory, once its live files are in the
//! quarantine: hard links when the backup is on the same filesystem, verified copies otherwise.

use std::path::Path;

use cassette_repo::{FileEntry, LinkOutcome, RepoError};
use chrono::Utc;

use super::failed;
use super::plan::OfflineTable;
use super::quarantine::{TABLE_SKIP, for_each_file};
use super::run::Run;
use crate::journal::Record;
use crate::select::Planned;
use crate::stage::REWRITTEN;
use crate::{RestoreError, Stage};

/// The backed-up files of `t`, each with its path relative to the table directory.
pub(super) fn backup_files<'m>(planned: &[Planned<'m>], t: &OfflineTable) -> Vec<(&'m FileEntry, String)> {
    let name = t.live_name();
    let table = planned.iter().find(|p| p.live_name() == name).expect("the plan's tables are the selection's");
    let prefix = format!("{}/{}/", t.backup_keyspace, t.backup_table);
    table.entry.files.iter().filter_map(|f| f.path.strip_prefix(&prefix).map(|rel| (f, rel.to_string()))).collect()
}

/// Places `files` (see [`backup_files`]) of `t` in `live_dir` and journals it; returns the
/// files and bytes placed.
pub(super) fn place_table(
    run: &mut Run<'_>,
    t: &OfflineTable,
    files: &[(&FileEntry, String)],
    backup_dir: &Path,
    live_dir: &Path,
) -> Result<(u64, u64), RestoreError> {
    run.progress.stage(Stage::Place, &t.live_name());
    place_files(backup_dir, files, live_dir)?;
    let placed = (files.len() as u64, files.iter().map(|(f, _)| f.size).sum());
    run.record(Record::Placed {
        at: Utc::now(),
        keyspace: t.keyspace.clone(),
        table: t.table.clone(),
        files: placed.0,
        bytes: placed.1,
    })?;
    Ok(placed)
}

/// Puts the backup's files (`(entry, path relative to the table)`) into `live_dir`: hard links
/// when possible, except the components Cassandra may rewrite in place, which are copied (the
/// backup's files must never change); every copy is checked against the manifest's BLAKE3.
/// Files get the owner of `live_dir` (when cassette runs as root).
fn place_files(backup_dir: &Path, files: &[(&FileEntry, String)], live_dir: &Path) -> Result<(), RestoreError> {
    use std::os::unix::fs::MetadataExt;
    std::fs::create_dir_all(live_dir).map_err(|e| RepoError::io("create directory", live_dir, e))?;
    remove_partials(live_dir);
    let owner = std::fs::metadata(live_dir).map(|m| (m.uid(), m.gid())).ok();
    for (entry, rel) in files {
        let src = backup_dir.join(&entry.path);
        let dst = live_dir.join(rel);
        let name = rel.rsplit('/').next().unwrap_or(rel);
        let stored = if REWRITTEN.iter().any(|c| name.ends_with(c)) {
            Some(cassette_repo::copy_verified(&src, &dst, None)?)
        } else {
            match cassette_repo::link_or_copy(&src, &dst)? {
                LinkOutcome::Linked => None,
                LinkOutcome::Copied(s) => Some(s),
            }
        };
        if let Some(s) = stored
            && s.blake3 != entry.blake3
        {
            let _ = std::fs::remove_file(&dst);
            return Err(failed(
                "place",
                format!(
                    "the copy of {} differs from the manifest (BLAKE3): the backup changed during the restore; run the restore again",
                    src.display()
                ),
            ));
        }
        if let Some((uid, gid)) = owner
            && let Ok(m) = std::fs::metadata(&dst)
            && (m.uid(), m.gid()) != (uid, gid)
            && let Err(e) = std::os::unix::fs::chown(&dst, Some(uid), Some(gid))
        {
            tracing::warn!(path = %dst.display(), error = %e, "could not give the restored file the table directory's owner");
        }
    }
    Ok(())
}

/// Removes the `*.partial` files a crashed placement left in a table directory (not in its
/// snapshots or backups).
fn remove_partials(dir: &Path) {
    for_each_file(dir, TABLE_SKIP, &mut |e| {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "partial") {
            let _ = std::fs::remove_file(&p);
        }
    });
}
