//! A tiny CQL client for benchmarks (`bench/`), since there is no cqlsh: runs statements, or
//! counts the rows of tables.
//!
//! ```text
//! cassette-cql --host 127.0.4.1 exec "TRUNCATE bench.kv" ["..."]   # each statement in order; rows of a SELECT printed tab-separated
//! cassette-cql --host 127.0.4.1 count bench [blobs kv ...]         # "<table>\t<rows>" per table (default: every table of the keyspace)
//! ```
//!
//! `count` splits the token ring into `--splits` ranges and runs `SELECT count(*) ... WHERE
//! token(pk) >= ? AND token(pk) <= ?` on them, a few at a time, so that no single request scans a
//! whole table (the server's range timeout); Murmur3Partitioner only.

use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use futures::stream::{self, StreamExt, TryStreamExt};
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::statement::Statement;
use scylla::value::{CqlValue, Row};

#[derive(Parser)]
struct Args {
    /// CQL address of the node.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// CQL port.
    #[arg(long, default_value_t = 9042)]
    port: u16,
    /// Client-side timeout of each request, in seconds.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run each statement in order.
    Exec { statements: Vec<String> },
    /// Count the rows of tables of a keyspace.
    Count {
        keyspace: String,
        /// Tables (default: every table of the keyspace).
        tables: Vec<String>,
        /// Token ranges per table.
        #[arg(long, default_value_t = 64)]
        splits: u32,
        /// Range queries in flight.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
    },
}

fn statement(cql: &str, timeout: Duration) -> Statement {
    let mut s = Statement::new(cql);
    s.set_request_timeout(Some(timeout));
    s
}

fn show(v: &Option<CqlValue>) -> String {
    match v {
        None => "null".into(),
        Some(CqlValue::Text(s)) | Some(CqlValue::Ascii(s)) => s.clone(),
        Some(CqlValue::BigInt(i)) => i.to_string(),
        Some(CqlValue::Int(i)) => i.to_string(),
        Some(v) => format!("{v:?}"),
    }
}

async fn rows(session: &Session, cql: &str, timeout: Duration) -> Vec<Row> {
    let pager =
        session.query_iter(statement(cql, timeout), ()).await.unwrap_or_else(|e| panic!("CQL `{cql}` failed: {e}"));
    pager
        .rows_stream::<Row>()
        .unwrap_or_else(|e| panic!("CQL `{cql}`: {e}"))
        .try_collect()
        .await
        .unwrap_or_else(|e| panic!("CQL `{cql}` failed: {e}"))
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let timeout = Duration::from_secs(args.timeout);
    let session = SessionBuilder::new()
        .known_node(format!("{}:{}", args.host, args.port))
        .build()
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {}:{}: {e}", args.host, args.port));
    match args.cmd {
        Cmd::Exec { statements } => {
            for cql in statements {
                let r = session
                    .query_unpaged(statement(&cql, timeout), ())
                    .await
                    .unwrap_or_else(|e| panic!("CQL `{cql}` failed: {e}"));
                if let Ok(rows) = r.into_rows_result() {
                    for row in rows.rows::<Row>().expect("rows") {
                        let row = row.expect("row");
                        println!("{}", row.columns.iter().map(show).collect::<Vec<_>>().join("\t"));
                    }
                }
            }
        }
        Cmd::Count { keyspace, mut tables, splits, concurrency } => {
            if tables.is_empty() {
                let cql = format!("SELECT table_name FROM system_schema.tables WHERE keyspace_name = '{keyspace}'");
                tables = rows(&session, &cql, timeout).await.iter().map(|r| show(&r.columns[0])).collect();
                tables.sort();
            }
            for table in tables {
                let t0 = Instant::now();
                let cql = format!(
                    "SELECT column_name, position FROM system_schema.columns WHERE keyspace_name = '{keyspace}' AND table_name = '{table}' AND kind = 'partition_key' ALLOW FILTERING"
                );
                let mut pk: Vec<(i64, String)> = rows(&session, &cql, timeout)
                    .await
                    .iter()
                    .map(|r| (show(&r.columns[1]).parse().unwrap_or(0), format!("\"{}\"", show(&r.columns[0]))))
                    .collect();
                assert!(!pk.is_empty(), "no table {keyspace}.{table}");
                pk.sort();
                let pk = pk.into_iter().map(|(_, c)| c).collect::<Vec<_>>().join(", ");
                let cql = format!(
                    "SELECT count(*) FROM \"{keyspace}\".\"{table}\" WHERE token({pk}) >= ? AND token({pk}) <= ?"
                );
                let prepared =
                    session.prepare(statement(&cql, timeout)).await.unwrap_or_else(|e| panic!("prepare `{cql}`: {e}"));
                let step = (u64::MAX / splits as u64) as i128;
                let bounds: Vec<(i64, i64)> = (0..splits as i128)
                    .map(|i| {
                        let lo = i64::MIN as i128 + i * step;
                        let hi = if i + 1 == splits as i128 { i64::MAX as i128 } else { lo + step - 1 };
                        (lo as i64, hi as i64)
                    })
                    .collect();
                let total: i64 = stream::iter(bounds)
                    .map(|b| {
                        let (session, prepared, cql) = (&session, &prepared, &cql);
                        async move {
                            let r = session
                                .execute_unpaged(prepared, b)
                                .await
                                .unwrap_or_else(|e| panic!("`{cql}` {b:?}: {e}"));
                            r.into_rows_result().expect("rows").single_row::<(i64,)>().expect("count").0
                        }
                    })
                    .buffer_unordered(concurrency)
                    .fold(0i64, |a, n| async move { a + n })
                    .await;
                eprintln!("  {keyspace}.{table}: {total} rows counted in {:.1} s", t0.elapsed().as_secs_f64());
                println!("{table}\t{total}");
            }
        }
    }
}
