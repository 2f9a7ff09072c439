//! A hash map split into shards that grow one at a time, for the tables
//! the SIP thread keeps per transaction, dialog and call.
//!
//! Why: a single table doubles in one step, moving every entry while the
//! thread that answers SIP waits. At 4,000 calls/s the transaction tables
//! hold about a hundred thousand entries (each lingers 32 s after its
//! final response, RFC 3261 Timers J, K, L and M), and one doubling held
//! every datagram for 20-35 ms: the p99 of INVITE->200 was set by those
//! pauses alone (docs/benchmarks.md, issue 12, seventh round). Sixty-four
//! shards keyed by bits of the same hash fill evenly, so each doubling
//! moves a sixty-fourth of the entries, and the shards cross their
//! thresholds at different inserts instead of all at once.

use std::hash::{BuildHasher, Hash};

use hashbrown::hash_table::{Entry, HashTable};
use hashbrown::Equivalent;

const SHARDS: usize = 64;

/// A map of `K` to `V` hashed by `S`, in [`SHARDS`] tables.
pub struct Sharded<K, V, S> {
    shards: Box<[HashTable<(K, V)>; SHARDS]>,
    hasher: S,
    len: usize,
}

impl<K, V, S: Default> Default for Sharded<K, V, S> {
    fn default() -> Self {
        Sharded {
            shards: Box::new(std::array::from_fn(|_| HashTable::new())),
            hasher: S::default(),
            len: 0,
        }
    }
}

// The shard comes from bits 32..38 of the hash: the table inside uses the
// low bits for the bucket and the top seven for its tag, and keys sharing
// either would crowd a shard's buckets or tags.
fn shard(hash: u64) -> usize {
    (hash >> 32) as usize % SHARDS
}

impl<K: Hash + Eq, V, S: BuildHasher> Sharded<K, V, S> {
    /// Entries in all shards.
    pub fn len(&self) -> usize {
        self.len
    }

    /// No entries.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn hash<Q: Hash + ?Sized>(&self, q: &Q) -> u64 {
        self.hasher.hash_one(q)
    }

    /// The value of `k`.
    pub fn get<Q>(&self, k: &Q) -> Option<&V>
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        let h = self.hash(k);
        self.shards[shard(h)]
            .find(h, |e| k.equivalent(&e.0))
            .map(|e| &e.1)
    }

    /// The value of `k`, to change.
    pub fn get_mut<Q>(&mut self, k: &Q) -> Option<&mut V>
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        let h = self.hash(k);
        self.shards[shard(h)]
            .find_mut(h, |e| k.equivalent(&e.0))
            .map(|e| &mut e.1)
    }

    /// Whether `k` has a value.
    pub fn contains_key<Q>(&self, k: &Q) -> bool
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        self.get(k).is_some()
    }

    /// Sets the value of `k`, returning the one it replaces.
    pub fn insert(&mut self, k: K, v: V) -> Option<V> {
        let h = self.hash(&k);
        let hasher = &self.hasher;
        match self.shards[shard(h)].entry(h, |e| e.0 == k, |e| hasher.hash_one(&e.0)) {
            Entry::Occupied(mut o) => Some(std::mem::replace(&mut o.get_mut().1, v)),
            Entry::Vacant(slot) => {
                slot.insert((k, v));
                self.len += 1;
                None
            }
        }
    }

    /// The value of `k`, made by `make` if there is none.
    pub fn get_or_insert_with(&mut self, k: K, make: impl FnOnce() -> V) -> &mut V {
        let h = self.hash(&k);
        let hasher = &self.hasher;
        let entry = match self.shards[shard(h)].entry(h, |e| e.0 == k, |e| hasher.hash_one(&e.0)) {
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(slot) => {
                self.len += 1;
                slot.insert((k, make())).into_mut()
            }
        };
        &mut entry.1
    }

    /// Takes the value of `k` out.
    pub fn remove<Q>(&mut self, k: &Q) -> Option<V>
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        let h = self.hash(k);
        let found = self.shards[shard(h)].find_entry(h, |e| k.equivalent(&e.0));
        let ((_, v), _) = found.ok()?.remove();
        self.len -= 1;
        Some(v)
    }

    /// Keeps the entries for which `keep` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        // Most shards of a small map are empty; a walk of each would be a
        // fixed cost on every call that ends.
        for s in self.shards.iter_mut().filter(|s| !s.is_empty()) {
            s.retain(|e| keep(&e.0, &mut e.1));
        }
        self.len = self.shards.iter().map(HashTable::len).sum();
    }

    /// All entries, in no order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.shards
            .iter()
            .filter(|s| !s.is_empty())
            .flat_map(|s| s.iter().map(|e| (&e.0, &e.1)))
    }

    /// All entries, values changeable, in no order.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&K, &mut V)> {
        self.shards
            .iter_mut()
            .filter(|s| !s.is_empty())
            .flat_map(|s| s.iter_mut().map(|e| (&e.0, &mut e.1)))
    }

    /// All keys, in no order.
    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.iter().map(|(k, _)| k)
    }

    /// All values, in no order.
    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.iter().map(|(_, v)| v)
    }
}

