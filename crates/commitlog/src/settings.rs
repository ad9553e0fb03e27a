//! `commitlog_archiving.properties`: the `archive_command` that calls cassette, and the
//! restore settings of a restore to a point in time.
//!
//! Cassandra reads the file at start-up (from its configuration directory, or the file the
//! JVM property `cassandra.commitlog_archiving_properties` names). Lines are Java properties;
//! cassette changes only the keys it owns and keeps every other line, comments included.

use std::path::Path;

use chrono::{DateTime, Utc};

use crate::error::{CommitlogError, Result};

/// The file's usual name, in the node's configuration directory.
pub const FILE_NAME: &str = "commitlog_archiving.properties";
/// The restore settings' keys: written before the node starts to replay, removed after.
pub const RESTORE_KEYS: [&str; 4] = ["restore_command", "restore_directories", "restore_point_in_time", "precision"];

/// The archive command Cassandra runs for each finished segment: cassette's own executable,
/// `commitlog archive`, the spool, and Cassandra's `%path %name`. Cassandra splits the line on
/// spaces without a shell, so no path may hold a space.
pub fn archive_command(exe: &Path, spool: &Path) -> Result<String> {
    for (what, p) in [("cassette executable", exe), ("spool directory", spool)] {
        let s = p.to_str().unwrap_or_default();
        if !p.is_absolute() || s.is_empty() || s.contains(char::is_whitespace) || s.contains('\\') {
            return Err(CommitlogError::Refused(format!(
                "the {what} {} cannot be in an archive_command: Cassandra splits the command on spaces and runs it from its own directory, so use an absolute path without spaces or backslashes",
                p.display()
            )));
        }
    }
    Ok(format!("{} commitlog archive --spool {} %path %name", exe.display(), spool.display()))
}

/// The value of `key` in the file's text (the last uncommented line setting it).
pub fn get(text: &str, key: &str) -> Option<String> {
    text.lines().filter_map(|l| parse_line(l)).filter(|(k, _)| *k == key).map(|(_, v)| v.to_owned()).next_back()
}

/// `text` with each `(key, value)` set (the first line setting it replaced, other ones
/// removed; appended if absent) or, for `None`, removed. Other lines are kept as they are.
pub fn set(text: &str, changes: &[(&str, Option<&str>)]) -> String {
    let mut out = Vec::new();
    let mut done = vec![false; changes.len()];
    for line in text.lines() {
        let change = parse_line(line).and_then(|(k, _)| changes.iter().position(|(key, _)| *key == k));
        match change {
            None => out.push(line.to_owned()),
            Some(i) => {
                if let (false, Some(v)) = (done[i], changes[i].1) {
                    out.push(format!("{}={v}", changes[i].0));
                }
                done[i] = true;
            }
        }
    }
    for (i, (key, value)) in changes.iter().enumerate() {
        if let (false, Some(v)) = (done[i], value) {
            out.push(format!("{key}={v}"));
        }
    }
    let mut text = out.join("\n");
    text.push('\n');
    text
}

/// A key and value of a properties line; `None` for comments and blank lines.
fn parse_line(line: &str) -> Option<(&str, &str)> {
    let line = line.trim_start();
    if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
        return None;
    }
    let end = line.find(['=', ':', ' ', '\t']).unwrap_or(line.len());
    let (key, rest) = line.split_at(end);
    let rest = rest.trim_start();
    let value = rest.strip_prefix(['=', ':']).unwrap_or(rest).trim_start();
    Some((key, value))
}

