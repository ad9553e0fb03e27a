//! The progress journal of a running backup.
//!
//! One JSON record per line, appended after each file is stored, so an
//! interrupted backup can be resumed without copying again what is already
//! safe. A crash can tear the last line; [`Journal::load`] ignores it and
//! [`Journal::open`] cuts it off before appending.
//!
//! Files stored with deferred durability are journaled before they are on
//! disk for sure; a [`JournalRecord::Synced`] line follows once a filesystem
//! flush covered them. [`Journal::load_durable`] keeps only the files that a
//! later `synced` line vouches for, so after a power loss a resumed backup
//! copies again what the flush did not cover.
//!
//! The records, and the version line a journal starts with, are the format's
//! (`cassette_format::journal`, re-exported here): a journal of a newer version is refused as
//! a whole ([`RepoError::Document`]), one without a version line (an older cassette's) read.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

pub use cassette_format::journal::{FileContext, JOURNAL_VERSION, JournalRecord};
use cassette_format::journal::{JournalLine, LineError, version_line};

use crate::error::{IoContext, RepoError, Result};
use crate::manifest::FileEntry;

/// An open journal, appending records.
#[derive(Debug)]
pub struct Journal {
    file: File,
    path: PathBuf,
}

impl Journal {
    /// Opens (creating it and its directory if needed) the journal at `path`
    /// for appending. A torn last line left by a crash is cut off first, so
    /// the next record starts on a line of its own.
    ///
    /// Refuses a journal written by a newer cassette: appending to it could mix versions.
    pub fn open(path: &Path) -> Result<Journal> {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).ctx("create directory", parent)?;
        }
        let mut file = crate::fsutil::open_append_nofollow(path)?;
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut file, &mut bytes).ctx("read", path)?;
        let (_, valid_len) = scan(path, &bytes)?;
        if valid_len < bytes.len() {
            tracing::warn!(path = %path.display(), dropped = bytes.len() - valid_len, "dropping torn last journal line");
            file.set_len(valid_len as u64).ctx("truncate", path)?;
        }
        let mut journal = Journal { file, path: path.to_owned() };
        // A new journal says its version first; an older one, appended to, keeps none (it is
        // read as version 1, which these records are).
        if valid_len == 0 {
            journal.file.write_all(&version_line()).ctx("write", path)?;
        }
        Ok(journal)
    }

    /// Reads every record from the journal at `path` (its version line is checked, not
    /// returned); a missing journal is empty. A torn or unparsable last line is ignored (the
    /// process died while writing it); a bad line before the last is an error, and so is a
    /// journal of a newer version.
    pub fn load(path: &Path) -> Result<Vec<JournalRecord>> {
        match crate::fsutil::read_regular(path)? {
            Some(bytes) => Ok(scan(path, &bytes)?.0),
            None => Ok(Vec::new()),
        }
    }

    /// The records of [`Journal::load`] without the `file` records that no later
    /// [`JournalRecord::Synced`] covers: only files known to be durable.
    pub fn load_durable(path: &Path) -> Result<Vec<JournalRecord>> {
        let mut records = Journal::load(path)?;
        let covered = records.iter().rposition(|r| matches!(r, JournalRecord::Synced)).map_or(0, |i| i + 1);
        let mut index = 0;
        records.retain(|r| {
            index += 1;
            index <= covered || !matches!(r, JournalRecord::File { .. })
        });
        Ok(records)
    }

    /// Appends one record and hands it to the OS (one `write` call), so it
    /// survives the process dying. Call [`Journal::sync`] for power loss.
    pub fn append(&mut self, record: &JournalRecord) -> Result<()> {
        self.file.write_all(&record.to_line()).ctx("append to", &self.path)
    }

    /// Appends a [`JournalRecord::File`].
    pub fn append_file(&mut self, context: &FileContext, file: &FileEntry) -> Result<()> {
        self.append(&JournalRecord::File { context: context.clone(), file: file.clone() })
    }

    /// Fsyncs the journal.
    pub fn sync(&self) -> Result<()> {
        self.file.sync_data().ctx("sync", &self.path)
    }

    /// The journal's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Parses the records and returns how many leading bytes are good lines.
