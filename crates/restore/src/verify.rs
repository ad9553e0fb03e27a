//! Stage `verify`: every file to restore is hashed again and compared with the manifest (the
//! same check as `cassette verify`), before anything live is touched.

use cassette_repo::FileEntry;
use cassette_store::BackupReader;

use crate::select::Planned;
use crate::{Progress, RestoreError, RestoreRequest, Stage};

/// The `verify` stage of both restore modes: every file the restore will use. Returns the bytes
/// verified, or `Corrupt` naming every bad file.
async fn verify_stage(
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

/// What the `verify` stage checked.
pub(crate) struct Verified {
    pub files: u64,
    pub bytes: u64,
}

/// The `verify` stage over every file of the tables planned.
pub(crate) async fn verify_plan(
    backup: &dyn BackupReader,
    req: &RestoreRequest,
    plan: &[Planned<'_>],
    progress: &dyn Progress,
) -> Result<Verified, RestoreError> {
    let files: Vec<&FileEntry> = plan.iter().flat_map(|p| p.entry.files.iter()).collect();
    let bytes = verify_stage(backup, &req.name, &files, req.parallel_files, progress).await?;
    Ok(Verified { files: files.len() as u64, bytes })
}
