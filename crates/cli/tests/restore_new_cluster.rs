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

/// The same backup restored into its own cluster and into another one, in both orders: the
/// guard against wiping restored data counts only the journals of the cluster restored into
/// (TRUNCATE wipes one cluster, not the other).
#[tokio::test(flavor = "multi_thread")]
async fn restores_into_two_clusters_do_not_block_each_other() {
    let source = solo();
    let target = Cluster::offline();
    let (src_node, dst_node) = (&source.nodes[0], &target.nodes[0]);
    let src_local = src_node.cql().await.local_node().await.unwrap();
    let dst_local = dst_node.cql().await.local_node().await.unwrap();
    assert_ne!(src_local.cluster_name, dst_local.cluster_name, "two clusters, each with its own cluster_name");
    let src_session = source.session().await;
    let ks = unique_name("twocl");
    dataset::load(&src_session, source, &ks, 1, &dataset::Shape::small()).await;
    let mut before = Vec::new();
    for t in dataset::TABLES {
        before.push(dataset::dump(&src_session, &ks, t).await);
    }
    let root = other_disk_dir();
    let r = root.path().to_str().unwrap();
    let _turn = serial();
    backup_ok(src_node, root.path(), "both", &["-k", &ks]);
    let src_host = src_local.host_id.to_string();
    let on_source = ["--json", "restore", "--name", "both", "--backup-dir", r, "-k", &ks];
    let into_target = [
        "--json",
        "restore",
        "--name",
        "both",
        "--backup-dir",
        r,
        "-k",
        &ks,
        "--from-cluster",
        &src_local.cluster_name,
        "--from-node",
        &src_host,
        "--create-schema",
    ];

    // 1. On the backed-up node itself.
    let out = cassette(src_node, &on_source);
    assert!(out.status.success(), "restore on the source node: {}{}", stdout(&out), stderr(&out));
    // 2. Into the other cluster: its TRUNCATE cannot wipe what step 1 loaded in the source cluster.
    let out = cassette(dst_node, &into_target);
    assert!(
        out.status.success(),
        "restore into the other cluster after one in the source cluster: {}{}",
        stdout(&out),
        stderr(&out)
    );
    let dst_session = target.session().await;
    for (t, rows) in dataset::TABLES.iter().zip(&before) {
        assert_eq!(&dataset::dump(&dst_session, &ks, t).await, rows, "{ks}.{t} in the other cluster");
    }
    // 3. And the other way round: the source cluster again, after the other cluster's restore.
    for t in dataset::TABLES {
        dataset::exec(&src_session, &format!("TRUNCATE {ks}.{t}")).await;
    }
    let out = cassette(src_node, &on_source);
    assert!(
        out.status.success(),
        "restore on the source node after one in another cluster: {}{}",
        stdout(&out),
        stderr(&out)
    );
    for (t, rows) in dataset::TABLES.iter().zip(&before) {
        assert_eq!(&dataset::dump(&src_session, &ks, t).await, rows, "{ks}.{t} in the source cluster");
    }
    // The journals record which cluster each restore was in.
    let journal = std::fs::read_to_string(
        root.path()
            .join(&src_local.cluster_name)
            .join(&src_host)
            .join("both/cassette-meta")
            .join(format!("restore-{}.jsonl", dst_local.host_id)),
    )
    .unwrap();
    assert!(journal.contains(&format!("\"name\":\"{}\"", dst_local.cluster_name)), "{journal}");
}

/// `--create-schema` runs only creations of the selected keyspace's own objects: a manifest
/// whose schema also drops a canary keyspace and creates another keyspace refuses the restore
/// before anything runs.
#[tokio::test(flavor = "multi_thread")]
async fn create_schema_refuses_a_schema_that_does_more_than_create_the_keyspace() {
    let cluster = solo();
    let node = &cluster.nodes[0];
    let session = cluster.session().await;
    let ks = unique_name("schpol");
    let canary = unique_name("canary");
    let other = unique_name("unselected");
    let rf1 = "{'class': 'SimpleStrategy', 'replication_factor': 1}";
    dataset::exec_schema(&session, &format!("CREATE KEYSPACE {ks} WITH replication = {rf1}")).await;
    dataset::exec_schema(&session, &format!("CREATE TABLE {ks}.t (id int PRIMARY KEY, v text)")).await;
    dataset::exec_schema(&session, &format!("CREATE KEYSPACE {canary} WITH replication = {rf1}")).await;
    dataset::exec_schema(&session, &format!("CREATE TABLE {canary}.t (id int PRIMARY KEY, v text)")).await;
    for i in 0..10 {
        dataset::exec(&session, &format!("INSERT INTO {ks}.t (id, v) VALUES ({i}, 'ks{i}')")).await;
        dataset::exec(&session, &format!("INSERT INTO {canary}.t (id, v) VALUES ({i}, 'canary{i}')")).await;
    }
    let canary_rows = dataset::dump(&session, &canary, "t").await;
    assert_eq!(canary_rows.len(), 10);
    let root = other_disk_dir();
    let r = root.path().to_str().unwrap();
    let _turn = serial();
    backup_ok(node, root.path(), "tampered", &["-k", &ks]);

    // Someone who can write the repository appends to the keyspace's schema.
    let manifest_path =
        manifests_under(root.path()).into_iter().find(|p| p.to_string_lossy().contains("tampered")).unwrap();
    let mut manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    let entry = manifest["keyspaces"].as_array_mut().unwrap().iter_mut().find(|k| k["name"] == ks.as_str()).unwrap();
    let schema = entry["schema_cql"].as_str().unwrap().to_string();
    assert!(schema.contains("CREATE TABLE"), "{schema}");
    entry["schema_cql"] = serde_json::Value::String(format!(
        "{schema}DROP KEYSPACE {canary};\n\nCREATE KEYSPACE {other} WITH replication = {rf1};\n\n"
    ));
    std::fs::write(&manifest_path, serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();

    // The keyspace is gone live: the restore would have to create it.
    dataset::exec_schema(&session, &format!("DROP KEYSPACE {ks}")).await;
    let out = cassette(node, &["restore", "--name", "tampered", "--backup-dir", r, "-k", &ks, "--create-schema"]);
    assert_eq!(out.status.code(), Some(2), "{}{}", stdout(&out), stderr(&out));
    assert!(stderr(&out).contains(&format!("DROP KEYSPACE {canary}")), "names the statement: {}", stderr(&out));
    assert!(stderr(&out).contains("nothing was run"), "{}", stderr(&out));
    // Nothing ran: the canary's rows are there, no keyspace was created.
    assert_eq!(dataset::dump(&session, &canary, "t").await, canary_rows, "the canary keyspace is intact");
    let keyspaces: Vec<String> = node.cql().await.keyspaces().await.unwrap().into_iter().map(|k| k.name).collect();
    assert!(!keyspaces.contains(&other), "the unselected keyspace was not created: {keyspaces:?}");
    assert!(!keyspaces.contains(&ks), "not even the selected keyspace: nothing runs once one statement is refused");
}
