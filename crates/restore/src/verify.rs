//! Stage `verify`: every file to restore is hashed again and compared with the manifest.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use cassette_repo::FileEntry;

use crate::{BadFile, Progress};

/// Hashes every file (size, BLAKE3, and CRC32 of `Data.db` against `Digest.crc32`) with
/// `parallel` threads and returns the bad ones, in the order given. Read-only.
pub(crate) fn verify_files(backup_dir: &Path, files: &[&FileEntry], parallel: usize, progress: &dyn Progress) -> Vec<BadFile> {
    let next = AtomicUsize::new(0);
    let bad: Mutex<Vec<(usize, BadFile)>> = Mutex::new(Vec::new());
    let work = || {
        std::thread::scope(|s| {
            for _ in 0..parallel.clamp(1, 16) {
                s.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(entry) = files.get(i) else { break };
                        if let Some(problem) = check(backup_dir, entry) {
                            bad.lock().expect("bad list").push((i, BadFile { path: entry.path.clone(), problem }));
                        }
                        progress.file_verified(entry.size);
                    }
                });
            }
        })
    };
    // Hashing blocks: tell a multi-thread runtime, so CQL keeps being served.
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
    let mut bad = bad.into_inner().expect("bad list");
    bad.sort_by_key(|(i, _)| *i);
    bad.into_iter().map(|(_, b)| b).collect()
}

/// What is wrong with one stored file, or `None` when it matches the manifest.
fn check(backup_dir: &Path, entry: &FileEntry) -> Option<String> {
    let path = backup_dir.join(&entry.path);
    let size = match std::fs::metadata(&path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Some("missing".into()),
        Err(e) => return Some(format!("unreadable: {e}")),
    };
    if size != entry.size {
        return Some(format!("size {size} bytes, the manifest says {}", entry.size));
    }
    let stored = match cassette_repo::hash_file(&path) {
        Ok(s) => s,
        Err(e) => return Some(format!("unreadable: {e}")),
    };
    if stored.blake3 != entry.blake3 {
        return Some(format!("content changed: BLAKE3 {} but the manifest says {}", short(&stored.blake3), short(&entry.blake3)));
    }
    if let Some(crc) = entry.digest_crc32
        && crc != stored.crc32
    {
        return Some(format!("CRC32 {} but Digest.crc32 says {crc}", stored.crc32));
    }
    None
}

fn short(hash: &str) -> &str {
    &hash[..hash.len().min(16)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NoProgress;

    #[test]
    fn finds_missing_truncated_and_changed_files() {
        let d = tempfile::tempdir().unwrap();
        let mut entries = Vec::new();
        for (name, body) in [("a-Data.db", &b"hello world"[..]), ("b", b"second"), ("c", b"third"), ("d", b"fourth")] {
            let p = d.path().join(name);
            std::fs::write(&p, body).unwrap();
            let h = cassette_repo::hash_file(&p).unwrap();
            entries.push(h.to_entry(name.into(), name.ends_with("Data.db").then_some(h.crc32)));
        }
        let refs: Vec<&FileEntry> = entries.iter().collect();
        assert!(verify_files(d.path(), &refs, 2, &NoProgress).is_empty());
        std::fs::write(d.path().join("a-Data.db"), b"hello World").unwrap();
        std::fs::remove_file(d.path().join("b")).unwrap();
        std::fs::write(d.path().join("d"), b"four").unwrap();
        let bad = verify_files(d.path(), &refs, 3, &NoProgress);
        let got: Vec<(&str, &str)> = bad.iter().map(|b| (b.path.as_str(), b.problem.as_str())).collect();
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(got[0].0 == "a-Data.db" && got[0].1.contains("BLAKE3"));
        assert_eq!(got[1], ("b", "missing"));
        assert!(got[2].0 == "d" && got[2].1.contains("size 4 bytes"));
    }
}
