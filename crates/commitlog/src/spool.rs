//! The local spool: where the archive command puts finished segments, and where the shipper
//! takes them from. Everything here is local and quick: the archive command runs inside
//! Cassandra's commitlog archiver, which waits for it.

use std::fs::{self, File, FileTimes};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use cassette_format::SegmentName;
use cassette_store::SpooledSegment;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{CommitlogError, Result};

/// The file saying which node a spool belongs to.
pub const IDENTITY_FILE: &str = "cassette-spool.json";
const LOCK_FILE: &str = ".ship.lock";

/// Which node's segments a spool holds: where the shipper stores them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpoolIdentity {
    /// The node's cluster name.
    pub cluster: String,
    /// The node's host ID.
    pub host_id: String,
    /// When archiving was set up: the node's runs that start later archive every segment.
    pub installed_at: DateTime<Utc>,
}

/// How a segment reached the spool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Archived {
    /// A hard link: no byte copied.
    Linked,
    /// A copy (the spool is on another filesystem than the commitlog).
    Copied,
    /// It was in the spool already (Cassandra archives leftover segments again at start-up).
    AlreadySpooled,
}

/// What waits in a spool.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SpoolDepth {
    /// Segments waiting.
    pub segments: usize,
    /// Their bytes.
    pub bytes: u64,
    /// When the oldest of them was archived.
    pub oldest_archived_at: Option<DateTime<Utc>>,
}

/// A spool directory.
#[derive(Clone, Debug)]
pub struct Spool {
    dir: PathBuf,
}

fn store(e: cassette_repo::RepoError) -> CommitlogError {
    CommitlogError::Store(e.into())
}

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> CommitlogError + 'a {
    move |e| CommitlogError::io(action, path, e)
}

impl Spool {
    /// The spool at `dir` (created by [`Spool::archive`] or [`Spool::write_identity`]).
    pub fn new(dir: impl Into<PathBuf>) -> Spool {
        Spool { dir: dir.into() }
    }

    /// Its directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Creates the spool if missing, and refuses one that others could plant files in: the
    /// shipper (often root) reads and removes what is there.
    fn create(&self) -> Result<()> {
        // Segments hold every write: readable by this account only.
        fs::DirBuilder::new().recursive(true).mode(0o700).create(&self.dir).map_err(io("create", &self.dir))?;
        let meta = fs::metadata(&self.dir).map_err(io("stat", &self.dir))?;
        if !meta.is_dir() {
            return Err(CommitlogError::Refused(format!("the spool {} is not a directory", self.dir.display())));
        }
        if meta.mode() & 0o022 != 0 {
            return Err(CommitlogError::Refused(format!(
                "the spool {} is writable by group or others (mode {:o}): chmod 700 it, owned by the account Cassandra runs as",
                self.dir.display(),
                meta.mode() & 0o7777
            )));
        }
        Ok(())
    }

    /// Records which node the spool belongs to (`cassette commitlog install`).
    pub fn write_identity(&self, id: &SpoolIdentity) -> Result<()> {
        self.create()?;
        let path = self.dir.join(IDENTITY_FILE);
        let partial = self.dir.join(format!(".{IDENTITY_FILE}.partial"));
        let mut json = serde_json::to_vec_pretty(id).expect("an identity serializes");
        json.push(b'\n');
        let mut file = cassette_repo::fsutil::create_nofollow(&partial).map_err(store)?;
        file.write_all(&json).and_then(|()| file.sync_all()).map_err(io("write", &partial))?;
        fs::rename(&partial, &path).map_err(io("rename into place", &path))?;
        sync_dir(&self.dir)
    }

    /// Which node the spool belongs to.
    pub fn identity(&self) -> Result<SpoolIdentity> {
        let path = self.dir.join(IDENTITY_FILE);
        let bytes = match cassette_repo::fsutil::read_regular(&path).map_err(store)? {
            Some(b) => b,
            None => {
                return Err(CommitlogError::Refused(format!(
                    "{} has no {IDENTITY_FILE}: it was not set up as a commitlog spool. Run `cassette commitlog install --spool {}` on the node first",
                    self.dir.display(),
                    self.dir.display()
                )));
            }
        };
        serde_json::from_slice(&bytes).map_err(|e| {
            CommitlogError::Refused(format!(
                "{} cannot be read ({e}): run `cassette commitlog install` again to rewrite it",
                path.display()
            ))
        })
    }

