//! Random identifiers, shared by every layer: SIP tags, branches and
//! Call-IDs, instance ids, API keys, webhook secrets and event ids. Lives
//! at the bottom so that nothing above SIP has to import the SIP layer for
//! a random string. The maps keyed by such strings and by our own
//! sequential ids live here too, split in shards ([`Sharded`]).

use rand::Rng;

mod sharded;
pub use sharded::Sharded;

const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// A random token of 16 chars of [0-9a-z] (about 82 bits) from the
/// thread's CSPRNG.
pub fn token() -> String {
    // Two 64-bit draws read as 8 base-36 digits each (36^8 is about
    // 2^41, so the digits are uniform to within 2^-22) instead of a draw
    // per character.
    let mut rng = rand::rng();
    let mut s = String::with_capacity(16);
    for _ in 0..2 {
        let mut n: u64 = rng.random();
        for _ in 0..8 {
            s.push(ALPHABET[(n % 36) as usize] as char);
            n /= 36;
        }
    }
    s
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

/// A map keyed by one of our own sequential ids (calls, media). Such keys
/// never come from the network, so the keyed SipHash that guards maps of
/// peers' strings against collision floods buys nothing here; one multiply
/// spreads a counter over the table for a fraction of its cost.
pub type IdMap<V> = Sharded<u64, V, std::hash::BuildHasherDefault<IdHash>>;

/// A map keyed by what peers send (branches, Call-IDs, tags, numbers).
pub type WireMap<K, V> = Sharded<K, V, Keyed>;

/// The hasher of [`WireMap`]: aHash under keys drawn once per process. A
/// peer who cannot learn the keys cannot aim its strings at one bucket,
/// which is all std's keyed SipHash gives such maps, at a fraction of the
/// cost (SipHash was about 5% of a call's instructions).
#[derive(Clone)]
pub struct Keyed(ahash::RandomState);

impl Default for Keyed {
    fn default() -> Keyed {
        static KEYS: std::sync::OnceLock<[u64; 4]> = std::sync::OnceLock::new();
        let k = KEYS.get_or_init(rand::random);
        Keyed(ahash::RandomState::with_seeds(k[0], k[1], k[2], k[3]))
    }
}

impl std::hash::BuildHasher for Keyed {
    type Hasher = ahash::AHasher;

    fn build_hasher(&self) -> ahash::AHasher {
        self.0.build_hasher()
    }
}

/// The hasher of [`IdMap`]: Fibonacci hashing of a u64.
#[derive(Default, Clone, Copy)]
pub struct IdHash(u64);

impl std::hash::Hasher for IdHash {
    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are hashed; anything else still hashes (FNV-1a).
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn finish(&self) -> u64 {
        self.0
    }
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

    #[test]
    fn sequential_ids_spread_over_the_table() {
        use std::hash::BuildHasher;
        let b = std::hash::BuildHasherDefault::<super::IdHash>::default();
        // The table picks a bucket from the low bits and a tag from the top
        // seven: both must vary for counters.
        let low: std::collections::HashSet<u64> = (0..64u64).map(|i| b.hash_one(i) & 63).collect();
        let top: std::collections::HashSet<u64> = (0..64u64).map(|i| b.hash_one(i) >> 57).collect();
        assert!(low.len() > 32, "low bits: {}", low.len());
        assert!(top.len() > 32, "top bits: {}", top.len());
        let mut m = super::IdMap::default();
        for i in 0..1000u64 {
            m.insert(i, i * 2);
        }
        assert!((0..1000u64).all(|i| m.get(&i) == Some(&(i * 2))));
    }
}
