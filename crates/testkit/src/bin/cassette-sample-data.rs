//! Loads cassette's sample data set into a running Cassandra node (used by `scripts/quickstart`).

use clap::Parser;
use scylla::client::session_builder::SessionBuilder;

/// Create a keyspace with tables of several shapes and fill it, flushing after each round.
#[derive(Parser)]
struct Args {
    /// CQL address of the node.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// JMX port of the node, for the flushes.
    #[arg(long, default_value_t = 7199)]
    jmx_port: u16,
    /// Keyspace to create.
    #[arg(long, default_value = "sample")]
    keyspace: String,
    /// Replication factor.
    #[arg(long, default_value_t = 1)]
    rf: u32,
    /// Rounds of writes (one SSTable per table each).
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// Rows per table and round.
    #[arg(long, default_value_t = 500)]
    rows: u32,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let session = SessionBuilder::new()
        .known_node(format!("{}:9042", args.host))
        .build()
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {}:9042: {e}", args.host));
    let shape = cassette_testkit::dataset::Shape { rounds: args.rounds, rows_per_round: args.rows, payload_bytes: 64 };
    cassette_testkit::dataset::create_schema(&session, &args.keyspace, args.rf).await;
    let nodetool = cassette_cassandra::Nodetool::new(cassette_testkit::nodetool_launcher(), "127.0.0.1", args.jmx_port);
    for round in 0..shape.rounds {
        cassette_testkit::dataset::write_round(&session, &args.keyspace, round, &shape).await;
        nodetool.flush(Some(&args.keyspace), &[]).await.expect("nodetool flush");
    }
    println!(
        "loaded {} rounds of {} rows into {} tables of keyspace {}",
        shape.rounds,
        shape.rows_per_round,
        cassette_testkit::dataset::TABLES.len(),
        args.keyspace
    );
}
