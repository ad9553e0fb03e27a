//! Stage `schema`: the live tables the backup goes into, created from the backup when asked.

use std::collections::BTreeMap;

use cassette_cassandra::{Cql, TableInfo};
use cassette_repo::Manifest;

use crate::RestoreError;
use crate::dc_map::DcMap;
use crate::schema_policy::{self, Kind};
use crate::select::{Planned, Rename};

/// The live tables of the keyspaces the plan restores into, by `keyspace.table`.
pub(crate) async fn live_tables(cql: &Cql, plan: &[Planned<'_>]) -> Result<BTreeMap<String, TableInfo>, RestoreError> {
    let mut keyspaces: Vec<&str> = plan.iter().map(|p| p.live_keyspace.as_str()).collect();
    keyspaces.sort();
    keyspaces.dedup();
    let mut out = BTreeMap::new();
    for ks in keyspaces {
        for t in cql.tables(ks).await? {
            out.insert(format!("{}.{}", t.keyspace, t.name), t);
        }
    }
    Ok(out)
}

/// The planned tables missing from the live schema (`keyspace.table`, live names).
pub(crate) fn missing(plan: &[Planned<'_>], live: &BTreeMap<String, TableInfo>) -> Vec<String> {
    plan.iter().map(Planned::live_name).filter(|n| !live.contains_key(n)).collect()
}

/// The CQL statements that create what `missing` lacks, from the backed-up `DESCRIBE KEYSPACE`
/// output of each keyspace concerned, with names mapped by the renames: the keyspace, its
/// types, functions and aggregates, and the selected tables with their indexes and views.
/// Every statement of those keyspaces' schemas is checked by the schema policy first: one that
/// is not allowed refuses them all, before any runs. Statements for objects that exist fail
/// with "already exists" and are skipped by the caller.
pub(crate) fn creation_statements(
    manifest: &Manifest,
    plan: &[Planned<'_>],
    missing: &[String],
    renames: &[Rename],
    dc_map: &DcMap,
    ids: TableIds,
) -> Result<Creation, RestoreError> {
    let mut backup_keyspaces: Vec<&str> =
        plan.iter().filter(|p| missing.contains(&p.live_name())).map(|p| p.backup_keyspace.as_str()).collect();
    backup_keyspaces.sort();
    backup_keyspaces.dedup();
    let mut out = Creation::default();
    for ks in manifest.keyspaces.iter().filter(|k| backup_keyspaces.contains(&k.name.as_str())) {
        let allowed = schema_policy::check(&ks.schema_cql, &ks.name).map_err(|why| {
            RestoreError::InvalidInput(format!(
                "--create-schema refused: the schema of keyspace '{}' in backup '{}' holds a statement cassette does not run ({why}); nothing was run. The backup's manifest.json may have been altered: check who can write the backup directory, or create the schema by hand and restore without --create-schema",
                ks.name, manifest.backup_name
            ))
        })?;
        let selected = |table: &str| plan.iter().any(|p| p.backup_keyspace == ks.name && p.entry.name == table);
        for a in allowed {
            // The keyspace, its types, functions and aggregates serve every table; a table, its
            // indexes and views only when that table is restored.
            let per_table = matches!(a.kind, Kind::Table | Kind::Index | Kind::MaterializedView);
            if per_table && a.table.as_deref().is_none_or(|t| !selected(t)) {
                continue;
            }
            let statement = a.renamed(|name| renamed(&ks.name, name, renames), |dc| dc_map.target(dc));
            out.data_centres.extend(a.data_centres().map(|dc| (ks.name.clone(), dc_map.target(dc))));
            let same_name = |p: &&Planned<'_>| {
                p.backup_keyspace == ks.name
                    && Some(p.entry.name.as_str()) == a.table.as_deref()
                    && p.live_keyspace == p.backup_keyspace
                    && p.live_table == p.entry.name
            };
            let keep_id =
                if ids == TableIds::AsBackedUp && a.kind == Kind::Table { plan.iter().find(same_name) } else { None };
            out.statements.push(match keep_id {
                Some(p) => with_table_id(&statement, &p.entry.id).unwrap_or(statement),
                None => statement,
            });
        }
    }
    Ok(out)
}

/// What `--create-schema` runs.
#[derive(Debug, Default)]
pub(crate) struct Creation {
    /// The statements, in order.
    pub statements: Vec<String>,
    /// (backed-up keyspace, target data centre) of every keyspace created with per-data-centre
    /// replication, for [`crate::dc_map::check_target`].
    pub data_centres: Vec<(String, String)>,
}

/// The ids of the tables `--create-schema` creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TableIds {
    /// New ones, chosen by Cassandra.
    New,
    /// The ids they had when backed up, for the tables restored under their own names: the
    /// commitlog replay of a restore to a point in time applies only mutations of tables whose
    /// ids the node knows, so a table dropped since must come back with its old id.
    AsBackedUp,
}

/// `CREATE TABLE ... WITH ...;` with `ID = <id>` as its first property (`id_hex`: 32 hex
/// digits, as in the table's directory name); `None` if `statement` has no column list.
fn with_table_id(statement: &str, id_hex: &str) -> Option<String> {
    if id_hex.len() != 32 || !id_hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let h = id_hex;
    let uuid = format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32]);
    // The end of the column list: the parenthesis closing the first one, outside quotes.
    let (mut depth, mut quote, mut end) = (0usize, None::<char>, None);
    for (i, c) in statement.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    end = Some(i + 1);
                    break;
                }
            }
            _ => {}
        }
    }
    let end = end?;
    let (columns, rest) = statement.split_at(end);
    let trimmed = rest.trim_start();
    if trimmed.len() >= 4 && trimmed[..4].eq_ignore_ascii_case("with") {
        let with_at = end + (rest.len() - trimmed.len()) + 4;
        Some(format!("{} ID = {uuid} AND{}", &statement[..with_at], &statement[with_at..]))
    } else {
        let body = rest.trim_end().trim_end_matches(';');
        Some(format!("{columns}{body} WITH ID = {uuid};"))
    }
}

