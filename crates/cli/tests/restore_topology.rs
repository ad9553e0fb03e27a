//! `restore --to-topology`: backups restored into clusters of another node count or other
//! tokens, through Cassandra's bulk loader. Sources and targets: `trio` (3 nodes), `topo1`
//! (1 node) and `topo3` (3 nodes, other tokens). Every comparison reads at CONSISTENCY ALL
//! (`dataset::dump`), so every replica of the target holds every row.

// One job per node: the job turn is held across awaits on purpose.
#![allow(clippy::await_holding_lock)]

mod common;

use std::collections::BTreeSet;

use cassette_testkit::{Cluster, TOPO_ONE_DC, dataset, unique_name};
use common::*;

/// Backs up every node of `source` under `name`, keyspace `ks`.
fn backup_every_node(source: &Cluster, root: &std::path::Path, name: &str, ks: &str) {
    for n in &source.nodes {
        backup_ok(n, root, name, &["-k", ks]);
    }
}

/// `cassette restore --to-topology` of `name` from cluster `from` against `node`.
fn restore_to_topology(
    node: &cassette_testkit::Node,
    root: &str,
    name: &str,
    from: &str,
    extra: &[&str],
) -> std::process::Output {
    let mut args = vec!["restore", "--to-topology", "--name", name, "--backup-dir", root, "--from-cluster", from];
    args.extend_from_slice(extra);
    cassette(node, &args)
}

async fn tokens(cluster: &Cluster) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for n in &cluster.nodes {
        out.extend(n.cql().await.local_node().await.unwrap().tokens);
    }
    out
}

