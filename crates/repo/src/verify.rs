//! Checking stored files against their manifest: the one definition of "this backup is intact",
//! used by `cassette verify` and by restore before it touches anything.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;

use crate::error::{RepoError, Result};
use crate::manifest::{FileEntry, Manifest, ManifestFile};

/// A stored file that does not match its manifest entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BadFile {
    /// Its path in the backup directory.
    pub path: String,
    /// What is wrong with it: missing, size, content (BLAKE3), CRC32 against `Digest.crc32`.
    pub problem: String,
}

/// How thoroughly to check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Depth {
    /// Presence and size only (no file is read).
    Quick,
    /// Every byte hashed again: BLAKE3, and CRC32 of each `Data.db`.
    Full,
}

/// What [`verify_backup`] found.
#[derive(Clone, Debug, Serialize)]
pub struct VerifyReport {
    /// Files checked.
    pub files: u64,
    /// Bytes they should hold.
    pub bytes: u64,
    /// The files that do not match, in manifest order.
    pub bad: Vec<BadFile>,
}

/// What is wrong with one stored file, or `None` when it matches its entry. The file is opened
/// beneath `backup_dir` by the repository path policy (`beneath`): a symbolic link, a FIFO or
/// anything but a regular file is reported, never followed or read.
pub fn check_file(backup_dir: &Path, entry: &FileEntry, depth: Depth) -> Option<String> {
    if let Some(reason) = crate::beneath::check_relative(&entry.path) {
        return Some(format!("not a path inside the backup: {reason}"));
    }
    let path = backup_dir.join(&entry.path);
    let file = match crate::beneath::open_regular(backup_dir, &path) {
        Ok(f) => f,
        Err(e) if e.io_kind() == Some(std::io::ErrorKind::NotFound) => return Some("missing".into()),
        Err(RepoError::Unsafe { problem, .. }) => return Some(format!("refused: {problem}")),
        Err(e) => return Some(format!("unreadable: {e}")),
    };
    let size = match file.metadata() {
        Ok(m) => m.len(),
        Err(e) => return Some(format!("unreadable: {e}")),
    };
    if size != entry.size {
        return Some(format!("size {size} bytes, the manifest says {} (truncated or replaced)", entry.size));
    }
    if depth == Depth::Quick {
        return None;
    }
    let stored = match crate::hash_open_file(file, &path) {
        Ok(s) => s,
        Err(e) => return Some(format!("unreadable: {e}")),
    };
    if stored.blake3 != entry.blake3 {
        return Some(format!(
            "content changed: BLAKE3 {} but the manifest says {}",
            &stored.blake3[..16],
            entry.blake3.get(..16).unwrap_or(&entry.blake3)
        ));
    }
    if let Some(crc) = entry.digest_crc32
        && crc != stored.crc32
    {
        return Some(format!("CRC32 {} but Digest.crc32 says {crc}", stored.crc32));
    }
    None
}

/// Checks `files` with `parallel` threads; `on_file` is called with each file's size as it is
/// done (for progress). Returns the bad ones in the order given. Read-only.
pub fn check_files(
    backup_dir: &Path,
    files: &[&FileEntry],
    depth: Depth,
    parallel: usize,
    on_file: &(dyn Fn(u64) + Sync),
) -> Vec<BadFile> {
    let next = AtomicUsize::new(0);
    let bad: Mutex<Vec<(usize, BadFile)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..parallel.clamp(1, 16) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(entry) = files.get(i) else { break };
                    if let Some(problem) = check_file(backup_dir, entry, depth) {
                        bad.lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push((i, BadFile { path: entry.path.clone(), problem }));
                    }
                    on_file(entry.size);
                }
            });
        }
    });
    let mut bad = bad.into_inner().unwrap_or_else(|e| e.into_inner());
    bad.sort_by_key(|(i, _)| *i);
    bad.into_iter().map(|(_, b)| b).collect()
}

/// Reads the backup's manifest (refusing an incomplete backup) and checks every file it lists.
pub fn verify_backup(
    backup_dir: &Path,
    depth: Depth,
    parallel: usize,
    on_file: &(dyn Fn(u64) + Sync),
) -> Result<VerifyReport> {
    let manifest = Manifest::read(backup_dir)?;
    let files: Vec<&FileEntry> = manifest.files().collect();
    let bad = check_files(backup_dir, &files, depth, parallel, on_file);
    Ok(VerifyReport { files: files.len() as u64, bytes: files.iter().map(|f| f.size).sum(), bad })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(dir: &Path) -> Vec<FileEntry> {
        let mut v = Vec::new();
        for (name, body) in [("a-Data.db", &b"hello world"[..]), ("b", b"second"), ("c", b"third"), ("d", b"fourth")] {
            let p = dir.join(name);
            std::fs::write(&p, body).unwrap();
            let h = crate::hash_file(&p).unwrap();
            v.push(h.to_entry(name.into(), name.ends_with("Data.db").then_some(h.crc32)));
        }
        v
    }

    #[test]
    fn names_missing_truncated_and_changed_files() {
        let d = tempfile::tempdir().unwrap();
        let entries = entries(d.path());
        let refs: Vec<&FileEntry> = entries.iter().collect();
        assert!(check_files(d.path(), &refs, Depth::Full, 2, &|_| {}).is_empty());
        std::fs::write(d.path().join("a-Data.db"), b"hello World").unwrap(); // one flipped bit
        std::fs::remove_file(d.path().join("b")).unwrap();
        std::fs::write(d.path().join("d"), b"four").unwrap();
        let bad = check_files(d.path(), &refs, Depth::Full, 3, &|_| {});
        let got: Vec<(&str, &str)> = bad.iter().map(|b| (b.path.as_str(), b.problem.as_str())).collect();
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(got[0].0 == "a-Data.db" && got[0].1.contains("BLAKE3"));
        assert_eq!(got[1], ("b", "missing"));
        assert!(got[2].0 == "d" && got[2].1.contains("size 4 bytes"));
        // Quick checks presence and size only: the same-size change goes unseen.
        let quick = check_files(d.path(), &refs, Depth::Quick, 1, &|_| {});
        assert_eq!(quick.iter().map(|b| b.path.as_str()).collect::<Vec<_>>(), vec!["b", "d"]);
    }
}
