//! The `config` stage: configuration directories (CASSANDRA_HOME/conf, an application's conf)
//! stored under `cassette-meta/conf/<n>-<dirname>/`.

use std::path::{Path, PathBuf};

use cassette_repo::{ConfigDirEntry, FileContext, Journal, RepoLayout};

pub(crate) fn copy_config_dir(
    n: usize,
    source: &Path,
    backup_dir: &Path,
    journal: &std::sync::Mutex<Journal>,
) -> Result<ConfigDirEntry, String> {
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
            let kind = entry.file_type().map_err(|e| format!("{}: {e}", path.display()))?;
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() {
                let relative = path.strip_prefix(&source).expect("below source");
                let dest = target.join(relative);
                let stored = cassette_repo::copy_verified(&path, &dest, None).map_err(|e| e.to_string())?;
                let rel = cassette_repo::relative_path(backup_dir, &dest).map_err(|e| e.to_string())?;
                let entry = stored.to_entry(rel, None);
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
