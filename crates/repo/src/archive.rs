//! Packing a complete backup into one `.tar.zst` file, to ship it elsewhere.
//!
//! Paths inside are `<backup_name>/...`, so `tar --zstd -xf` recreates the
//! backup directory as is. `manifest.json` is stored last: extracting a
//! truncated archive then yields an incomplete backup, never one that looks
//! complete but is not.

use std::fs::{self, File};
use std::path::Path;

use crate::error::{IoContext, RepoError, Result};
use crate::fsutil::{partial_path, sync_parent};
use crate::layout::MANIFEST_FILE;
use crate::manifest::{Manifest, ManifestFile};

/// zstd level: 3 is zstd's default, fast enough not to slow the copy much.
const ZSTD_LEVEL: i32 = 3;

/// What [`archive_backup`] wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ArchiveSummary {
    /// Regular files archived.
    pub files: u64,
    /// Their total size.
    pub bytes_in: u64,
    /// Size of the archive.
    pub bytes_out: u64,
}

/// Archives the complete backup at `backup_dir` into `out` (tar + zstd,
/// multithreaded). Refuses an incomplete backup, an existing `out`, and an
/// `out` inside the backup. Writes `<out>.partial`, then renames it.
pub fn archive_backup(backup_dir: &Path, out: &Path) -> Result<ArchiveSummary> {
    Manifest::read(backup_dir)?; // complete, and in a format we know
    if out.symlink_metadata().is_ok() {
        return Err(RepoError::AlreadyExists { path: out.to_owned() });
    }
    let real_backup = backup_dir.canonicalize().ctx("resolve", backup_dir)?;
    let out_parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    fs::create_dir_all(out_parent).ctx("create directory", out_parent)?;
    if out_parent.canonicalize().ctx("resolve", out_parent)?.starts_with(&real_backup) {
        return Err(RepoError::ArchiveInsideBackup { out: out.to_owned(), backup_dir: backup_dir.to_owned() });
    }
    let name = real_backup.file_name().map(Path::new).unwrap_or(Path::new("backup"));

    let partial = partial_path(out);
    let result = write_archive(&real_backup, name, &partial);
    match result {
        Ok(mut summary) => {
            fs::rename(&partial, out).ctx("rename into place", out).inspect_err(|_| {
                let _ = fs::remove_file(&partial);
            })?;
            sync_parent(out)?;
            summary.bytes_out = fs::metadata(out).ctx("stat", out)?.len();
            Ok(summary)
        }
        Err(e) => {
            let _ = fs::remove_file(&partial);
            Err(e)
        }
    }
}

fn write_archive(backup_dir: &Path, name: &Path, partial: &Path) -> Result<ArchiveSummary> {
    let file = File::create(partial).ctx("create", partial)?;
    let mut encoder = zstd::Encoder::new(file, ZSTD_LEVEL).ctx("start zstd for", partial)?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    encoder.multithread(threads).ctx("start zstd workers for", partial)?;
    let mut tar = tar::Builder::new(encoder);
    tar.follow_symlinks(false);
    let mut summary = ArchiveSummary { files: 0, bytes_in: 0, bytes_out: 0 };
    tar.append_path_with_name(backup_dir, name).ctx("archive", backup_dir)?;
    add_dir(&mut tar, backup_dir, name, true, &mut summary)?;
    let encoder = tar.into_inner().ctx("finish tar", partial)?;
    let file = encoder.finish().ctx("finish zstd", partial)?;
    file.sync_all().ctx("sync", partial)?;
    Ok(summary)
}

