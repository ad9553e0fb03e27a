//! The schema policy of `--create-schema`: which statements of a backup's schema may run.
//!
//! A backup's `schema_cql` (its keyspace's `DESCRIBE KEYSPACE`) is written by whoever can write
//! the repository, so it is checked before any of it runs: it is split into statements by a
//! small lexer that knows CQL's strings (`'...'`, `$$...$$`), quoted identifiers (`"..."`) and
//! comments (`--`, `//`, `/* */`), so a `;` inside any of them cannot smuggle in a second
//! statement. Each statement must be one of the creations `DESCRIBE` writes (keyspace, type,
//! function, aggregate, table, index, materialized view), of the keyspace whose schema holds it,
//! without `OR REPLACE`. One statement outside this refuses the whole schema.

use std::ops::Range;

/// One lexical token of a statement, with its byte range in the schema text.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    /// A keyword, unquoted identifier or number.
    Word(String),
    /// A quoted identifier, unescaped.
    Quoted(String),
    /// A string constant (`'...'` or `$$...$$`).
    Str,
    /// Any other character.
    Punct(char),
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    span: Range<usize>,
}

impl Token {
    fn is_word(&self, w: &str) -> bool {
        matches!(&self.tok, Tok::Word(x) if x.eq_ignore_ascii_case(w))
    }
    fn is_punct(&self, c: char) -> bool {
        self.tok == Tok::Punct(c)
    }
    /// The identifier this token names: unquoted words are case-insensitive (lower case).
    fn ident(&self) -> Option<String> {
        match &self.tok {
            Tok::Word(w) if w.starts_with(|c: char| c.is_ascii_alphabetic()) => Some(w.to_ascii_lowercase()),
            Tok::Quoted(q) => Some(q.clone()),
            _ => None,
        }
    }
}

/// What a statement creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Keyspace,
    Type,
    Function,
    Aggregate,
    Table,
    Index,
    MaterializedView,
}

/// A statement the policy allows, with what it concerns.
#[derive(Debug, Clone)]
pub(crate) struct Allowed {
    pub kind: Kind,
    /// For a table, index or view: the table it creates or is built on (backup name).
    pub table: Option<String>,
    /// The statement's text (without its `;`).
    text: String,
    /// Where each `keyspace.name` qualification (and a `CREATE KEYSPACE` name) is: the byte
    /// ranges of the keyspace and of the name in `text`.
    names: Vec<(Range<usize>, Option<Range<usize>>)>,
    /// A `CREATE KEYSPACE`'s data centres: the keys of its replication map other than `class`
    /// and `replication_factor` (`NetworkTopologyStrategy`'s), their ranges in `text`.
    data_centres: Vec<(Range<usize>, String)>,
}

impl Allowed {
    /// The data centres a `CREATE KEYSPACE` replicates to (none for other statements, or for
    /// `SimpleStrategy`).
    pub fn data_centres(&self) -> impl Iterator<Item = &str> {
        self.data_centres.iter().map(|(_, dc)| dc.as_str())
    }

    /// The statement with its names replaced by `rename(name)` (`None`: the keyspace itself),
    /// which returns the new `(keyspace, name)`, already quoted as CQL needs, and each data
    /// centre of a `CREATE KEYSPACE` by `data_centre(dc)`.
    pub fn renamed(
        &self,
        rename: impl Fn(Option<&str>) -> (String, Option<String>),
        data_centre: impl Fn(&str) -> String,
    ) -> String {
        let mut edits: Vec<(Range<usize>, String)> = Vec::new();
        for (ks, name) in &self.names {
            let (new_ks, new_name) = rename(name.as_ref().map(|n| unquoted(&self.text[n.clone()])).as_deref());
            edits.push((ks.clone(), new_ks));
            if let (Some(n), Some(new_name)) = (name, new_name) {
                edits.push((n.clone(), new_name));
            }
        }
        for (range, dc) in &self.data_centres {
            edits.push((range.clone(), format!("'{}'", data_centre(dc).replace('\'', "''"))));
        }
        edits.sort_by_key(|(r, _)| r.start);
        let mut out = String::with_capacity(self.text.len() + 16);
        let mut at = 0;
        for (range, new) in edits {
            out.push_str(&self.text[at..range.start]);
            out.push_str(&new);
            at = range.end;
        }
        out.push_str(&self.text[at..]);
        out.push(';');
        out
    }
}

