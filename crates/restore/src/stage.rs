//! Staging a table's SSTables for `nodetool import`, outside Cassandra's data directories.
//!
//! Files are hard-linked from the backup when the staging directory is on the same filesystem
//! (copied otherwise), except the components Cassandra may rewrite in place during an import
//! (`Statistics.db`, `Summary.db`), which are always copied: the backup's files must never be
//! touched. Import runs with `--copy-data`, so the data directories get their own copies too.

use std::path::{Path, PathBuf};

use cassette_repo::{FileEntry, RepoError};

pub(crate) use cassette_store::REWRITTEN;

/// The SSTable files of a table entry that `nodetool import` takes: those directly in the
/// table's directory (secondary index SSTables under `.<index>/` are rebuilt by Cassandra).
pub(crate) fn importable<'a>(table_prefix: &str, files: &'a [FileEntry]) -> Vec<&'a FileEntry> {
    files.iter().filter(|f| f.path.strip_prefix(table_prefix).is_some_and(|rel| !rel.contains('/'))).collect()
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

    #[tokio::test]
    async fn links_data_copies_rewritten_components_and_skips_index_files() {
        let d = tempfile::tempdir().unwrap();
        let backup = d.path().join("c/h/b");
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
        let store = cassette_store::open(d.path(), Default::default()).unwrap();
        let id = cassette_store::BackupId {
            cluster: "c".into(),
            host_id: "h".into(),
            name: cassette_repo::BackupName::parse("b").unwrap(),
        };
        store.open_restore(&id).unwrap().fetch_table(&files, &dir).await.unwrap();
        let ino = |p: &Path| std::fs::metadata(p).unwrap().ino();
        assert_eq!(ino(&dir.join("nb-1-big-Data.db")), ino(&table.join("nb-1-big-Data.db")));
        assert_ne!(ino(&dir.join("nb-1-big-Statistics.db")), ino(&table.join("nb-1-big-Statistics.db")));
        assert!(!dir.join("stale").exists());
        clear_leftovers(&d.path().join("staging/h")).unwrap();
        assert!(!d.path().join("staging/h/1").exists());
    }
}
