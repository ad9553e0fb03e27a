//! The foundation, checked on real Cassandra 5.0 nodes: data written with CQL lands in SSTables
//! where cassette will look for them, and nodetool snapshots behave as backups need.

use cassette_cassandra::{disk, keyspaces};
use cassette_testkit::{Cluster, dataset, unique_name};

#[tokio::test]
async fn flushed_rows_are_sstables_in_the_table_directory_and_a_snapshot_lists_them() {
    let cluster = Cluster::solo();
    let node = &cluster.nodes[0];
    let session = cluster.session().await;
    let ks = unique_name("found");
    dataset::load(&session, cluster, &ks, 1, &dataset::Shape::small()).await;

    // The table's id from the live schema names its directory: <data dir>/<ks>/<table>-<id>/.
    let cql = node.cql().await;
    let tables = cql.tables(&ks).await.unwrap();
    let names: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, dataset::TABLES);
    let data_dirs = cql.data_file_directories().await.unwrap();
    assert_eq!(data_dirs, node.data_dirs, "system_views.settings gives the node's data directories");
    let readings = tables.iter().find(|t| t.name == "readings").unwrap();
    let dirs = disk::table_dirs(&data_dirs, &ks, "readings", &readings.id_hex());
    assert!(!dirs.is_empty(), "no directory readings-{} under {data_dirs:?}", readings.id_hex());
    let data_files: Vec<String> = dirs
        .iter()
        .flat_map(|d| std::fs::read_dir(d).unwrap())
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| disk::SstableName::parse(n).is_some_and(|s| s.is_data()))
        .collect();
    assert!(data_files.len() >= 3, "3 flushes should give at least 3 Data.db files, found {data_files:?}");

    // A snapshot holds hard links of exactly those SSTables, listed in its manifest.json.
    let tag = unique_name("tag");
    let nodetool = node.nodetool_client();
    nodetool.snapshot(&tag, std::slice::from_ref(&ks), &[]).await.unwrap();
    assert!(nodetool.jmx_client_ready().await, "the snapshot went through the long-lived JMX client (a JDK is here)");
    let snaps = disk::snapshot_dirs(&data_dirs, &ks, "readings", &readings.id_hex(), &tag);
    assert!(!snaps.is_empty());
    // With several data directories Cassandra writes manifest.json and schema.cql into one of
    // the snapshot directories only; it lists the Data.db files of all of them.
    let manifests: Vec<_> = snaps.iter().map(|s| s.join("manifest.json")).filter(|p| p.is_file()).collect();
    assert_eq!(manifests.len(), 1, "one manifest.json across {snaps:?}");
    let manifest: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&manifests[0]).unwrap()).unwrap();
    let mut listed = Vec::new();
    for f in manifest["files"].as_array().expect("manifest.json has files") {
        let name = f.as_str().unwrap().to_string();
        assert!(snaps.iter().any(|s| s.join(&name).is_file()), "manifest.json lists {name}, absent from {snaps:?}");
        if !name.starts_with('.') {
            listed.push(name);
        }
    }
    assert!(
        snaps.iter().any(|s| std::fs::read_to_string(s.join("schema.cql")).is_ok_and(|c| c.contains("CREATE TABLE")))
    );
    for snap in &snaps {
        for f in disk::snapshot_files(snap).unwrap() {
            // Hard links: same inode as the live file.
            use std::os::unix::fs::MetadataExt;
            let live = snap.parent().unwrap().parent().unwrap().join(&f.relative);
            assert_eq!(std::fs::metadata(&f.path).unwrap().ino(), std::fs::metadata(&live).unwrap().ino());
        }
    }
    listed.sort();
    let mut expected = data_files.clone();
    expected.sort();
    assert_eq!(listed, expected, "snapshot manifest.json lists every Data.db");
    let listing = nodetool.list_snapshots().await.unwrap();
    assert!(listing.iter().any(|s| s.tag == tag && s.keyspace == ks && s.table == "readings"));

    // Clearing it removes the directories and the listing.
    nodetool.clear_snapshot(&tag, std::slice::from_ref(&ks)).await.unwrap();
    assert!(snaps.iter().all(|s| !s.exists()), "snapshot directories remain after clearsnapshot");
    assert!(!nodetool.list_snapshots().await.unwrap().iter().any(|s| s.tag == tag));
}

