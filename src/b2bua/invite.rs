//! Setting up a call: A's INVITE, our INVITE to B, B's answers relayed to A,
//! CANCEL from A (including CANCEL crossing B's 200), no-answer timeout.

use crate::ids::token;
use crate::sip::message::{Msg, RELAYED_HEADERS};
use crate::sip::transaction::{Incoming, TxKey};
use crate::sip::writer::{reason, Writer};
use crate::sip::{Method, Peer};
use crate::time::Now;

use super::call::{Call, Leg, PendingAck, Phase, Side};
use super::policy::{Decision, EndReason, Milestone, Offer, Policy};
use super::{CallId, CallTimer, Engine};

impl<P: Policy> Engine<P> {
    pub(super) fn on_invite(&mut self, m: Msg, src: Peer, now: Now) {
        let Incoming::New(key) = self.tx.on_request(&m, src, 0, now.mono) else {
            return;
        };
        let id = self.next_id;
        let offer = Offer {
            id,
            request: &m,
            source: src,
        };
        let own = if !self.accepting {
            let (status, reason) = self.cfg.unavailable.clone();
            Some((status, reason, "shutting down"))
        } else if m.max_forwards == Some(0) {
            Some((483, "Too Many Hops".to_string(), "max-forwards"))
        } else {
            None
        };
        let decision = match own {
            Some((status, reason, why)) => {
                self.policy.refused(&offer, status, why, now);
                Decision::Refuse {
                    status,
                    reason,
                    why,
                }
            }
            None => self.policy.decide(&offer, now),
        };
        let (plan, state) = match decision {
            Decision::Refuse {
                status,
                reason,
                why,
            } => {
                tracing::debug!(why, status, "refusing INVITE");
                let tag = token();
                self.respond_with(&key, status, &reason, Some(&tag), now);
                return;
            }
            Decision::Bridge(plan, state) => (plan, state),
        };
        self.next_id += 1;
        let me_a = self.me_for(&src);
        let me_b = self.me_for(&plan.target.peer);
        let a_tag = token();
        let a = Leg {
            call_id: m.call_id.clone(),
            local_tag: a_tag.clone(),
            local_hdr: format!("{};tag={a_tag}", m.to),
            remote_hdr: m.from.clone(),
            remote_tag: m.from_tag.clone(),
            local_cseq: 0,
            target: m
                .contact
                .clone()
                .unwrap_or_else(|| crate::sip::message::uri_of(&m.from).to_string()),
            route: m.record_route.clone(),
            peer: src,
            me: me_a,
            max_forwards: 70,
        };
        let b_tag = token();
        let target = plan.target.uri.clone();
        let mut b = Leg {
            call_id: token(),
            local_tag: b_tag.clone(),
            local_hdr: format!("<sip:{}@{me_b}>;tag={b_tag}", plan.from_user),
            remote_hdr: format!("<{target}>"),
            remote_tag: None,
            local_cseq: 0,
            target: target.clone(),
            route: Vec::new(),
            peer: plan.target.peer,
            me: me_b,
            // Decremented from A's so a routing loop through us ends.
            max_forwards: m.max_forwards.map_or(70, |v| v.saturating_sub(1).min(70)),
        };
        let (mut w, b_key, ack) = b.request(Method::Invite, None);
        self.copy_relayed(&mut w, &m);
        let body = self.cross_body(plan.media, &m, &b.me);
        let bytes = w.finish(m.content_type.as_deref(), &body);
        tracing::debug!(call = id, "bridging call");
        let call = Call {
            phase: Phase::Calling,
            b_invite_cseq: ack.cseq,
            b_invite_uri: target,
            b_invite_via: ack.via.clone(),
            media: plan.media,
            a,
            b,
            a_invite: key.clone(),
            b_invite: b_key.clone(),
            cancelled: false,
            cancel_pending: false,
            pending_ack: None,
            last_b_ack: None,
            limit: plan.limit,
            answered: None,
            confirmed: false,
            result: 0,
            timers: Vec::new(),
            state,
        };
        self.tx.set_owner(&key, id);
        self.tx
            .send_request(b_key, plan.target.peer, bytes, id, Some(ack), now.mono);
        self.dialogs.insert(
            (call.a.call_id.clone(), call.a.local_tag.clone()),
            (id, Side::A),
        );
        self.dialogs.insert(
            (call.b.call_id.clone(), call.b.local_tag.clone()),
            (id, Side::B),
        );
        self.by_invite.insert(key, id);
        self.calls.insert(id, call);
        self.tell(id, Milestone::Offered, now);
        let t = self
            .timers
            .add(now.mono + plan.no_answer, CallTimer::NoAnswer(id));
        if let Some(c) = self.calls.get_mut(&id) {
            c.timers.push(t);
        }
    }

