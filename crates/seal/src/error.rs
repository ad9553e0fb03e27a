//! Why an object could not be encoded or decoded, in words that say what to do.

/// An encoding or decoding failure; `what` names the object or file.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The key file could not be read or holds no usable identity.
    #[error("cannot use the key file {path}: {detail}")]
    KeyFile {
        /// The key file.
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// The object is encrypted for a key the keyring lacks.
    #[error(
        "{what} is encrypted for key {wanted}, and the key file holds only {held}: give the key file with the identity of key {wanted} (--key-file)"
    )]
    KeyMissing {
        /// The object.
        what: String,
        /// The fingerprint it needs.
        wanted: String,
        /// The fingerprints the keyring holds, or "no key".
        held: String,
    },
    /// The object does not start with a header this build reads.
    #[error("{what} is not an object of an encoded cassette repository ({detail}): it was replaced or damaged")]
    NotEncoded {
        /// The object.
        what: String,
        /// What was found.
        detail: String,
    },
    /// The key file given and the repository's encryption do not agree (a key for a plain
    /// repository, none for an encrypted one, a new repository not made with `repo init`).
    #[error("{location}: {detail}")]
    Disagrees {
        /// The repository.
        location: String,
        /// What disagrees, and what to do.
        detail: String,
    },
    /// Decryption or decompression failed: the bytes were changed or cut short.
    #[error(
        "{what} cannot be decoded ({detail}): it was changed or truncated after it was stored; restore from another backup"
    )]
    Damaged {
        /// The object.
        what: String,
        /// age's or zstd's words.
        detail: String,
    },
}

impl SealError {
    /// Whether the object itself is bad (damaged, or not an encoded object), rather than the
    /// key missing.
    pub fn is_damage(&self) -> bool {
        matches!(self, SealError::Damaged { .. } | SealError::NotEncoded { .. })
    }
}