/// Checks every statement of `schema`, the schema of backed-up keyspace `keyspace`: all are
/// allowed, or the error names the first that is not and says why.
pub(crate) fn check(schema: &str, keyspace: &str) -> Result<Vec<Allowed>, String> {
    let tokens = lex(schema)?;
    let mut out = Vec::new();
    for stmt in tokens.split(|t| t.is_punct(';')).filter(|s| !s.is_empty()) {
        let range = stmt[0].span.start..stmt[stmt.len() - 1].span.end;
        let text = &schema[range.clone()];
        let allowed = check_statement(stmt, keyspace).map_err(|why| format!("{why}: {}", excerpt(text)))?;
        let names = qualified_names(stmt, keyspace)
            .into_iter()
            .map(|(k, n)| (shift(&k, range.start), n.map(|n| shift(&n, range.start))))
            .collect();
        let data_centres = if allowed.0 == Kind::Keyspace {
            replication_data_centres(stmt, schema).into_iter().map(|(r, dc)| (shift(&r, range.start), dc)).collect()
        } else {
            Vec::new()
        };
        out.push(Allowed { kind: allowed.0, table: allowed.1, text: text.to_string(), names, data_centres });
    }
    Ok(out)
}

fn shift(r: &Range<usize>, by: usize) -> Range<usize> {
    r.start - by..r.end - by
}

/// `(kind, table)` of an allowed statement, or why it is refused.
fn check_statement(t: &[Token], keyspace: &str) -> Result<(Kind, Option<String>), String> {
    let other_keyspace = |ks: &str| format!("it concerns keyspace '{ks}', not '{keyspace}' whose schema holds it");
    let not_allowed = || {
        "only CREATE KEYSPACE, TYPE, FUNCTION, AGGREGATE, TABLE, INDEX and MATERIALIZED VIEW of the keyspace itself are run"
            .to_string()
    };
    let mut i = 0;
    let word = |i: usize, w: &str| t.get(i).is_some_and(|x| x.is_word(w));
    if !word(i, "CREATE") {
        return Err(not_allowed());
    }
    i += 1;
    if word(i, "OR") {
        return Err("CREATE OR REPLACE would change what exists: only new objects are created".into());
    }
    let kind = if word(i, "KEYSPACE") {
        Kind::Keyspace
    } else if word(i, "TYPE") {
        Kind::Type
    } else if word(i, "FUNCTION") {
        Kind::Function
    } else if word(i, "AGGREGATE") {
        Kind::Aggregate
    } else if word(i, "TABLE") {
        Kind::Table
    } else if word(i, "INDEX") {
        Kind::Index
    } else if word(i, "CUSTOM") && word(i + 1, "INDEX") {
        i += 1;
        Kind::Index
    } else if word(i, "MATERIALIZED") && word(i + 1, "VIEW") {
        i += 1;
        Kind::MaterializedView
    } else {
        return Err(not_allowed());
    };
    i += 1;
    if word(i, "IF") {
        if !(word(i + 1, "NOT") && word(i + 2, "EXISTS")) {
            return Err(not_allowed());
        }
        i += 3;
    }
    // A qualified name `ks.name` at `i`: (keyspace, name), and the index after it.
    let qualified = |i: usize| -> Option<(String, String, usize)> {
        let ks = t.get(i)?.ident()?;
        t.get(i + 1).filter(|d| d.is_punct('.'))?;
        let name = t.get(i + 2)?.ident()?;
        Some((ks, name, i + 3))
    };
    match kind {
        Kind::Keyspace => {
            let ks = t.get(i).and_then(Token::ident).ok_or_else(not_allowed)?;
            if ks != keyspace {
                return Err(other_keyspace(&ks));
            }
            Ok((kind, None))
        }
        Kind::Type | Kind::Function | Kind::Aggregate | Kind::Table => {
            let (ks, name, _) = qualified(i).ok_or("the name must be qualified with its keyspace")?;
            if ks != keyspace {
                return Err(other_keyspace(&ks));
            }
            Ok((kind, (kind == Kind::Table).then_some(name)))
        }
        Kind::Index => {
            // CREATE [CUSTOM] INDEX [name] ON ks.table (...)
            let on = t[i..].iter().position(|x| x.is_word("ON")).map(|p| p + i).filter(|&p| p <= i + 1);
            let (ks, table, _) = on.and_then(|p| qualified(p + 1)).ok_or("the indexed table must be ks.table")?;
            if ks != keyspace {
                return Err(other_keyspace(&ks));
            }
            Ok((kind, Some(table)))
        }
        Kind::MaterializedView => {
            let (ks, _, _) = qualified(i).ok_or("the name must be qualified with its keyspace")?;
            if ks != keyspace {
                return Err(other_keyspace(&ks));
            }
            let from = t.iter().position(|x| x.is_word("FROM")).ok_or("a view needs FROM ks.table")?;
            let (ks, base, _) = qualified(from + 1).ok_or("a view's base table must be ks.table")?;
            if ks != keyspace {
                return Err(other_keyspace(&ks));
            }
            Ok((kind, Some(base)))
        }
    }
}

