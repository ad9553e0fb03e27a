//! Stage `verify`: every file to restore is hashed again and compared with the manifest (the
//! same check as `cassette verify`), before anything live is touched.

use cassette_repo::FileEntry;
use cassette_store::BackupReader;

use crate::prestage::Prestaged;
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
    verify_unstaged(backup, req, plan, None, progress).await
}

/// The `verify` stage over the files of the plan that `staged` does not hold (they were checked
/// as they were staged); the counts include those.
pub(crate) async fn verify_unstaged(
    backup: &dyn BackupReader,
    req: &RestoreRequest,
    plan: &[Planned<'_>],
    staged: Option<&Prestaged>,
    progress: &dyn Progress,
) -> Result<Verified, RestoreError> {
    let all: Vec<&FileEntry> = plan.iter().flat_map(|p| p.entry.files.iter()).collect();
    let files: Vec<&FileEntry> =
        all.iter().copied().filter(|f| !staged.is_some_and(|s| s.files.contains(&f.path))).collect();
    let bytes = verify_stage(backup, &req.name, &files, req.parallel_files, progress).await?;
    let (staged_files, staged_bytes) = staged.map_or((0, 0), |s| (s.files.len() as u64, s.bytes));
    Ok(Verified { files: files.len() as u64 + staged_files, bytes: bytes + staged_bytes })
}
