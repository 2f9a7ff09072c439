//! An ordered set of deadlines owned by the state it ends: one set per
//! layer instead of a task per timer. A timer can be cancelled by its key;
//! owners that do not bother check on firing whether it still applies.

use std::collections::BTreeMap;
use std::time::Instant;

/// Identifies a scheduled timer, for [`Timers::cancel`].
pub type TimerKey = (Instant, u64);

/// Deadlines in order, each with its payload.
pub struct Timers<T> {
    set: BTreeMap<TimerKey, T>,
    seq: u64,
}

impl<T> Default for Timers<T> {
    fn default() -> Self {
        Timers {
            set: BTreeMap::new(),
            seq: 0,
        }
    }
}

impl<T> Timers<T> {
    /// Schedules `item` at `at`.
    pub fn add(&mut self, at: Instant, item: T) -> TimerKey {
        self.seq += 1;
        let key = (at, self.seq);
        self.set.insert(key, item);
        key
    }

    /// Removes a timer that has not fired.
    pub fn cancel(&mut self, key: TimerKey) {
        self.set.remove(&key);
    }

    /// Takes the next item due at or before `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<T> {
        let entry = self.set.first_entry()?;
        if entry.key().0 <= now {
            Some(entry.remove())
        } else {
            None
        }
    }

    /// The earliest deadline, if any timer is pending.
    pub fn next(&self) -> Option<Instant> {
        self.set.first_key_value().map(|((at, _), _)| *at)
    }

    /// Number of pending timers.
    pub fn len(&self) -> usize {
        self.set.len()
    }

    /// Whether no timer is pending.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn pops_in_deadline_order_and_only_when_due() {
        let t0 = Instant::now();
        let mut h = Timers::default();
        h.add(t0 + Duration::from_millis(20), "b");
        h.add(t0 + Duration::from_millis(10), "a");
        assert_eq!(h.pop_due(t0), None);
        assert_eq!(h.next(), Some(t0 + Duration::from_millis(10)));
        assert_eq!(h.pop_due(t0 + Duration::from_millis(30)), Some("a"));
        assert_eq!(h.pop_due(t0 + Duration::from_millis(30)), Some("b"));
    }

    #[test]
    fn cancelled_timers_never_fire() {
        let t0 = Instant::now();
        let mut h = Timers::default();
        let k = h.add(t0, "x");
        h.cancel(k);
        assert!(h.is_empty());
        assert_eq!(h.pop_due(t0 + Duration::from_secs(1)), None);
    }
}
