//! A 1 GiB SSTable-sized file through a real S3 server (s3s-fs on loopback, which refuses
//! non-last parts under 5 MiB and checks signatures): up as a multipart upload, back down
//! byte-identical, and checked against the CRC32 a `Digest.crc32` would hold.

use std::io::Write;

use cassette_object::{RemoteRepo, Transfer};
use cassette_repo::BackupName;
use cassette_testkit::s3::{S3Kind, S3Server};

#[tokio::test(flavor = "multi_thread")]
async fn a_1_gib_file_goes_up_in_parts_and_comes_back_byte_identical() {
    let s3 = S3Server::start(S3Kind::S3sFs);
    for (k, v) in s3.env() {
        // SAFETY: set before any other thread of this test binary reads the environment.
        unsafe { std::env::set_var(k, v) };
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("nb-1-big-Data.db");
    // 1 GiB of varied bytes (compressible data would not tell a truncated part apart).
    let mut f = std::io::BufWriter::new(std::fs::File::create(&src).unwrap());
    let mut crc = crc32fast::Hasher::new();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut block = vec![0u8; 1 << 20];
    for _ in 0..1024 {
        for chunk in block.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes());
        }
        crc.update(&block);
        f.write_all(&block).unwrap();
    }
    drop(f);
    let crc = crc.finalize();
    let expected = blake3::hash(&std::fs::read(&src).unwrap()).to_hex().to_string();

    let repo = RemoteRepo::open(&s3.url("big"), Transfer::default()).unwrap();
    let b = repo.backup("c", "h", &BackupName::parse("b").unwrap()).unwrap();
    let key = b.key("ks/t/nb-1-big-Data.db");
    let up = repo.upload_file(&src, &key, Some(crc)).await.unwrap();
    assert_eq!(up.size, 1 << 30);
    assert_eq!(up.parts, 205, "5 MiB parts (the default)");
    assert_eq!(up.blake3, expected);
    // The server holds exactly the file (its multipart ETag says it was assembled from parts).
    let on_server = s3.root.join(&s3.bucket).join("big/c/h/b/ks/t/nb-1-big-Data.db");
    assert_eq!(std::fs::metadata(&on_server).unwrap().len(), 1 << 30);

    std::fs::remove_file(&src).unwrap();
    let back = dir.path().join("restored-Data.db");
    repo.download_verified(&key, &up.to_entry("ks/t/nb-1-big-Data.db".into(), Some(crc)), &back).await.unwrap();
    assert_eq!(blake3::hash(&std::fs::read(&back).unwrap()).to_hex().to_string(), expected, "byte-identical");
}