    /// The archive command's work: puts the finished segment at `path` (named `name`) into the
    /// spool, durably. A hard link when the spool shares the commitlog's filesystem, a copy
    /// otherwise; either way through a hidden name and a rename, so the shipper never sees a
    /// segment half spooled.
    pub fn archive(&self, path: &Path, name: &str) -> Result<Archived> {
        let segment = SegmentName::parse_or_refuse(name)?;
        if path.file_name().is_none_or(|n| n != name) {
            return Err(CommitlogError::Refused(format!(
                "the segment {} is not named {name}: the archive command is `cassette commitlog archive --spool DIR %path %name`",
                path.display()
            )));
        }
        let source = fs::metadata(path).map_err(io("stat", path))?;
        self.create()?;
        let target = self.dir.join(segment.file_name());
        if let Ok(there) = fs::metadata(&target)
            && ((there.dev(), there.ino()) == (source.dev(), source.ino())
                || (there.len() == source.len() && there.mtime() == source.mtime()))
        {
            return Ok(Archived::AlreadySpooled);
        }
        let partial = self.dir.join(format!(".{}.partial", segment.file_name()));
        let _ = fs::remove_file(&partial);
        let how = match fs::hard_link(path, &partial) {
            Ok(()) => Archived::Linked,
            Err(e) if e.kind() == ErrorKind::CrossesDevices => {
                let mut copy = cassette_repo::fsutil::create_nofollow(&partial).map_err(store)?;
                std::io::copy(&mut File::open(path).map_err(io("open", path))?, &mut copy).map_err(io("copy", path))?;
                let modified = source.modified().map_err(io("stat", path))?;
                copy.set_times(FileTimes::new().set_modified(modified)).map_err(io("set the time of", &partial))?;
                copy.set_permissions(fs::Permissions::from_mode(0o600)).map_err(io("chmod", &partial))?;
                Archived::Copied
            }
            Err(e) => return Err(CommitlogError::io("link into the spool", path, e)),
        };
        // Through the link, this flushes the segment's own pages.
        File::open(&partial).and_then(|f| f.sync_all()).map_err(io("sync", &partial))?;
        fs::rename(&partial, &target).map_err(io("rename into place", &target))?;
        sync_dir(&self.dir)?;
        Ok(how)
    }

    /// The segments waiting, oldest id first, for the node that installed the spool since
    /// `archiving_since`.
    pub fn segments(&self, archiving_since: DateTime<Utc>) -> Result<Vec<SpooledSegment>> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(CommitlogError::io("list", &self.dir, e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io("list", &self.dir))?;
            let file_name = entry.file_name();
            let Some(name) = file_name.to_str().and_then(SegmentName::parse) else { continue };
            let path = entry.path();
            let meta = fs::symlink_metadata(&path).map_err(io("stat", &path))?;
            if !meta.is_file() {
                continue;
            }
            out.push(SpooledSegment {
                name,
                last_write: time(meta.mtime(), meta.mtime_nsec()),
                // A link or a copy changes the inode: its change time is when it was spooled.
                archived_at: time(meta.ctime(), meta.ctime_nsec()),
                archiving_since,
                path,
            });
        }
        out.sort_by_key(|s| s.name);
        Ok(out)
    }

    /// Removes a shipped segment from the spool.
    pub fn remove(&self, segment: &SpooledSegment) -> Result<()> {
        match fs::remove_file(&segment.path) {
            Ok(()) => sync_dir(&self.dir),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(CommitlogError::io("remove", &segment.path, e)),
        }
    }

    /// What waits in the spool.
    pub fn depth(&self) -> Result<SpoolDepth> {
        let segments = self.segments(DateTime::UNIX_EPOCH)?;
        Ok(SpoolDepth {
            segments: segments.len(),
            bytes: segments.iter().map(|s| fs::metadata(&s.path).map(|m| m.len()).unwrap_or(0)).sum(),
            oldest_archived_at: segments.iter().map(|s| s.archived_at).min(),
        })
    }

    /// Takes the shipper's lock (never waits): one shipper per spool.
    pub(crate) fn lock(&self) -> Result<File> {
        self.create()?;
        let path = self.dir.join(LOCK_FILE);
        // Never through a link: the shipper may run as root in a spool the cassandra user owns.
        let file = cassette_repo::fsutil::open_append_nofollow(&path).map_err(store)?;
        match file.try_lock() {
            Ok(()) => Ok(file),
            Err(std::fs::TryLockError::WouldBlock) => Err(CommitlogError::Busy { spool: self.dir.clone(), lock: path }),
            Err(std::fs::TryLockError::Error(e)) => Err(CommitlogError::io("lock", &path, e)),
        }
    }
}

