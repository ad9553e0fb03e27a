//! Keys: an age identity file's X25519 identities, and the fingerprints repositories record.

use std::path::Path;
use std::str::FromStr;

use age::secrecy::ExposeSecret;
use age::x25519::{Identity, Recipient};

use crate::SealError;

/// The fingerprint of a public key: the first 16 hex digits of the BLAKE3 of its `age1…` text.
/// It names a key in the repository format file, object headers and messages without giving
/// the key itself.
pub fn fingerprint(recipient: &Recipient) -> String {
    blake3::hash(recipient.to_string().as_bytes()).to_hex()[..16].to_owned()
}

/// The identities of an age identity file (`age-keygen` output: `AGE-SECRET-KEY-1…` lines,
/// `#` comments). Its `Debug` shows fingerprints only.
pub struct Keyring {
    keys: Vec<(String, Identity)>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring").field("fingerprints", &self.fingerprints()).finish()
    }
}

impl Keyring {
    /// Reads the identity file at `path`.
    pub fn load(path: &Path) -> Result<Keyring, SealError> {
        let bad = |detail: String| SealError::KeyFile { path: path.display().to_string(), detail };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        Keyring::parse(&text).map_err(bad)
    }

    /// Parses an identity file's text.
    pub fn parse(text: &str) -> Result<Keyring, String> {
        let mut keys = Vec::new();
        for (n, line) in text.lines().enumerate().map(|(n, l)| (n + 1, l.trim())) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            // Only the line number: the line itself is a secret.
            let identity = Identity::from_str(line)
                .map_err(|_| format!("line {n} is not an age X25519 identity (AGE-SECRET-KEY-1…)"))?;
            keys.push((fingerprint(&identity.to_public()), identity));
        }
        if keys.is_empty() {
            return Err("it holds no identity (make one with `age-keygen -o FILE`)".into());
        }
        Ok(Keyring { keys })
    }

    /// A keyring of one new identity (for `cassette repo init` and tests), and its file text.
    pub fn generate() -> (Keyring, String) {
        let identity = Identity::generate();
        let text = format!(
            "# created by cassette; public key: {}\n{}\n",
            identity.to_public(),
            identity.to_string().expose_secret()
        );
        (Keyring { keys: vec![(fingerprint(&identity.to_public()), identity)] }, text)
    }

    /// One keyring of every identity of `rings`, in order (a repeated `--key-file`).
    pub fn join<'a>(rings: impl IntoIterator<Item = &'a Keyring>) -> Keyring {
        let mut keys: Vec<(String, Identity)> = Vec::new();
        for (fp, identity) in rings.into_iter().flat_map(|r| r.keys.iter()) {
            if !keys.iter().any(|(f, _)| f == fp) {
                keys.push((fp.clone(), identity.clone()));
            }
        }
        Keyring { keys }
    }

    /// The fingerprints of its identities, in file order.
    pub fn fingerprints(&self) -> Vec<String> {
        self.keys.iter().map(|(f, _)| f.clone()).collect()
    }

    /// The public key of the identity with fingerprint `fp`.
    pub fn recipient(&self, fp: &str) -> Option<Recipient> {
        self.keys.iter().find(|(f, _)| f == fp).map(|(_, i)| i.to_public())
    }

    /// The identity with fingerprint `fp`.
    pub(crate) fn identity(&self, fp: &str) -> Option<&Identity> {
        self.keys.iter().find(|(f, _)| f == fp).map(|(_, i)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_identity_file_is_read_with_comments_and_several_keys() {
        let (a, text_a) = Keyring::generate();
        let (b, text_b) = Keyring::generate();
        let both = Keyring::parse(&format!("{text_a}\n# second\n{text_b}")).unwrap();
        let fps = both.fingerprints();
        assert_eq!(fps, [a.fingerprints()[0].clone(), b.fingerprints()[0].clone()]);
        assert_eq!(fps[0].len(), 16);
        assert!(both.recipient(&fps[1]).is_some() && both.recipient("0000000000000000").is_none());
        assert!(!format!("{both:?}").contains("AGE-SECRET-KEY"), "Debug must not show a secret");
    }

    #[test]
    fn joined_keyrings_hold_every_identity_once() {
        let (a, _) = Keyring::generate();
        let (b, _) = Keyring::generate();
        let joined = Keyring::join([&a, &b, &a]);
        assert_eq!(joined.fingerprints(), [a.fingerprints()[0].clone(), b.fingerprints()[0].clone()]);
    }

    #[test]
    fn a_file_without_identities_or_with_garbage_is_refused_without_echoing_it() {
        assert!(Keyring::parse("# nothing\n\n").unwrap_err().contains("no identity"));
        let err = Keyring::parse("AGE-SECRET-KEY-1NOTAKEY").unwrap_err();
        assert!(err.contains("line 1") && !err.contains("NOTAKEY"), "{err}");
    }
}