    /// Copies the session/capability headers that may cross between legs.
    pub(super) fn copy_relayed(&self, w: &mut Writer, m: &Msg) {
        for (name, value) in &m.relayed {
            debug_assert!(RELAYED_HEADERS.contains(name));
            w.header(name, value);
        }
    }

    /// B answered our INVITE (provisional or final).
    pub(super) fn on_b_invite_response(&mut self, id: CallId, m: Msg, now: Now) {
        let Some(code) = m.code() else { return };
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if code == 100 {
            return;
        }
        if code < 200 {
            if call.cancelled || call.phase != Phase::Calling {
                if call.cancel_pending {
                    call.cancel_pending = false;
                    self.send_cancel(id, now);
                }
                return;
            }
            learn_remote(&mut call.b, &m, false);
            self.policy.milestone(
                id,
                &mut call.state,
                Milestone::Ringing { status: code },
                now,
            );
            self.relay_to_a_invite(id, &m, now);
            return;
        }
        if code < 300 {
            return self.on_b_answer(id, m, now);
        }
        // Failure: the client transaction already ACKed it.
        if !call.cancelled && call.phase == Phase::Calling {
            let code = match code {
                401 | 407 => 503, // the trunk's challenge is ours, not the caller's
                c => c,
            };
            let (key, tag) = (call.a_invite.clone(), call.a.local_tag.clone());
            call.result = code;
            self.respond_simple(&key, code, Some(&tag), now);
        }
        self.finish(id, EndReason::CalleeFailed, now);
    }

