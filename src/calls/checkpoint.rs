//! Checkpoints of live calls for crash safety: every [`EVERY`] the policy
//! tells the store writer which calls it sees for the second time (their
//! record so far) and which of those it wrote were answered or leased more
//! since, and moves its heartbeat; a call's end removes its row in the
//! commit that books it. After a crash the rows left are booked at the next
//! start with talk time up to the last heartbeat, so a crash loses at most
//! 2 x [`EVERY`] (plus a commit) of a live call's talk time before its
//! first row, [`EVERY`] after.
//!
//! Why the second sighting: most calls are short, and a call that ends
//! before its row is written costs the store nothing. Writing every call the
//! first checkpoint saw made half of all one-second calls write and delete
//! a row, and at thousands of calls a second each checkpoint was a burst of
//! thousands of rows behind the engine lock (issue 12).

use std::time::Duration;

use super::{CallState, Masking};
use crate::b2bua::policy::CallId;
use crate::store::live::{Checkpoint, LiveRow};
use crate::time::Now;

/// How often live calls are checkpointed.
pub const EVERY: Duration = Duration::from_secs(1);

/// A call's checkpoint key: unique over restarts and instances.
fn key(instance: &str, id: u64) -> String {
    format!("{instance}-{id}")
}

/// What the checkpoint remembers between its runs.
#[derive(Default)]
pub(super) struct Marks {
    /// Calls in the checkpoint, with the answer time and lease it holds.
    pub(super) checkpointed: crate::ids::IdMap<(Option<i64>, Option<u64>)>,
    /// Calls live at the last checkpoint that it did not write yet.
    pub(super) sighted: crate::ids::IdMap<()>,
    /// When the last checkpoint was taken.
    pub(super) last: Option<std::time::Instant>,
}

impl Masking {
    /// The checkpoint key of call `id`.
    pub(super) fn live_key(&self, id: CallId) -> String {
        key(&self.cfg.instance, id)
    }

    /// Hands what changed since the last checkpoint to the store writer
    /// (nothing at all when no call is live).
    pub(super) fn checkpoint(
        &mut self,
        live: &mut dyn Iterator<Item = (CallId, &CallState)>,
        now: Now,
    ) {
        let mut rows = Vec::new();
        let mut sighted = crate::ids::IdMap::default();
        for (id, c) in live {
            let answer = c.record.answer_at.filter(|_| c.confirmed);
            let state = (answer, c.lease);
            if !self.marks.checkpointed.contains_key(&id)
                && self.marks.sighted.remove(&id).is_none()
            {
                sighted.insert(id, ());
                continue;
            }
            match self.marks.checkpointed.insert(id, state) {
                Some(held) if held == state => {}
                Some(_) => rows.push(LiveRow::Changed {
                    key: key(&self.cfg.instance, id),
                    answer_at: answer,
                    lease: c.lease,
                }),
                None => {
                    let mut record = c.record.clone();
                    record.answer_at = answer;
                    rows.push(LiveRow::New {
                        key: key(&self.cfg.instance, id),
                        record: Box::new(record),
                        lease: c.lease,
                    });
                }
            }
        }
        // Those seen last time and gone now ended unwritten.
        self.marks.sighted = sighted;
        if rows.is_empty() && self.marks.checkpointed.is_empty() {
            return;
        }
        self.store.live(Checkpoint {
            instance: self.cfg.instance.clone(),
            at: now.unix_ms,
            rows,
        });
    }
}
