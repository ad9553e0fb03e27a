//! Restoring into another cluster (seed 001's "restore a keyspace in a new Cassandra cluster"):
//! a backup of the `solo` cluster restored into the separate one-node cluster `offline`, which
//! has another cluster name, other host IDs, and none of the schema (so new table ids).

// One job per node: the job turn is held across awaits on purpose.
#![allow(clippy::await_holding_lock)]

mod common;

use cassette_testkit::{Cluster, dataset, unique_name};
use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_restores_into_a_new_cluster_with_new_table_ids() {
    let source = solo();
    let target = Cluster::offline();
    let (src_node, dst_node) = (&source.nodes[0], &target.nodes[0]);
    let src_session = source.session().await;
    let ks = unique_name("newcl");
    dataset::load(&src_session, source, &ks, 1, &dataset::Shape::small()).await;
    let mut before = Vec::new();
    for t in dataset::TABLES {
        before.push(dataset::dump(&src_session, &ks, t).await);
    }
    let root = other_disk_dir();
    let r = root.path().to_str().unwrap();
    let _turn = serial();
    backup_ok(src_node, root.path(), "migrate", &["-k", &ks]);
    let src_host = src_node.cql().await.local_node().await.unwrap().host_id.to_string();

    // The new cluster has no such keyspace: without --create-schema the restore says so.
    let args = [
        "--json",
        "restore",
        "--name",
        "migrate",
        "--backup-dir",
        r,
        "--from-cluster",
        "solo",
        "--from-node",
        &src_host,
    ];
    let out = cassette(dst_node, &args);
    assert_eq!(out.status.code(), Some(2), "{}{}", stdout(&out), stderr(&out));
    assert!(stderr(&out).contains("--create-schema"), "{}", stderr(&out));

    let mut with_schema = args.to_vec();
    with_schema.push("--create-schema");
    let out = cassette(dst_node, &with_schema);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));

    let dst_session = target.session().await;
    for (t, rows) in dataset::TABLES.iter().zip(&before) {
        assert_eq!(&dataset::dump(&dst_session, &ks, t).await, rows, "{ks}.{t} in the new cluster");
    }
    let src_ids = src_node.cql().await.tables(&ks).await.unwrap();
    let dst_ids = dst_node.cql().await.tables(&ks).await.unwrap();
    for (a, b) in src_ids.iter().zip(&dst_ids) {
        assert_eq!(a.name, b.name);
        assert_ne!(a.id, b.id, "{} has a new table id in the new cluster", a.name);
    }
    // The secondary index works there too.
    let by_name = dst_session
        .query_unpaged(format!("SELECT id FROM {ks}.profiles WHERE name = 'user7'"), ())
        .await
        .unwrap()
        .into_rows_result()
        .unwrap()
        .rows_num();
    assert!(by_name > 0, "the index finds rows after the restore");
}
