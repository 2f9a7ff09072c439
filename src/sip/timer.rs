//! An ordered set of deadlines owned by the state it ends: one heap per
//! layer instead of a task per timer. Cancelled timers are not removed;
//! their owner checks on firing whether they still apply.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// A min-heap of (deadline, payload).
pub struct TimerHeap<T> {
    heap: BinaryHeap<Reverse<(Instant, u64, Slot<T>)>>,
    seq: u64,
}

// Wrapper so the payload takes no part in ordering.
struct Slot<T>(T);

impl<T> PartialEq for Slot<T> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl<T> Eq for Slot<T> {}
impl<T> PartialOrd for Slot<T> {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl<T> Ord for Slot<T> {
    fn cmp(&self, _: &Self) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }
}

impl<T> Default for TimerHeap<T> {
    fn default() -> Self {
        TimerHeap {
            heap: BinaryHeap::new(),
            seq: 0,
        }
    }
}

impl<T> TimerHeap<T> {
    /// Schedules `item` at `at`.
    pub fn add(&mut self, at: Instant, item: T) {
        self.seq += 1;
        self.heap.push(Reverse((at, self.seq, Slot(item))));
    }

    /// Takes the next item due at or before `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<T> {
        if self
            .heap
            .peek()
            .is_some_and(|Reverse((at, _, _))| *at <= now)
        {
            self.heap.pop().map(|Reverse((_, _, Slot(t)))| t)
        } else {
            None
        }
    }

    /// Number of pending timers (including cancelled ones).
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether no timer is pending.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn pops_in_deadline_order_and_only_when_due() {
        let t0 = Instant::now();
        let mut h = TimerHeap::default();
        h.add(t0 + Duration::from_millis(20), "b");
        h.add(t0 + Duration::from_millis(10), "a");
        assert_eq!(h.pop_due(t0), None);
        assert_eq!(h.pop_due(t0 + Duration::from_millis(30)), Some("a"));
        assert_eq!(h.pop_due(t0 + Duration::from_millis(30)), Some("b"));
    }
}
