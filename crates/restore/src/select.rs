//! Which backed-up tables a restore covers, and the live names they go to (`--rename`).

use cassette_cassandra::keyspaces;
use cassette_repo::{Manifest, TableEntry};

use crate::{RestoreError, RestoreRequest};

/// A name mapping from the backup to the live schema: a whole keyspace, or one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rename {
    /// `old_ks=new_ks`: every table of the keyspace.
    Keyspace {
        /// Keyspace in the backup.
        from: String,
        /// Live keyspace.
        to: String,
    },
    /// `old_ks.t=new_ks.u`: one table (wins over a keyspace rename).
    Table {
        /// `(keyspace, table)` in the backup.
        from: (String, String),
        /// Live `(keyspace, table)`.
        to: (String, String),
    },
}

impl Rename {
    /// Parses `old_ks=new_ks` or `old_ks.t=new_ks.t`.
    pub fn parse(s: &str) -> Result<Rename, RestoreError> {
        let bad = || {
            RestoreError::InvalidInput(format!(
                "--rename {s:?}: give OLD=NEW with keyspaces (shop=shop_copy) or tables (shop.orders=shop_copy.orders)"
            ))
        };
        let (from, to) = s.split_once('=').ok_or_else(bad)?;
        let name_ok = |n: &str| !n.is_empty() && cassette_repo::path_component("name", n).is_ok();
        match (from.split_once('.'), to.split_once('.')) {
            (None, None) if name_ok(from) && name_ok(to) => Ok(Rename::Keyspace { from: from.into(), to: to.into() }),
            (Some((fk, ft)), Some((tk, tt))) if [fk, ft, tk, tt].iter().all(|n| name_ok(n) && !n.contains('.')) => {
                Ok(Rename::Table { from: (fk.into(), ft.into()), to: (tk.into(), tt.into()) })
            }
            _ => Err(bad()),
        }
    }
}

/// A backed-up table to restore and where it goes.
#[derive(Debug, Clone)]
pub(crate) struct Planned<'m> {
    pub backup_keyspace: String,
    pub live_keyspace: String,
    pub live_table: String,
    pub entry: &'m TableEntry,
}

impl Planned<'_> {
    pub fn live_name(&self) -> String {
        format!("{}.{}", self.live_keyspace, self.live_table)
    }
}

/// The tables of the manifest selected by the request, with their live names, in manifest order.
/// [`select`], refusing a selection of nothing: the `select` step of both restore modes.
pub(crate) fn select_tables<'m>(
    manifest: &'m Manifest,
    req: &RestoreRequest,
) -> Result<Vec<Planned<'m>>, RestoreError> {
    let plan = select(manifest, req)?;
    if plan.is_empty() {
        return Err(RestoreError::InvalidInput(format!(
            "backup '{}' has no tables to restore with this selection (system keyspaces are restored only when named with --keyspace)",
            req.name
        )));
    }
    Ok(plan)
}

pub(crate) fn select<'m>(manifest: &'m Manifest, req: &RestoreRequest) -> Result<Vec<Planned<'m>>, RestoreError> {
    let renames: Vec<Rename> = req.renames.iter().map(|r| Rename::parse(r)).collect::<Result<_, _>>()?;
    let backed_up: Vec<&str> = manifest.keyspaces.iter().map(|k| k.name.as_str()).collect();
    let unknown_ks = |ks: &str| {
        RestoreError::InvalidInput(format!(
            "keyspace '{ks}' is not in backup '{}'; it has: {}",
            manifest.backup_name,
            backed_up.join(", ")
        ))
    };
    let mut wanted_tables: Vec<(String, String)> = Vec::new();
    for t in &req.tables {
        let Some((ks, table)) = t.split_once('.').filter(|(k, t)| !k.is_empty() && !t.is_empty() && !t.contains('.'))
        else {
            return Err(RestoreError::InvalidInput(format!(
                "table '{t}' must be given as keyspace.table (the names in the backup)"
            )));
        };
        let Some(entry) = manifest.keyspaces.iter().find(|k| k.name == ks) else { return Err(unknown_ks(ks)) };
        if !entry.tables.iter().any(|x| x.name == table) {
            let names: Vec<&str> = entry.tables.iter().map(|x| x.name.as_str()).collect();
            return Err(RestoreError::InvalidInput(format!(
                "table '{ks}.{table}' is not in backup '{}'; its tables of '{ks}' are: {}",
                manifest.backup_name,
                names.join(", ")
            )));
        }
        wanted_tables.push((ks.to_string(), table.to_string()));
    }
    for ks in &req.keyspaces {
        if !backed_up.contains(&ks.as_str()) {
            return Err(unknown_ks(ks));
        }
    }
    for r in &renames {
        let from_ks = match r {
            Rename::Keyspace { from, .. } => from,
            Rename::Table { from, .. } => &from.0,
        };
        if !backed_up.contains(&from_ks.as_str()) {
            return Err(unknown_ks(from_ks));
        }
    }

    let mut out = Vec::new();
    for ks in &manifest.keyspaces {
        let chosen_ks = if !req.tables.is_empty() {
            wanted_tables.iter().any(|(k, _)| k == &ks.name) || req.keyspaces.contains(&ks.name)
        } else if !req.keyspaces.is_empty() {
            req.keyspaces.contains(&ks.name)
        } else {
            !keyspaces::is_system(&ks.name)
        };
        if !chosen_ks {
            continue;
        }
        for table in &ks.tables {
            let by_table = wanted_tables.iter().any(|(k, t)| k == &ks.name && t == &table.name);
            if !req.tables.is_empty() && !by_table && !req.keyspaces.contains(&ks.name) {
                continue;
            }
            let (live_keyspace, live_table) = live_name(&renames, &ks.name, &table.name);
            out.push(Planned { backup_keyspace: ks.name.clone(), live_keyspace, live_table, entry: table });
        }
    }
    let mut seen = std::collections::HashSet::new();
    for p in &out {
        if !seen.insert(p.live_name()) {
            return Err(RestoreError::InvalidInput(format!(
                "two backed-up tables would be restored into {}: check --rename",
                p.live_name()
            )));
        }
    }
    Ok(out)
}

