//! Encoding and decoding: the [`Header`], then age over zstd (either optional).

use std::io::{self, Read, Write};
use std::sync::Arc;

use age::x25519::Recipient;

use crate::{Header, Keyring, MAX_HEADER_LEN, SealError};

/// A file is compressed only when its first bytes shrink by at least this share (in percent):
/// Cassandra's compressed `Data.db` does not, and compressing it again only costs time.
const MIN_SAVING_PERCENT: usize = 5;
/// How much of a file decides whether it is compressed.
pub const SAMPLE_LEN: usize = 256 << 10;
/// zstd's window (log2 bytes): 512 KiB, against level 3's 2 MiB. Several files are encoded at
/// once, and each encoder holds its window: a smaller one keeps a backup's memory bounded, and
/// matches further apart are rare within an SSTable component.
const WINDOW_LOG: u32 = 19;

/// How a repository encodes what is written, and the keys that read what is stored.
#[derive(Clone, Debug, Default)]
pub struct Codec {
    /// zstd's level, when new objects are compressed.
    zstd_level: Option<i32>,
    /// The key new objects are encrypted for: its fingerprint and public key.
    key: Option<(String, Recipient)>,
    /// The identities that decrypt.
    keyring: Option<Arc<Keyring>>,
}

impl Codec {
    /// A codec that writes with `zstd_level` (if any) for the key `key` (a fingerprint the
    /// keyring must hold), and reads with `keyring`.
    pub fn new(zstd_level: Option<i32>, key: Option<&str>, keyring: Option<Arc<Keyring>>) -> Result<Codec, SealError> {
        let key = match key {
            None => None,
            Some(fp) => {
                let held = keyring.as_ref().map(|k| k.fingerprints().join(", ")).unwrap_or_else(|| "no key".into());
                let recipient = keyring.as_ref().and_then(|k| k.recipient(fp)).ok_or_else(|| {
                    SealError::KeyMissing { what: "this repository".into(), wanted: fp.to_owned(), held }
                })?;
                Some((fp.to_owned(), recipient))
            }
        };
        Ok(Codec { zstd_level, key, keyring })
    }

    /// A codec that only reads (decrypts with `keyring`), for a repository whose format was not
    /// read yet.
    pub fn read_only(keyring: Option<Arc<Keyring>>) -> Codec {
        Codec { zstd_level: None, key: None, keyring }
    }

    /// The fingerprint of the key new objects are encrypted for.
    pub fn key_fingerprint(&self) -> Option<&str> {
        self.key.as_ref().map(|(fp, _)| fp.as_str())
    }

    /// Whether new objects are encrypted.
    pub fn encrypts(&self) -> bool {
        self.key.is_some()
    }

    /// The header a new object gets, given its first bytes.
    pub fn header_for(&self, sample: &[u8]) -> Header {
        let zstd = self.zstd_level.is_some_and(|level| shrinks(sample, level));
        Header { zstd, key: self.key.as_ref().map(|(fp, _)| fp.clone()) }
    }

