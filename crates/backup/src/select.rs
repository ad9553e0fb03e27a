//! Which keyspaces and tables a backup covers, checked against the live schema.

use cassette_cassandra::{Cql, TableInfo, keyspaces};

use crate::{BackupError, BackupRequest};

/// A keyspace to back up and the tables of it that are selected.
#[derive(Debug, Clone)]
pub(crate) struct KeyspaceSelection {
    pub name: String,
    pub tables: Vec<TableInfo>,
    /// Only some tables were asked for (snapshot with `-kt`).
    pub partial: bool,
}

pub(crate) async fn select(cql: &Cql, req: &BackupRequest) -> Result<Vec<KeyspaceSelection>, BackupError> {
    let live: Vec<String> = cql.keyspaces().await?.into_iter().map(|k| k.name).collect();
    let user_keyspaces = || {
        let names: Vec<&str> = live.iter().map(String::as_str).filter(|k| !keyspaces::is_system(k)).collect();
        if names.is_empty() { "none".to_string() } else { names.join(", ") }
    };
    let check_keyspace = |ks: &str| -> Result<(), BackupError> {
        if keyspaces::is_local_system(ks) {
            return Err(BackupError::InvalidInput(format!(
                "keyspace '{ks}' is local to each node and is never backed up; choose user keyspaces (or --include-system for system_auth, system_distributed, system_traces)"
            )));
        }
        if !live.iter().any(|k| k == ks) {
            return Err(BackupError::UnknownSelection(format!(
                "keyspace '{ks}' does not exist on this node; its keyspaces are: {}",
                user_keyspaces()
            )));
        }
        Ok(())
    };

    let mut selections = Vec::new();
    if !req.tables.is_empty() {
        let mut wanted: Vec<(String, String)> = Vec::new();
        for t in &req.tables {
            let Some((ks, table)) =
                t.split_once('.').filter(|(k, t)| !k.is_empty() && !t.is_empty() && !t.contains('.'))
            else {
                return Err(BackupError::InvalidInput(format!("table '{t}' must be given as keyspace.table")));
            };
            check_keyspace(ks)?;
            wanted.push((ks.to_string(), table.to_string()));
        }
        let mut names: Vec<&String> = wanted.iter().map(|(k, _)| k).collect();
        names.sort();
        names.dedup();
        for ks in names {
            let tables = cql.tables(ks).await?;
            let mut chosen = Vec::new();
            for (_, table) in wanted.iter().filter(|(k, _)| k == ks) {
                match tables.iter().find(|t| &t.name == table) {
                    Some(t) => chosen.push(t.clone()),
                    None => {
                        let existing: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
                        return Err(BackupError::UnknownSelection(format!(
                            "table '{ks}.{table}' does not exist; the tables of '{ks}' are: {}",
                            existing.join(", ")
                        )));
                    }
                }
            }
            chosen.sort_by(|a, b| a.name.cmp(&b.name));
            chosen.dedup();
            selections.push(KeyspaceSelection { name: ks.clone(), tables: chosen, partial: true });
        }
        return Ok(selections);
    }

    let names: Vec<String> = if req.keyspaces.is_empty() {
        default_keyspaces(&live, req.include_system)?
    } else {
        for ks in &req.keyspaces {
            check_keyspace(ks)?;
        }
        let mut v = req.keyspaces.clone();
        v.sort();
        v.dedup();
        v
    };
    for ks in names {
        let tables = cql.tables(&ks).await?;
        selections.push(KeyspaceSelection { name: ks, tables, partial: false });
    }
    Ok(selections)
}

/// The keyspaces a backup without `-k` takes: every one but the system ones (with
/// `include_system`, the replicated system ones too). None is an error, not an empty backup
/// that looks complete: most often cassette reached another node or cluster than intended.
fn default_keyspaces(live: &[String], include_system: bool) -> Result<Vec<String>, BackupError> {
    let names: Vec<String> = live
        .iter()
        .filter(|k| !keyspaces::is_system(k) || (include_system && !keyspaces::is_local_system(k)))
        .cloned()
        .collect();
    if names.is_empty() {
        return Err(BackupError::UnknownSelection(
            "the node has no keyspace to back up but Cassandra's system ones: check that --cql-host is the \
             node you meant, or add --include-system to back up system_auth, system_distributed and system_traces"
                .into(),
        ));
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_node_with_only_system_keyspaces_has_nothing_to_back_up() {
        let live = names(&["system", "system_schema", "system_auth", "system_distributed", "system_traces"]);
        let e = default_keyspaces(&live, false).unwrap_err().to_string();
        assert!(e.contains("no keyspace to back up") && e.contains("--include-system"), "{e}");
        let with_system = default_keyspaces(&live, true).unwrap();
        assert!(with_system.contains(&"system_auth".to_string()) && !with_system.contains(&"system".to_string()));
        assert_eq!(default_keyspaces(&names(&["system", "shop"]), false).unwrap(), names(&["shop"]));
    }
}
