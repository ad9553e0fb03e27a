//! Which Cassandra versions cassette supports, told apart by `system.local.release_version`.
//!
//! Supported: the 4.0, 4.1 and 5.0 release lines, each tested on a real node. What differs
//! between them is handled where it matters: the JMX client picks `clearSnapshot`'s signature
//! from the operations the node offers (4.x: tag and keyspaces; 5.0: an options map first),
//! `nodetool import` gets only long options (its short ones changed in 5.0), and SSTable names
//! of any format (`nb`, `oa`, `da`) are parsed alike (`disk`).

use serde::Serialize;

use crate::error::CassandraError;

/// The release lines cassette supports, oldest first.
pub const SUPPORTED_LINES: [(u32, u32); 3] = [(4, 0), (4, 1), (5, 0)];

/// A node's Cassandra version, e.g. 4.1.10 (a suffix such as `-SNAPSHOT` is ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct CassandraVersion {
    /// Major version.
    pub major: u32,
    /// Minor version.
    pub minor: u32,
    /// Patch version.
    pub patch: u32,
}

impl std::fmt::Display for CassandraVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl CassandraVersion {
    /// Parses `release_version` (`5.0.9`, `4.1.10`, `4.0-rc1`, `5.0.2-SNAPSHOT`).
    pub fn parse(release: &str) -> Option<CassandraVersion> {
        let numeric = release.split(['-', '+']).next()?;
        let mut parts = numeric.split('.').map(|p| p.parse::<u32>());
        let major = parts.next()?.ok()?;
        let minor = parts.next()?.ok()?;
        let patch = match parts.next() {
            None => 0,
            Some(p) => p.ok()?,
        };
        Some(CassandraVersion { major, minor, patch })
    }

    /// Whether cassette supports this version's release line.
    pub fn is_supported(&self) -> bool {
        SUPPORTED_LINES.contains(&(self.major, self.minor))
    }
}

/// The supported lines as a user reads them: "4.0.x, 4.1.x and 5.0.x".
pub fn supported_lines_text() -> String {
    let lines: Vec<String> = SUPPORTED_LINES.iter().map(|(a, b)| format!("{a}.{b}.x")).collect();
    let (last, rest) = lines.split_last().expect("at least one line");
    format!("{} and {last}", rest.join(", "))
}

/// The node's version if cassette supports it, else an error that says which versions it does.
pub fn check_supported(release: &str) -> Result<CassandraVersion, CassandraError> {
    match CassandraVersion::parse(release) {
        Some(v) if v.is_supported() => Ok(v),
        _ => {
            Err(CassandraError::UnsupportedVersion { release: release.to_string(), supported: supported_lines_text() })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_release_versions() {
        assert_eq!(CassandraVersion::parse("4.1.10"), Some(CassandraVersion { major: 4, minor: 1, patch: 10 }));
        assert_eq!(CassandraVersion::parse("5.0.2-SNAPSHOT"), Some(CassandraVersion { major: 5, minor: 0, patch: 2 }));
        assert_eq!(CassandraVersion::parse("4.0-rc1"), Some(CassandraVersion { major: 4, minor: 0, patch: 0 }));
        assert_eq!(CassandraVersion::parse(""), None);
        assert_eq!(CassandraVersion::parse("five"), None);
    }

    #[test]
    fn supports_4_0_4_1_and_5_0_only() {
        for ok in ["4.0.19", "4.1.10", "5.0.9", "5.0.0"] {
            assert!(check_supported(ok).is_ok(), "{ok}");
        }
        for no in ["3.11.17", "3.0.30", "4.2.0", "6.0-alpha1", "", "garbage"] {
            let e = check_supported(no).unwrap_err().to_string();
            assert!(e.contains("4.0.x, 4.1.x and 5.0.x"), "{no}: {e}");
        }
    }
}
