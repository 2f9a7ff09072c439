//! The call policy on a database that nodes share. A call on a counted
//! binding holds a use from its INVITE (one conditional statement, so
//! nobody rings for a call over `max_calls`: the one round trip a counted
//! call makes), leases talk time from the database in chunks, and settles
//! its hold at the end, in the writer's batch: used if it was answered,
//! given back if not. A dead node's holds count as used (never a free
//! call), settled by the node that settles its calls.

use std::time::Duration;

use crate::b2bua::policy::{CallId, Limit, Plan};
use crate::b2bua::EndReason;
use crate::bindings::conditions::lease;
use crate::store::{Answered, Ask, Outcome, Reserve, Settle};
use crate::time::Now;

use super::{CallState, Masking};

impl Masking {
    /// Asks the database for a new call's hold when its binding counts:
    /// the plan waits on the ticket.
    pub(super) fn reserve(&mut self, id: CallId, plan: &mut Plan, call: &mut CallState, now: Now) {
        if !self.cfg.shared_store || !self.bindings.shared_count(call.binding) {
            return;
        }
        let Some(limits) = self.bindings.counted_limits(call.binding, now.unix()) else {
            return;
        };
        let key = self.live_key(id);
        let ticket = self.store.ask_now(Ask::Reserve(Reserve {
            id: call.binding,
            limits,
            at: now.unix(),
            hold: Some(key.clone()),
            instance: self.cfg.instance.clone(),
            want: lease(u64::MAX, call.max_secs, 0),
        }));
        plan.hold = Some(ticket);
        call.hold = Some(key);
        call.asked = Some(ticket);
    }

    /// The database answered a held offer: bridge it with the talk time
    /// it leased, or refuse it with the limit's status.
    pub(super) fn reserved(
        &mut self,
        call: &mut CallState,
        now: Now,
    ) -> Result<Option<Duration>, (u16, String)> {
        let Some(ticket) = call.asked.take() else {
            return Ok(None);
        };
        let why = match self.store.durable().take_outcome(ticket) {
            Outcome::Done => return Ok(None),
            Outcome::Granted(g) => {
                self.bindings
                    .relet(call.binding, call.lease.unwrap_or(0), g);
                call.lease = Some(g);
                return Ok(Some(Duration::from_secs(g)));
            }
            // A reservation's refusal always says which limit.
            Outcome::Refused(why) => why.unwrap_or(crate::bindings::Refusal::CallsUsedUp),
            Outcome::Unavailable => crate::bindings::Refusal::StoreUnavailable,
        };
        // No hold was made: nothing to give back but this table's view.
        call.hold = None;
        self.bindings.settle(call.binding, false, now.unix());
        if let Some(l) = call.lease.take() {
            self.bindings.book_talk(call.binding, l, 0);
        }
        self.stats.refused += 1;
        let st = self.cfg.refusals.status(why).clone();
        let record = std::mem::take(&mut call.record);
        self.log_refusal(&call.caller, || record.x.clone(), why);
        self.store_refusal(record, st.status, why.name(), now);
        Err((st.status, st.reason))
    }

    /// A held call's lease ran out: ask the database for more, and go on
    /// once it answers. `None` when the database does not lease this
    /// call's time (no hold, or no budget any more).
    pub(super) fn extend_shared(&mut self, call: &mut CallState, held: u64) -> Option<Limit> {
        let hold = call.hold.clone().filter(|_| self.cfg.shared_store)?;
        let budget = self.bindings.counted_limits(call.binding, 0)?.budget;
        if budget == 0 {
            return None;
        }
        let Some(ticket) = call.asked.take() else {
            let want = lease(u64::MAX, call.max_secs, held);
            let ticket = self.store.ask_now(Ask::Lease {
                id: call.binding,
                hold,
                budget,
                want,
            });
            call.asked = Some(ticket);
            return Some(Limit::Wait(ticket));
        };
        Some(match self.store.durable().take_outcome(ticket) {
            Outcome::Granted(g) => {
                self.bindings.relet(call.binding, 0, g);
                call.lease = Some(held + g);
                Limit::Until(Duration::from_secs(held + g))
            }
            Outcome::Unavailable => Limit::End(EndReason::NotCounted),
            Outcome::Done | Outcome::Refused(_) => {
                tracing::info!("talk-time budget spent (shared count)");
                Limit::End(EndReason::TalkTimeUsedUp)
            }
        })
    }

    /// What a call's end gives back to the shared count: its hold (a use
    /// if it was answered at unix ms `answered`), and the talk booked.
    /// `None` when there is nothing to say.
    pub(super) fn settle_shared(
        &self,
        call: &mut CallState,
        talk: u64,
        answered: Option<i64>,
    ) -> Option<Settle> {
        let hold = call.hold.take();
        let answered = answered.filter(|_| hold.is_some()).map(|ms| {
            let at = ms.div_euclid(1000);
            let today = self
                .bindings
                .counted_limits(call.binding, at)
                .map_or(-1, |c| c.today);
            Answered { today, at }
        });
        (hold.is_some() || talk > 0).then_some(Settle {
            id: call.binding,
            hold,
            talk,
            answered,
        })
    }
}
