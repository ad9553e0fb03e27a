//! Sample data of several table shapes, and table dumps to compare data before and after.
//!
//! Tables created in the keyspace (each shape a restore must bring back exactly):
//! - `readings`: partition + clustering key (`sensor`, `ts DESC`), a range delete per round;
//! - `profiles`: collections (set, map, list), a secondary index `profiles_by_name`, row deletes;
//! - `page_views`: counters;
//! - `sessions`: rows written `USING TTL 86400`.

use futures::stream::{self, StreamExt};
use scylla::client::session::Session;

use crate::Cluster;

/// How much data to load.
#[derive(Debug, Clone)]
pub struct Shape {
    /// Rounds of writes; every round ends with a flush, so each table gets one SSTable per
    /// round (per data directory holding a part of it).
    pub rounds: u32,
    /// Rows per table and round.
    pub rows_per_round: u32,
    /// Bytes of filler text per row in `readings` (to make bigger SSTables).
    pub payload_bytes: usize,
}

impl Shape {
    /// A few hundred rows, three SSTables per table: for tests.
    pub fn small() -> Self {
        Shape { rounds: 3, rows_per_round: 200, payload_bytes: 64 }
    }
}

/// The tables [`load`] creates.
pub const TABLES: &[&str] = &["page_views", "profiles", "readings", "sessions"];

/// Creates `keyspace` with SimpleStrategy and replication factor `rf`, its tables, and loads
/// `shape.rounds` rounds of rows, flushing every node after each round.
pub async fn load(session: &Session, cluster: &Cluster, keyspace: &str, rf: u32, shape: &Shape) {
    create_schema(session, keyspace, rf).await;
    for round in 0..shape.rounds {
        write_round(session, keyspace, round, shape).await;
        cluster.flush(keyspace);
    }
}

/// Creates the keyspace and the tables (idempotent).
pub async fn create_schema(session: &Session, keyspace: &str, rf: u32) {
    let ddl = [
        format!(
            "CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': {rf}}}"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {keyspace}.readings (sensor int, ts timestamp, value double, note text, PRIMARY KEY (sensor, ts)) WITH CLUSTERING ORDER BY (ts DESC)"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {keyspace}.profiles (id int PRIMARY KEY, name text, emails set<text>, attrs map<text, text>, visits list<int>)"
        ),
        format!("CREATE INDEX IF NOT EXISTS profiles_by_name ON {keyspace}.profiles (name)"),
        format!("CREATE TABLE IF NOT EXISTS {keyspace}.page_views (page text PRIMARY KEY, views counter)"),
        format!("CREATE TABLE IF NOT EXISTS {keyspace}.sessions (id int PRIMARY KEY, user_name text)"),
    ];
    for stmt in ddl {
        exec_schema(session, &stmt).await;
    }
}

