//! What the call path learns back from the writer thread: which of its
//! tickets are on disk, and how the database answered what it asked of
//! the counts that nodes share.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// How the database answered an [`Ask`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Done (a hold reserved without talk time).
    Done,
    /// Done, with these seconds of talk time leased.
    Granted(u64),
    /// A limit is reached (which one, when the database said).
    Refused(Option<crate::bindings::Refusal>),
    /// The database could not answer: never a free call.
    Unavailable,
}

/// What the writer has made durable of the counters the call path waits
/// for: tickets are handed out in order, and every ticket up to
/// `committed` is on disk. The call path is told through `wake`.
#[derive(Default)]
pub struct Durable {
    pub(super) issued: AtomicU64,
    pub(super) committed: AtomicU64,
    /// How asks were answered, until taken.
    outcomes: Mutex<Told>,
    /// Notified after each commit that made tickets durable.
    pub wake: tokio::sync::Notify,
}

impl Durable {
    /// Every ticket up to this one is on disk.
    pub fn committed(&self) -> u64 {
        self.committed.load(Ordering::Acquire)
    }

    /// How the ask of `ticket` was answered (told once; a committed
    /// ticket told nothing else is [`Outcome::Done`]).
    pub fn take_outcome(&self, ticket: u64) -> Outcome {
        self.outcomes
            .lock()
            .ok()
            .and_then(|mut r| r.answers.remove(&ticket))
            .unwrap_or(Outcome::Done)
    }

    /// Nobody will take the answer to `ticket` (its call ended while it
    /// was asked): it is dropped now, or when it comes.
    pub fn forget(&self, ticket: u64) {
        if let Ok(mut r) = self.outcomes.lock() {
            if r.answers.remove(&ticket).is_none() && ticket > r.told {
                r.unwanted.insert(ticket);
            }
        }
    }

    /// Whether the ask of `ticket` was refused, for whatever reason.
    pub fn take_refused(&self, ticket: u64) -> bool {
        matches!(
            self.take_outcome(ticket),
            Outcome::Refused(_) | Outcome::Unavailable
        )
    }

    pub(super) fn tell(&self, ticket: u64, o: Outcome) {
        if let Ok(mut r) = self.outcomes.lock() {
            r.told = r.told.max(ticket);
            if !r.unwanted.remove(&ticket) && o != Outcome::Done {
                r.answers.insert(ticket, o);
            }
        }
    }
}

/// How asks were answered (other than a plain [`Outcome::Done`]), and the
/// asks whose answers nobody will take (their call ended first).
#[derive(Default)]
struct Told {
    answers: HashMap<u64, Outcome>,
    unwanted: HashSet<u64>,
    /// The highest ticket told (asks are answered in their order).
    told: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_nobody_takes_is_dropped_before_or_after_it_comes() {
        let d = Durable::default();
        d.tell(1, Outcome::Granted(10));
        d.forget(1);
        assert_eq!(d.take_outcome(1), Outcome::Done, "dropped once come");
        d.forget(2);
        d.tell(2, Outcome::Granted(10));
        d.tell(3, Outcome::Refused(None));
        assert_eq!(d.take_outcome(2), Outcome::Done, "dropped as it came");
        assert_eq!(d.take_outcome(3), Outcome::Refused(None), "others kept");
        d.forget(4);
        d.tell(4, Outcome::Done);
        let told = d.outcomes.lock().expect("lock");
        assert!(told.answers.is_empty() && told.unwanted.is_empty());
    }
}
