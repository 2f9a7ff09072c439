//! Checkpoints of live calls for crash safety: every [`EVERY`] the policy
//! tells the store writer which calls are new since the last checkpoint
//! (their record so far) and which were answered or leased more since, and
//! moves its heartbeat; a call's end removes its row in the commit that
//! books it. After a crash the rows left are booked at the next start with
//! talk time up to the last heartbeat, so a crash loses at most [`EVERY`]
//! (plus a commit) of a live call's talk time. A call shorter than
//! [`EVERY`] may end before any checkpoint sees it and costs nothing here.

use std::time::Duration;

use super::{CallState, Masking};
use crate::b2bua::policy::CallId;
use crate::store::live::{Checkpoint, LiveRow};
use crate::time::Now;

/// How often live calls are checkpointed.
pub const EVERY: Duration = Duration::from_secs(2);

/// A call's checkpoint key: unique over restarts and instances.
fn key(instance: &str, id: u64) -> String {
    format!("{instance}-{id}")
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
        for (id, c) in live {
            let answer = c.record.answer_at.filter(|_| c.confirmed);
            let state = (answer, c.lease);
            match self.checkpointed.insert(id, state) {
                Some(held) if held == state => {}
                Some(_) => rows.push(LiveRow::Changed {
                    key: key(&self.cfg.instance, id),
                    answer_at: answer,
                    lease: c.lease,
                }),
                None => {
                    let mut record = c.record.clone();
                    record.caller = c.caller.as_str().to_string();
                    record.answer_at = answer;
                    rows.push(LiveRow::New {
                        key: key(&self.cfg.instance, id),
                        record: Box::new(record),
                        lease: c.lease,
                    });
                }
            }
        }
        if rows.is_empty() && self.checkpointed.is_empty() {
            return;
        }
        self.store.live(Checkpoint {
            instance: self.cfg.instance.clone(),
            at: now.unix_ms,
            rows,
        });
    }
}