#[tokio::test]
async fn snapshots_and_clears_skip_nodetool_and_its_errors_still_say_what_is_wrong() {
    let cluster = Cluster::solo();
    let node = &cluster.nodes[0];
    let session = cluster.session().await;
    let ks = unique_name("jmx");
    dataset::load(&session, cluster, &ks, 1, &dataset::Shape { rounds: 1, rows_per_round: 20, payload_bytes: 8 }).await;
    let data_dirs = node.data_dirs.clone();
    let tag = unique_name("tag");

    // A nodetool that cannot even start: only the JMX client can have taken this snapshot.
    let no_nodetool = cassette_cassandra::Nodetool::new("/nonexistent/nodetool", "127.0.0.1", node.jmx_port);
    no_nodetool.snapshot(&tag, std::slice::from_ref(&ks), &[]).await.unwrap();
    assert!(disk::snapshot_tags_with_prefix(&data_dirs, &tag).contains(&tag), "snapshot {tag} is on disk");
    no_nodetool.clear_snapshot(&tag, std::slice::from_ref(&ks)).await.unwrap();
    assert!(!disk::snapshot_tags_with_prefix(&data_dirs, &tag).contains(&tag), "snapshot {tag} cleared");
    let err = no_nodetool.list_snapshots().await.unwrap_err().to_string();
    assert!(err.contains("cannot run nodetool"), "everything else still runs nodetool: {err}");

    // A failed call through the client is run again by nodetool, whose error is reported.
    let nodetool = node.nodetool_client();
    let err = nodetool.snapshot(&tag, &["no_such_keyspace".to_string()], &[]).await.unwrap_err().to_string();
    assert!(err.contains("no_such_keyspace") && err.contains("nodetool snapshot"), "{err}");
    // And the next call gets a fresh client.
    nodetool.snapshot(&tag, std::slice::from_ref(&ks), &[]).await.unwrap();
    assert!(nodetool.jmx_client_ready().await);
    nodetool.clear_snapshot(&tag, &[]).await.unwrap();
    assert!(!disk::snapshot_tags_with_prefix(&data_dirs, &tag).contains(&tag));
}

#[tokio::test]
async fn local_node_identity_comes_from_system_local() {
    let cluster = Cluster::solo();
    let node = &cluster.nodes[0];
    let local = node.cql().await.local_node().await.unwrap();
    assert_eq!(local.cluster_name, "solo");
    assert_eq!(local.release_version, cluster.cassandra_version);
    assert!(local.release_version.starts_with("5.0."));
    assert_eq!(local.tokens.len(), 1);
    let status = node.nodetool(&["status"]);
    assert!(status.contains(&local.host_id.to_string()), "nodetool status shows host ID {}:\n{status}", local.host_id);
    let ks = node.cql().await.keyspaces().await.unwrap();
    assert!(
        ks.iter().any(|k| k.name == "system_schema")
            && ks.iter().all(|k| !keyspaces::is_system(&k.name) || k.name.starts_with("system"))
    );
}

#[tokio::test]
async fn three_nodes_are_up_and_an_rf3_keyspace_has_sstables_on_each() {
    let cluster = Cluster::trio();
    let status = cluster.nodes[0].nodetool(&["status"]);
    for n in &cluster.nodes {
        assert!(
            status.lines().any(|l| l.starts_with("UN") && l.split_whitespace().nth(1) == Some(n.ip.as_str())),
            "{} is not UN:\n{status}",
            n.ip
        );
    }
    let session = cluster.session().await;
    let ks = unique_name("rf3");
    dataset::load(&session, cluster, &ks, 3, &dataset::Shape { rounds: 1, rows_per_round: 100, payload_bytes: 16 })
        .await;
    for n in &cluster.nodes {
        let cql = n.cql().await;
        let id = cql.tables(&ks).await.unwrap().into_iter().find(|t| t.name == "profiles").unwrap().id_hex();
        let dirs = disk::table_dirs(&n.data_dirs, &ks, "profiles", &id);
        let data = dirs
            .iter()
            .flat_map(|d| std::fs::read_dir(d).unwrap())
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with("-Data.db"))
            .count();
        assert!(data >= 1, "node {} has no SSTable of {ks}.profiles (RF 3 puts a replica on every node)", n.ip);
        // The secondary index has its own SSTables in .<index>/ under the table directory.
        assert!(dirs.iter().any(|d| d.join(".profiles_by_name").is_dir()), "no index directory on {}", n.ip);
    }
    let rows = dataset::dump(&session, &ks, "profiles").await;
    assert_eq!(rows.len(), 99, "100 profiles written, 1 deleted");
}
