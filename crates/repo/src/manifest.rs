//! Reading and writing `manifest.json` in a backup directory. The manifest's types and checks
//! are the format's (`cassette_format::manifest`, re-exported here); this module adds the file:
//! [`ManifestFile`] reads it safely (a regular file beneath the backup, see `beneath`) and
//! writes it atomically. Import the trait to call `Manifest::read(&dir)`.

use std::fs;
use std::io;
use std::path::Path;

pub use cassette_format::manifest::{
    ConfigDirEntry, FileEntry, KeyspaceEntry, MANIFEST_FORMAT, MANIFEST_VERSION, Manifest, NodeInfo, TableEntry, Totals,
};

use crate::error::{RepoError, Result};
use crate::fsutil::write_atomically_at;
use crate::layout::RepoLayout;

/// A [`Manifest`] as a file of a backup directory.
pub trait ManifestFile: Sized {
    /// Writes `<backup_dir>/manifest.json` atomically (partial file, fsync,
    /// rename, fsync of the directory). Call it last: it marks the backup complete.
    fn write_atomically(&self, backup_dir: &Path) -> Result<()>;

    /// Reads and checks `<backup_dir>/manifest.json`: a regular file (a symbolic link, FIFO or
    /// anything else there is refused, see `beneath`), of the backup whose directory it is in.
    ///
    /// Errors: [`RepoError::NotFound`] if there is no backup directory,
    /// [`RepoError::Incomplete`] if it has no manifest,
    /// [`RepoError::ManifestFormat`]/[`RepoError::ManifestVersion`] for a
    /// manifest this build does not understand, [`RepoError::ManifestPath`] for a path that
    /// leaves the backup, and [`RepoError::ManifestMismatch`] for another backup's manifest.
    fn read(backup_dir: &Path) -> Result<Self>;

    /// [`ManifestFile::read`] without the check that the manifest names its directory (a
    /// backup being deleted is in a directory of another name).
    fn read_unnamed(backup_dir: &Path) -> Result<Self>;

    /// Parses manifest bytes ([`Manifest::from_json`]); `path` (or a URL) names the file in
    /// error messages.
    fn parse(path: &Path, bytes: &[u8]) -> Result<Self>;
}

impl ManifestFile for Manifest {
    fn write_atomically(&self, backup_dir: &Path) -> Result<()> {
        let path = RepoLayout::manifest_path(backup_dir);
        write_atomically_at(&path, &self.to_json(), Some("manifest-partial"))
    }

    fn read(backup_dir: &Path) -> Result<Manifest> {
        let m = Self::read_unnamed(backup_dir)?;
        let dir_name = backup_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if m.backup_name != dir_name {
            return Err(RepoError::ManifestMismatch {
                path: RepoLayout::manifest_path(backup_dir),
                found: m.backup_name,
                expected: dir_name,
            });
        }
        Ok(m)
    }

    fn read_unnamed(backup_dir: &Path) -> Result<Manifest> {
        let path = RepoLayout::manifest_path(backup_dir);
        let mut bytes = Vec::new();
        let read = crate::beneath::open_regular(backup_dir, &path).and_then(|mut f| {
            use std::io::Read;
            f.read_to_end(&mut bytes).map_err(|e| RepoError::io("read", &path, e))
        });
        match read {
            Ok(_) => {}
            Err(e) if e.io_kind() == Some(io::ErrorKind::NotFound) => {
                return Err(if fs::symlink_metadata(backup_dir).is_ok_and(|m| m.is_dir()) {
                    RepoError::Incomplete { path: backup_dir.to_owned() }
                } else {
                    RepoError::NotFound { path: backup_dir.to_owned() }
                });
            }
            Err(e) => return Err(e),
        }
        Self::parse(&path, &bytes)
    }

