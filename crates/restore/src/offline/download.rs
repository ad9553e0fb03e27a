//! A backup on object storage, for an offline restore: the selected tables' files downloaded
//! into the quarantine, each verified as it arrives (size and BLAKE3 against the manifest),
//! before anything on the node is touched. The quarantine is on the data directories'
//! filesystem, so placing the files afterwards is hard links, as from a backup directory.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use cassette_repo::FileEntry;
use cassette_store::BackupReader;

use crate::select::Planned;
use crate::{Progress, RestoreError, Stage};

/// The directory of the quarantine that holds the downloaded backup, laid out as a backup
/// directory (`<keyspace>/<table>/...`).
pub(super) fn files_dir(main_quarantine: &Path) -> PathBuf {
    main_quarantine.join("backup-files")
}

/// Downloads every file of the `planned` tables not in `placed` (live names an interrupted
/// run already placed) into `dir`; returns the files and bytes downloaded.
pub(super) async fn download_tables(
    backup: &dyn BackupReader,
    planned: &[Planned<'_>],
    placed: &BTreeSet<String>,
    dir: &Path,
    progress: &dyn Progress,
) -> Result<(u64, u64), RestoreError> {
    let todo: Vec<&Planned<'_>> = planned.iter().filter(|t| !placed.contains(&t.live_name())).collect();
    let all: Vec<&FileEntry> = todo.iter().flat_map(|t| t.entry.files.iter()).collect();
    let bytes: u64 = all.iter().map(|f| f.size).sum();
    progress.add_total(all.len() as u64, bytes);
    for t in todo {
        progress.stage(Stage::Verify, &t.live_name());
        for (parent, files) in by_directory(&t.entry.files) {
            backup.fetch_table(&files, &dir.join(parent)).await?;
            for f in &files {
                progress.file_verified(f.size);
            }
        }
    }
    Ok((all.len() as u64, bytes))
}

/// A table's files by the directory they are in (an index's SSTables are in a subdirectory),
/// the table's own directory first: a fetch empties its directory before it fills it.
fn by_directory(files: &[FileEntry]) -> Vec<(&str, Vec<&FileEntry>)> {
    let mut groups: BTreeMap<&str, Vec<&FileEntry>> = BTreeMap::new();
    for f in files {
        let parent = f.path.rsplit_once('/').map_or("", |(p, _)| p);
        groups.entry(parent).or_default().push(f);
    }
    let mut groups: Vec<_> = groups.into_iter().collect();
    groups.sort_by_key(|(p, _)| p.matches('/').count());
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_directory_comes_after_its_table_directory() {
        let entry = |path: &str| FileEntry {
            path: path.into(),
            size: 1,
            blake3: String::new(),
            digest_crc32: None,
            mtime_ns: 0,
            object: None,
            reused_from: None,
            encoded: None,
            lock: None,
        };
        let files = vec![
            entry("ks/t-1/.t_idx/nb-1-big-Data.db"),
            entry("ks/t-1/nb-1-big-Data.db"),
            entry("ks/t-1/nb-2-big-Data.db"),
        ];
        let groups = by_directory(&files);
        let dirs: Vec<(&str, usize)> = groups.iter().map(|(d, f)| (*d, f.len())).collect();
        assert_eq!(dirs, [("ks/t-1", 2), ("ks/t-1/.t_idx", 1)]);
    }
}