/// The live `(keyspace, name)` of `ks.name` (`name` is `None` for the keyspace itself), quoted.
fn renamed(ks: &str, name: Option<&str>, renames: &[Rename]) -> (String, Option<String>) {
    let table_to = name.and_then(|n| {
        renames.iter().find_map(|r| match r {
            Rename::Table { from, to } if from.0 == ks && from.1 == n => Some(to.clone()),
            _ => None,
        })
    });
    if let Some((k, t)) = table_to {
        return (quote(&k), Some(quote(&t)));
    }
    let keyspace_to = renames.iter().find_map(|r| match r {
        Rename::Keyspace { from, to } if from == ks => Some(to.as_str()),
        _ => None,
    });
    (quote(keyspace_to.unwrap_or(ks)), None)
}

/// Quotes a CQL identifier when it needs it (as `DESCRIBE` does).
fn quote(name: &str) -> String {
    let plain = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if plain { name.to_string() } else { format!("\"{}\"", name.replace('"', "\"\"")) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cassette_repo::{KeyspaceEntry, NodeInfo, TableEntry};

    const DESCRIBED: &str = "CREATE KEYSPACE shop WITH replication = {'class': 'SimpleStrategy', 'replication_factor': '1'}  AND durable_writes = true;\n\n\
CREATE TYPE shop.addr (\n    street text\n);\n\n\
CREATE TABLE shop.orders (\n    id int PRIMARY KEY,\n    a frozen<shop.addr>\n) WITH comment = 'shop.orders is here';\n\n\
CREATE INDEX orders_by_a ON shop.orders (a);\n\n\
CREATE TABLE shop.orders_archive (\n    id int PRIMARY KEY\n);\n\n";

    fn manifest(schema: &str) -> Manifest {
        let table = |name: &str| TableEntry {
            name: name.into(),
            id: "0".repeat(32),
            schema_cql: None,
            files: vec![],
            snapshot_sstables: None,
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
            keyspaces: vec![KeyspaceEntry {
                name: "shop".into(),
                schema_cql: schema.into(),
                tables: vec![table("orders"), table("orders_archive")],
            }],
            config_dirs: vec![],
            totals: Default::default(),
            object_lock: None,
        }
    }

    fn statements(m: &Manifest, tables: &[&str], renames: &[Rename]) -> Result<Vec<String>, RestoreError> {
        let ks = &m.keyspaces[0];
        let plan: Vec<Planned<'_>> = ks
            .tables
            .iter()
            .filter(|t| tables.contains(&t.name.as_str()))
            .map(|t| {
                let (live_keyspace, live_table) = match renamed("shop", Some(t.name.as_str()), renames) {
                    (k, Some(t)) => (k.trim_matches('"').to_string(), t.trim_matches('"').to_string()),
                    (k, None) => (k, t.name.clone()),
                };
                Planned { backup_keyspace: "shop".into(), live_keyspace, live_table, entry: t }
            })
            .collect();
        let missing: Vec<String> = plan.iter().map(Planned::live_name).collect();
        creation_statements(m, &plan, &missing, renames, &DcMap::default(), TableIds::New).map(|c| c.statements)
    }

    #[test]
    fn a_table_keeps_its_backed_up_id_when_asked_and_not_renamed() {
        let id = "5a1c0e9a7b3d42c8a61f9e0b7d2c4a85";
        let with =
            with_table_id("CREATE TABLE shop.orders (\n    id int PRIMARY KEY\n) WITH comment = 'a (b)';", id).unwrap();
        assert_eq!(
            with,
            "CREATE TABLE shop.orders (\n    id int PRIMARY KEY\n) WITH ID = 5a1c0e9a-7b3d-42c8-a61f-9e0b7d2c4a85 AND comment = 'a (b)';"
        );
        let bare = with_table_id("CREATE TABLE shop.t (id int PRIMARY KEY, \"v)\" text);", id).unwrap();
        assert_eq!(
            bare,
            "CREATE TABLE shop.t (id int PRIMARY KEY, \"v)\" text) WITH ID = 5a1c0e9a-7b3d-42c8-a61f-9e0b7d2c4a85;"
        );
        assert_eq!(with_table_id("CREATE TABLE shop.t (id int PRIMARY KEY);", "not-an-id"), None);

        let mut m = manifest(DESCRIBED);
        m.keyspaces[0].tables[0].id = id.into();
        let ks = &m.keyspaces[0];
        let plan: Vec<Planned<'_>> = ks
            .tables
            .iter()
            .map(|t| Planned {
                backup_keyspace: "shop".into(),
                live_keyspace: "shop".into(),
                live_table: t.name.clone(),
                entry: t,
            })
            .collect();
        let missing: Vec<String> = plan.iter().map(Planned::live_name).collect();
        let kept =
            creation_statements(&m, &plan, &missing, &[], &DcMap::default(), TableIds::AsBackedUp).unwrap().statements;
        let orders = kept.iter().find(|s| s.starts_with("CREATE TABLE shop.orders (")).unwrap();
        assert!(orders.contains("WITH ID = 5a1c0e9a-7b3d-42c8-a61f-9e0b7d2c4a85 AND comment"), "{orders}");
        let renames = vec![Rename::Keyspace { from: "shop".into(), to: "shop_copy".into() }];
        let renamed_plan: Vec<Planned<'_>> = ks
            .tables
            .iter()
            .map(|t| Planned {
                backup_keyspace: "shop".into(),
                live_keyspace: "shop_copy".into(),
                live_table: t.name.clone(),
                entry: t,
            })
            .collect();
        let missing: Vec<String> = renamed_plan.iter().map(Planned::live_name).collect();
        let new = creation_statements(&m, &renamed_plan, &missing, &renames, &DcMap::default(), TableIds::AsBackedUp)
            .unwrap()
            .statements;
        assert!(new.iter().all(|s| !s.contains("ID =")), "a renamed table gets a new id: {new:?}");
    }

    #[test]
    fn creates_the_selected_tables_with_renames() {
        let m = manifest(DESCRIBED);
        let renames = vec![
            Rename::Keyspace { from: "shop".into(), to: "shop_copy".into() },
            Rename::Table { from: ("shop".into(), "orders".into()), to: ("other".into(), "Orders2".into()) },
        ];
        let s = statements(&m, &["orders", "orders_archive"], &renames).unwrap();
        assert_eq!(s.len(), 5);
        assert!(s[0].starts_with("CREATE KEYSPACE shop_copy WITH replication"), "{}", s[0]);
        assert!(s[1].starts_with("CREATE TYPE shop_copy.addr"), "{}", s[1]);
        assert!(
            s[2].starts_with("CREATE TABLE other.\"Orders2\" (") && s[2].contains("frozen<shop_copy.addr>"),
            "{}",
            s[2]
        );
        assert!(s[2].contains("'shop.orders is here'"), "a string is not renamed: {}", s[2]);
        assert!(s[3].contains("ON other.\"Orders2\" (a)"), "{}", s[3]);
        assert!(s[4].starts_with("CREATE TABLE shop_copy.orders_archive ("), "{}", s[4]);
        // Only the selected table (and what it needs).
        let s = statements(&m, &["orders_archive"], &[]).unwrap();
        assert_eq!(s.len(), 3, "{s:?}");
        assert!(s[2].starts_with("CREATE TABLE shop.orders_archive"), "{s:?}");
    }

    #[test]
    fn a_statement_outside_the_policy_refuses_all() {
        let m = manifest(&format!("{DESCRIBED}DROP KEYSPACE canary;\n"));
        let e = statements(&m, &["orders_archive"], &[]).unwrap_err().to_string();
        assert!(e.contains("DROP KEYSPACE canary") && e.contains("nothing was run"), "{e}");
        let m = manifest(&format!("CREATE KEYSPACE canary2 WITH replication = {{}};\n{DESCRIBED}"));
        let e = statements(&m, &["orders"], &[]).unwrap_err().to_string();
        assert!(e.contains("keyspace 'canary2'"), "{e}");
    }
}