    /// Starts an encoded object of `size` bytes on `out` (writes the header); `sample` is the
    /// object's first bytes (up to [`SAMPLE_LEN`]), which decide its compression. Write exactly
    /// `size` bytes, then [`EncodingWriter::finish`]: zstd is told the size, which sizes its
    /// memory to the object, and refuses any other length.
    pub fn writer<W: Write + 'static>(&self, mut out: W, sample: &[u8], size: u64) -> io::Result<EncodingWriter<W>> {
        let header = self.header_for(sample);
        out.write_all(header.to_line().as_bytes())?;
        let level = self.zstd_level.unwrap_or(3);
        let stage = match (&self.key, header.zstd) {
            (None, false) => Stage::Plain(out),
            (None, true) => Stage::Zstd(compressor(out, level, size)?),
            (Some((_, r)), zstd) => {
                let age = age::Encryptor::with_recipients(std::iter::once(r as &dyn age::Recipient))
                    .map_err(io::Error::other)?
                    .wrap_output(out)?;
                if zstd { Stage::ZstdAge(compressor(age, level, size)?) } else { Stage::Age(age) }
            }
        };
        Ok(EncodingWriter { stage, header })
    }

    /// `bytes` encoded whole (manifests, indexes, schema, configuration files).
    pub fn encode(&self, bytes: &[u8]) -> Vec<u8> {
        let sample = &bytes[..bytes.len().min(SAMPLE_LEN)];
        let mut w = self.writer(Vec::new(), sample, bytes.len() as u64).expect("encoding into memory");
        w.write_all(bytes).expect("encoding into memory");
        w.finish().expect("encoding into memory")
    }

    /// A reader of the object `input` decoded; `what` names it in errors. The header is read
    /// and checked (and the key found) before this returns; damage later in the object is a
    /// read error whose message says so.
    pub fn reader<R: Read + Send + 'static>(
        &self,
        mut input: R,
        what: &str,
    ) -> Result<(Header, Box<dyn Read + Send>), SealError> {
        let mut line = Vec::with_capacity(MAX_HEADER_LEN);
        let mut byte = [0u8; 1];
        while line.len() < MAX_HEADER_LEN && line.last() != Some(&b'\n') {
            match input.read(&mut byte) {
                Ok(0) => break,
                Ok(_) => line.push(byte[0]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(SealError::Damaged { what: what.to_owned(), detail: e.to_string() }),
            }
        }
        let (header, _) = Header::parse(&line, what)?;
        let damaged = |detail: String| SealError::Damaged { what: what.to_owned(), detail };
        let body: Box<dyn Read + Send> = match &header.key {
            None => Box::new(input),
            Some(fp) => {
                let identity =
                    self.keyring.as_ref().and_then(|k| k.identity(fp)).ok_or_else(|| SealError::KeyMissing {
                        what: what.to_owned(),
                        wanted: fp.clone(),
                        held: self
                            .keyring
                            .as_ref()
                            .map(|k| k.fingerprints().join(", "))
                            .unwrap_or_else(|| "no key".into()),
                    })?;
                let decryptor = age::Decryptor::new(input).map_err(|e| damaged(e.to_string()))?;
                Box::new(
                    decryptor
                        .decrypt(std::iter::once(identity as &dyn age::Identity))
                        .map_err(|e| damaged(e.to_string()))?,
                )
            }
        };
        let body: Box<dyn Read + Send> =
            if header.zstd { Box::new(zstd::Decoder::new(body).map_err(|e| damaged(e.to_string()))?) } else { body };
        Ok((header, body))
    }

    /// The object `stored` decoded whole.
    pub fn decode(&self, stored: &[u8], what: &str) -> Result<Vec<u8>, SealError> {
        let (_, mut r) = self.reader(io::Cursor::new(stored.to_vec()), what)?;
        let mut out = Vec::new();
        r.read_to_end(&mut out).map_err(|e| SealError::Damaged { what: what.to_owned(), detail: e.to_string() })?;
        Ok(out)
    }
}

/// A zstd encoder of an object of `size` bytes, with a window of at most 2^[`WINDOW_LOG`].
fn compressor<W: Write>(out: W, level: i32, size: u64) -> io::Result<zstd::Encoder<'static, W>> {
    let mut z = zstd::Encoder::new(out, level)?;
    z.window_log(WINDOW_LOG)?;
    z.set_pledged_src_size(Some(size))?;
    Ok(z)
}

fn shrinks(sample: &[u8], level: i32) -> bool {
    match zstd::bulk::compress(sample, level) {
        Ok(c) => c.len() * 100 <= sample.len() * (100 - MIN_SAVING_PERCENT),
        Err(_) => false,
    }
}

/// An object being encoded; [`EncodingWriter::finish`] completes it (without it the object is
/// cut short, and refused when read).
pub struct EncodingWriter<W: Write> {
    stage: Stage<W>,
    header: Header,
}

