//! Names that become directory names in the repository, and the rule of relative paths.
//!
//! Backup names are chosen by operators and typed on command lines, so they
//! follow a strict, shell-friendly rule. Cluster names, host IDs, keyspaces and
//! tables come from Cassandra; we only refuse what would escape or corrupt
//! the directory tree ("Test Cluster", with its space, must work).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{FormatError, Result};

/// Longest backup name accepted.
pub const MAX_BACKUP_NAME_LEN: usize = 128;

/// Longest directory name most filesystems accept (bytes).
const NAME_MAX: usize = 255;

/// A validated backup name: 1 to 128 of `[A-Za-z0-9._-]`, starting with a letter or digit.
///
/// The first character keeps backups visible to `ls` and apart from the `.lock` file (no
/// `.`), and keeps a name from being read as an option by cassette or any tool it is passed
/// to (no `-`); the character set keeps names safe in shells and URLs.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BackupName(String);

impl BackupName {
    /// Checks `s` against the naming rule.
    ///
    /// ```
    /// use cassette_format::BackupName;
    /// assert!(BackupName::parse("nightly-2024.06.01").is_ok());
    /// assert!(BackupName::parse("../etc").is_err());
    /// assert!(BackupName::parse("commitlog").is_err(), "the node's archived segments are there");
    /// ```
    pub fn parse(s: &str) -> Result<Self> {
        let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        let valid = s.starts_with(|c: char| c.is_ascii_alphanumeric())
            && s.len() <= MAX_BACKUP_NAME_LEN
            && s.chars().all(ok_char);
        if !valid {
            return Err(FormatError::InvalidBackupName { name: s.to_owned() });
        }
        if s == crate::commitlog::COMMITLOG_DIR {
            return Err(FormatError::ReservedBackupName { name: s.to_owned() });
        }
        Ok(BackupName(s.to_owned()))
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BackupName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for BackupName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl FromStr for BackupName {
    type Err = FormatError;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl TryFrom<String> for BackupName {
    type Error = FormatError;
    fn try_from(s: String) -> Result<Self> {
        Self::parse(&s)
    }
}

impl From<BackupName> for String {
    fn from(n: BackupName) -> String {
        n.0
    }
}

/// Checks that `s` can be used as one directory name; `kind` says what it is
/// ("cluster name", "host ID", "keyspace", "table") for the error message.
///
/// Refuses empty names, `.` and `..`, and anything containing `/`, NUL or a
/// control character, or longer than 255 bytes. Spaces are allowed.
pub fn path_component<'a>(kind: &str, s: &'a str) -> Result<&'a str> {
    let reason = if s.is_empty() {
        Some("must not be empty")
    } else if s == "." || s == ".." {
        Some("must not be '.' or '..'")
    } else if s.contains('/') {
        Some("must not contain '/'")
    } else if s.chars().any(char::is_control) {
        // Includes NUL: both would corrupt paths or terminal output.
        Some("must not contain NUL or control characters")
    } else if s.len() > NAME_MAX {
        Some("must be at most 255 bytes long")
    } else {
        None
    };
    match reason {
        None => Ok(s),
        Some(reason) => Err(FormatError::InvalidComponent { kind: kind.to_owned(), value: s.to_owned(), reason }),
    }
}

/// Why `rel`, a path named by a manifest (or built from names), cannot be used, or `None` when
/// it is a plain relative path: not empty, not absolute, no NUL, no empty, `.` or `..` component.
pub fn check_relative(rel: &str) -> Option<&'static str> {
    if rel.is_empty() {
        return Some("it is empty");
    }
    if rel.starts_with('/') {
        return Some("it is an absolute path");
    }
    if rel.contains('\0') {
        return Some("it contains a NUL byte");
    }
    for part in rel.split('/') {
        match part {
            "" => return Some("it has an empty component ('//' or a trailing '/')"),
            "." => return Some("it has a '.' component"),
            ".." => return Some("it has a '..' component (it would point outside the backup)"),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_reasonable_backup_names() {
        for n in ["a", "nightly", "2024-06-01T12.00", "pre_upgrade-4.1", "A.b_c-9", &"x".repeat(128)] {
            assert_eq!(BackupName::parse(n).unwrap().as_str(), n);
        }
    }

    #[test]
    fn refuses_bad_backup_names() {
        for n in
            ["", ".", "..", ".hidden", "-x", "--name", "_a", "-", "a/b", "a b", "a\nb", "é", "a\0b", &"x".repeat(129)]
        {
            assert!(BackupName::parse(n).is_err(), "{n:?} should be refused");
        }
    }

    #[test]
    fn backup_name_error_states_rule_and_escapes() {
        let msg = BackupName::parse("a/b").unwrap_err().to_string();
        assert_eq!(
            msg,
            r#"invalid backup name "a/b": use 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit"#
        );
        let msg = BackupName::parse("a\x1b[2Jb").unwrap_err().to_string();
        assert!(msg.contains(r#""a\u{1b}[2Jb""#), "{msg}");
        assert!(!msg.contains('\x1b'));
    }

    #[test]
    fn backup_name_serde_validates() {
        let n: BackupName = serde_json::from_str("\"weekly\"").unwrap();
        assert_eq!(serde_json::to_string(&n).unwrap(), "\"weekly\"");
        assert!(serde_json::from_str::<BackupName>("\"../x\"").is_err());
        assert_eq!("weekly".parse::<BackupName>().unwrap().to_string(), "weekly");
    }

    #[test]
    fn path_components() {
        assert_eq!(path_component("cluster name", "Test Cluster").unwrap(), "Test Cluster");
        assert!(path_component("host ID", "0f3c2d1e-aaaa-bbbb-cccc-123456789abc").is_ok());
        for bad in ["", ".", "..", "a/b", "/", "a\0b", "a\tb", "a\u{7f}", &"k".repeat(256)] {
            assert!(path_component("keyspace", bad).is_err(), "{bad:?} should be refused");
        }
        let msg = path_component("keyspace", "x/y").unwrap_err().to_string();
        assert!(msg.starts_with(r#"invalid keyspace "x/y": must not contain '/'"#), "{msg}");
    }

    #[test]
    fn relative_paths_of_a_manifest() {
        assert_eq!(check_relative("ks/t/nb-1-big-Data.db"), None);
        for bad in ["", "/etc/x", "a//b", "a/", "./a", "a/../b", "a\0b"] {
            assert!(check_relative(bad).is_some(), "{bad:?} should be refused");
        }
    }
}
