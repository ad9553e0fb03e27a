//! What a backup may read, write and clear, checked in its `prepare` stage before anything is
//! taken or written: the data directories are the node's own, the backup directory is
//! outside them (and, unless allowed, on another disk), and a snapshot it is given to copy
//! (and will clear) is one cassette took.

use std::path::{Component, Path, PathBuf};

use cassette_repo::BackupName;

use crate::{BackupError, SNAPSHOT_TAG_PREFIX};

/// The tag cassette gives the snapshot of backup `name`: its prefix, the name, the time in
/// milliseconds (a retried backup of the same name must not find the killed run's snapshot
/// under its own tag).
pub(crate) fn snapshot_tag_for(name: &BackupName, millis: i64) -> String {
    format!("{SNAPSHOT_TAG_PREFIX}{name}-{millis}")
}

/// The backup name of a tag cassette made (`cassette-<name>-<milliseconds>`), `None` for any
/// other tag (an operator's own snapshot, even one starting with `cassette-`).
pub(crate) fn backup_of_snapshot_tag(tag: &str) -> Option<&str> {
    let (name, millis) = tag.strip_prefix(SNAPSHOT_TAG_PREFIX)?.rsplit_once('-')?;
    let digits = !millis.is_empty() && millis.len() <= 19 && millis.bytes().all(|b| b.is_ascii_digit());
    (digits && BackupName::parse(name).is_ok()).then_some(name)
}

/// A snapshot given to a backup to copy is cleared after the copy: it must be one cassette
/// took for this very backup (a cluster backup's `snapshot` job), never an operator's.
pub(crate) fn check_given_snapshot(tag: &str, name: &BackupName) -> Result<(), BackupError> {
    if backup_of_snapshot_tag(tag) == Some(name.as_str()) {
        return Ok(());
    }
    Err(BackupError::InvalidInput(format!(
        "snapshot '{tag}' was not taken by cassette for backup '{name}' (cassette names its snapshots {SNAPSHOT_TAG_PREFIX}{name}-<time in ms>): cassette copies and clears only snapshots it took. Run the backup without a snapshot tag (it takes its own), or copy your snapshot yourself"
    )))
}

/// `--data-dir` must name the node's own `data_file_directories` (as CQL reports them, or the
/// same directories through other paths): a wrong directory would make a backup of whatever
/// it holds. `node` is what CQL answered.
pub(crate) fn check_node_data_dirs(
    given: &[PathBuf],
    node: Result<Vec<PathBuf>, cassette_cassandra::CassandraError>,
) -> Result<(), BackupError> {
    let node = match node {
        Ok(dirs) => dirs,
        Err(e) => {
            return Err(BackupError::ForeignDataDir {
                given: display_list(given),
                node: format!("unknown: CQL could not tell ({e})"),
            });
        }
    };
    let node_resolved: Vec<PathBuf> = node.iter().map(|d| resolve(d)).collect();
    for d in given {
        let r = resolve(d);
        if !node_resolved.contains(&r) {
            return Err(BackupError::ForeignDataDir { given: d.display().to_string(), node: display_list(&node) });
        }
    }
    Ok(())
}

/// The backup directory (and the node directory cassette will write below it) must be outside
/// every data directory, whatever `--allow-same-disk` says: cassette never writes into them.
/// Both sides are resolved (symlinks, `..`) first.
pub(crate) fn check_outside_data_dirs(
    backup_root: &Path,
    node_dir: &Path,
    data_dirs: &[PathBuf],
) -> Result<(), BackupError> {
    for target in [backup_root, node_dir] {
        let resolved = resolve(target);
        for d in data_dirs {
            let data = resolve(d);
            if resolved.starts_with(&data) {
                return Err(BackupError::InvalidInput(format!(
                    "the backup directory {} is inside the Cassandra data directory {} ({} is in {}): cassette never writes into the node's data directories, even with --allow-same-disk. Choose a backup directory outside them, best on another disk",
                    backup_root.display(),
                    d.display(),
                    resolved.display(),
                    data.display()
                )));
            }
        }
    }
    Ok(())
}

