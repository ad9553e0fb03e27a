//! Garbage collection and listing benchmark of cassette-object against an S3 server, for
//! `bench/object_store.sh`. Not a test: it prints figures; it only fails if an operation fails or
//! leaves a wrong result (objects left behind, backups missing from the listing).
//!
//! ```text
//! purge_bench --url s3://cassette/PREFIX [--objects 10000] [--backups 1000] [--concurrency 64] [--runs 3]
//! ```
//!
//! 1. Purge: puts `--objects` small objects (1 KiB) under the backup prefix
//!    `PREFIX/c/h/doomed/ks/t/file-<i>`, `--concurrency` at a time, and the tombstone
//!    `PREFIX/c/h/doomed/cassette-meta/deleted.json`; then times
//!    `gc::collect_garbage(repo, PREFIX/c/h, grace, now)` (one listing of the node, one of the
//!    backup, batched deletes) and checks that nothing is left under the backup prefix.
//! 2. Listing: writes `--backups` complete backups of node `PREFIX/c/list` (a small valid
//!    manifest each, create-only as a backup writes it), updates the node index once with all of
//!    them, then times `list_node` `--runs` times (median) and checks it finds them all complete.
//!    Then times one `collect_garbage` pass over that node: nothing to delete, but it reads every
//!    complete manifest, which every purge does.
//!
//! Prints one JSON line per measurement. Credentials and endpoint come from the `AWS_*`
//! environment variables.

use std::time::Instant;

use cassette_object::{PutMode, RemoteRepo, Transfer};
use cassette_repo::{
    ConfigDirEntry, FileEntry, IndexEntry, KeyspaceEntry, MANIFEST_FORMAT, MANIFEST_VERSION, Manifest, NodeInfo,
    TableEntry, Totals,
};
use chrono::{Duration, Utc};
use futures::StreamExt;

struct Args {
    url: String,
    objects: usize,
    backups: usize,
    concurrency: usize,
    runs: usize,
}

