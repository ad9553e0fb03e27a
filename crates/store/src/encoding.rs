//! How a repository's format object and the key file given turn into the codec its objects
//! are written and read with; any disagreement between them is refused before anything is
//! read or written.

use std::sync::Arc;

use cassette_format::encoding::RepositoryEncoding;
use cassette_seal::{Codec, Keyring, SealError};

/// The codec of a repository encoded with `encoding`, given the key file's `keyring`; `None`
/// for a plain repository (and no key file).
pub(crate) fn codec_for(
    encoding: &RepositoryEncoding,
    keyring: Option<Arc<Keyring>>,
    location: &str,
) -> Result<Option<Codec>, SealError> {
    let disagrees = |detail: &str| SealError::Disagrees { location: location.to_owned(), detail: detail.to_owned() };
    let level = encoding.compression.as_ref().map(|c| c.level);
    match (&encoding.encryption, &keyring) {
        (None, Some(_)) => Err(disagrees(
            "this repository is not encrypted, and a key file was given: give no key file, or back up into a new repository made with `cassette repo init --encrypt`",
        )),
        (Some(e), None) => Err(SealError::KeyMissing {
            what: format!("the encrypted repository {location}"),
            wanted: e.key.clone(),
            held: "no key".into(),
        }),
        (Some(e), Some(_)) => Ok(Some(Codec::new(level, Some(&e.key), keyring)?)),
        (None, None) if level.is_some() => Ok(Some(Codec::new(level, None, None)?)),
        (None, None) => Ok(None),
    }
}
