//! The one rule every versioned document follows: a reader reads its own version and every
//! older one, and refuses a newer one (it cannot know what changed) with "upgrade cassette".

use crate::error::{FormatError, Result};

/// Checks the `found` version of a document of `kind` against the newest version this build
/// reads, `supported`. Version 0 (or absent) was never written: the document is damaged.
pub fn check_version(kind: &'static str, found: u64, supported: u32) -> Result<()> {
    if found == 0 {
        Err(FormatError::InvalidVersion { kind, found })
    } else if found > u64::from(supported) {
        Err(FormatError::NewerVersion { kind, found, supported })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_version_and_older_are_read_newer_refused() {
        assert!(check_version("manifest", 1, 2).is_ok());
        assert!(check_version("manifest", 2, 2).is_ok());
        let err = check_version("manifest", 3, 2).unwrap_err();
        assert_eq!(
            err.to_string(),
            "manifest format version 3, this cassette reads versions up to 2: it was written by a newer cassette; upgrade cassette to read it"
        );
        assert!(matches!(check_version("manifest", 0, 2), Err(FormatError::InvalidVersion { .. })));
    }
}