#[cfg(test)]
mod tests {
    use super::Sharded;
    use crate::ids::Keyed;

    type Map = Sharded<String, u32, Keyed>;

    #[test]
    fn behaves_as_a_map() {
        let mut m = Map::default();
        assert!(m.is_empty());
        for i in 0..10_000u32 {
            assert_eq!(m.insert(format!("z9hG4bK{i}"), i), None);
        }
        assert_eq!(m.insert("z9hG4bK7".into(), 70), Some(7));
        assert_eq!(m.len(), 10_000);
        assert_eq!(m.get("z9hG4bK7"), Some(&70));
        assert!(m.contains_key("z9hG4bK9999"));
        assert!(!m.contains_key("z9hG4bK10000"));
        *m.get_mut("z9hG4bK8").expect("present") += 1;
        assert_eq!(m.get("z9hG4bK8"), Some(&9));
        assert_eq!(m.remove("z9hG4bK8"), Some(9));
        assert_eq!(m.remove("z9hG4bK8"), None);
        assert_eq!(m.len(), 9_999);
        *m.get_or_insert_with("new".into(), || 1) += 1;
        *m.get_or_insert_with("new".into(), || 100) += 1;
        assert_eq!(m.get("new"), Some(&3));
        m.retain(|_, v| *v % 2 == 0);
        assert_eq!(m.len(), m.iter().count());
        assert!(m.values().all(|v| v % 2 == 0));
        assert_eq!(m.keys().count(), 5_000);
    }

    #[test]
    fn an_insert_grows_at_most_one_shard_and_moves_a_small_part() {
        // What the shards are for: the entries one insert may move (those
        // of the shard that doubles) stay a small part of the map.
        let mut m = Map::default();
        let caps = |m: &Map| m.shards.iter().map(|s| s.capacity()).collect::<Vec<_>>();
        let mut before = caps(&m);
        let mut most_moved = 0;
        for i in 0..100_000u32 {
            m.insert(format!("z9hG4bK-{i}-0"), i);
            let after = caps(&m);
            let grown: Vec<usize> = (0..before.len())
                .filter(|&s| after[s] != before[s])
                .collect();
            assert!(grown.len() <= 1, "insert {i} grew shards {grown:?}");
            if let Some(&s) = grown.first() {
                most_moved = most_moved.max(m.shards[s].len());
            }
            before = after;
        }
        assert!(most_moved < 100_000 / 32, "one growth moved {most_moved}");
    }

    #[test]
    fn entries_spread_over_every_shard() {
        // A shard left empty or crowded would bring back the one big
        // doubling the shards exist to avoid.
        let mut m = Map::default();
        for i in 0..64_000u32 {
            m.insert(format!("{i}-13533@127.0.0.1"), i);
        }
        let sizes: Vec<usize> = m.shards.iter().map(|s| s.len()).collect();
        let (lo, hi) = (sizes.iter().min(), sizes.iter().max());
        assert!(lo > Some(&800) && hi < Some(&1200), "{sizes:?}");
        let ids = {
            let mut ids = crate::ids::IdMap::<()>::default();
            (0..64_000u64).for_each(|i| {
                ids.insert(i, ());
            });
            ids.shards.iter().map(|s| s.len()).collect::<Vec<_>>()
        };
        assert!(ids.iter().all(|n| (800..1200).contains(n)), "{ids:?}");
    }
}