fn usage() -> ! {
    eprintln!(
        "usage: purge_bench --url s3://BUCKET/PREFIX [--objects 10000] [--backups 1000] [--concurrency 64] [--runs 3]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut a = Args { url: String::new(), objects: 10_000, backups: 1_000, concurrency: 64, runs: 3 };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--url" => a.url = value(),
            "--objects" => a.objects = value().parse().unwrap_or_else(|_| usage()),
            "--backups" => a.backups = value().parse().unwrap_or_else(|_| usage()),
            "--concurrency" => a.concurrency = value().parse().unwrap_or_else(|_| usage()),
            "--runs" => a.runs = value().parse().unwrap_or_else(|_| usage()),
            _ => usage(),
        }
    }
    if a.url.is_empty() {
        usage();
    }
    a
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// A small valid manifest of backup `name` of node `host`: 8 SSTable components, the first four
/// reused from the previous backup (as deduplication by reference records them).
fn manifest(name: &str, host: &str, i: usize, first: chrono::DateTime<Utc>) -> Manifest {
    let files: Vec<FileEntry> = (0..8)
        .map(|f| {
            let shared = f < 4 && i > 0;
            let generation = if f < 4 { 1 } else { i + 2 };
            let path = format!("shop/orders/nb-{generation}-big-C{f}.db");
            FileEntry {
                object: shared.then(|| format!("nightly-{:05}/{path}", i - 1)),
                reused_from: shared.then(|| format!("nightly-{:05}", i - 1)),
                encoded: None,
                lock: None,
                path,
                size: 1000 + f as u64,
                blake3: format!("{:064x}", i * 8 + f),
                digest_crc32: None,
                mtime_ns: 1_700_000_000_000_000_000,
            }
        })
        .collect();
    let started_at = first + Duration::hours(i as i64);
    let mut m = Manifest {
        format: MANIFEST_FORMAT.into(),
        format_version: MANIFEST_VERSION,
        backup_name: name.into(),
        cluster_name: "c".into(),
        node: NodeInfo {
            host_id: host.into(),
            address: "127.0.0.1".into(),
            alias: None,
            datacenter: "dc1".into(),
            rack: "rack1".into(),
            tokens: vec!["0".into()],
            cassandra_version: "5.0.9".into(),
        },
        snapshot_tag: format!("cassette-{name}"),
        started_at,
        finished_at: started_at + Duration::minutes(3),
        keyspaces: vec![KeyspaceEntry {
            name: "shop".into(),
            schema_cql: "CREATE KEYSPACE shop ...;".into(),
            tables: vec![TableEntry {
                name: "orders".into(),
                id: "0123456789abcdef0123456789abcdef".into(),
                schema_cql: None,
                files,
                snapshot_sstables: None,
            }],
        }],
        config_dirs: Vec::<ConfigDirEntry>::new(),
        totals: Totals::default(),
        object_lock: None,
    };
    m.totals = m.compute_totals();
    m
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args();
    let repo = RemoteRepo::open(&args.url, Transfer::default())?;
    let repo = &repo;
    let conc = args.concurrency.max(1);

    // --- 1. purge: one tombstoned backup of N objects ------------------------------------------
    let node = repo.node_key("c", "h")?;
    let doomed = node.clone().join("doomed");
    let t0 = Instant::now();
    let puts = (0..args.objects).map(|i| {
        let key = cassette_object::repo::join(&doomed, &format!("ks/t/file-{i}"));
        async move { repo.put_small(&key, vec![b'x'; 1024], PutMode::Overwrite).await }
    });
    let mut results = futures::stream::iter(puts).buffer_unordered(conc);
    while let Some(r) = results.next().await {
        r?;
    }
    let stone = cassette_object::repo::join(&doomed, cassette_object::repo::TOMBSTONE);
    repo.put_small(&stone, br#"{"by":"purge_bench"}"#.to_vec(), PutMode::Overwrite).await?;
    let put_s = t0.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({"op": "put small objects", "objects": args.objects + 1, "concurrency": conc,
            "seconds": round3(put_s), "objects_per_s": ((args.objects + 1) as f64 / put_s).round()})
    );

    let t0 = Instant::now();
    let collected = cassette_object::gc::collect_garbage(repo, &node, Duration::days(1), Utc::now()).await?;
    let gc_s = t0.elapsed().as_secs_f64();
    let left = repo.objects(&doomed).await?.len();
    println!(
        "{}",
        serde_json::json!({"op": "collect_garbage (tombstoned backup)", "objects_deleted": collected.objects,
            "plus_tombstone": 1, "seconds": round3(gc_s),
            "objects_per_s": ((collected.objects + 1) as f64 / gc_s).round(), "left_under_prefix": left})
    );
    if left != 0 || collected.objects != args.objects as u64 {
        return Err(
            format!("collect_garbage deleted {} of {} objects, {left} left", collected.objects, args.objects).into()
        );
    }

    // --- 2. listing: M complete backups of one node -------------------------------------------
    let host = "list";
    let first = Utc::now() - Duration::hours(args.backups as i64 + 1);
    let t0 = Instant::now();
    let manifests: Vec<Manifest> =
        (0..args.backups).map(|i| manifest(&format!("nightly-{i:05}"), host, i, first)).collect();
    let writes = manifests.iter().map(|m| async move {
        let b = repo.backup("c", host, &cassette_repo::BackupName::parse(&m.backup_name)?)?;
        repo.write_manifest(&b, m).await
    });
    let mut results = futures::stream::iter(writes).buffer_unordered(conc);
    while let Some(r) = results.next().await {
        r?;
    }
    let list_node_key = repo.node_key("c", host)?;
    repo.update_index(&list_node_key, |entries| {
        for m in &manifests {
            entries.insert(m.backup_name.clone(), IndexEntry::of(m));
        }
    })
    .await?;
    println!(
        "{}",
        serde_json::json!({"op": "write manifests + index", "backups": args.backups,
            "seconds": round3(t0.elapsed().as_secs_f64())})
    );

    let mut times = Vec::new();
    for run in 1..=args.runs.max(1) {
        let t0 = Instant::now();
        let listed = cassette_object::list_node(repo, "c", host).await?;
        let s = t0.elapsed().as_secs_f64();
        let complete = listed.iter().filter(|b| b.complete).count();
        println!(
            "{}",
            serde_json::json!({"op": "list_node", "run": run, "backups": listed.len(), "complete": complete,
                "seconds": round3(s)})
        );
        if listed.len() != args.backups || complete != args.backups {
            return Err(format!(
                "list_node found {} backups ({complete} complete), expected {}",
                listed.len(),
                args.backups
            )
            .into());
        }
        times.push(s);
    }
    times.sort_by(|a, b| a.total_cmp(b));
    println!(
        "{}",
        serde_json::json!({"op": "list_node median", "backups": args.backups, "runs": times.len(),
            "seconds": round3(times[times.len() / 2])})
    );

    let t0 = Instant::now();
    let collected = cassette_object::gc::collect_garbage(repo, &list_node_key, Duration::days(1), Utc::now()).await?;
    println!(
        "{}",
        serde_json::json!({"op": "collect_garbage (nothing to delete, reads every manifest)", "backups": args.backups,
            "objects_deleted": collected.objects, "seconds": round3(t0.elapsed().as_secs_f64())})
    );
    Ok(())
}
