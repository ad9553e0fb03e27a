//! The repository location syntax (`--backup-dir`, `CASSANDRA_BACKUP_DIRECTORY`).

use std::path::PathBuf;

use cassette_object::ObjectError;

/// Whether `location` is an object store URL: `s3://`, `gs://`, `az://` or `memory://`.
pub fn is_object_store_url(location: &str) -> bool {
    cassette_object::is_remote_url(location)
}

/// What `--backup-dir` accepts, for messages.
pub const ACCEPTED_LOCATIONS: &str =
    "a directory, s3://BUCKET/PREFIX, gs://BUCKET/PREFIX, az://CONTAINER/PREFIX or file:///PATH";

/// Reads a backup location (`--backup-dir`, `CASSANDRA_BACKUP_DIRECTORY`): a directory, an
/// object store URL that [`is_object_store_url`] accepts, or `file:///PATH` (a directory). Anything
/// else that looks like a URL (`s3:/b`, `S3://b`, `gcs://b`) is refused: taken as a relative
/// directory, it would put backups in `./s3:/b` and report success.
pub fn parse_location(location: &str) -> Result<PathBuf, ObjectError> {
    if is_object_store_url(location) {
        return Ok(PathBuf::from(location));
    }
    if let Some(path) = location.strip_prefix("file://") {
        if path.starts_with('/') {
            return Ok(PathBuf::from(path));
        }
        return Err(ObjectError::InvalidUrl {
            url: location.to_string(),
            reason: "a file:// URL takes an absolute path (file:///backup); use the directory itself".into(),
        });
    }
    if looks_like_url(location) {
        return Err(ObjectError::InvalidUrl {
            url: location.to_string(),
            reason: format!(
                "it looks like a URL, but the scheme is not one cassette knows (they are lower case): use {ACCEPTED_LOCATIONS} (a directory whose name has ':' in it: write ./{location})"
            ),
        });
    }
    Ok(PathBuf::from(location))
}

/// `scheme:/...`: a letter, then letters, digits, `+`, `-` or `.`, then `:/` (RFC 3986's scheme).
fn looks_like_url(location: &str) -> bool {
    let Some((scheme, rest)) = location.split_once(':') else { return false };
    rest.starts_with('/')
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations() {
        for ok in ["./backup", "/backup", "backup", "s3://b/x", "gs://b", "az://c/p", "memory://", "a:b", "./s3:/b"] {
            assert_eq!(parse_location(ok).unwrap(), PathBuf::from(ok), "{ok}");
        }
        assert_eq!(parse_location("file:///srv/backup").unwrap(), PathBuf::from("/srv/backup"));
        for bad in ["s3:/b/x", "S3://b/x", "gcs://b", "Gs://b", "http://h/x", "file://host/x", "s3+x:/b", "c:/x"] {
            let e = parse_location(bad).unwrap_err().to_string();
            assert!(e.contains(bad) && (e.contains("s3://BUCKET/PREFIX") || e.contains("file:///")), "{bad}: {e}");
        }
    }
}