/// The backup directory must not share a filesystem with a data directory (one disk failure
/// would lose both), unless `--allow-same-disk`.
pub(crate) fn check_other_disk(backup_root: &Path, data_dirs: &[PathBuf]) -> Result<(), BackupError> {
    // The backup directory may not exist yet: compare its nearest existing ancestor.
    let mut probe = backup_root.to_path_buf();
    while !probe.exists() {
        if !probe.pop() {
            return Ok(());
        }
    }
    for d in data_dirs {
        if cassette_repo::same_filesystem(&probe, d).unwrap_or(false) {
            return Err(BackupError::SameDisk {
                backup: backup_root.display().to_string(),
                data: d.display().to_string(),
            });
        }
    }
    Ok(())
}

/// `path` with symlinks resolved as far as it exists, and the rest (not created yet) appended
/// with `.` and `..` applied: where a write to it would land.
fn resolve(path: &Path) -> PathBuf {
    let absolute =
        if path.is_absolute() { path.to_path_buf() } else { std::env::current_dir().unwrap_or_default().join(path) };
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    let base = loop {
        if let Ok(canonical) = existing.canonicalize() {
            break canonical;
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                existing = parent;
            }
            // `..` at the end of a missing path: apply it, then resolve what is left.
            _ => {
                let applied = lexical(existing);
                break if applied == existing { applied } else { resolve(&applied) };
            }
        }
    };
    let mut out = base;
    for name in rest.into_iter().rev() {
        out.push(name);
    }
    lexical(&out)
}

/// `.` and `..` applied without touching the filesystem.
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

fn display_list(dirs: &[PathBuf]) -> String {
    dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knows_the_tags_cassette_makes() {
        let name = BackupName::parse("nightly-2026-11-22").unwrap();
        let tag = snapshot_tag_for(&name, 1_795_348_124_076);
        assert_eq!(tag, "cassette-nightly-2026-11-22-1795348124076");
        assert_eq!(backup_of_snapshot_tag(&tag), Some("nightly-2026-11-22"));
        for other in
            ["mine", "cassette-mine", "cassette--1", "cassette-x-", "cassette-x-12a", "cassette-.x-1", "truncated-1-t"]
        {
            assert_eq!(backup_of_snapshot_tag(other), None, "{other}");
        }
        assert!(check_given_snapshot(&tag, &name).is_ok());
        let other = BackupName::parse("other").unwrap();
        let err = check_given_snapshot(&tag, &other).unwrap_err().to_string();
        assert!(err.contains(&tag) && err.contains("only snapshots it took"), "{err}");
        assert!(check_given_snapshot("mine", &name).is_err());
    }

    #[test]
    fn resolves_symlinks_and_missing_parts() {
        let d = tempfile::tempdir().unwrap();
        let data = d.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let link = d.path().join("link");
        std::os::unix::fs::symlink(&data, &link).unwrap();
        let data = data.canonicalize().unwrap();
        assert_eq!(resolve(&link.join("new/../bk")), data.join("bk"));
        let elsewhere = d.path().join("elsewhere");
        for inside in [data.join("ks/t-1/bk"), link.join("x"), d.path().join("nope/../data/y")] {
            assert!(check_outside_data_dirs(&inside, &elsewhere, std::slice::from_ref(&data)).is_err(), "{inside:?}");
            assert!(check_outside_data_dirs(&elsewhere, &inside, std::slice::from_ref(&data)).is_err(), "{inside:?}");
        }
        assert!(check_outside_data_dirs(&elsewhere, &elsewhere.join("c/h"), std::slice::from_ref(&data)).is_ok());
        // A sibling whose name starts like the data directory is not inside it.
        assert!(check_outside_data_dirs(&d.path().join("data2"), &elsewhere, std::slice::from_ref(&data)).is_ok());
    }

    #[test]
    fn data_dirs_must_be_the_nodes() {
        let d = tempfile::tempdir().unwrap();
        let data = d.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let link = d.path().join("link");
        std::os::unix::fs::symlink(&data, &link).unwrap();
        assert!(check_node_data_dirs(std::slice::from_ref(&link), Ok(vec![data.clone()])).is_ok());
        let err = check_node_data_dirs(&[d.path().join("empty")], Ok(vec![data.clone()])).unwrap_err().to_string();
        assert!(
            err.contains("empty") && err.contains(&data.display().to_string()) && err.contains("--data-dir-override")
        );
    }
}
