//! Compares `copy_verified` (copy + BLAKE3 + CRC32 check + fsync) with `cp -a`.
//!
//! ```text
//! cargo run --release -p cassette-repo --example copy_speed [DIR] [MiB] [ROUNDS]
//! ```
//! Writes an incompressible test file (default 1024 MiB) in DIR (default
//! /tmp) and reads it once so the page cache is warm. Then, for each round,
//! runs every method once, in turn (interleaved, so that load from other
//! processes hits all of them alike), starting each from a clean `sync`.
//! Prints the best and the median time of each method.
//!
//! `cp -a` (copy_file_range) does not fsync: its copy may still be only in
//! the page cache when it returns. `copy_verified` fsyncs, so the fair
//! comparison is with `cp -a && sync FILE`; both are shown.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

type Method<'a> = (&'a str, Box<dyn Fn() -> anyhow::Result<()> + 'a>);

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let base = args.next().unwrap_or_else(|| "/tmp".into());
    let mib: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1024);
    let rounds: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(5);
    let dir = tempfile::Builder::new().prefix("cassette-copy-speed").tempdir_in(&base)?;
    let src = dir.path().join("nb-1-big-Data.db");
    let dst = dir.path().join("copy");
    write_test_file(&src, mib)?;
    let crc = cassette_repo::hash_file(&src)?.crc32; // also warms the page cache

    let methods: Vec<Method> = vec![
        ("cp -a", Box::new(|| cp(&src, &dst, false))),
        ("cp -a && sync FILE", Box::new(|| cp(&src, &dst, true))),
        (
            "copy_verified (hash, CRC check, fsync)",
            Box::new(|| cassette_repo::copy_verified(&src, &dst, Some(crc)).map(drop).map_err(Into::into)),
        ),
        (
            "hash_file (read + BLAKE3 + CRC32)",
            Box::new(|| cassette_repo::hash_file(&src).map(drop).map_err(Into::into)),
        ),
    ];
    let mut times = vec![Vec::new(); methods.len()];
    for _ in 0..rounds {
        for (i, (_, f)) in methods.iter().enumerate() {
            let _ = fs::remove_file(&dst);
            anyhow::ensure!(Command::new("sync").status()?.success(), "sync failed");
            let t = Instant::now();
            f()?;
            times[i].push(t.elapsed().as_secs_f64());
        }
    }
    println!("{mib} MiB file in {base} (page cache warm), {rounds} interleaved rounds:");
    println!("{:<40} {:>8} {:>10} {:>8}", "method", "best s", "best MiB/s", "median s");
    let mut medians = Vec::new();
    for ((name, _), t) in methods.iter().zip(&mut times) {
        t.sort_by(f64::total_cmp);
        let (best, median) = (t[0], t[t.len() / 2]);
        medians.push(median);
        println!("{name:<40} {best:>8.3} {:>10.0} {median:>8.3}", mib as f64 / best);
    }
    println!(
        "copy_verified speed relative to cp -a: {:.2}x, to cp -a && sync: {:.2}x (medians)",
        medians[0] / medians[2],
        medians[1] / medians[2]
    );
    Ok(())
}

fn cp(src: &Path, dst: &Path, sync: bool) -> anyhow::Result<()> {
    anyhow::ensure!(Command::new("cp").arg("-a").arg(src).arg(dst).status()?.success(), "cp failed");
    if sync {
        anyhow::ensure!(Command::new("sync").arg(dst).status()?.success(), "sync failed");
    }
    Ok(())
}

/// Incompressible, non-repeating content (xorshift), like compressed SSTables.
fn write_test_file(path: &Path, mib: usize) -> anyhow::Result<()> {
    let mut f = std::io::BufWriter::new(fs::File::create(path)?);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut chunk = vec![0u8; 1 << 20];
    for _ in 0..mib {
        for word in chunk.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            word.copy_from_slice(&x.to_le_bytes());
        }
        f.write_all(&chunk)?;
    }
    f.flush()?;
    Ok(())
}