fn live_name(renames: &[Rename], ks: &str, table: &str) -> (String, String) {
    for r in renames {
        if let Rename::Table { from, to } = r
            && from.0 == ks
            && from.1 == table
        {
            return to.clone();
        }
    }
    for r in renames {
        if let Rename::Keyspace { from, to } = r
            && from == ks
        {
            return (to.clone(), table.to_string());
        }
    }
    (ks.to_string(), table.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cassette_repo::{KeyspaceEntry, NodeInfo};

    fn manifest() -> Manifest {
        let table = |name: &str| TableEntry {
            name: name.into(),
            id: "0".repeat(32),
            schema_cql: None,
            files: vec![],
            snapshot_sstables: None,
        };
        let ks = |name: &str, tables: &[&str]| KeyspaceEntry {
            name: name.into(),
            schema_cql: String::new(),
            tables: tables.iter().map(|t| table(t)).collect(),
        };
        let now = chrono::Utc::now();
        Manifest {
            format: cassette_repo::MANIFEST_FORMAT.into(),
            format_version: cassette_repo::MANIFEST_VERSION,
            backup_name: "b".into(),
            cluster_name: "c".into(),
            node: NodeInfo {
                host_id: "h".into(),
                address: "a".into(),
                alias: None,
                datacenter: "dc".into(),
                rack: "r".into(),
                tokens: vec![],
                cassandra_version: "5".into(),
            },
            snapshot_tag: "t".into(),
            started_at: now,
            finished_at: now,
            keyspaces: vec![ks("shop", &["orders", "items"]), ks("system_auth", &["roles"]), ks("logs", &["events"])],
            config_dirs: vec![],
            totals: Default::default(),
            object_lock: None,
        }
    }

    fn names(p: &[Planned<'_>]) -> Vec<String> {
        p.iter().map(|p| format!("{}.{}>{}", p.backup_keyspace, p.entry.name, p.live_name())).collect()
    }

    #[test]
    fn default_is_every_user_keyspace() {
        let m = manifest();
        let got = select(&m, &RestoreRequest::new("b", "/r")).unwrap();
        assert_eq!(names(&got), ["shop.orders>shop.orders", "shop.items>shop.items", "logs.events>logs.events"]);
    }

    #[test]
    fn filters_and_renames() {
        let m = manifest();
        let mut req = RestoreRequest::new("b", "/r");
        req.tables = vec!["shop.items".into()];
        req.keyspaces = vec!["system_auth".into()];
        req.renames = vec!["shop=shop2".into(), "shop.items=other.things".into()];
        let got = select(&m, &req).unwrap();
        assert_eq!(names(&got), ["shop.items>other.things", "system_auth.roles>system_auth.roles"]);
        req.tables = vec![];
        req.keyspaces = vec!["shop".into()];
        req.renames = vec!["shop=shop2".into()];
        assert_eq!(names(&select(&m, &req).unwrap()), ["shop.orders>shop2.orders", "shop.items>shop2.items"]);
    }

    #[test]
    fn bad_input_is_explained() {
        let m = manifest();
        let mut req = RestoreRequest::new("b", "/r");
        req.keyspaces = vec!["nope".into()];
        assert!(select(&m, &req).unwrap_err().to_string().contains("it has: shop, system_auth, logs"));
        req.keyspaces = vec![];
        req.tables = vec!["shop.nope".into()];
        assert!(select(&m, &req).unwrap_err().to_string().contains("orders, items"));
        req.tables = vec![];
        req.renames = vec!["shop.orders=shop.items".into()];
        assert!(select(&m, &req).unwrap_err().to_string().contains("two backed-up tables"));
        for bad in ["shop", "shop=", "a.b=c", "a/b=c", "a.b.c=d.e"] {
            assert!(Rename::parse(bad).is_err(), "{bad}");
        }
    }
}
