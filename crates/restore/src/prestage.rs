//! Stage `fetch` (one read): when the backup's store checks each file as it stages it
//! ([`BackupReader::fetch_verifies`]: an object store, an encoded repository) and the staging
//! filesystem has room for every table's SSTables at once, they are all staged before anything
//! live is touched. Each file is then read once, downloaded, decoded and hashed on its way to
//! the staging directory, and later moved into its table by `nodetool import` without
//! `--copy-data` (a rename on the data directories' filesystem). The verify stage then checks
//! only the files not staged.
//!
//! Without room, or when a download fails (a damaged object among them), the staged files are
//! removed and the restore goes the two-read way: every file verified first, each table staged
//! in turn. So a damaged backup is reported exactly as before, by the verify stage, naming every
//! bad file.

use std::collections::{BTreeSet, HashSet};
use std::path::Path;

use cassette_store::BackupReader;

use crate::journal::RunState;
use crate::select::Planned;
use crate::stage::{importable, table_staging_dir};
use crate::{Progress, RestoreRequest, Stage};

/// Headroom left free on the staging filesystem: a tenth of what is staged, and at least this.
const MIN_HEADROOM: u64 = 256 << 20;

/// What the `fetch` stage staged, verified.
#[derive(Debug, Default)]
pub(crate) struct Prestaged {
    /// Tables staged (live names): their import moves the staged files.
    pub tables: BTreeSet<String>,
    /// Files staged (backup paths): the verify stage skips them.
    pub files: HashSet<String>,
    /// Bytes staged.
    pub bytes: u64,
}

impl Prestaged {
    pub(crate) fn has_table(&self, live_name: &str) -> bool {
        self.tables.contains(live_name)
    }
}

/// Whether `bytes` can be staged where `free` bytes are available, with the headroom left.
fn room_to_stage(free: u64, bytes: u64) -> bool {
    bytes.checked_add((bytes / 10).max(MIN_HEADROOM)).is_some_and(|needed| free >= needed)
}

/// Stages every table of `plan` that `run` has not loaded yet into `run_dir`, verified, when
/// the store allows it and there is room; `None` otherwise (nothing is left staged).
pub(crate) async fn stage_all(
    source: &dyn BackupReader,
    req: &RestoreRequest,
    plan: &[Planned<'_>],
    run: &RunState,
    run_dir: &Path,
    progress: &dyn Progress,
) -> Option<Prestaged> {
    if req.dry_run || !req.mode.loads() || !source.fetch_verifies() {
        return None;
    }
    let tables: Vec<(&Planned<'_>, Vec<&cassette_repo::FileEntry>)> = plan
        .iter()
        .filter(|p| !run.loaded.contains(&p.live_name()))
        .map(|p| (p, importable(&format!("{}/{}/", p.backup_keyspace, p.entry.name), &p.entry.files)))
        .collect();
    let bytes: u64 = tables.iter().flat_map(|(_, f)| f.iter()).map(|f| f.size).sum();
    let files: u64 = tables.iter().map(|(_, f)| f.len() as u64).sum();
    match cassette_repo::space::available_bytes(run_dir) {
        Ok(free) if room_to_stage(free, bytes) => {}
        Ok(free) => {
            tracing::info!(
                staging = %run_dir.display(), free, bytes,
                "not enough room to stage every table at once: verifying every file first, then staging one table at a time (each file read twice)"
            );
            return None;
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the staging filesystem's free space: staging one table at a time");
            return None;
        }
    }
    progress.stage(Stage::Fetch, &format!("{} table(s)", tables.len()));
    progress.add_total(files, bytes);
    let mut out = Prestaged::default();
    for (p, table_files) in tables {
        let dir = table_staging_dir(run_dir, &p.live_keyspace, &p.live_table);
        if let Err(e) = source.fetch_table(&table_files, &dir).await {
            tracing::warn!(
                table = %p.live_name(), error = %e,
                "staging failed: removing what was staged, then verifying every file before anything is truncated"
            );
            if let Err(e) = std::fs::remove_dir_all(run_dir)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(path = %run_dir.display(), error = %e, "could not remove the staged files");
            }
            return None;
        }
        for f in &table_files {
            progress.file_verified(f.size);
            out.files.insert(f.path.clone());
        }
        out.bytes += table_files.iter().map(|f| f.size).sum::<u64>();
        out.tables.insert(p.live_name());
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_everything_leaves_a_tenth_and_at_least_256_mib_free() {
        const GIB: u64 = 1 << 30;
        assert!(room_to_stage(11 * GIB, 10 * GIB));
        assert!(!room_to_stage(11 * GIB - 1, 10 * GIB), "a tenth of 10 GiB must stay free");
        assert!(room_to_stage(MIN_HEADROOM + 1000, 1000));
        assert!(!room_to_stage(MIN_HEADROOM + 999, 1000), "256 MiB at least");
        assert!(!room_to_stage(u64::MAX, u64::MAX), "no overflow");
    }
}
