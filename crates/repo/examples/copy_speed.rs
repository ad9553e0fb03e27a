//! Compares `copy_verified` (copy + BLAKE3 + CRC32 + fsync) with `cp -a`.
//!
//! ```text
//! cargo run --release -p cassette-repo --example copy_speed [DIR] [MiB]
//! ```
//! Writes a test file (default 1024 MiB) in DIR (default /tmp), reads it once
//! so the page cache is warm, then times each method three times and prints
//! the best run. `cp -a` does not fsync, so it is shown both alone and
//! followed by `sync FILE` (what `copy_verified` pays for durability).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let base = PathBuf::from(args.next().unwrap_or_else(|| "/tmp".into()));
    let mib: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1024);
    let dir = tempfile::Builder::new().prefix("cassette-copy-speed").tempdir_in(&base)?;
    let src = dir.path().join("nb-1-big-Data.db");
    write_test_file(&src, mib)?;
    let warm = cassette_repo::hash_file(&src)?; // also warms the page cache
    let bytes = warm.size as f64;

    let dst = dir.path().join("dst");
    let run = |name: &str, f: &dyn Fn() -> anyhow::Result<()>| -> anyhow::Result<Duration> {
        let mut best = Duration::MAX;
        for _ in 0..3 {
            let _ = fs::remove_file(&dst);
            Command::new("sync").status()?; // start each run with no dirty pages
            let t = Instant::now();
            f()?;
            best = best.min(t.elapsed());
        }
        println!("{name:<42} {:>7.3} s {:>8.0} MiB/s", best.as_secs_f64(), bytes / best.as_secs_f64() / 1048576.0);
        Ok(best)
    };
    println!("{mib} MiB file in {} (page cache warm), best of 3:", base.display());
    run("hash_file (read + BLAKE3 + CRC32)", &|| {
        cassette_repo::hash_file(&src)?;
        Ok(())
    })?;
    let cp_plain = run("cp -a", &|| cp(&src, &dst, false))?;
    let cp_sync = run("cp -a && sync FILE", &|| cp(&src, &dst, true))?;
    let ours = run("copy_verified (hash + CRC check + fsync)", &|| {
        cassette_repo::copy_verified(&src, &dst, Some(warm.crc32))?;
        Ok(())
    })?;
    println!(
        "speed of copy_verified relative to cp -a: {:.2}x; to cp -a && sync: {:.2}x",
        cp_plain.as_secs_f64() / ours.as_secs_f64(),
        cp_sync.as_secs_f64() / ours.as_secs_f64()
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

/// Incompressible, non-repeating content (xorshift), like real SSTables.
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