/// Runs one schema statement and waits for schema agreement. The test session spreads
/// statements over the nodes, and the driver can report agreement while a node has not yet
/// heard of a table created a moment ago through another node (both still show the old
/// version in gossip): a statement naming that table is retried for a few seconds then.
pub async fn exec_schema(session: &Session, statement: &str) {
    let mut attempts = 0;
    loop {
        match session.query_unpaged(statement, ()).await {
            Ok(_) => break,
            Err(e) if attempts < 40 && e.to_string().contains("doesn't exist") => {
                attempts += 1;
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
            Err(e) => panic!("CQL `{statement}` failed: {e}"),
        }
    }
    session.await_schema_agreement().await.expect("schema agreement");
}

/// Writes one round of rows into every table, then deletes a little (tombstones).
pub async fn write_round(session: &Session, keyspace: &str, round: u32, shape: &Shape) {
    let n = shape.rows_per_round;
    let base = round * n;
    let filler = "x".repeat(shape.payload_bytes);
    let stmts = [
        format!("INSERT INTO {keyspace}.readings (sensor, ts, value, note) VALUES (?, ?, ?, ?)"),
        format!("INSERT INTO {keyspace}.profiles (id, name, emails, attrs, visits) VALUES (?, ?, ?, ?, ?)"),
        format!("UPDATE {keyspace}.page_views SET views = views + ? WHERE page = ?"),
        format!("INSERT INTO {keyspace}.sessions (id, user_name) VALUES (?, ?) USING TTL 86400"),
    ];
    let mut prepared = Vec::new();
    for s in &stmts {
        prepared.push(session.prepare(s.as_str()).await.unwrap_or_else(|e| panic!("prepare {s}: {e}")));
    }
    let (readings, profiles, views, sessions) = (&prepared[0], &prepared[1], &prepared[2], &prepared[3]);
    stream::iter(base..base + n)
        .for_each_concurrent(32, |i| {
            let filler = &filler;
            async move {
                let sensor = (i % 17) as i32;
                let ts = scylla::value::CqlTimestamp(1_700_000_000_000 + i as i64 * 1000);
                session
                    .execute_unpaged(readings, (sensor, ts, i as f64 * 0.5, format!("r{i}-{filler}")))
                    .await
                    .expect("insert readings");
                let emails: std::collections::BTreeSet<String> =
                    [format!("u{i}@example.com"), format!("alt{i}@example.org")].into();
                let attrs: std::collections::BTreeMap<String, String> =
                    [("tier".to_string(), format!("t{}", i % 3)), ("round".to_string(), round.to_string())].into();
                session
                    .execute_unpaged(
                        profiles,
                        (i as i32, format!("user{}", i % 50), emails, attrs, vec![i as i32, round as i32]),
                    )
                    .await
                    .expect("insert profiles");
                session
                    .execute_unpaged(views, (scylla::value::Counter(i as i64 % 7 + 1), format!("/page/{}", i % 40)))
                    .await
                    .expect("update page_views");
                session.execute_unpaged(sessions, (i as i32, format!("user{i}"))).await.expect("insert sessions");
            }
        })
        .await;
    // Tombstones: a row delete, a clustering-range delete and a cell delete per round.
    exec(session, &format!("DELETE FROM {keyspace}.profiles WHERE id = {}", base + 1)).await;
    exec(
        session,
        &format!(
            "DELETE FROM {keyspace}.readings WHERE sensor = {} AND ts >= {} AND ts < {}",
            round % 17,
            1_700_000_000_000_i64 + base as i64 * 1000,
            1_700_000_000_000_i64 + (base as i64 + 20) * 1000
        ),
    )
    .await;
    exec(session, &format!("DELETE attrs['tier'] FROM {keyspace}.profiles WHERE id = {}", base + 2)).await;
}

/// Every table of the dataset in `keyspace`, dumped with [`dump`], by table name.
pub async fn dump_all(session: &Session, keyspace: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for t in TABLES {
        out.push((t.to_string(), dump(session, keyspace, t).await));
    }
    out
}

/// Every row of a table as JSON text (`SELECT JSON *`), sorted: equal dumps mean equal data.
pub async fn dump(session: &Session, keyspace: &str, table: &str) -> Vec<String> {
    use scylla::statement::unprepared::Statement;
    let mut stmt = Statement::new(format!("SELECT JSON * FROM {keyspace}.{table}"));
    stmt.set_page_size(1000);
    stmt.set_consistency(scylla::statement::Consistency::All);
    let mut rows = session
        .query_iter(stmt, ())
        .await
        .unwrap_or_else(|e| panic!("dump {keyspace}.{table}: {e}"))
        .rows_stream::<(String,)>()
        .expect("rows stream");
    let mut out = Vec::new();
    while let Some(row) = rows.next().await {
        out.push(row.expect("row").0);
    }
    out.sort();
    out
}

/// Runs one CQL statement, panicking with it on failure.
pub async fn exec(session: &Session, statement: &str) {
    if let Err(e) = session.query_unpaged(statement, ()).await {
        panic!("CQL `{statement}` failed: {e}");
    }
}
