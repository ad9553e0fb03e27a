//! Upload (or download) benchmark of cassette-object against an S3 server, for
//! `bench/object_store.sh`. Not a test: it prints figures, it checks nothing but that every
//! transfer succeeded.
//!
//! ```text
//! upload_bench --dir DIR --url s3://cassette/PREFIX [--part-size-mib 8] [--transfers 8]
//!              [--buffers 8] [--entries FILE]
//! upload_bench --download DIR2 --url s3://cassette/PREFIX --entries FILE [same options]
//! ```
//!
//! Upload: every regular file under `DIR` goes up through `RemoteRepo::upload_file` to
//! `PREFIX/<path relative to DIR>`, `--transfers` files at once (`buffer_unordered`, as the
//! backup engine runs them), through the repository's `--buffers` part buffers of
//! `--part-size-mib` each (the memory bound is their product). The manifest entry of each
//! upload (`Uploaded::to_entry`) is written to `--entries` (default `upload-entries.json` in the
//! current directory) for a later download.
//!
//! Download: every entry of `--entries` comes back through `RemoteRepo::download_verified` (size
//! and BLAKE3 checked, fsynced, renamed into place) to `DIR2/<path>`, `--transfers` at once.
//!
//! Prints one JSON line: mode, files, bytes, seconds, MB/s (10^6 bytes), peak RSS in MiB
//! (`VmHWM` of this process at the end), and the settings. Credentials and endpoint come from
//! the `AWS_*` environment variables (see `cassette_testkit::s3::S3Server::env`).

use std::path::{Path, PathBuf};
use std::time::Instant;

use cassette_object::{RemoteRepo, Transfer};
use cassette_repo::FileEntry;
use futures::StreamExt;

struct Args {
    dir: Option<PathBuf>,
    download: Option<PathBuf>,
    url: String,
    part_size_mib: usize,
    transfers: usize,
    buffers: usize,
    entries: PathBuf,
}

fn usage() -> ! {
    eprintln!(
        "usage: upload_bench --dir DIR --url s3://BUCKET/PREFIX [--part-size-mib 8] [--transfers 8] [--buffers 8] [--entries FILE]\n       \
         upload_bench --download DIR2 --url s3://BUCKET/PREFIX --entries FILE [--transfers 8] [--buffers 8]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut a = Args {
        dir: None,
        download: None,
        url: String::new(),
        part_size_mib: 8,
        transfers: 8,
        buffers: 8,
        entries: PathBuf::from("upload-entries.json"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--dir" => a.dir = Some(value().into()),
            "--download" => a.download = Some(value().into()),
            "--url" => a.url = value(),
            "--part-size-mib" => a.part_size_mib = value().parse().unwrap_or_else(|_| usage()),
            "--transfers" => a.transfers = value().parse().unwrap_or_else(|_| usage()),
            "--buffers" => a.buffers = value().parse().unwrap_or_else(|_| usage()),
            "--entries" => a.entries = value().into(),
            _ => usage(),
        }
    }
    if a.url.is_empty() || a.dir.is_some() == a.download.is_some() {
        usage();
    }
    a
}

/// Regular files under `dir`, recursively, sorted by path.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let t = e.file_type()?;
        if t.is_dir() {
            walk(&e.path(), out)?;
        } else if t.is_file() {
            out.push(e.path());
        }
    }
    Ok(())
}

/// `VmHWM` (peak resident set size) of this process, in MiB.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kib| kib / 1024.0)
        .unwrap_or(f64::NAN)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args();
    let transfer = Transfer {
        part_size: args.part_size_mib << 20,
        buffers: args.buffers,
        parallel_files: args.transfers,
        bandwidth: None,
        keyring: None,
        object_lock: None,
    };
    let repo = RemoteRepo::open(&args.url, transfer)?;
    let parallel = args.transfers.max(1);

    let (mode, files, bytes, seconds) = if let Some(dir) = &args.dir {
        let mut paths = Vec::new();
        walk(dir, &mut paths)?;
        paths.sort();
        let rels: Vec<String> =
            paths.iter().map(|p| p.strip_prefix(dir).expect("under dir").to_string_lossy().into_owned()).collect();
        let t0 = Instant::now();
        let repo = &repo;
        let jobs = paths.iter().zip(&rels).map(|(p, rel)| async move {
            let key = cassette_object::repo::join(repo.root(), rel);
            repo.upload_file(p, &key, None).await.map(|up| up.to_entry(rel.clone(), None))
        });
        let mut results = futures::stream::iter(jobs).buffer_unordered(parallel);
        let mut entries: Vec<FileEntry> = Vec::with_capacity(paths.len());
        while let Some(r) = results.next().await {
            entries.push(r?);
        }
        let seconds = t0.elapsed().as_secs_f64();
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        let bytes: u64 = entries.iter().map(|e| e.size).sum();
        std::fs::write(&args.entries, serde_json::to_vec(&entries)?)?;
        ("upload", entries.len(), bytes, seconds)
    } else {
        let dest = args.download.as_ref().expect("download dir");
        let entries: Vec<FileEntry> = serde_json::from_slice(&std::fs::read(&args.entries)?)?;
        let t0 = Instant::now();
        let repo = &repo;
        let jobs = entries.iter().map(|e| async move {
            let key = cassette_object::repo::join(repo.root(), &e.path);
            repo.download_verified(&key, e, &dest.join(&e.path)).await
        });
        let mut results = futures::stream::iter(jobs).buffer_unordered(parallel);
        while let Some(r) = results.next().await {
            r?;
        }
        let seconds = t0.elapsed().as_secs_f64();
        ("download", entries.len(), entries.iter().map(|e| e.size).sum(), seconds)
    };

    let line = serde_json::json!({
        "mode": mode,
        "files": files,
        "bytes": bytes,
        "seconds": (seconds * 1000.0).round() / 1000.0,
        "mb_per_s": ((bytes as f64 / 1e6 / seconds) * 10.0).round() / 10.0,
        "peak_rss_mib": (peak_rss_mib() * 10.0).round() / 10.0,
        "part_size_mib": args.part_size_mib,
        "transfers": args.transfers,
        "buffers": args.buffers,
    });
    println!("{line}");
    Ok(())
}
