//! Staging a table's SSTables for `nodetool import`, outside Cassandra's data directories.
//!
//! Files are hard-linked from the backup when the staging directory is on the same filesystem
//! (copied otherwise), except the components Cassandra may rewrite in place during an import
//! (`Statistics.db`, `Summary.db`), which are always copied: the backup's files must never be
//! touched. Import runs with `--copy-data`, so the data directories get their own copies too.

use std::path::{Path, PathBuf};

use cassette_repo::{FileEntry, RepoError};

/// Components Cassandra can rewrite during or after an import: never hard-linked.
pub(crate) const REWRITTEN: &[&str] = &["Statistics.db", "Summary.db"];

/// The SSTable files of a table entry that `nodetool import` takes: those directly in the
/// table's directory (secondary index SSTables under `.<index>/` are rebuilt by Cassandra).
pub(crate) fn importable<'a>(table_prefix: &str, files: &'a [FileEntry]) -> Vec<&'a FileEntry> {
    files.iter().filter(|f| f.path.strip_prefix(table_prefix).is_some_and(|rel| !rel.contains('/'))).collect()
}

/// Fills `dir` (emptied first) with `files` of the backup at `backup_dir`.
pub(crate) fn stage_table(backup_dir: &Path, files: &[&FileEntry], dir: &Path) -> Result<(), RepoError> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| RepoError::io("empty staging directory", dir, e))?;
    }
    std::fs::create_dir_all(dir).map_err(|e| RepoError::io("create staging directory", dir, e))?;
    for f in files {
        let src = backup_dir.join(&f.path);
        let name = f.path.rsplit('/').next().unwrap_or(&f.path);
        let dst = dir.join(name);
        if REWRITTEN.iter().any(|c| name.ends_with(c)) {
            cassette_repo::copy_verified(&src, &dst, None)?;
        } else {
            cassette_repo::link_or_copy(&src, &dst)?;
        }
    }
    Ok(())
}

/// `<staging root>/<host ID>/<run>/<keyspace>/<table>`: one directory per restore run, so an
/// import a killed run left running never shares files with the next run.
pub(crate) fn table_staging_dir(run_dir: &Path, keyspace: &str, table: &str) -> PathBuf {
    run_dir.join(keyspace).join(table)
}

/// Removes staging directories left by earlier runs for this node, making sure first that this
/// node's staging directory (`<staging root>/<host ID>`, created if missing) and the staging root
/// are real directories, not symbolic links: the repository path policy
/// (`cassette_repo::beneath`). Nothing is ever removed through a link: a link planted there
/// (say to a live keyspace directory) makes the restore stop before it touches anything.
pub(crate) fn clear_leftovers(host_dir: &Path) -> Result<(), RepoError> {
    let staging_root = host_dir.parent().unwrap_or(host_dir);
    // The directory holding the staging root (the repository root for the default staging
    // directory) is the anchor: the staging root is checked as well.
    let anchor = staging_root.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(staging_root);
    std::fs::create_dir_all(anchor).map_err(|e| RepoError::io("create staging directory", anchor, e))?;
    cassette_repo::beneath::create_dir_all(anchor, host_dir)?;
    cassette_repo::beneath::remove_contents(anchor, host_dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn links_data_copies_rewritten_components_and_skips_index_files() {
        let d = tempfile::tempdir().unwrap();
        let backup = d.path().join("b");
        let table = backup.join("ks/t");
        std::fs::create_dir_all(table.join(".idx")).unwrap();
        let mut entries = Vec::new();
        for rel in ["nb-1-big-Data.db", "nb-1-big-Statistics.db", ".idx/nb-1-big-Data.db"] {
            std::fs::write(table.join(rel), rel).unwrap();
            entries.push(cassette_repo::hash_file(&table.join(rel)).unwrap().to_entry(format!("ks/t/{rel}"), None));
        }
        let files = importable("ks/t/", &entries);
        assert_eq!(files.len(), 2);
        let dir = table_staging_dir(&d.path().join("staging/h/1"), "ks", "t");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("stale"), b"x").unwrap();
        stage_table(&backup, &files, &dir).unwrap();
        let ino = |p: &Path| std::fs::metadata(p).unwrap().ino();
        assert_eq!(ino(&dir.join("nb-1-big-Data.db")), ino(&table.join("nb-1-big-Data.db")));
        assert_ne!(ino(&dir.join("nb-1-big-Statistics.db")), ino(&table.join("nb-1-big-Statistics.db")));
        assert!(!dir.join("stale").exists());
        clear_leftovers(&d.path().join("staging/h")).unwrap();
        assert!(!d.path().join("staging/h/1").exists());
    }
}
