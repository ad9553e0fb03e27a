//! Stage `schema`: the live tables the backup goes into, created from the backup when asked.

use std::collections::BTreeMap;

use cassette_cassandra::{Cql, TableInfo};
use cassette_repo::Manifest;

use crate::RestoreError;
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

/// The CQL statements that create what `missing` lacks: the backed-up `DESCRIBE KEYSPACE`
/// output of each keyspace concerned, with names mapped by the renames. Statements for objects
/// that exist fail with "already exists" and are skipped by the caller.
pub(crate) fn creation_statements(
    manifest: &Manifest,
    plan: &[Planned<'_>],
    missing: &[String],
    renames: &[Rename],
) -> Vec<String> {
    let mut backup_keyspaces: Vec<&str> =
        plan.iter().filter(|p| missing.contains(&p.live_name())).map(|p| p.backup_keyspace.as_str()).collect();
    backup_keyspaces.sort();
    backup_keyspaces.dedup();
    let mut out = Vec::new();
    for ks in manifest.keyspaces.iter().filter(|k| backup_keyspaces.contains(&k.name.as_str())) {
        for stmt in split_statements(&ks.schema_cql) {
            out.push(rename_statement(&stmt, &ks.name, renames));
        }
    }
    out
}

/// `DESCRIBE` output: statements end with `;` at the end of a line.
fn split_statements(cql: &str) -> Vec<String> {
    cql.split(";\n")
        .map(|s| s.trim().trim_end_matches(';').trim())
        .filter(|s| !s.is_empty() && !s.lines().all(|l| l.trim_start().starts_with("--") || l.trim().is_empty()))
        .map(|s| format!("{s};"))
        .collect()
}

/// Rewrites the keyspace (and renamed tables) of one statement of keyspace `ks`: the name after
/// `CREATE KEYSPACE`, and every `ks.name` qualification.
fn rename_statement(stmt: &str, ks: &str, renames: &[Rename]) -> String {
    let keyspace_to = renames.iter().find_map(|r| match r {
        Rename::Keyspace { from, to } if from == ks => Some(to.as_str()),
        _ => None,
    });
    let table_to = |table: &str| {
        renames.iter().find_map(|r| match r {
            Rename::Table { from, to } if from.0 == ks && unquote(table) == from.1 => Some(to.clone()),
            _ => None,
        })
    };
    let quoted_ks = quote(ks);
    let mut out = String::with_capacity(stmt.len());
    let mut rest = stmt;
    if let Some(after) = strip_prefix_ci(rest, "CREATE KEYSPACE ") {
        let after_trim = after.trim_start();
        if let Some(name_rest) = after_trim.strip_prefix(quoted_ks.as_str())
            && name_rest.starts_with(|c: char| c.is_whitespace())
        {
            out.push_str("CREATE KEYSPACE ");
            out.push_str(&quote(keyspace_to.unwrap_or(ks)));
            rest = name_rest;
        }
    }
    let pattern = format!("{quoted_ks}.");
    while let Some(pos) = rest.find(&pattern) {
        let boundary = rest[..pos].chars().last().is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '"'));
        out.push_str(&rest[..pos]);
        let after = &rest[pos + pattern.len()..];
        if !boundary {
            out.push_str(&pattern);
            rest = after;
            continue;
        }
        let ident_len = identifier_len(after);
        let ident = &after[..ident_len];
        match table_to(ident) {
            Some((k, t)) => out.push_str(&format!("{}.{}", quote(&k), quote(&t))),
            None => out.push_str(&format!("{}.{ident}", quote(keyspace_to.unwrap_or(ks)))),
        }
        rest = &after[ident_len..];
    }
    out.push_str(rest);
    out
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    (s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix)).then(|| &s[prefix.len()..])
}

fn identifier_len(s: &str) -> usize {
    if let Some(body) = s.strip_prefix('"') {
        // A quoted identifier ends at a lone quote ("" is an escaped quote).
        let bytes = body.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'"' {
                if bytes.get(i + 1) == Some(&b'"') {
                    i += 2;
                    continue;
                }
                return i + 2;
            }
            i += 1;
        }
        s.len()
    } else {
        s.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(s.len())
    }
}

fn unquote(ident: &str) -> String {
    match ident.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(inner) => inner.replace("\"\"", "\""),
        None => ident.to_string(),
    }
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

    const DESCRIBED: &str = "CREATE KEYSPACE shop WITH replication = {'class': 'SimpleStrategy', 'replication_factor': '1'}  AND durable_writes = true;\n\n\
CREATE TYPE shop.addr (\n    street text\n);\n\n\
CREATE TABLE shop.orders (\n    id int PRIMARY KEY,\n    a frozen<shop.addr>\n) WITH comment = 'shop.orders is here';\n\n\
CREATE INDEX orders_by_a ON shop.orders (a);\n\n\
CREATE TABLE shop.orders_archive (\n    id int PRIMARY KEY\n);\n\n";

    #[test]
    fn splits_describe_output() {
        let s = split_statements(DESCRIBED);
        assert_eq!(s.len(), 5);
        assert!(s[0].starts_with("CREATE KEYSPACE shop WITH") && s[0].ends_with("true;"));
        assert!(s[4].starts_with("CREATE TABLE shop.orders_archive"));
    }

    #[test]
    fn renames_keyspace_and_tables_at_word_boundaries() {
        let renames = vec![
            Rename::Keyspace { from: "shop".into(), to: "shop_copy".into() },
            Rename::Table { from: ("shop".into(), "orders".into()), to: ("other".into(), "Orders2".into()) },
        ];
        let s: Vec<String> =
            split_statements(DESCRIBED).iter().map(|s| rename_statement(s, "shop", &renames)).collect();
        assert!(s[0].starts_with("CREATE KEYSPACE shop_copy WITH replication"), "{}", s[0]);
        assert!(s[1].starts_with("CREATE TYPE shop_copy.addr"), "{}", s[1]);
        assert!(
            s[2].starts_with("CREATE TABLE other.\"Orders2\" (") && s[2].contains("frozen<shop_copy.addr>"),
            "{}",
            s[2]
        );
        assert!(s[3].contains("ON other.\"Orders2\" (a)"), "{}", s[3]);
        assert!(s[4].starts_with("CREATE TABLE shop_copy.orders_archive ("), "{}", s[4]);
        // Not a qualification of the keyspace: left alone.
        assert_eq!(rename_statement("CREATE TABLE x.myshop.y", "shop", &renames), "CREATE TABLE x.myshop.y");
        assert_eq!(rename_statement("SELECT 1", "shop", &[]), "SELECT 1");
    }

    #[test]
    fn quoted_names() {
        let renames = vec![Rename::Keyspace { from: "Shop".into(), to: "shop2".into() }];
        let got = rename_statement("CREATE TABLE \"Shop\".\"T\"\"x\" (id int PRIMARY KEY);", "Shop", &renames);
        assert_eq!(got, "CREATE TABLE shop2.\"T\"\"x\" (id int PRIMARY KEY);");
        assert_eq!(
            rename_statement("CREATE KEYSPACE \"Shop\" WITH r", "Shop", &renames),
            "CREATE KEYSPACE shop2 WITH r"
        );
    }
}
