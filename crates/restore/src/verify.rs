//! Stage `verify`: every file to restore is hashed again and compared with the manifest
//! (`cassette_repo::check_files`, the same check as `cassette verify`).

use std::path::Path;

use cassette_repo::{Depth, FileEntry};

use crate::{BadFile, Progress, RestoreError, Stage};

/// Hashes every file (size, BLAKE3, and CRC32 of `Data.db` against `Digest.crc32`) with
/// `parallel` threads and returns the bad ones, in the order given. Read-only.
pub(crate) fn verify_files(
    backup_dir: &Path,
    files: &[&FileEntry],
    parallel: usize,
    progress: &dyn Progress,
) -> Vec<BadFile> {
    let work =
        || cassette_repo::check_files(backup_dir, files, Depth::Full, parallel, &|size| progress.file_verified(size));
    // Hashing blocks: tell a multi-thread runtime, so CQL keeps being served.
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}

/// The `verify` stage of both restore modes: every file the restore will use, before anything
/// live is touched. Returns the bytes verified, or `Corrupt` naming every bad file.
pub(crate) fn verify_stage(
    backup_dir: &Path,
    name: &str,
    files: &[&FileEntry],
    parallel: usize,
    progress: &dyn Progress,
) -> Result<u64, RestoreError> {
    progress.stage(Stage::Verify, name);
    let bytes: u64 = files.iter().map(|f| f.size).sum();
    progress.add_total(files.len() as u64, bytes);
    let bad = verify_files(backup_dir, files, parallel, progress);
    if !bad.is_empty() {
        return Err(RestoreError::Corrupt { path: backup_dir.display().to_string(), files: bad });
    }
    Ok(bytes)
}