fn time(secs: i64, nanos: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, nanos as u32).unwrap_or_default()
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io("sync", dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAME: &str = "CommitLog-7-1733139300001.log";

    fn segment(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.join(name);
        fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn a_segment_is_hard_linked_into_the_spool_with_its_times_and_listed_by_id() {
        let tmp = tempfile::tempdir().unwrap();
        let commitlog = tmp.path().join("commitlog");
        fs::create_dir(&commitlog).unwrap();
        let later = segment(&commitlog, "CommitLog-7-1733139300002.log", b"second");
        let first = segment(&commitlog, NAME, b"first");
        let spool = Spool::new(tmp.path().join("spool"));
        assert_eq!(spool.archive(&later, "CommitLog-7-1733139300002.log").unwrap(), Archived::Linked);
        assert_eq!(spool.archive(&first, NAME).unwrap(), Archived::Linked);
        // Cassandra deletes its segment once archived: the spool keeps the bytes.
        fs::remove_file(&first).unwrap();
        let waiting = spool.segments(DateTime::UNIX_EPOCH).unwrap();
        assert_eq!(waiting.iter().map(|s| s.name.id).collect::<Vec<_>>(), [1_733_139_300_001, 1_733_139_300_002]);
        assert_eq!(fs::read(&waiting[0].path).unwrap(), b"first");
        assert_eq!(fs::metadata(spool.dir()).unwrap().permissions().mode() & 0o777, 0o700);
        // At start-up Cassandra archives what it finds again.
        assert_eq!(spool.archive(&later, "CommitLog-7-1733139300002.log").unwrap(), Archived::AlreadySpooled);
        assert_eq!(spool.depth().unwrap().segments, 2);
    }

    #[test]
    fn anything_but_a_segment_is_refused_and_nothing_is_spooled() {
        let tmp = tempfile::tempdir().unwrap();
        let spool = Spool::new(tmp.path().join("spool"));
        let other = segment(tmp.path(), "CommitLog-7-1.log_cdc.idx", b"x");
        assert!(spool.archive(&other, "CommitLog-7-1.log_cdc.idx").is_err());
        let seg = segment(tmp.path(), NAME, b"x");
        let err = spool.archive(&seg, "CommitLog-7-9.log").unwrap_err().to_string();
        assert!(err.contains("is not named CommitLog-7-9.log"), "{err}");
        assert!(spool.segments(DateTime::UNIX_EPOCH).unwrap().is_empty());
    }

    #[test]
    fn a_spool_without_its_identity_says_to_install() {
        let tmp = tempfile::tempdir().unwrap();
        let spool = Spool::new(tmp.path());
        let err = spool.identity().unwrap_err().to_string();
        assert!(err.contains("cassette commitlog install"), "{err}");
        let id = SpoolIdentity { cluster: "prod".into(), host_id: "h1".into(), installed_at: Utc::now() };
        spool.write_identity(&id).unwrap();
        assert_eq!(spool.identity().unwrap(), id);
    }

    #[test]
    fn only_one_shipper_holds_the_spool() {
        let tmp = tempfile::tempdir().unwrap();
        let spool = Spool::new(tmp.path());
        let held = spool.lock().unwrap();
        assert!(matches!(spool.lock(), Err(CommitlogError::Busy { .. })));
        drop(held);
        spool.lock().unwrap();
    }

    #[test]
    fn links_planted_in_the_spool_are_never_followed_and_an_open_spool_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let canary = tmp.path().join("canary");
        fs::write(&canary, b"outside the spool").unwrap();
        let dir = tmp.path().join("spool");
        let spool = Spool::new(&dir);
        spool.lock().unwrap();
        fs::remove_file(dir.join(LOCK_FILE)).unwrap();
        std::os::unix::fs::symlink(&canary, dir.join(LOCK_FILE)).unwrap();
        std::os::unix::fs::symlink(&canary, dir.join(IDENTITY_FILE)).unwrap();
        std::os::unix::fs::symlink(&canary, dir.join(NAME)).unwrap();
        assert!(spool.lock().unwrap_err().to_string().contains("symbolic link"));
        assert!(spool.identity().unwrap_err().to_string().contains("symbolic link"));
        assert!(spool.segments(DateTime::UNIX_EPOCH).unwrap().is_empty(), "a link is no segment");
        assert_eq!(fs::read(&canary).unwrap(), b"outside the spool");

        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        let seg = segment(tmp.path(), "CommitLog-7-1733139300009.log", b"x");
        let err = spool.archive(&seg, "CommitLog-7-1733139300009.log").unwrap_err().to_string();
        assert!(err.contains("writable by group or others") && err.contains("chmod 700"), "{err}");
    }
}