    fn parse(path: &Path, bytes: &[u8]) -> Result<Manifest> {
        Manifest::from_json(bytes).map_err(|e| RepoError::in_manifest(path, e))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    pub(crate) use cassette_format::manifest::samples::{file, sample};

    #[test]
    fn roundtrip_and_no_partial_left() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("b1");
        let m = sample();
        m.write_atomically(&d).unwrap();
        assert_eq!(Manifest::read(&d).unwrap(), m);
        assert!(!d.join("manifest.json.partial").exists());
        let names: Vec<_> = fs::read_dir(&d).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["manifest.json"]);
    }

    #[test]
    fn another_backups_manifest_is_refused() {
        let t = tempfile::tempdir().unwrap();
        sample().write_atomically(&t.path().join("b2")).unwrap();
        let err = Manifest::read(&t.path().join("b2")).unwrap_err();
        assert!(matches!(err, RepoError::ManifestMismatch { .. }), "{err}");
        assert!(err.to_string().contains("names the backup \"b1\""), "{err}");
    }

    #[test]
    fn paths_leaving_the_backup_are_refused_on_parse() {
        let bad_paths =
            ["../../x", "/etc/hostname", "ks1/t1/../../../x", "ks1/t1//x", "ks1/t2/x", "ks1/t1", "ks1/t1/a\0b", ""];
        for p in bad_paths {
            let mut m = sample();
            m.keyspaces[0].tables[0].files[0].path = p.into();
            let err = Manifest::parse(Path::new("m.json"), &m.to_json()).unwrap_err();
            assert!(matches!(err, RepoError::ManifestPath { .. }), "{p:?}: {err}");
        }
        let mut m = sample();
        m.keyspaces[0].name = "..".into();
        assert!(Manifest::parse(Path::new("m.json"), &m.to_json()).is_err());
        let mut m = sample();
        m.config_dirs[0].stored_as = "/etc".into();
        assert!(Manifest::parse(Path::new("m.json"), &m.to_json()).is_err());
        let mut m = sample();
        m.keyspaces[0].tables[0].files[0].object = Some("../other/x".into());
        assert!(Manifest::parse(Path::new("m.json"), &m.to_json()).is_err());
        let mut m = sample();
        m.keyspaces[0].tables[0].files[0].blake3 = "é".repeat(20);
        assert!(Manifest::parse(Path::new("m.json"), &m.to_json()).is_err());
        let mut m = sample();
        m.keyspaces[0].tables[0].files[0].size = u64::MAX;
        assert!(Manifest::parse(Path::new("m.json"), &m.to_json()).is_err());
    }

    #[test]
    fn a_fifo_or_a_link_as_manifest_is_refused_without_blocking() {
        let t = tempfile::tempdir().unwrap();
        let b = t.path().join("b1");
        fs::create_dir(&b).unwrap();
        rustix::fs::mkfifoat(rustix::fs::CWD, b.join("manifest.json"), rustix::fs::Mode::from_raw_mode(0o644)).unwrap();
        assert!(matches!(Manifest::read(&b), Err(RepoError::Unsafe { .. })));
        fs::remove_file(b.join("manifest.json")).unwrap();
        sample().write_atomically(&t.path().join("elsewhere")).unwrap();
        std::os::unix::fs::symlink(t.path().join("elsewhere/manifest.json"), b.join("manifest.json")).unwrap();
        assert!(matches!(Manifest::read(&b), Err(RepoError::Unsafe { .. })));
    }

    #[test]
    fn refuses_newer_version() {
        let d = tempfile::tempdir().unwrap();
        let mut v = serde_json::to_value(sample()).unwrap();
        v["format_version"] = 2.into();
        v["something_new"] = "x".into();
        fs::write(d.path().join("manifest.json"), v.to_string()).unwrap();
        let err = Manifest::read(d.path()).unwrap_err();
        assert!(matches!(err, RepoError::ManifestVersion { found: 2, .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("written by a newer cassette? upgrade"), "{msg}");
        assert!(msg.contains("manifest.json"), "{msg}");
    }

    #[test]
    fn refuses_unknown_format() {
        let d = tempfile::tempdir().unwrap();
        let mut v = serde_json::to_value(sample()).unwrap();
        v["format"] = "something.else".into();
        fs::write(d.path().join("manifest.json"), v.to_string()).unwrap();
        assert!(matches!(Manifest::read(d.path()), Err(RepoError::ManifestFormat { .. })));
    }

    #[test]
    fn damaged_manifest_is_parse_error() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("manifest.json"), "{\"format\": ").unwrap();
        assert!(matches!(Manifest::read(d.path()), Err(RepoError::ManifestParse { .. })));
    }

    #[test]
    fn missing_manifest_incomplete_vs_not_found() {
        let d = tempfile::tempdir().unwrap();
        assert!(matches!(Manifest::read(d.path()), Err(RepoError::Incomplete { .. })));
        assert!(matches!(Manifest::read(&d.path().join("nope")), Err(RepoError::NotFound { .. })));
    }
}