    fn on_b_answer(&mut self, id: CallId, m: Msg, now: Now) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let same_dialog = call.b.remote_tag.is_some() && call.b.remote_tag == m.to_tag;
        if call.phase == Phase::Answered && same_dialog {
            // B repeats its 2xx: our ACK was lost.
            if let Some(ack) = call.last_b_ack.clone() {
                self.tx.send_stateless(call.b.peer, ack);
            }
            return;
        }
        if call.phase != Phase::Calling || call.cancelled {
            // A later fork, or a 200 that crossed A's CANCEL: ACK and BYE it.
            return self.drop_fork(id, &m, now);
        }
        learn_remote(&mut call.b, &m, true);
        call.phase = Phase::Answered;
        call.answered = Some(now.mono);
        call.result = 200;
        call.pending_ack = Some(PendingAck {
            from: Side::A,
            cseq: 0,
            server_key: call.a_invite.clone(),
            other_cseq: call.b_invite_cseq,
        });
        if let Some(limit) = call.limit {
            call.timers
                .push(self.timers.add(now.mono + limit, CallTimer::Limit(id)));
        }
        tracing::debug!(call = id, "call answered");
        self.policy
            .milestone(id, &mut call.state, Milestone::Answered, now);
        // The call is confirmed when A's ACK comes (on_ack).
        self.relay_to_a_invite(id, &m, now);
    }

    /// Relays B's 18x or 2xx to A's INVITE transaction.
    fn relay_to_a_invite(&mut self, id: CallId, m: &Msg, now: Now) {
        let Some(code) = m.code() else { return };
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let (key, tag, contact, me, media) = (
            call.a_invite.clone(),
            call.a.local_tag.clone(),
            call.a.contact(),
            call.a.me.clone(),
            call.media,
        );
        let Some(mut w) = self.tx.response(&key, code, reason(code), Some(&tag)) else {
            return;
        };
        w.header("Contact", &contact);
        self.copy_relayed(&mut w, m);
        let body = self.cross_body(media, m, &me);
        let bytes = w.finish(m.content_type.as_deref(), &body);
        self.tx.respond(&key, code, bytes, now.mono);
    }

    /// ACKs and ends an unwanted 2xx dialog from B.
    fn drop_fork(&mut self, id: CallId, m: &Msg, now: Now) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let mut fork = call.b.clone();
        learn_remote(&mut fork, m, true);
        let (w, _, _) = fork.request(Method::Ack, Some(call.b_invite_cseq));
        self.tx.send_stateless(fork.peer, w.finish(None, b""));
        let (w, key, _) = fork.request(Method::Bye, None);
        self.tx
            .send_request(key, fork.peer, w.finish(None, b""), 0, None, now.mono);
    }

    pub(super) fn on_cancel(&mut self, m: Msg, src: Peer, now: Now) {
        let Incoming::New(key) = self.tx.on_request(&m, src, 0, now.mono) else {
            return;
        };
        let invite_key = TxKey {
            branch: key.branch.clone(),
            method: Method::Invite,
        };
        let id = self.by_invite.get(&invite_key).copied();
        let live = id.filter(|_| self.tx.is_pending(&invite_key));
        match live {
            None => {
                // RFC 3261 9.2: a CANCEL for a known INVITE is answered
                // 200 even when the INVITE already has its final response
                // (it then changes nothing); for an unknown one, 481.
                let code = if self.tx.exists(&invite_key) {
                    200
                } else {
                    481
                };
                self.respond_simple(&key, code, None, now);
                if self.tx.is_pending(&invite_key) {
                    let tag = token();
                    self.respond_simple(&invite_key, 487, Some(&tag), now);
                }
            }
            Some(id) => {
                self.respond_simple(&key, 200, None, now);
                tracing::info!(call = id, "caller cancelled");
                self.abandon(id, 487, now);
            }
        }
    }

    /// Gives up on an unanswered call: `code` to A, CANCEL to B.
    pub(super) fn abandon(&mut self, id: CallId, code: u16, now: Now) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if call.phase != Phase::Calling || call.cancelled {
            return;
        }
        call.cancelled = true;
        call.result = code;
        let (key, tag, b_key) = (
            call.a_invite.clone(),
            call.a.local_tag.clone(),
            call.b_invite.clone(),
        );
        self.respond_simple(&key, code, Some(&tag), now);
        if self.tx.is_proceeding(&b_key) {
            self.send_cancel(id, now);
        } else if let Some(c) = self.calls.get_mut(&id) {
            c.cancel_pending = !self.tx.client_done(&b_key);
        }
        self.finish(id, EndReason::Cancelled, now);
    }

    fn send_cancel(&mut self, id: CallId, now: Now) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let mut w = Writer::request("CANCEL", &call.b_invite_uri);
        w.header("Via", &call.b_invite_via);
        w.header("Max-Forwards", "70");
        w.header("From", &call.b.local_hdr);
        w.header("To", &format!("<{}>", call.b_invite_uri));
        w.header("Call-ID", &call.b.call_id);
        w.header("CSeq", &format!("{} CANCEL", call.b_invite_cseq));
        let key = TxKey {
            branch: call.b_invite.branch.clone(),
            method: Method::Cancel,
        };
        let peer = call.b.peer;
        self.tx
            .send_request(key, peer, w.finish(None, b""), 0, None, now.mono);
    }

    pub(super) fn on_no_answer(&mut self, id: CallId, now: Now) {
        if self
            .calls
            .get(&id)
            .is_some_and(|c| c.phase == Phase::Calling)
        {
            tracing::info!(call = id, "no answer");
            self.abandon(id, 480, now);
        }
    }

    /// Our INVITE to B got no response at all (Timer B).
    pub(super) fn on_b_invite_timeout(&mut self, id: CallId, now: Now) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        if call.phase == Phase::Calling && !call.cancelled {
            let (key, tag) = (call.a_invite.clone(), call.a.local_tag.clone());
            self.respond_simple(&key, 408, Some(&tag), now);
            if let Some(c) = self.calls.get_mut(&id) {
                c.result = 408;
            }
            self.finish(id, EndReason::CalleeUnreachable, now);
        }
    }
}

/// Takes B's tag, target and route set from a response that makes or
/// confirms a dialog.
fn learn_remote(leg: &mut Leg, m: &Msg, confirm: bool) {
    if m.to_tag.is_none() {
        return;
    }
    if leg.remote_tag.is_none() || confirm {
        leg.remote_tag = m.to_tag.clone();
        leg.remote_hdr = m.to.clone();
        if let Some(c) = &m.contact {
            leg.target = c.clone();
        }
        leg.route = m.record_route.iter().rev().cloned().collect();
    }
}
