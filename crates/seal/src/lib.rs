//! Client-side encryption and compression of a repository's objects.
//!
//! An encoded object is one plain header line, then the body:
//!
//! ```text
//! cassette-object 1 <zstd|none> <key fingerprint|->\n
//! <age file (https://age-encryption.org/v1) of the body>   when a key is named
//! <zstd frame, or the bytes as they are>                    otherwise
//! ```
//!
//! The header names what a reader needs before it reads anything else: so a missing key is
//! refused naming the fingerprint it wants, and an operator can decode any object by hand
//! (`tail -n +2 OBJECT | age -d -i KEY | zstd -d`). Encryption is age's own (X25519 recipients,
//! ChaCha20-Poly1305 in 64 KiB chunks, a random file key per object): no cryptography here.
//!
//! - [`Keyring`]: the identities of an age identity file, with their [`fingerprint`]s.
//! - [`Header`]: the first line, written and parsed.
//! - [`Codec`]: encodes (bytes, or a stream through [`EncodingWriter`]) and decodes.

#![deny(missing_docs)]

mod codec;
mod error;
mod header;
mod keys;

pub use codec::{Codec, EncodingWriter, SAMPLE_LEN};
pub use error::SealError;
pub use header::{HEADER_MAGIC, Header, MAX_HEADER_LEN};
pub use keys::{Keyring, fingerprint};
