//! One table's SSTables from several source nodes, gathered in one directory for one bulk-loader
//! run (one JVM and one streaming session per table, not one per table and source node).
//!
//! Nodes number their SSTables independently, so two nodes' `nb-1-big-Data.db` would collide:
//! every SSTable moved in gets a fresh integer generation, the same for all its components. A
//! component's name is `<version>-<id>-<format>-<component>` (Cassandra 4.0 and later, integer
//! or UUID-style id); files not named so (a snapshot's `manifest.json`, `schema.cql`) are not
//! SSTable parts, and the loader needs none of them: they are left where they were.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use cassette_cassandra::disk::SstableName;
use cassette_repo::RepoError;

/// The directory the loader loads from, and the next free generation in it.
pub(crate) struct Combined {
    dir: PathBuf,
    next_generation: u64,
}

impl Combined {
    /// An empty `dir` (`.../<keyspace>/<table>`, the names the loader loads into).
    pub(crate) fn new(dir: PathBuf) -> Result<Combined, RepoError> {
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| RepoError::io("empty staging directory", &dir, e))?;
        }
        std::fs::create_dir_all(&dir).map_err(|e| RepoError::io("create staging directory", &dir, e))?;
        Ok(Combined { dir, next_generation: 1 })
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Moves the SSTable components of `staged` (one source node's files of the table) in,
    /// renumbered; returns how many files were moved.
    pub(crate) fn take(&mut self, staged: &Path) -> Result<usize, RepoError> {
        let mut names: Vec<String> = std::fs::read_dir(staged)
            .map_err(|e| RepoError::io("list staged SSTables", staged, e))?
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort();
        let mut generations: HashMap<String, u64> = HashMap::new();
        let mut moved = 0;
        for name in names {
            let Some(parts) = SstableName::parse(&name) else { continue };
            let generation = *generations.entry(parts.id.to_owned()).or_insert_with(|| {
                self.next_generation += 1;
                self.next_generation - 1
            });
            let (from, to) = (staged.join(&name), self.dir.join(parts.with_id(&generation.to_string())));
            std::fs::rename(&from, &to).map_err(|e| RepoError::io("move a staged SSTable", &from, e))?;
            moved += 1;
        }
        Ok(moved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_nodes_sstables_of_one_generation_do_not_collide() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        for (dir, body) in [(&a, "a"), (&b, "b")] {
            std::fs::create_dir_all(dir).unwrap();
            for c in ["Data.db", "TOC.txt"] {
                std::fs::write(dir.join(format!("nb-1-big-{c}")), format!("{body} {c}")).unwrap();
            }
            std::fs::write(dir.join("nb-2-big-Data.db"), format!("{body} 2")).unwrap();
            std::fs::write(dir.join("manifest.json"), "{}").unwrap();
        }
        let mut combined = Combined::new(tmp.path().join("ks").join("t")).unwrap();
        assert_eq!(combined.take(&a).unwrap(), 3);
        assert_eq!(combined.take(&b).unwrap(), 3);
        let read = |n: &str| std::fs::read_to_string(combined.dir().join(n)).unwrap();
        // Each source's components stay together under one new generation.
        assert_eq!((read("nb-1-big-Data.db"), read("nb-1-big-TOC.txt")), ("a Data.db".into(), "a TOC.txt".into()));
        assert_eq!(read("nb-2-big-Data.db"), "a 2");
        assert_eq!((read("nb-3-big-Data.db"), read("nb-3-big-TOC.txt")), ("b Data.db".into(), "b TOC.txt".into()));
        assert_eq!(read("nb-4-big-Data.db"), "b 2");
        assert_eq!(std::fs::read_dir(combined.dir()).unwrap().count(), 6, "no manifest.json moved in");
        assert!(a.join("manifest.json").exists());
    }
}