/// The restore settings replaying the segments in `segments_dir` up to `until`: copied by
/// `cp` into the commitlog directory at start-up, mutations newer than `until` skipped.
/// `until` is written to the microsecond (Cassandra 4.1.10 and 5.0.9 read it; older releases
/// read the seconds and ignore the rest), with `precision` in microseconds, the unit of
/// CQL write timestamps.
pub fn restore_settings(segments_dir: &Path, until: DateTime<Utc>) -> [(&'static str, String); 3] {
    [
        ("restore_command", "/bin/cp -f %from %to".to_owned()),
        ("restore_directories", segments_dir.display().to_string()),
        ("restore_point_in_time", point_in_time(until)),
    ]
}

/// Cassandra's `restore_point_in_time` format: `yyyy:MM:dd HH:mm:ss`, GMT.
pub fn point_in_time(t: DateTime<Utc>) -> String {
    t.format("%Y:%m:%d %H:%M:%S").to_string()
}

/// Reads the file (`None`: it does not exist).
pub fn read(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(CommitlogError::io("read", path, e)),
    }
}

/// Replaces the file with `text` atomically (a partial file, fsync, rename), keeping its mode.
pub fn write(path: &Path, text: &str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).map(|m| m.permissions().mode() & 0o7777).unwrap_or(0o644);
    let partial = path.with_file_name(format!(".{FILE_NAME}.cassette-partial"));
    std::fs::write(&partial, text).map_err(|e| CommitlogError::io("write", &partial, e))?;
    let f = std::fs::File::open(&partial).map_err(|e| CommitlogError::io("open", &partial, e))?;
    f.set_permissions(std::fs::Permissions::from_mode(mode)).map_err(|e| CommitlogError::io("chmod", &partial, e))?;
    f.sync_all().map_err(|e| CommitlogError::io("sync", &partial, e))?;
    std::fs::rename(&partial, path).map_err(|e| CommitlogError::io("rename into place", path, e))?;
    if let Some(dir) = path.parent() {
        let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const STOCK: &str = "# commitlog archiving\n#archive_command=/bin/ln %path /backup/%name\narchive_command=\nrestore_command=\n#restore_point_in_time=2013:12:31 23:59:59\n";

    #[test]
    fn setting_a_key_keeps_every_other_line_and_removing_it_leaves_no_trace() {
        let cmd = archive_command(Path::new("/usr/bin/cassette"), Path::new("/var/lib/cassandra/spool")).unwrap();
        assert_eq!(cmd, "/usr/bin/cassette commitlog archive --spool /var/lib/cassandra/spool %path %name");
        let installed = set(STOCK, &[("archive_command", Some(&cmd))]);
        assert_eq!(get(&installed, "archive_command").as_deref(), Some(cmd.as_str()));
        assert!(installed.contains("#archive_command=/bin/ln %path /backup/%name\n"));
        assert!(installed.contains("#restore_point_in_time=2013:12:31 23:59:59\n"));

        let dir = Path::new("/var/lib/cassandra/restore-segments");
        let restore = restore_settings(dir, DateTime::parse_from_rfc3339("2026-12-02T10:15:00Z").unwrap().to_utc());
        let changes: Vec<(&str, Option<&str>)> = restore.iter().map(|(k, v)| (*k, Some(v.as_str()))).collect();
        let restoring = set(&installed, &changes);
        assert_eq!(get(&restoring, "restore_point_in_time").as_deref(), Some("2026:12:02 10:15:00"));
        assert_eq!(get(&restoring, "restore_directories").as_deref(), Some("/var/lib/cassandra/restore-segments"));
        let removed: Vec<(&str, Option<&str>)> = RESTORE_KEYS.iter().map(|k| (*k, None)).collect();
        let after = set(&restoring, &removed);
        assert_eq!(get(&after, "restore_point_in_time"), None);
        assert_eq!(get(&after, "restore_command"), None);
        assert_eq!(get(&after, "archive_command").as_deref(), Some(cmd.as_str()));
    }

    #[test]
    fn a_path_cassandra_would_split_is_refused() {
        let err = archive_command(Path::new("/usr/bin/cassette"), Path::new("/var/lib/my spool")).unwrap_err();
        assert!(err.to_string().contains("without spaces"), "{err}");
        assert!(archive_command(Path::new("cassette"), Path::new("/spool")).is_err(), "relative");
    }
}