enum Stage<W: Write> {
    Plain(W),
    Zstd(zstd::Encoder<'static, W>),
    Age(age::stream::StreamWriter<W>),
    ZstdAge(zstd::Encoder<'static, age::stream::StreamWriter<W>>),
}

impl<W: Write> EncodingWriter<W> {
    /// The object's header (what its manifest entry records).
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Ends the object; returns the writer it went to.
    pub fn finish(self) -> io::Result<W> {
        match self.stage {
            Stage::Plain(w) => Ok(w),
            Stage::Zstd(z) => z.finish(),
            Stage::Age(a) => a.finish(),
            Stage::ZstdAge(z) => z.finish()?.finish(),
        }
    }
}

impl<W: Write> Write for EncodingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.stage {
            Stage::Plain(w) => w.write(buf),
            Stage::Zstd(z) => z.write(buf),
            Stage::Age(a) => a.write(buf),
            Stage::ZstdAge(z) => z.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.stage {
            Stage::Plain(w) => w.flush(),
            Stage::Zstd(z) => z.flush(),
            Stage::Age(a) => a.flush(),
            Stage::ZstdAge(z) => z.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> (Arc<Keyring>, String) {
        let (k, _) = Keyring::generate();
        let fp = k.fingerprints()[0].clone();
        (Arc::new(k), fp)
    }

    fn text() -> Vec<u8> {
        (0..200_000u32).flat_map(|i| format!("row {} value secret-{}\n", i, i % 97).into_bytes()).collect()
    }

    #[test]
    fn every_combination_round_trips_and_hides_the_plaintext_when_encrypted() {
        let (ring, fp) = keys();
        let plain = text();
        for (level, key) in [(None, None), (Some(3), None), (None, Some(fp.as_str())), (Some(3), Some(fp.as_str()))] {
            let codec = Codec::new(level, key, Some(ring.clone())).unwrap();
            let stored = codec.encode(&plain);
            assert_eq!(codec.decode(&stored, "o").unwrap(), plain, "{level:?} {key:?}");
            let (h, _) = Header::parse(&stored, "o").unwrap();
            assert_eq!((h.zstd, h.key.as_deref()), (level.is_some(), key));
            if level.is_some() {
                assert!(stored.len() < plain.len() / 3, "compressed: {} of {}", stored.len(), plain.len());
            }
            if key.is_some() {
                assert!(!stored.windows(10).any(|w| w == b"secret-42\n"), "plaintext visible");
            }
        }
    }

    #[test]
    fn a_compressed_object_must_be_as_long_as_told() {
        let codec = Codec::new(Some(3), None, None).unwrap();
        let plain = text();
        for told in [plain.len() as u64 - 1, plain.len() as u64 + 1] {
            let mut w = codec.writer(Vec::new(), &plain[..SAMPLE_LEN], told).unwrap();
            let wrote = w.write_all(&plain);
            assert!(wrote.is_err() || w.finish().is_err(), "{told} bytes told, {} written", plain.len());
        }
    }

    #[test]
    fn bytes_that_do_not_shrink_are_stored_uncompressed() {
        let mut random = vec![0u8; 100_000];
        blake3::Hasher::new().finalize_xof().fill(&mut random);
        let codec = Codec::new(Some(3), None, None).unwrap();
        let stored = codec.encode(&random);
        assert!(!Header::parse(&stored, "o").unwrap().0.zstd);
        assert_eq!(codec.decode(&stored, "o").unwrap(), random);
    }

    #[test]
    fn a_missing_key_a_flipped_byte_and_a_truncated_object_are_refused_naming_the_object() {
        let (ring, fp) = keys();
        let codec = Codec::new(Some(3), Some(&fp), Some(ring)).unwrap();
        let stored = codec.encode(&text());
        let (other, _) = keys();
        let err = Codec::new(None, None, Some(other)).unwrap().decode(&stored, "ks/t/nb-1-big-Data.db").unwrap_err();
        assert!(matches!(err, SealError::KeyMissing { .. }), "{err}");
        assert!(err.to_string().contains(&fp) && err.to_string().contains("ks/t/nb-1-big-Data.db"), "{err}");
        let mut flipped = stored.clone();
        let at = flipped.len() / 2;
        flipped[at] ^= 1;
        assert!(matches!(codec.decode(&flipped, "o"), Err(SealError::Damaged { .. })));
        let cut = &stored[..stored.len() - 100];
        assert!(matches!(codec.decode(cut, "o"), Err(SealError::Damaged { .. })));
        assert!(matches!(Codec::new(None, Some(&fp), None), Err(SealError::KeyMissing { .. })));
    }
}