fn scan(path: &Path, bytes: &[u8]) -> Result<(Vec<JournalRecord>, usize)> {
    let mut records = Vec::new();
    let mut valid_len = 0;
    let mut rest = bytes;
    let mut line_no = 0;
    while !rest.is_empty() {
        line_no += 1;
        let (line, terminated) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], true),
            None => (rest, false),
        };
        let consumed = line.len() + usize::from(terminated);
        let is_last = consumed == rest.len();
        rest = &rest[consumed..];
        if line.iter().all(u8::is_ascii_whitespace) {
            if terminated {
                valid_len += consumed;
            }
            continue;
        }
        match JournalLine::parse(line) {
            // A newer version, even on a torn line: nothing of the journal can be trusted.
            Err(LineError::Refused(e)) => return Err(RepoError::in_file(path, e)),
            // Unterminated: the write was cut short, even if it happens to parse.
            Ok(_) if !terminated => {}
            Ok(JournalLine::Version(_)) => valid_len += consumed,
            Ok(JournalLine::Record(r)) => {
                records.push(r);
                valid_len += consumed;
            }
            Err(LineError::NotARecord(_)) if is_last => {}
            Err(LineError::NotARecord(source)) => {
                return Err(RepoError::JournalCorrupt { path: path.to_owned(), line: line_no, source });
            }
        }
    }
    Ok((records, valid_len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::tests::file;

    fn started() -> JournalRecord {
        JournalRecord::Started {
            backup_name: "b".into(),
            snapshot_tag: "s".into(),
            started_at: "2024-06-01T00:00:00Z".parse().unwrap(),
        }
    }

    fn ctx() -> FileContext {
        FileContext::Table { keyspace: "ks".into(), table: "t".into(), table_id: "0".repeat(32) }
    }

    #[test]
    fn only_files_a_later_sync_covers_count_as_durable() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("journal.jsonl");
        let started = started();
        let mut j = Journal::open(&p).unwrap();
        j.append(&started).unwrap();
        j.append_file(&ctx(), &file("ks/t/a", 1)).unwrap();
        j.append(&JournalRecord::Synced).unwrap();
        j.append_file(&ctx(), &file("ks/t/b", 2)).unwrap();
        drop(j);
        assert!(std::fs::read_to_string(&p).unwrap().contains(r#"{"record":"synced"}"#));
        let durable = Journal::load_durable(&p).unwrap();
        let files: Vec<_> = durable
            .iter()
            .filter_map(|r| match r {
                JournalRecord::File { file, .. } => Some(file.path.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(files, ["ks/t/a"], "b was journaled after the last flush");
        assert_eq!(durable[0], started);
        assert_eq!(Journal::load(&p).unwrap().len(), 4);
    }

    #[test]
    fn records_roundtrip_across_reopen() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("cassette-meta/journal.jsonl");
        assert!(Journal::load(&p).unwrap().is_empty());
        let started = started();
        let mut j = Journal::open(&p).unwrap();
        j.append(&started).unwrap();
        j.append_file(&ctx(), &file("ks/t/a", 1)).unwrap();
        drop(j);
        let mut j = Journal::open(&p).unwrap();
        j.append_file(&ctx(), &file("ks/t/b", 2)).unwrap();
        j.sync().unwrap();
        let recs = Journal::load(&p).unwrap();
        assert_eq!(recs.len(), 3);
        assert_eq!(recs[0], started);
        assert_eq!(recs[2], JournalRecord::File { context: ctx(), file: file("ks/t/b", 2) });
    }

    #[test]
    fn tolerates_torn_last_line_and_cuts_it_on_open() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("journal.jsonl");
        let mut j = Journal::open(&p).unwrap();
        j.append_file(&ctx(), &file("ks/t/a", 1)).unwrap();
        drop(j);
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(br#"{"record":"file","context":{"kind":"tab"#).unwrap();
        drop(f);
        assert_eq!(Journal::load(&p).unwrap().len(), 1);
        let mut j = Journal::open(&p).unwrap();
        j.append_file(&ctx(), &file("ks/t/b", 2)).unwrap();
        let recs = Journal::load(&p).unwrap();
        assert_eq!(recs.len(), 2, "the new record must not be glued to the torn line");
    }

    #[test]
    fn ignores_zero_filled_tail_but_not_corruption_in_the_middle() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("journal.jsonl");
        let good = serde_json::to_string(&JournalRecord::File { context: ctx(), file: file("f", 1) }).unwrap();
        fs::write(&p, format!("{good}\n\0\0\0\0")).unwrap();
        assert_eq!(Journal::load(&p).unwrap().len(), 1);
        fs::write(&p, format!("{good}\ngarbage\n{good}\n")).unwrap();
        let err = Journal::load(&p).unwrap_err();
        assert!(matches!(err, RepoError::JournalCorrupt { line: 2, .. }), "{err:?}");
        assert!(err.to_string().contains("journal.jsonl line 2"), "{err}");
    }

    #[test]
    fn a_new_journal_starts_with_its_version_and_a_newer_one_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("journal.jsonl");
        Journal::open(&p).unwrap().append(&started()).unwrap();
        let text = fs::read_to_string(&p).unwrap();
        assert!(text.starts_with("{\"record\":\"format\",\"format_version\":1}\n"), "{text}");
        // Reopened: the version line is not written twice.
        Journal::open(&p).unwrap().append(&JournalRecord::Synced).unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap().matches("\"format\"").count(), 1);
        assert_eq!(Journal::load(&p).unwrap(), [started(), JournalRecord::Synced]);

        let newer = "{\"record\":\"format\",\"format_version\":2}\n{\"record\":\"chunk\",\"n\":1}\n";
        fs::write(&p, newer).unwrap();
        for err in [Journal::load(&p).unwrap_err(), Journal::open(&p).unwrap_err()] {
            assert!(matches!(err, RepoError::Document { .. }), "{err:?}");
            let msg = err.to_string();
            assert!(msg.contains("journal.jsonl") && msg.contains("newer cassette; upgrade cassette"), "{msg}");
        }
        assert_eq!(fs::read_to_string(&p).unwrap(), newer, "a newer journal is left as it is");
    }
}