/// Case 1: a 3-node RF 3 cluster's backup restored into a new 1-node cluster.
#[tokio::test(flavor = "multi_thread")]
async fn three_nodes_restore_into_one() {
    let (source, target) = (Cluster::trio(), Cluster::topo_one());
    let ks = unique_name("topo31");
    let session = source.session().await;
    dataset::load(&session, source, &ks, 3, &dataset::Shape::small()).await;
    let before = dataset::dump_all(&session, &ks).await;
    let root = other_disk_dir();
    let r = root.path().to_str().unwrap();
    let _turn = serial();
    backup_every_node(source, root.path(), "to-one", &ks);

    // Without --create-schema, a keyspace missing on the target is named, nothing loaded.
    let out = restore_to_topology(&target.nodes[0], r, "to-one", &source.name, &[]);
    assert_eq!(out.status.code(), Some(2), "{}{}", stdout(&out), stderr(&out));
    assert!(stderr(&out).contains("--create-schema"), "{}", stderr(&out));

    // RF 3 cannot be met by one node: the operator creates the keyspace at RF 1 first, and
    // --create-schema creates its tables from the backup.
    let dst = target.session().await;
    dataset::exec_schema(
        &dst,
        &format!("CREATE KEYSPACE {ks} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}"),
    )
    .await;
    let out = restore_to_topology(&target.nodes[0], r, "to-one", &source.name, &["--create-schema"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("3 node(s)"), "{}", stdout(&out));
    assert_eq!(dataset::dump_all(&dst, &ks).await, before, "every row in the 1-node cluster");

    // A rerun of the finished restore truncates and loads again: the same rows, not twice.
    let out = restore_to_topology(&target.nodes[0], r, "to-one", &source.name, &[]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(dataset::dump_all(&dst, &ks).await, before);
}

/// Case 2: a 1-node backup restored into a new 3-node cluster, its RF 1 keyspace as RF 3: the
/// keyspace is created on the target first with the replication wanted, and --create-schema
/// creates its tables from the backup.
#[tokio::test(flavor = "multi_thread")]
async fn one_node_restores_into_three_with_rf_3() {
    let (source, target) = (Cluster::topo_one(), Cluster::topo_three());
    let ks = unique_name("topo13");
    let session = source.session().await;
    dataset::load(&session, source, &ks, 1, &dataset::Shape::small()).await;
    let before = dataset::dump_all(&session, &ks).await;
    let root = other_disk_dir();
    let r = root.path().to_str().unwrap();
    let _turn = serial();
    backup_every_node(source, root.path(), "to-three", &ks);
    let dst = target.session().await;
    dataset::exec_schema(
        &dst,
        &format!("CREATE KEYSPACE {ks} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 3}}"),
    )
    .await;
    let out = restore_to_topology(&target.nodes[1], r, "to-three", &source.name, &["--create-schema"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(dataset::dump_all(&dst, &ks).await, before, "every row on every replica (ALL)");
}

/// Case 3: a 3-node RF 2 backup restored into another 3-node cluster, whose tokens differ.
#[tokio::test(flavor = "multi_thread")]
async fn three_nodes_restore_into_three_with_other_tokens() {
    let (source, target) = (Cluster::trio(), Cluster::topo_three());
    assert_ne!(tokens(source).await, tokens(target).await, "a fresh cluster has other tokens");
    let ks = unique_name("topo33");
    let session = source.session().await;
    dataset::load(&session, source, &ks, 2, &dataset::Shape::small()).await;
    let before = dataset::dump_all(&session, &ks).await;
    let root = other_disk_dir();
    let r = root.path().to_str().unwrap();
    let _turn = serial();
    backup_every_node(source, root.path(), "other-tokens", &ks);
    let started = std::time::Instant::now();
    let out = restore_to_topology(&target.nodes[0], r, "other-tokens", &source.name, &["--create-schema"]);
    eprintln!("restore --to-topology of 3 nodes into 3 other-token nodes: {:?}", started.elapsed());
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let dst = target.session().await;
    assert_eq!(dataset::dump_all(&dst, &ks).await, before, "every row on both replicas (ALL)");
}

/// The replication of keyspace `ks` on `node`'s cluster; `None` when it does not exist.
async fn replication(node: &cassette_testkit::Node, ks: &str) -> Option<Vec<(String, String)>> {
    node.cql().await.keyspaces().await.unwrap().into_iter().find(|k| k.name == ks).map(|k| k.replication)
}

/// Case 4: a keyspace replicated per data centre (`NetworkTopologyStrategy`, `datacenter1`)
/// restored into a cluster whose data centre has another name (`topo1`'s `dc-west`):
/// `--create-schema` alone is refused before anything is created, naming both data centres and
/// `--dc-map`; with `--dc-map` the keyspace is created replicated to the target's data centre.
#[tokio::test(flavor = "multi_thread")]
async fn a_keyspace_of_another_data_centre_is_created_under_the_mapped_name() {
    let (source, target) = (Cluster::trio(), Cluster::topo_one());
    let ks = unique_name("topodc");
    let session = source.session().await;
    dataset::exec_schema(
        &session,
        &format!("CREATE KEYSPACE {ks} WITH replication = {{'class': 'NetworkTopologyStrategy', 'datacenter1': 1}}"),
    )
    .await;
    let shape = dataset::Shape { rounds: 1, rows_per_round: 100, payload_bytes: 16 };
    dataset::load(&session, source, &ks, 1, &shape).await;
    let before = dataset::dump_all(&session, &ks).await;
    let root = other_disk_dir();
    let r = root.path().to_str().unwrap();
    let _turn = serial();
    backup_every_node(source, root.path(), "dc-map", &ks);
    let node = &target.nodes[0];

    let out = restore_to_topology(node, r, "dc-map", &source.name, &["--create-schema"]);
    assert_eq!(out.status.code(), Some(2), "{}{}", stdout(&out), stderr(&out));
    for says in ["'datacenter1'", TOPO_ONE_DC, "--dc-map"] {
        assert!(stderr(&out).contains(says), "the refusal names {says}: {}", stderr(&out));
    }
    assert_eq!(replication(node, &ks).await, None, "nothing was created");

    let map = format!("datacenter1={TOPO_ONE_DC}");
    let out = restore_to_topology(node, r, "dc-map", &source.name, &["--create-schema", "--dc-map", &map]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let replication = replication(node, &ks).await.expect("the keyspace was created");
    assert!(replication.contains(&(TOPO_ONE_DC.to_string(), "1".to_string())), "{replication:?}");
    assert!(!replication.iter().any(|(k, _)| k == "datacenter1"), "{replication:?}");
    let dst = target.session().await;
    assert_eq!(dataset::dump_all(&dst, &ks).await, before, "every row, in the mapped data centre");
}