/// Appends the entries of `dir` in name order (reproducible archives),
/// holding back the top-level manifest to append it last.
fn add_dir<W: std::io::Write>(
    tar: &mut tar::Builder<W>,
    dir: &Path,
    name: &Path,
    top: bool,
    summary: &mut ArchiveSummary,
) -> Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir).ctx("list", dir)?.collect::<Result<_, _>>().ctx("list", dir)?;
    entries.sort_by_key(|e| e.file_name());
    if top {
        // Stable sort: moves the manifest to the end, keeps the rest in order.
        entries.sort_by_key(|e| e.file_name() == MANIFEST_FILE);
    }
    for entry in entries {
        let path = entry.path();
        let entry_name = name.join(entry.file_name());
        let meta = fs::symlink_metadata(&path).ctx("stat", &path)?;
        tar.append_path_with_name(&path, &entry_name).map_err(|e| RepoError::io("add to archive", &path, e))?;
        if meta.is_dir() {
            add_dir(tar, &path, &entry_name, false, summary)?;
        } else if meta.is_file() {
            summary.files += 1;
            summary.bytes_in += meta.len();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::tests::sample;
    use std::collections::BTreeMap;
    use std::io::Read;

    fn make_backup(dir: &Path) -> BTreeMap<String, Vec<u8>> {
        let mut files = BTreeMap::new();
        let big: Vec<u8> = (0..300_000u32).flat_map(|i| i.to_le_bytes()).collect();
        for (rel, data) in [
            ("ks1/t1/nb-1-big-Data.db", big),
            ("ks1/t1/nb-1-big-Digest.crc32", b"12345".to_vec()),
            ("ks1/t1/.idx/nb-1-big-Data.db", b"index".to_vec()),
            ("cassette-meta/schema.cql", b"CREATE KEYSPACE ks1;".to_vec()),
        ] {
            let p = dir.join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(&p, &data).unwrap();
            files.insert(format!("b1/{rel}"), data);
        }
        sample().write_atomically(dir).unwrap();
        files.insert("b1/manifest.json".into(), fs::read(dir.join("manifest.json")).unwrap());
        files
    }

    #[test]
    fn roundtrip_with_manifest_last() {
        let d = tempfile::tempdir().unwrap();
        let backup = d.path().join("repo/c/h/b1");
        let expected = make_backup(&backup);
        let out = d.path().join("out/b1.tar.zst");
        let summary = archive_backup(&backup, &out).unwrap();
        assert_eq!(summary.files, expected.len() as u64);
        assert_eq!(summary.bytes_in, expected.values().map(|v| v.len() as u64).sum::<u64>());
        assert_eq!(summary.bytes_out, fs::metadata(&out).unwrap().len());
        assert!(summary.bytes_out < summary.bytes_in);
        assert!(!partial_path(&out).exists());

        let mut archive = tar::Archive::new(zstd::Decoder::new(File::open(&out).unwrap()).unwrap());
        let mut got = BTreeMap::new();
        let mut last_file = String::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().to_str().unwrap().trim_end_matches('/').to_owned();
            assert!(path == "b1" || path.starts_with("b1/"), "{path}");
            if entry.header().entry_type().is_file() {
                let mut data = Vec::new();
                entry.read_to_end(&mut data).unwrap();
                last_file = path.clone();
                got.insert(path, data);
            }
        }
        assert_eq!(got, expected);
        assert_eq!(last_file, "b1/manifest.json");
    }

    #[test]
    fn refuses_incomplete_existing_output_and_output_inside() {
        let d = tempfile::tempdir().unwrap();
        let backup = d.path().join("b1");
        fs::create_dir_all(backup.join("ks/t")).unwrap();
        let out = d.path().join("b1.tar.zst");
        let err = archive_backup(&backup, &out).unwrap_err();
        assert!(matches!(err, RepoError::Incomplete { .. }), "{err:?}");
        assert!(err.to_string().contains("incomplete"));
        assert!(!out.exists() && !partial_path(&out).exists());

        make_backup(&backup);
        fs::write(&out, b"precious").unwrap();
        assert!(matches!(archive_backup(&backup, &out), Err(RepoError::AlreadyExists { .. })));
        assert_eq!(fs::read(&out).unwrap(), b"precious");

        let inside = backup.join("self.tar.zst");
        assert!(matches!(archive_backup(&backup, &inside), Err(RepoError::ArchiveInsideBackup { .. })));
        assert!(!inside.exists());
    }
}
