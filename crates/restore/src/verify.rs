//! Stage `verify`: every file to restore is hashed again and compared with the manifest (the
//! same check as `cassette verify`), before anything live is touched.

use cassette_repo::FileEntry;
use cassette_store::BackupReader;

use crate::{Progress, RestoreError, Stage};

/// The `verify` stage of both restore modes: every file the restore will use. Returns the bytes
/// verified, or `Corrupt` naming every bad file.
pub(crate) async fn verify_stage(
    backup: &dyn BackupReader,
    name: &str,
    files: &[&FileEntry],
    parallel: usize,
    progress: &dyn Progress,
) -> Result<u64, RestoreError> {
    progress.stage(Stage::Verify, name);
    let bytes: u64 = files.iter().map(|f| f.size).sum();
    progress.add_total(files.len() as u64, bytes);
    let bad = backup.verify_files(files, parallel, &|size| progress.file_verified(size)).await?;
    if !bad.is_empty() {
        return Err(RestoreError::Corrupt { path: backup.location().display().to_string(), files: bad });
    }
    Ok(bytes)
}
