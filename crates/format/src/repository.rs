//! The repository's own format version: `cassette-repository.json` at the repository root.
//!
//! The manifest, the node index and the journal each carry their version; this file says what
//! the repository as a whole needs (its layout, the rules every writer follows), so that an
//! older cassette can refuse a repository a newer one changed before it reads or writes
//! anything there. A repository without the file is of version 1 (written before the file
//! existed).
//!
//! ```json
//! {"format":"cassette-repository","version":1,"needs_cassette":"0.1.0"}
//! ```
//!
//! An encoded repository (compressed, encrypted: `cassette repo init`) is of version 2, and its
//! file says how (`encoding`): a version 1 reader refuses it rather than read encoded objects
//! as SSTables. A plain repository stays at version 1.

use serde::{Deserialize, Serialize};

use crate::error::{FormatError, Result};

/// The `format` field of the repository format file.
pub const REPOSITORY_FORMAT: &str = "cassette-repository";
/// The newest repository version this build reads and writes.
pub const REPOSITORY_VERSION: u32 = 2;
/// The version of a plain repository (one without `encoding`).
pub const PLAIN_VERSION: u32 = 1;

/// The cassette release that introduced each repository version, oldest first: what the
/// message of a refusal tells the operator to install.
const INTRODUCED_IN: &[(u32, &str)] = &[(1, "0.1.0"), (2, "0.2.0")];

/// The repository format file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepositoryFormat {
    /// Always [`REPOSITORY_FORMAT`].
    pub format: String,
    /// The repository's version.
    pub version: u32,
    /// The oldest cassette release that reads this version (the one that introduced it), so an
    /// older release can say which one to install. Absent: unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needs_cassette: Option<String>,
    /// How objects are encoded (version 2); absent: stored as they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<crate::encoding::RepositoryEncoding>,
}

impl Default for RepositoryFormat {
    fn default() -> Self {
        RepositoryFormat::current()
    }
}

impl RepositoryFormat {
    /// The format file this build writes into a new plain repository.
    pub fn current() -> RepositoryFormat {
        RepositoryFormat::of_version(PLAIN_VERSION, None)
    }

    /// The format file of a repository whose objects are encoded with `encoding`.
    pub fn encoded(encoding: crate::encoding::RepositoryEncoding) -> RepositoryFormat {
        if encoding.is_plain() {
            return RepositoryFormat::current();
        }
        RepositoryFormat::of_version(REPOSITORY_VERSION, Some(encoding))
    }

    fn of_version(version: u32, encoding: Option<crate::encoding::RepositoryEncoding>) -> RepositoryFormat {
        let needs = INTRODUCED_IN.iter().find(|(v, _)| *v == version).map(|(_, r)| (*r).to_owned());
        RepositoryFormat { format: REPOSITORY_FORMAT.into(), version, needs_cassette: needs, encoding }
    }

    /// How the repository's objects are encoded (plain when the file says nothing).
    pub fn encoding(&self) -> crate::encoding::RepositoryEncoding {
        self.encoding.clone().unwrap_or_default()
    }

    /// Parses the file (without checking its version: see [`RepositoryFormat::check`]).
    pub fn from_json(bytes: &[u8]) -> Result<RepositoryFormat> {
        let f: RepositoryFormat = serde_json::from_slice(bytes)
            .map_err(|source| FormatError::Parse { kind: "repository format file", source })?;
        if f.format != REPOSITORY_FORMAT {
            return Err(FormatError::UnknownFormat {
                kind: "cassette repository format file",
                found: f.format,
                expected: REPOSITORY_FORMAT,
            });
        }
        Ok(f)
    }

    /// The file as written: one line of JSON and a newline.
    pub fn to_json(&self) -> Vec<u8> {
        let mut json = serde_json::to_vec(self).expect("a repository format serializes");
        json.push(b'\n');
        json
    }

    /// Whether this build may use the repository: this version and older ones are accepted; a
    /// newer one is refused with the cassette release it needs and what to do.
    pub fn check(&self) -> Result<()> {
        if self.version == 0 {
            return Err(FormatError::InvalidVersion { kind: "repository format file", found: 0 });
        }
        if self.version > REPOSITORY_VERSION {
            let needs = match &self.needs_cassette {
                Some(release) => format!("cassette {release} or later"),
                None => "a newer cassette".into(),
            };
            return Err(FormatError::RepositoryTooNew { found: self.version, supported: REPOSITORY_VERSION, needs });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_version_is_written_and_accepted() {
        let f = RepositoryFormat::current();
        assert_eq!(f.version, PLAIN_VERSION);
        let json = f.to_json();
        assert_eq!(
            String::from_utf8(json.clone()).unwrap(),
            "{\"format\":\"cassette-repository\",\"version\":1,\"needs_cassette\":\"0.1.0\"}\n"
        );
        let back = RepositoryFormat::from_json(&json).unwrap();
        assert_eq!(back, f);
        back.check().unwrap();
    }

    #[test]
    fn an_older_version_is_accepted() {
        // Version 1 without the release field, as the oldest writers would put it.
        let f = RepositoryFormat::from_json(br#"{"format":"cassette-repository","version":1}"#).unwrap();
        assert_eq!(f.needs_cassette, None);
        f.check().unwrap();
    }

    #[test]
    fn a_newer_version_is_refused_naming_the_release_it_needs() {
        let f = RepositoryFormat::from_json(
            br#"{"format":"cassette-repository","version":3,"needs_cassette":"0.3.0","new_field":true}"#,
        )
        .unwrap();
        let err = f.check().unwrap_err();
        assert!(matches!(err, FormatError::RepositoryTooNew { found: 3, supported: 2, .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("needs cassette 0.3.0 or later"), "{msg}");
        assert!(msg.contains("upgrade cassette on every machine"), "{msg}");
        let unknown = RepositoryFormat { version: 7, needs_cassette: None, ..RepositoryFormat::current() };
        assert!(unknown.check().unwrap_err().to_string().contains("and needs a newer cassette;"));
    }

    #[test]
    fn another_document_or_no_version_is_refused() {
        let err = RepositoryFormat::from_json(br#"{"format":"restic","version":1}"#).unwrap_err();
        assert!(matches!(err, FormatError::UnknownFormat { .. }), "{err:?}");
        assert!(matches!(RepositoryFormat::from_json(b"{"), Err(FormatError::Parse { .. })));
        let zero = RepositoryFormat { version: 0, ..RepositoryFormat::current() };
        assert!(matches!(zero.check(), Err(FormatError::InvalidVersion { .. })));
    }
}
