//! Shares of something held at once (connections, requests in progress),
//! counted per key (a source address, a tenant): a key holds at most its
//! share, and each place taken is given back when its `Share` is dropped.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

/// Per-key counts of places held, each key at most `max`.
pub struct Shares<K> {
    max: usize,
    counts: Arc<Mutex<HashMap<K, usize>>>,
}

/// One place held by a key; dropped, it is given back.
pub struct Share<K: Eq + Hash> {
    key: K,
    counts: Arc<Mutex<HashMap<K, usize>>>,
}

impl<K: Eq + Hash + Clone> Shares<K> {
    /// Shares of at most `max` (at least 1) places per key.
    pub fn new(max: usize) -> Shares<K> {
        Shares {
            max: max.max(1),
            counts: Arc::default(),
        }
    }

    /// A place for `key`, unless it holds its share already.
    pub fn take(&self, key: K) -> Option<Share<K>> {
        let mut c = self.counts.lock().ok()?;
        let n = c.entry(key.clone()).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(Share {
            key,
            counts: Arc::clone(&self.counts),
        })
    }
}

impl<K: Eq + Hash> Drop for Share<K> {
    fn drop(&mut self) {
        if let Ok(mut c) = self.counts.lock() {
            if let Some(n) = c.get_mut(&self.key) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    c.remove(&self.key);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_holds_its_share_and_gives_it_back() {
        let s = Shares::new(2);
        let a = s.take(1).expect("first");
        let _b = s.take(1).expect("second");
        assert!(s.take(1).is_none());
        assert!(s.take(2).is_some(), "another key has its own share");
        drop(a);
        assert!(s.take(1).is_some(), "one given back, one more taken");
    }
}
