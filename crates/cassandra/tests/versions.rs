//! The long-lived JMX client on every supported Cassandra version (4.0, 4.1, 5.0), on real nodes:
//! StorageService's snapshot operations differ between them (4.x's `clearSnapshot` takes no
//! options map), and a snapshot or clear must not need nodetool on any of them.

use cassette_cassandra::{Nodetool, disk};
use cassette_testkit::{Cluster, dataset, unique_name};

/// Takes and clears a snapshot through a `Nodetool` whose program does not exist: only the JMX
/// client can have done it. Checks the snapshot on disk, for one keyspace and for all.
async fn snapshots_and_clears_without_nodetool(cluster: &Cluster, major: &str) {
    let node = &cluster.nodes[0];
    let version = node.cql().await.local_node().await.unwrap().release_version;
    assert!(version.starts_with(major), "cluster {} runs Cassandra {version}, not {major}.x", cluster.name);
    let session = cluster.session().await;
    let ks = unique_name("jmxv");
    dataset::load(&session, cluster, &ks, 1, &dataset::Shape { rounds: 1, rows_per_round: 20, payload_bytes: 8 }).await;
    let no_nodetool = Nodetool::new("/nonexistent/nodetool", "127.0.0.1", node.jmx_port);
    let keyspaces = std::slice::from_ref(&ks);

    for clear_only_ks in [true, false] {
        let tag = unique_name("tag");
        no_nodetool
            .snapshot(&tag, keyspaces, &[])
            .await
            .unwrap_or_else(|e| panic!("snapshot through the JMX client on Cassandra {version}: {e}"));
        assert!(disk::snapshot_tags_with_prefix(&node.data_dirs, &tag).contains(&tag), "snapshot {tag} is on disk");
        let cleared = if clear_only_ks { keyspaces } else { &[] };
        no_nodetool
            .clear_snapshot(&tag, cleared)
            .await
            .unwrap_or_else(|e| panic!("clearsnapshot {cleared:?} through the JMX client on Cassandra {version}: {e}"));
        assert!(
            !disk::snapshot_tags_with_prefix(&node.data_dirs, &tag).contains(&tag),
            "snapshot {tag} is still on disk after clearsnapshot {cleared:?} on Cassandra {version}"
        );
    }
    assert!(no_nodetool.jmx_client_ready().await);
}

#[tokio::test]
async fn jmx_client_snapshots_and_clears_on_cassandra_4_1() {
    snapshots_and_clears_without_nodetool(Cluster::solo_v41(), "4.1.").await;
}

#[tokio::test]
async fn jmx_client_snapshots_and_clears_on_cassandra_4_0() {
    snapshots_and_clears_without_nodetool(Cluster::solo_v40(), "4.0.").await;
}

#[tokio::test]
async fn jmx_client_snapshots_and_clears_on_cassandra_5_0() {
    snapshots_and_clears_without_nodetool(Cluster::solo(), "5.0.").await;
}
