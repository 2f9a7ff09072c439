//! Random identifiers, shared by every layer: SIP tags, branches and
//! Call-IDs, instance ids, API keys, webhook secrets and event ids. Lives
//! at the bottom so that nothing above SIP has to import the SIP layer for
//! a random string.

use rand::Rng;

const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// A random token of 16 chars of [0-9a-z] (about 82 bits) from the
/// thread's CSPRNG.
pub fn token() -> String {
    let mut rng = rand::rng();
    (0..16)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// A secret: `prefix` and two tokens (about 165 bits), for API keys,
/// webhook secrets and event ids.
pub fn secret(prefix: &str) -> String {
    format!("{prefix}{}{}", token(), token())
}

/// `prefix` and the first `len` (at most 16) chars of a token, for ids
/// that are shown, not secret.
pub fn short(prefix: &str, len: usize) -> String {
    let t = token();
    format!("{prefix}{}", &t[..len.min(t.len())])
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_are_lowercase_alphanumerics_and_differ() {
        let a = super::token();
        assert_eq!(a.len(), 16);
        assert!(a.bytes().all(|b| super::ALPHABET.contains(&b)));
        assert_ne!(a, super::token());
        assert_eq!(super::short("key_", 12).len(), 16);
        assert!(super::secret("smk_").starts_with("smk_"));
        assert_eq!(super::secret("smk_").len(), 36);
    }
}
