//! Bulk loader for benchmarks (`bench/backup.sh`): fills a keyspace with incompressible rows of
//! 1–4 KiB fast (prepared statements, many requests in flight, no commit log), so that a node
//! holds gigabytes of SSTables after a flush.
//!
//! Tables (all in `--keyspace`, created if missing, LZ4 compression as Cassandra's default):
//! - `blobs`  (id bigint PRIMARY KEY, payload blob)
//! - `events` (stream int, seq bigint, body blob, PRIMARY KEY (stream, seq)): wide partitions
//! - `docs`   (id bigint PRIMARY KEY, title text, body text, tags set<text>)
//! - `kv`     (k text PRIMARY KEY, v blob)
//!
//! The keyspace has `durable_writes = false` (no commit log; flush afterwards!) and the tables
//! have compaction disabled, so the set of SSTables stays the same between benchmark runs.
//! Row ids start at `--start`, so a second run with another `--start` adds rows.
//!
//! `--small-tables N` is the many-small-files layout instead (bench/suite.sh's 50,000-file
//! variant): N tables of a few rows each, one small SSTable per table and flush.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use clap::Parser;
use futures::stream::{self, StreamExt};
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;

#[derive(Parser)]
struct Args {
    /// CQL address of the node.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// CQL port.
    #[arg(long, default_value_t = 9042)]
    port: u16,
    /// Keyspace to create and fill.
    #[arg(long, default_value = "bench")]
    keyspace: String,
    /// Payload bytes to write in total (sum of the value sizes), in MiB.
    #[arg(long, default_value_t = 2200)]
    mib: u64,
    /// Requests in flight.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// First row number (use another one to add rows in a later run).
    #[arg(long, default_value_t = 0)]
    start: u64,
    /// Instead of the four tables: this many small tables `small_000`, `small_001`, ... (k bigint
    /// PRIMARY KEY, v blob), each given `--rows-per-table` rows; `--mib` is ignored. Run it again
    /// with another `--start` after a flush, and every table gets one more small SSTable.
    #[arg(long)]
    small_tables: Option<usize>,
    /// Rows per small table and run (1-4 KiB each).
    #[arg(long, default_value_t = 4)]
    rows_per_table: u64,
}

/// xorshift64*: fast, deterministic, incompressible enough for LZ4.
struct Rng(u64);
impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n + 8);
        while v.len() < n {
            v.extend_from_slice(&self.next().to_le_bytes());
        }
        v.truncate(n);
        v
    }
    /// Random letters and digits (~6 bits per byte: LZ4 saves little).
    fn text(&mut self, n: usize) -> String {
        const ALPHA: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .";
        let mut s = String::with_capacity(n);
        while s.len() < n {
            let mut x = self.next();
            for _ in 0..10 {
                s.push(ALPHA[(x & 63) as usize] as char);
                x >>= 6;
            }
        }
        s.truncate(n);
        s
    }
    /// 1024..=4096 bytes.
    fn size(&mut self) -> usize {
        1024 + (self.next() % 3073) as usize
    }
}

/// The many-small-files layout: `tables` tables, `rows_per_table` rows each.
async fn load_small_tables(session: &Session, ks: &str, tables: usize, args: &Args) {
    exec(session, &format!(
        "CREATE KEYSPACE IF NOT EXISTS {ks} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}} AND durable_writes = false"
    ))
    .await;
    let t0 = Instant::now();
    for t in 0..tables {
        exec(session, &format!(
            "CREATE TABLE IF NOT EXISTS {ks}.small_{t:03} (k bigint PRIMARY KEY, v blob) WITH compaction = {{'class': 'SizeTieredCompactionStrategy', 'enabled': 'false'}}"
        ))
        .await;
    }
    session.await_schema_agreement().await.expect("schema agreement");
    let mut inserts = Vec::with_capacity(tables);
    for t in 0..tables {
        let cql = format!("INSERT INTO {ks}.small_{t:03} (k, v) VALUES (?, ?)");
        inserts.push(session.prepare(cql.as_str()).await.unwrap_or_else(|e| panic!("prepare {cql}: {e}")));
    }
    let inserts = &inserts;
    let rows = args.rows_per_table;
    let start = args.start;
    stream::iter(0..tables as u64 * rows)
        .for_each_concurrent(args.concurrency, |n| async move {
            let (t, i) = ((n / rows) as usize, start + n % rows);
            let mut rng = Rng::new(i * 1_000_003 + t as u64 + 1);
            let size = rng.size();
            session
                .execute_unpaged(&inserts[t], (i as i64, rng.bytes(size)))
                .await
                .unwrap_or_else(|e| panic!("insert row {i} into small_{t:03}: {e}"));
        })
        .await;
    println!(
        "loaded {} rows into {tables} tables {ks}.small_* in {:.1} s; next --start {}",
        tables as u64 * rows,
        t0.elapsed().as_secs_f64(),
        start + rows
    );
}

