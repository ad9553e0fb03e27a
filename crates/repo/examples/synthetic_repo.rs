//! Writes synthetic complete backups of one node, for `bench/lifecycle.sh`: no Cassandra needed.
//!
//! `synthetic_repo DIR BACKUPS FILES`: `BACKUPS` backups of node `bench/00000000-0000-4000-8000-00000000be7c`,
//! each with `FILES` SSTable components (half new, half hard-linked from the previous backup, as
//! deduplication leaves them), a manifest, `cassette-meta/schema.cql` and a journal; one hour
//! apart. Then the node index is built, as the backups would have left it.

use std::path::PathBuf;

use cassette_repo::{
    FileEntry, KeyspaceEntry, MANIFEST_FORMAT, MANIFEST_VERSION, Manifest, ManifestFile, NodeInfo, RepoLayout,
    TableEntry, hash_file,
};
use chrono::{Duration, Utc};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, dir, backups, files] = args.as_slice() else {
        return Err("usage: synthetic_repo DIR BACKUPS FILES".into());
    };
    let (backups, files): (usize, usize) = (backups.parse()?, files.parse()?);
    let host = "00000000-0000-4000-8000-00000000be7c";
    let node_dir = RepoLayout::new(PathBuf::from(dir)).node_dir("bench", host)?;
    let start = Utc::now() - Duration::hours(backups as i64 + 1);
    let mut previous: Option<PathBuf> = None;
    for b in 0..backups {
        let name = format!("nightly-{b:05}");
        let backup_dir = node_dir.join(&name);
        let table_dir = RepoLayout::table_dir(&backup_dir, "shop", "orders")?;
        std::fs::create_dir_all(&table_dir)?;
        let mut entries = Vec::new();
        for f in 0..files {
            // Even components belong to SSTable generation 1, which every backup holds (linked
            // from the previous backup); odd ones to a generation new in this backup.
            let old_sstable = f % 2 == 0;
            let shared = old_sstable && previous.is_some();
            let file = if old_sstable { format!("nb-1-big-C{f}.db") } else { format!("nb-{}-big-C{f}.db", b + 2) };
            let path = table_dir.join(&file);
            match &previous {
                Some(p) if shared => std::fs::hard_link(p.join("shop/orders").join(&file), &path)?,
                _ => std::fs::write(&path, format!("{name} {file}"))?,
            }
            let stored = hash_file(&path)?;
            let mut entry: FileEntry = stored.to_entry(format!("shop/orders/{file}"), None);
            if shared {
                entry.reused_from = Some(format!("nightly-{:05}", b - 1));
            }
            entries.push(entry);
        }
        cassette_repo::write_file_atomically(&RepoLayout::schema_path(&backup_dir), b"CREATE KEYSPACE shop ...;\n")?;
        std::fs::write(RepoLayout::journal_path(&backup_dir), b"{\"record\":\"started\"}\n")?;
        let started_at = start + Duration::hours(b as i64);
        let mut m = Manifest {
            format: MANIFEST_FORMAT.into(),
            format_version: MANIFEST_VERSION,
            backup_name: name.clone(),
            cluster_name: "bench".into(),
            node: NodeInfo {
                host_id: host.into(),
                address: "127.0.0.1".into(),
                alias: None,
                datacenter: "dc1".into(),
                rack: "rack1".into(),
                tokens: vec!["0".into()],
                cassandra_version: "5.0.9".into(),
            },
            snapshot_tag: format!("cassette-{name}-0"),
            started_at,
            finished_at: started_at + Duration::minutes(3),
            keyspaces: vec![KeyspaceEntry {
                name: "shop".into(),
                schema_cql: "CREATE KEYSPACE shop ...;".into(),
                tables: vec![TableEntry {
                    name: "orders".into(),
                    id: "0123456789abcdef0123456789abcdef".into(),
                    schema_cql: None,
                    files: entries,
                    snapshot_sstables: None,
                }],
            }],
            config_dirs: Vec::new(),
            totals: Default::default(),
            object_lock: None,
        };
        m.totals = m.compute_totals();
        m.write_atomically(&backup_dir)?;
        previous = Some(backup_dir);
    }
    let indexed = cassette_repo::index::rebuild(&node_dir)?;
    println!("{backups} backups of {files} SSTable files each in {}; {indexed} indexed", node_dir.display());
    Ok(())
}
