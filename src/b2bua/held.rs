//! What waits on the policy's storage: answers held until the use they
//! commit to is durable, offers held until their use is reserved (nobody
//! rings before), and limits that asked the store for more time.

use crate::sip::message::Msg;
use crate::sip::transaction::TxKey;
use crate::sip::Peer;
use crate::time::Now;

use super::policy::{Plan, Policy};
use super::{CallId, Engine};

/// A callee's 2xx held back from the caller until its ticket is durable.
pub(super) struct HeldAnswer {
    pub ticket: u64,
    pub call: CallId,
    pub fork: usize,
    pub answer: Msg,
}

/// A decided INVITE held back from the callee until its ticket is
/// durable.
pub(super) struct HeldOffer<C> {
    pub ticket: u64,
    pub id: CallId,
    pub invite: Msg,
    pub src: Peer,
    pub key: TxKey,
    pub plan: Plan,
    pub state: C,
}

impl<P: Policy> Engine<P> {
    /// Goes on with what waited on the policy's storage up to ticket
    /// `upto` (it is durable now): answers held by
    /// [`Policy::hold_answer`] are relayed, offers held by [`Plan::hold`]
    /// are bridged or refused, and limits that said [`Wait`](super::policy::Limit::Wait) are
    /// asked again. `refused` says which answers' tickets the store
    /// refused: their callers get the policy's refusal instead, and their
    /// callees are hung up.
    pub fn release_answers(&mut self, upto: u64, refused: &dyn Fn(u64) -> bool, now: Now) {
        let mut i = 0;
        while i < self.held.len() {
            if self.held[i].ticket <= upto {
                let h = self.held.swap_remove(i);
                if refused(h.ticket) {
                    self.refuse_answered(h.call, now);
                } else {
                    self.relay_to_a_invite(h.call, h.fork, &h.answer, now);
                }
            } else {
                i += 1;
            }
        }
        let (ready, kept) = std::mem::take(&mut self.held_offers)
            .into_iter()
            .partition(|h| h.ticket <= upto);
        self.held_offers = kept;
        for h in ready {
            self.release_offer(h, now);
        }
        let (ready, kept) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|(t, _)| *t <= upto);
        self.waiting = kept;
        for (_, id) in ready {
            self.on_limit(id, now);
        }
    }
}
