use std::io::Read;
use std::time::Instant;
fn main() {
    let buf: Vec<u8> = (0..(256u32 << 20)).map(|i| (i.wrapping_mul(2654435761) >> 7) as u8).collect();
    let mb = buf.len() as f64 / 1048576.0;
    for chunk in [64 << 10, 1 << 20, 4 << 20] {
        let t = Instant::now();
        let mut h = blake3::Hasher::new();
        for c in buf.chunks(chunk) { h.update(c); }
        std::hint::black_box(h.finalize());
        println!("blake3 chunk {chunk}: {:.0} MiB/s", mb / t.elapsed().as_secs_f64());
    }
    let t = Instant::now();
    std::hint::black_box(crc32fast::hash(&buf));
    println!("crc32: {:.0} MiB/s", mb / t.elapsed().as_secs_f64());
    let t = Instant::now();
    let mut v = vec![0u8; buf.len()];
    v.copy_from_slice(&buf);
    std::hint::black_box(&v);
    println!("memcpy: {:.0} MiB/s", mb / t.elapsed().as_secs_f64());
    let path = std::env::args().nth(1).unwrap();
    let mut f = std::fs::File::open(&path).unwrap();
    let mut b = vec![0u8; 4 << 20];
    let t = Instant::now();
    let mut n = 0u64;
    loop { let k = f.read(&mut b).unwrap(); if k == 0 { break } n += k as u64; }
    println!("read: {:.0} MiB/s", n as f64 / 1048576.0 / t.elapsed().as_secs_f64());
    let t = Instant::now();
    let mut out = std::fs::File::create("/tmp/bench/w").unwrap();
    use std::io::Write;
    for _ in 0..256 { out.write_all(&b).unwrap(); }
    println!("write 1G: {:.0} MiB/s", 1024.0 / t.elapsed().as_secs_f64());
}
