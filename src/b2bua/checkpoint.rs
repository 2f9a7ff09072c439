//! Checkpoints of live calls for crash safety: every few seconds the
//! engine hands the store writer each live call's record so far and talk
//! time so far; a call's end removes its row in the same commit that books
//! it. After a crash, the rows left are booked at the next start, so a
//! crash loses at most [`EVERY`] (plus a commit) of a live call's talk time.

use std::time::{Duration, Instant};

use super::call::Phase;
use super::Engine;
use crate::store::live::LiveCall;

/// How often live calls are checkpointed.
pub const EVERY: Duration = Duration::from_secs(2);

impl Engine {
    /// The checkpoint key of call `id`.
    pub(super) fn live_key(&self, id: u64) -> String {
        format!("{}-{id}", self.cfg.instance)
    }

    /// Hands the live calls to the store writer (nothing when there are
    /// none now and were none last time).
    pub fn checkpoint(&mut self, now: Instant) {
        let at = crate::time::now_ms();
        let live: Vec<LiveCall> = self
            .calls
            .iter()
            .filter(|(_, c)| c.phase != Phase::Ended)
            .map(|(id, c)| {
                let mut record = c.record.clone();
                record.caller = c.caller.as_str().to_string();
                record.end_at = Some(at);
                let talk = c.answered.filter(|_| c.confirmed).map_or(0, |t| {
                    let secs = now.saturating_duration_since(t).as_secs();
                    c.lease.map_or(secs, |l| secs.min(l))
                });
                if !c.confirmed {
                    record.answer_at = None;
                }
                LiveCall {
                    key: self.live_key(*id),
                    record,
                    talk_secs: talk,
                }
            })
            .collect();
        if live.is_empty() && !self.checkpointed {
            return;
        }
        self.checkpointed = !live.is_empty();
        self.store.live(self.cfg.instance.clone(), live);
    }
}