/// The keyspace's qualifications in a statement: `keyspace . name` (ranges of both), and the
/// name of `CREATE KEYSPACE keyspace` (range of the keyspace alone).
fn qualified_names(t: &[Token], keyspace: &str) -> Vec<(Range<usize>, Option<Range<usize>>)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < t.len() {
        let is_ks = t[i].ident().as_deref() == Some(keyspace);
        let after_keyspace_word = i > 0 && t[i - 1].is_word("KEYSPACE")
            || i >= 4 && t[i - 1].is_word("EXISTS") && t[i - 3].is_word("IF") && t[i - 4].is_word("KEYSPACE");
        if is_ks && t.get(i + 1).is_some_and(|d| d.is_punct('.')) && t.get(i + 2).and_then(Token::ident).is_some() {
            out.push((t[i].span.clone(), Some(t[i + 2].span.clone())));
            i += 3;
            continue;
        }
        if is_ks && after_keyspace_word {
            out.push((t[i].span.clone(), None));
        }
        i += 1;
    }
    out
}

/// The keys of `replication = { 'k': 'v', ... }` but `class` and `replication_factor`: the data
/// centres of a `NetworkTopologyStrategy`, with their ranges in `schema`.
fn replication_data_centres(t: &[Token], schema: &str) -> Vec<(Range<usize>, String)> {
    let Some(at) = t.iter().position(|x| x.is_word("replication")) else { return Vec::new() };
    if !(t.get(at + 1).is_some_and(|x| x.is_punct('=')) && t.get(at + 2).is_some_and(|x| x.is_punct('{'))) {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut i = at + 3;
    while let (Some(key), Some(colon)) = (t.get(i), t.get(i + 1)) {
        if key.tok != Tok::Str || !colon.is_punct(':') {
            break;
        }
        let value = string_value(&schema[key.span.clone()]);
        if value != "class" && value != "replication_factor" {
            out.push((key.span.clone(), value));
        }
        i += 3; // key : value
        if !t.get(i).is_some_and(|x| x.is_punct(',')) {
            break;
        }
        i += 1;
    }
    out
}

/// A string constant's value: `'it''s'` is `it's`, `$$x$$` is `x`.
fn string_value(constant: &str) -> String {
    match constant.strip_prefix("$$").and_then(|s| s.strip_suffix("$$")) {
        Some(inner) => inner.to_string(),
        None => constant.trim_start_matches('\'').strip_suffix('\'').unwrap_or("").replace("''", "'"),
    }
}

/// Splits CQL text into tokens; comments and white space are dropped.
fn lex(s: &str) -> Result<Vec<Token>, String> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let unterminated = |what: &str, at: usize| format!("unterminated {what}: {}", excerpt(&s[at..]));
    while i < b.len() {
        let c = b[i];
        let start = i;
        if c.is_ascii_whitespace() {
            i += 1;
        } else if b[i..].starts_with(b"--") || b[i..].starts_with(b"//") {
            i = s[i..].find('\n').map_or(b.len(), |n| i + n + 1);
        } else if b[i..].starts_with(b"/*") {
            i = s[i + 2..].find("*/").map(|n| i + 2 + n + 2).ok_or_else(|| unterminated("comment", start))?;
        } else if b[i..].starts_with(b"$$") {
            i = s[i + 2..].find("$$").map(|n| i + 2 + n + 2).ok_or_else(|| unterminated("string", start))?;
            out.push(Token { tok: Tok::Str, span: start..i });
        } else if c == b'\'' || c == b'"' {
            // Ends at a lone quote; a doubled one is an escaped quote.
            let mut j = i + 1;
            let mut value = Vec::new();
            loop {
                match b.get(j) {
                    None => return Err(unterminated(if c == b'"' { "quoted name" } else { "string" }, start)),
                    Some(&q) if q == c && b.get(j + 1) == Some(&c) => {
                        value.push(c);
                        j += 2;
                    }
                    Some(&q) if q == c => break,
                    Some(&x) => {
                        value.push(x);
                        j += 1;
                    }
                }
            }
            i = j + 1;
            let tok = if c == b'"' { Tok::Quoted(String::from_utf8_lossy(&value).into_owned()) } else { Tok::Str };
            out.push(Token { tok, span: start..i });
        } else if c.is_ascii_alphanumeric() || c == b'_' {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push(Token { tok: Tok::Word(s[start..i].to_string()), span: start..i });
        } else {
            let ch = s[i..].chars().next().expect("not at the end");
            i += ch.len_utf8();
            out.push(Token { tok: Tok::Punct(ch), span: start..i });
        }
    }
    Ok(out)
}

