//! The first line of every encoded object: `cassette-object 1 <zstd|none> <fingerprint|->\n`.

use crate::SealError;

/// The line's first word.
const MAGIC: &str = "cassette-object";
/// How every encoded object begins (the magic word and a space): a reader tells an encoded
/// object from a plain one by it.
pub const HEADER_MAGIC: &[u8] = b"cassette-object ";
/// The framing version this build writes and reads.
const VERSION: &str = "1";
/// A header is never longer (a reader gives up on a longer first line).
pub const MAX_HEADER_LEN: usize = 64;

/// What an encoded object's body is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// The body (after decryption) is a zstd frame.
    pub zstd: bool,
    /// The fingerprint of the key the body is encrypted for; `None`: not encrypted.
    pub key: Option<String>,
}

impl Header {
    /// The line as written, newline included.
    pub fn to_line(&self) -> String {
        let compression = if self.zstd { "zstd" } else { "none" };
        format!("{MAGIC} {VERSION} {compression} {}\n", self.key.as_deref().unwrap_or("-"))
    }

    /// Parses the header at the start of `bytes`; returns it and the body's offset. `what`
    /// names the object in errors.
    pub fn parse(bytes: &[u8], what: &str) -> Result<(Header, usize), SealError> {
        let not = |detail: String| SealError::NotEncoded { what: what.to_owned(), detail };
        let window = &bytes[..bytes.len().min(MAX_HEADER_LEN)];
        let end = window
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| not(if bytes.is_empty() { "it is empty".into() } else { "no header line".into() }))?;
        let line = std::str::from_utf8(&window[..end]).map_err(|_| not("no header line".into()))?;
        let words: Vec<&str> = line.split(' ').collect();
        let [magic, version, compression, key] = words[..] else {
            return Err(not(format!("first line {line:?}")));
        };
        if magic != MAGIC {
            return Err(not(format!("first line {line:?}")));
        }
        if version != VERSION {
            return Err(not(format!("framing version {version}, this cassette reads {VERSION}: upgrade cassette")));
        }
        let zstd = match compression {
            "zstd" => true,
            "none" => false,
            other => return Err(not(format!("unknown compression {other:?}"))),
        };
        let key = match key {
            "-" => None,
            fp if fp.len() == 16 && fp.bytes().all(|b| b.is_ascii_hexdigit()) => Some(fp.to_owned()),
            other => return Err(not(format!("key fingerprint {other:?}"))),
        };
        Ok((Header { zstd, key }, end + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip() {
        for h in [Header { zstd: true, key: Some("0123456789abcdef".into()) }, Header { zstd: false, key: None }] {
            let mut bytes = h.to_line().into_bytes();
            let body_at = bytes.len();
            bytes.extend_from_slice(b"body");
            assert_eq!(Header::parse(&bytes, "o").unwrap(), (h, body_at));
        }
    }

    #[test]
    fn a_plain_file_a_newer_framing_or_a_bad_field_is_refused_naming_the_object() {
        let refused = |bytes: &[u8]| Header::parse(bytes, "ks/t/nb-1-big-Data.db").unwrap_err().to_string();
        assert!(refused(b"").contains("it is empty"));
        assert!(refused(b"\x00\x01binary sstable bytes without a newline").contains("no header line"));
        assert!(refused(b"{\"format\":\"x\"}\n").contains("ks/t/nb-1-big-Data.db"));
        assert!(refused(b"cassette-object 2 zstd -\n").contains("upgrade cassette"));
        assert!(refused(b"cassette-object 1 lz4 -\n").contains("unknown compression"));
        assert!(refused(b"cassette-object 1 zstd ../../etc\n").contains("fingerprint"));
    }
}
