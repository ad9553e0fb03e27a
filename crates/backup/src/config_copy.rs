//! The `config` stage: configuration directories (CASSANDRA_HOME/conf, an application's conf)
//! stored under `cassette-meta/conf/<n>-<dirname>/`.

use std::path::{Path, PathBuf};

use cassette_repo::{ConfigDirEntry, FileContext, Journal, RepoLayout};
use cassette_store::{BackupWriter, FileToStore, Reuse};

pub(crate) async fn copy_config_dir(
    n: usize,
    source: &Path,
    backup: &dyn BackupWriter,
    journal: &std::sync::Mutex<Journal>,
) -> Result<ConfigDirEntry, String> {
    // Paths are computed against a placeholder backup directory and made relative to it.
    let placeholder = PathBuf::from("/backup");
    let backup_dir = placeholder.as_path();
    let source = source
        .canonicalize()
        .map_err(|e| format!("configuration directory {}: {e}; check --config-dir", source.display()))?;
    let dirname = source.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "root".into());
    let target = RepoLayout::conf_dir(backup_dir, n, &dirname).map_err(|e| e.to_string())?;
    let stored_as = cassette_repo::relative_path(backup_dir, &target).map_err(|e| e.to_string())?;
    let mut files = Vec::new();
    let mut stack: Vec<PathBuf> = vec![source.clone()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
            let path = entry.path();
            let mut kind = entry.file_type().map_err(|e| format!("{}: {e}", path.display()))?;
            if kind.is_symlink() {
                // Packaged configuration files are often links (to /etc/alternatives): their
                // content is stored. Anything else would be left out silently: refused.
                kind = match std::fs::metadata(&path) {
                    Ok(m) if m.is_file() => m.file_type(),
                    Ok(_) => {
                        return Err(format!(
                            "{} is a symlink to a directory, which is not followed: pass the directory it points to as another --config-dir",
                            path.display()
                        ));
                    }
                    Err(e) => return Err(format!("{} is a symlink whose target cannot be read: {e}", path.display())),
                };
            }
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() {
                let relative = path.strip_prefix(&source).expect("below source");
                let stored_at = target.join(relative);
                let rel = cassette_repo::relative_path(backup_dir, &stored_at).map_err(|e| e.to_string())?;
                let file = FileToStore { source: path, path: rel, expected_crc32: None, reuse: Reuse::None };
                let mut stored = Vec::new();
                for job in backup.store_files(vec![file]) {
                    stored.extend(job.await);
                }
                let (entry, _) = stored.pop().unwrap_or_else(|| Err("the store stored nothing".into()))?;
                let context =
                    FileContext::ConfigDir { source: source.display().to_string(), stored_as: stored_as.clone() };
                journal.lock().expect("journal lock").append_file(&context, &entry).map_err(|e| e.to_string())?;
                cassette_repo::fault::point("config-file-stored");
                files.push(entry);
            }
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(ConfigDirEntry { source: source.display().to_string(), stored_as, files })
}
