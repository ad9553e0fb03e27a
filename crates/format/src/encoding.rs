//! How a repository's objects are encoded: optional zstd compression and optional age
//! encryption, chosen once per repository (`cassette repo init`) and recorded in the repository
//! format file; what each stored file was encoded with is recorded in its manifest entry.
//!
//! The bytes themselves (framing, age, zstd) are `cassette-seal`'s; this module only says what
//! is written about them, so every store and reader agrees on it.

use serde::{Deserialize, Serialize};

/// The one encryption scheme: age with X25519 recipients (<https://age-encryption.org/v1>).
pub const AGE_X25519: &str = "age-x25519";
/// The one compression algorithm.
pub const ZSTD: &str = "zstd";

/// What a repository encodes its objects with. Both parts absent: a plain repository (no
/// format file section is written, and the repository stays at version 1).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepositoryEncoding {
    /// zstd, when the repository compresses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<Compression>,
    /// age, when the repository encrypts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<Encryption>,
}

impl RepositoryEncoding {
    /// True when objects are stored as they are.
    pub fn is_plain(&self) -> bool {
        self.compression.is_none() && self.encryption.is_none()
    }
}

/// Compression of a repository's objects.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compression {
    /// Always [`ZSTD`].
    pub algorithm: String,
    /// zstd's level (1 to 19).
    pub level: i32,
}

/// Encryption of a repository's objects.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Encryption {
    /// Always [`AGE_X25519`].
    pub scheme: String,
    /// The fingerprint of the key new objects are encrypted for (see `cassette-seal`: a hash of
    /// the public key, never the key).
    pub key: String,
    /// Every key the repository has used, oldest first: objects stored under an older one need
    /// that key's identity to be read.
    pub keys: Vec<KeyRecord>,
}

impl Encryption {
    /// Makes `key` the key of new objects from `since`, keeping every earlier one on record.
    pub fn rotate_to(&mut self, key: &str, since: chrono::DateTime<chrono::Utc>) {
        self.key = key.to_owned();
        self.keys.push(KeyRecord { fingerprint: key.to_owned(), since });
    }
}

/// One key a repository has used.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// Its fingerprint.
    pub fingerprint: String,
    /// When it became the key of new objects.
    pub since: chrono::DateTime<chrono::Utc>,
}

/// How one stored file is encoded, in its manifest entry. Absent: stored as it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Encoded {
    /// Whether the bytes were compressed (a file that does not shrink is not).
    pub zstd: bool,
    /// The fingerprint of the key it is encrypted for, if encrypted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The stored object's size in bytes (the entry's `size` is the file's own).
    pub stored_size: u64,
}
