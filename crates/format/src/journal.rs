//! The records of a backup's progress journal (`cassette-meta/journal.jsonl`): one JSON record
//! per line, so that an interrupted backup can be resumed without copying again what is
//! already safe.
//!
//! A journal starts with a version line, `{"record":"format","format_version":1}`
//! ([`version_line`]). A reader reads a journal of its version or an older one (a journal
//! without that line was written before journals had a version: version 1) and refuses one of
//! a newer version ([`JournalLine::parse`]): its records may mean something else, and a
//! resume trusting them could leave a file out of the backup.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{FormatError, Result};
use crate::manifest::FileEntry;
use crate::version::check_version;

/// The journal version this build writes, and the newest it reads.
pub const JOURNAL_VERSION: u32 = 1;

/// Where a journaled file belongs in the manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FileContext {
    /// An SSTable component (or secondary index file) of a table.
    Table {
        /// The keyspace name.
        keyspace: String,
        /// The table name.
        table: String,
        /// The table ID (32 hex digits).
        table_id: String,
    },
    /// A file of a configuration directory.
    ConfigDir {
        /// The directory on the node.
        source: String,
        /// Where it is stored, relative to the backup directory.
        stored_as: String,
    },
}

/// One line of the journal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
pub enum JournalRecord {
    /// Written once when a backup starts, so a resumed backup keeps its
    /// start time and snapshot.
    Started {
        /// The backup name.
        backup_name: String,
        /// The Cassandra snapshot tag being copied.
        snapshot_tag: String,
        /// When the backup started.
        started_at: DateTime<Utc>,
    },
    /// A file that is stored and verified.
    File {
        /// Where it belongs.
        context: FileContext,
        /// Its manifest entry.
        file: FileEntry,
    },
    /// Every file journaled above this line is durable (a filesystem flush covered it).
    Synced,
}

impl JournalRecord {
    /// The record as one journal line, newline included.
    pub fn to_line(&self) -> Vec<u8> {
        let mut line = serde_json::to_vec(self).expect("journal records always serialize");
        line.push(b'\n');
        line
    }
}

/// The first line of every journal this build writes, newline included.
pub fn version_line() -> Vec<u8> {
    format!("{{\"record\":\"format\",\"format_version\":{JOURNAL_VERSION}}}\n").into_bytes()
}

/// What one line of a journal holds.
// A journal is read one line at a time: boxing the record would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JournalLine {
    /// The version line, of a version this build reads.
    Version(u32),
    /// A record.
    Record(JournalRecord),
}

/// Why a journal line is not used.
#[derive(Debug)]
pub enum LineError {
    /// The version line of a newer (or an invalid) version: the whole journal is refused.
    Refused(FormatError),
    /// Not a record: a torn last line, or damage.
    NotARecord(serde_json::Error),
}

impl JournalLine {
    /// Parses one line (without its newline).
    pub fn parse(line: &[u8]) -> std::result::Result<JournalLine, LineError> {
        // The version line is read on its own, before the records it governs: a newer version's
        // line may carry fields this build does not know.
        #[derive(Deserialize)]
        struct Header {
            record: String,
            format_version: Option<serde_json::Value>,
        }
        if let Ok(h) = serde_json::from_slice::<Header>(line)
            && h.record == "format"
        {
            let found = h.format_version.as_ref().and_then(|v| v.as_u64()).unwrap_or(0);
            check_version("backup journal", found, JOURNAL_VERSION).map_err(LineError::Refused)?;
            return Ok(JournalLine::Version(found as u32));
        }
        serde_json::from_slice::<JournalRecord>(line).map(JournalLine::Record).map_err(LineError::NotARecord)
    }
}

/// Checks that a journal is one this build reads, from its first line: `Ok` for this version,
/// an older one, or a journal without a version line (written before journals had one).
pub fn check_journal(first_line: &[u8]) -> Result<()> {
    match JournalLine::parse(first_line) {
        Err(LineError::Refused(e)) => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn started() -> JournalRecord {
        JournalRecord::Started {
            backup_name: "b".into(),
            snapshot_tag: "s".into(),
            started_at: "2024-06-01T00:00:00Z".parse().unwrap(),
        }
    }

    fn parse(line: &[u8]) -> JournalLine {
        JournalLine::parse(line.strip_suffix(b"\n").unwrap_or(line)).unwrap()
    }

    #[test]
    fn records_and_the_version_line_roundtrip() {
        assert_eq!(parse(&version_line()), JournalLine::Version(JOURNAL_VERSION));
        assert_eq!(parse(&started().to_line()), JournalLine::Record(started()));
        assert_eq!(parse(&JournalRecord::Synced.to_line()), JournalLine::Record(JournalRecord::Synced));
        assert_eq!(JournalRecord::Synced.to_line(), b"{\"record\":\"synced\"}\n");
    }

    #[test]
    fn a_journal_of_a_newer_version_is_refused_an_older_one_read() {
        let newer = br#"{"record":"format","format_version":2,"compression":"zstd"}"#;
        let err = check_journal(newer).unwrap_err();
        assert!(matches!(err, FormatError::NewerVersion { found: 2, supported: 1, .. }), "{err:?}");
        assert!(err.to_string().starts_with("backup journal format version 2"), "{err}");
        assert!(err.to_string().contains("upgrade cassette"), "{err}");
        // Before journals had a version line, they began with a record: version 1.
        assert!(check_journal(&started().to_line()).is_ok());
        assert!(check_journal(br#"{"record":"format","format_version":1}"#).is_ok());
        assert!(matches!(JournalLine::parse(br#"{"record":"format"}"#), Err(LineError::Refused(_))));
        assert!(matches!(JournalLine::parse(br#"{"record":"fi"#), Err(LineError::NotARecord(_))));
    }
}
