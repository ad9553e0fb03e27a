//! What a stored file's bytes are checked by: its size, its BLAKE3 (in the manifest) and the
//! CRC32 Cassandra's `Digest.crc32` holds for a `Data.db`, all fed from one pass over the bytes
//! ([`ContentHasher`]), whichever store the bytes go to.

use crate::manifest::FileEntry;

/// BLAKE3, CRC32 (IEEE, as in Cassandra's `Digest.crc32`) and size, fed in one pass. It takes
/// the caller's buffers as they are (no copy), so a copy loop costs one pass over the bytes.
#[derive(Clone, Debug, Default)]
pub struct ContentHasher {
    blake3: blake3::Hasher,
    crc32: crc32fast::Hasher,
    size: u64,
}

impl ContentHasher {
    /// A hasher of no bytes yet.
    pub fn new() -> ContentHasher {
        ContentHasher::default()
    }

    /// Feeds the next bytes.
    #[inline]
    pub fn update(&mut self, bytes: &[u8]) {
        self.blake3.update(bytes);
        self.crc32.update(bytes);
        self.size += bytes.len() as u64;
    }

    /// Bytes fed so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The CRC32 of the bytes fed so far (to check `Digest.crc32` before storing).
    pub fn crc32(&self) -> u32 {
        self.crc32.clone().finalize()
    }

    /// The BLAKE3 of the bytes fed so far, lowercase hex.
    pub fn blake3_hex(&self) -> String {
        self.blake3.finalize().to_hex().to_string()
    }

    /// What the bytes were, for a source file whose modification time was `mtime_ns`.
    pub fn finish(self, mtime_ns: i64) -> StoredFile {
        StoredFile { size: self.size, blake3: self.blake3_hex(), crc32: self.crc32.finalize(), mtime_ns }
    }

    /// What is wrong with the bytes fed against `entry` (size, BLAKE3, and the `Digest.crc32`
    /// when the entry has one), in words; `None` when they match.
    pub fn mismatch(&self, entry: &FileEntry) -> Option<String> {
        if self.size != entry.size {
            return Some(format!("size {} bytes, the manifest says {} (truncated or replaced)", self.size, entry.size));
        }
        let blake3 = self.blake3_hex();
        if blake3 != entry.blake3 {
            return Some(format!("content differs from the manifest (BLAKE3 {blake3}, expected {})", entry.blake3));
        }
        if let Some(crc) = entry.digest_crc32
            && self.crc32() != crc
        {
            return Some(format!("CRC32 does not match its Digest.crc32 {crc:08x}"));
        }
        None
    }
}

/// What was stored (or hashed): size and digests of the bytes read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredFile {
    /// Bytes read (and written).
    pub size: u64,
    /// BLAKE3 of the bytes, lowercase hex.
    pub blake3: String,
    /// CRC32 (IEEE, as in Cassandra's `Digest.crc32`) of the bytes.
    pub crc32: u32,
    /// The source's mtime, nanoseconds since the epoch, as seen at open.
    pub mtime_ns: i64,
}

impl StoredFile {
    /// A manifest entry for this file stored at `path` (relative to the backup directory);
    /// `digest_crc32` is set when it was verified against Cassandra's `Digest.crc32`.
    pub fn to_entry(&self, path: String, digest_crc32: Option<u32>) -> FileEntry {
        FileEntry {
            path,
            size: self.size,
            blake3: self.blake3.clone(),
            digest_crc32,
            mtime_ns: self.mtime_ns,
            object: None,
            reused_from: None,
            encoded: None,
            lock: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_pass_gives_the_digests_of_the_whole() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let mut h = ContentHasher::new();
        for chunk in data.chunks(4096) {
            h.update(chunk);
        }
        assert_eq!(h.size(), data.len() as u64);
        assert_eq!(h.crc32(), crc32fast::hash(&data));
        let stored = h.clone().finish(42);
        assert_eq!(stored.blake3, blake3::hash(&data).to_hex().to_string());
        assert_eq!((stored.size, stored.crc32, stored.mtime_ns), (data.len() as u64, crc32fast::hash(&data), 42));
        let entry = stored.to_entry("ks/t/nb-1-big-Data.db".into(), Some(stored.crc32));
        assert_eq!((entry.size, entry.digest_crc32, entry.mtime_ns), (stored.size, Some(stored.crc32), 42));
        assert!(entry.is_added());
        assert_eq!(h.mismatch(&entry), None);
    }

    #[test]
    fn mismatches_say_what_differs() {
        let mut h = ContentHasher::new();
        h.update(b"sstable bytes");
        let entry = h.clone().finish(0).to_entry("ks/t/a".into(), None);
        let mut short = entry.clone();
        short.size = 3;
        assert!(h.mismatch(&short).unwrap().contains("the manifest says 3"));
        let mut other = entry.clone();
        other.blake3 = "00".repeat(32);
        assert!(h.mismatch(&other).unwrap().contains("content differs"));
        let mut crc = entry;
        crc.digest_crc32 = Some(1);
        assert!(h.mismatch(&crc).unwrap().contains("Digest.crc32"));
    }
}