/// A quoted name's value, or a plain one lower-cased (as CQL reads it).
fn unquoted(ident: &str) -> String {
    match ident.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(inner) => inner.replace("\"\"", "\""),
        None => ident.to_ascii_lowercase(),
    }
}

/// The start of a statement, on one line, for a message.
fn excerpt(text: &str) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(160) {
        Some((i, _)) => format!("`{}...`", &one_line[..i]),
        None => format!("`{one_line}`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(schema: &str, ks: &str) -> Vec<(Kind, Option<String>)> {
        check(schema, ks).unwrap().into_iter().map(|a| (a.kind, a.table)).collect()
    }

    #[test]
    fn allows_what_describe_writes() {
        let schema = "CREATE KEYSPACE shop WITH replication = {'class': 'SimpleStrategy', 'replication_factor': '1'}  AND durable_writes = true;\n\n\
            CREATE TYPE shop.addr (\n    street text\n);\n\n\
            CREATE FUNCTION shop.twice(x int) RETURNS NULL ON NULL INPUT RETURNS int LANGUAGE java AS $$ return x * 2; $$;\n\n\
            CREATE AGGREGATE shop.total(int) SFUNC twice STYPE int INITCOND 0;\n\n\
            CREATE TABLE shop.orders (\n    id int PRIMARY KEY,\n    a frozen<shop.addr>\n) WITH comment = 'it''s; DROP KEYSPACE x;';\n\n\
            CREATE INDEX orders_by_a ON shop.orders (a);\n\n\
            CREATE CUSTOM INDEX ON shop.orders (a) USING 'StorageAttachedIndex';\n\n\
            CREATE MATERIALIZED VIEW shop.by_a AS\n    SELECT * FROM shop.orders WHERE a IS NOT NULL AND id IS NOT NULL\n    PRIMARY KEY (a, id);\n\n\
            CREATE TABLE IF NOT EXISTS \"shop\".\"Items\" (id int PRIMARY KEY);\n";
        let got = kinds(schema, "shop");
        use Kind::*;
        let orders = Some("orders".to_string());
        assert_eq!(
            got,
            vec![
                (Keyspace, None),
                (Type, None),
                (Function, None),
                (Aggregate, None),
                (Table, orders.clone()),
                (Index, orders.clone()),
                (Index, orders.clone()),
                (MaterializedView, orders),
                (Table, Some("Items".into())),
            ]
        );
    }

    #[test]
    fn refuses_anything_else_naming_it() {
        for (schema, says) in [
            ("DROP KEYSPACE canary;", "DROP KEYSPACE canary"),
            ("CREATE TABLE shop.t (id int PRIMARY KEY);\nDROP KEYSPACE canary;", "DROP KEYSPACE canary"),
            // A second statement on the same line, after a string and a comment.
            ("CREATE TABLE shop.t (id int PRIMARY KEY) WITH comment = 'a;b'; DROP TABLE shop.t;", "DROP TABLE"),
            ("CREATE TABLE shop.t (id int PRIMARY KEY) /* ; */ ; TRUNCATE shop.t", "TRUNCATE"),
            ("CREATE KEYSPACE other WITH replication = {};", "keyspace 'other'"),
            ("CREATE TABLE canary.t (id int PRIMARY KEY);", "keyspace 'canary'"),
            ("CREATE TABLE t (id int PRIMARY KEY);", "qualified"),
            ("CREATE INDEX i ON canary.t (a);", "keyspace 'canary'"),
            ("CREATE MATERIALIZED VIEW shop.v AS SELECT * FROM canary.t PRIMARY KEY (a);", "keyspace 'canary'"),
            ("CREATE OR REPLACE FUNCTION shop.f() RETURNS int LANGUAGE java AS 'return 1;';", "OR REPLACE"),
            ("CREATE ROLE admin WITH SUPERUSER = true;", "CREATE ROLE"),
            ("INSERT INTO shop.t (id) VALUES (1);", "INSERT"),
            ("ALTER TABLE shop.t WITH gc_grace_seconds = 0;", "ALTER"),
            ("GRANT ALL ON KEYSPACE shop TO x;", "GRANT"),
            ("CREATE TABLE shop.t (id int PRIMARY KEY) WITH comment = 'unterminated;", "unterminated string"),
            ("CREATE TABLE \"shop\".\"t (id int);", "unterminated quoted name"),
            ("CREATE TABLE shop.t (id int) /* DROP KEYSPACE x;", "unterminated comment"),
            ("CREATE TABLE shop.f AS $$ ; DROP x", "unterminated string"),
            // A quoted name is case-sensitive: "Shop" is another keyspace than shop.
            ("CREATE TABLE \"Shop\".t (id int PRIMARY KEY);", "keyspace 'Shop'"),
        ] {
            let e = check(schema, "shop").unwrap_err();
            assert!(e.contains(says), "{schema}: {e}");
        }
    }

    #[test]
    fn comments_and_empty_statements_are_not_statements() {
        let schema =
            "-- a comment; DROP KEYSPACE x\n// another; one\n/* and; a block */;;\nCREATE TYPE shop.t (a int);\n";
        assert_eq!(kinds(schema, "shop"), vec![(Kind::Type, None)]);
        assert!(check("", "shop").unwrap().is_empty());
    }

    #[test]
    fn renames_names_not_strings() {
        let schema = "CREATE KEYSPACE shop WITH r = {};\nCREATE TABLE shop.orders (a frozen<shop.addr>) WITH comment = 'shop.orders';\nCREATE INDEX i ON shop.orders (a);\nCREATE KEYSPACE IF NOT EXISTS shop WITH r = {};";
        let rename = |name: Option<&str>| match name {
            Some("orders") => ("other".to_string(), Some("\"Orders2\"".to_string())),
            Some(_) => ("shop_copy".to_string(), None),
            None => ("shop_copy".to_string(), None),
        };
        let got: Vec<String> =
            check(schema, "shop").unwrap().iter().map(|a| a.renamed(rename, |dc| dc.to_string())).collect();
        assert_eq!(
            got,
            [
                "CREATE KEYSPACE shop_copy WITH r = {};",
                "CREATE TABLE other.\"Orders2\" (a frozen<shop_copy.addr>) WITH comment = 'shop.orders';",
                "CREATE INDEX i ON other.\"Orders2\" (a);",
                "CREATE KEYSPACE IF NOT EXISTS shop_copy WITH r = {};",
            ]
        );
    }

    #[test]
    fn data_centres_of_a_keyspace_are_mapped_and_nothing_else() {
        let schema = "CREATE KEYSPACE shop WITH replication = {'class': 'org.apache.cassandra.locator.NetworkTopologyStrategy', 'dc-east': '3', 'o''dc': '2'} AND durable_writes = true;\n\
            CREATE TABLE shop.t (id int PRIMARY KEY) WITH comment = 'dc-east';\n\
            CREATE KEYSPACE IF NOT EXISTS shop WITH replication = {'class': 'SimpleStrategy', 'replication_factor': '1'};";
        let all = check(schema, "shop").unwrap();
        assert_eq!(all[0].data_centres().collect::<Vec<_>>(), ["dc-east", "o'dc"]);
        assert_eq!(all[1].data_centres().count(), 0, "a table has none");
        assert_eq!(all[2].data_centres().count(), 0, "SimpleStrategy has none");
        let map = |dc: &str| if dc == "dc-east" { "dc1".to_string() } else { format!("{dc}-new") };
        let same = |_: Option<&str>| ("shop".to_string(), None);
        assert_eq!(
            all[0].renamed(same, map),
            "CREATE KEYSPACE shop WITH replication = {'class': 'org.apache.cassandra.locator.NetworkTopologyStrategy', 'dc1': '3', 'o''dc-new': '2'} AND durable_writes = true;"
        );
        assert!(all[1].renamed(same, map).contains("comment = 'dc-east'"), "strings elsewhere are kept");
    }
}