async fn exec(session: &Session, cql: &str) {
    session.query_unpaged(cql, ()).await.unwrap_or_else(|e| panic!("CQL `{cql}` failed: {e}"));
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let session = SessionBuilder::new()
        .known_node(format!("{}:{}", args.host, args.port))
        .build()
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {}:{}: {e}", args.host, args.port));
    let ks = &args.keyspace;
    if let Some(tables) = args.small_tables {
        return load_small_tables(&session, ks, tables, &args).await;
    }
    let no_compaction = "compaction = {'class': 'SizeTieredCompactionStrategy', 'enabled': 'false'}";
    for ddl in [
        format!(
            "CREATE KEYSPACE IF NOT EXISTS {ks} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}} AND durable_writes = false"
        ),
        format!("CREATE TABLE IF NOT EXISTS {ks}.blobs (id bigint PRIMARY KEY, payload blob) WITH {no_compaction}"),
        format!(
            "CREATE TABLE IF NOT EXISTS {ks}.events (stream int, seq bigint, body blob, PRIMARY KEY (stream, seq)) WITH {no_compaction}"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {ks}.docs (id bigint PRIMARY KEY, title text, body text, tags set<text>) WITH {no_compaction}"
        ),
        format!("CREATE TABLE IF NOT EXISTS {ks}.kv (k text PRIMARY KEY, v blob) WITH {no_compaction}"),
    ] {
        exec(&session, &ddl).await;
    }
    session.await_schema_agreement().await.expect("schema agreement");

    let prep = |cql: String| {
        let session = &session;
        async move { session.prepare(cql.as_str()).await.unwrap_or_else(|e| panic!("prepare {cql}: {e}")) }
    };
    let blobs = prep(format!("INSERT INTO {ks}.blobs (id, payload) VALUES (?, ?)")).await;
    let events = prep(format!("INSERT INTO {ks}.events (stream, seq, body) VALUES (?, ?, ?)")).await;
    let docs = prep(format!("INSERT INTO {ks}.docs (id, title, body, tags) VALUES (?, ?, ?, ?)")).await;
    let kv = prep(format!("INSERT INTO {ks}.kv (k, v) VALUES (?, ?)")).await;

    let target = args.mib * 1024 * 1024;
    let written = Arc::new(AtomicU64::new(0));
    let rows = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    let session = &session;
    let (blobs, events, docs, kv) = (&blobs, &events, &docs, &kv);
    let written_ref = &written;
    let rows_ref = &rows;
    // Rows are numbered; each number goes to one table (blobs 40 %, events 30 %, docs 20 %, kv 10 %),
    // and the loop stops once the payload bytes reach the target.
    stream::iter(args.start..)
        .take_while(|_| std::future::ready(written_ref.load(Ordering::Relaxed) < target))
        .for_each_concurrent(args.concurrency, |i| async move {
            let mut rng = Rng::new(i + 1);
            let n = rng.size();
            let res = match i % 10 {
                0..=3 => session.execute_unpaged(blobs, (i as i64, rng.bytes(n))).await,
                4..=6 => session.execute_unpaged(events, ((i % 64) as i32, i as i64, rng.bytes(n))).await,
                7 | 8 => {
                    let tags: std::collections::BTreeSet<String> = (0..3).map(|_| rng.text(12)).collect();
                    session.execute_unpaged(docs, (i as i64, rng.text(40), rng.text(n), tags)).await
                }
                _ => session.execute_unpaged(kv, (format!("key-{i:012}"), rng.bytes(n))).await,
            };
            if let Err(e) = res {
                panic!("insert row {i}: {e}");
            }
            let w = written_ref.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
            let r = rows_ref.fetch_add(1, Ordering::Relaxed) + 1;
            if r.is_multiple_of(100_000) {
                let s = t0.elapsed().as_secs_f64();
                eprintln!("  {r} rows, {:.0} MiB, {:.1} MiB/s", w as f64 / 1048576.0, w as f64 / 1048576.0 / s);
            }
        })
        .await;
    let s = t0.elapsed().as_secs_f64();
    let w = written.load(Ordering::Relaxed);
    let r = rows.load(Ordering::Relaxed);
    println!(
        "loaded {r} rows ({:.0} MiB of values) into {ks}.{{blobs,events,docs,kv}} in {s:.1} s ({:.1} MiB/s); next --start {}",
        w as f64 / 1048576.0,
        w as f64 / 1048576.0 / s,
        args.start + r
    );
}
