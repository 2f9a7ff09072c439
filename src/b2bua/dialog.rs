//! Inside a call: requests from either leg relayed to the other with that
//! leg's own identifiers (BYE, re-INVITE, UPDATE, INFO, PRACK, OPTIONS, ...),
//! ACKs translated, responses relayed back, and the ends of calls (BYE,
//! maximum length, a 2xx never ACKed). Unknown dialogs get 481.

use crate::sip::message::Msg;
use crate::sip::transaction::{Incoming, TxKey, TxKeyRef};
use crate::sip::writer::reason;
use crate::sip::{Method, Peer};
use crate::time::Now;

use super::call::{PendingAck, Phase, Side};
use super::policy::{EndReason, Limit, Milestone, Policy};
use super::{CallId, CallTimer, DialogRef, Engine, Relay};

impl<P: Policy> Engine<P> {
    /// A response from B or A to something we sent.
    pub(super) fn on_response(&mut self, m: Msg, now: Now) {
        let Some(owner) = self.tx.on_response(&m, now.mono) else {
            return;
        };
        let key = TxKeyRef::of_response(&m);
        if let Some(i) = self.calls.get(&owner).and_then(|c| c.fork_of(&key)) {
            return self.on_b_invite_response(owner, i, m, now);
        }
        if let Some(code) = m.code().filter(|c| *c >= 200) {
            if let Some(id) = self.probes.remove(&key) {
                return self.policy.probed(id, Some(code), now);
            }
        }
        let relay = if m.code().is_some_and(|c| c >= 200) {
            self.relays.remove(&key)
        } else {
            self.relays.get(&key).cloned()
        };
        if let Some(r) = relay {
            self.relay_response(r, &m, now);
        }
    }

    /// A request carrying a To tag: it belongs to a dialog we know, or gets 481.
    pub(super) fn on_in_dialog(&mut self, method: Method, m: Msg, src: Peer, now: Now) {
        let to_tag = m.to_tag.as_deref().unwrap_or_default();
        let found = self.dialogs.get(&DialogRef(&m.call_id, to_tag)).copied();
        // A request in a call comes from that leg's party: the address its
        // dialog was made with (any port: a trunk sends from several).
        let stranger = found.is_some_and(|(id, side)| {
            self.calls
                .get(&id)
                .is_some_and(|c| c.peer(side).addr.ip() != src.addr.ip())
        });
        if stranger {
            tracing::debug!(%src, "in-dialog request from outside the dialog's legs");
            if method != Method::Ack {
                if let Incoming::New(key) = self.tx.on_request(&m, src, 0, now.mono) {
                    self.respond_simple(&key, 403, None, now);
                }
            }
            return;
        }
        let incoming = self
            .tx
            .on_request(&m, src, found.map_or(0, |f| f.0), now.mono);
        if method == Method::Ack {
            if incoming == Incoming::AckForTu {
                if let Some((id, side)) = found {
                    self.on_ack(id, side, &m, now);
                }
            }
            return;
        }
        let Incoming::New(key) = incoming else { return };
        let Some((id, side)) = found else {
            return self.respond_simple(&key, 481, None, now);
        };
        // A fork that lost (or an early dialog not relayed) has no call to
        // speak in: its BYE is taken, anything else has no dialog.
        let other_fork = side == Side::B
            && self
                .calls
                .get(&id)
                .is_some_and(|c| c.b().call_id != m.call_id);
        let ended = other_fork || self.calls.get(&id).is_none_or(|c| c.phase == Phase::Ended);
        match method {
            Method::Bye if ended => self.respond_simple(&key, 200, None, now),
            _ if ended => self.respond_simple(&key, 481, None, now),
            Method::Bye => {
                self.respond_simple(&key, 200, None, now);
                tracing::debug!(call = id, by = ?side, "hang-up");
                self.send_bye(id, side.other(), None, now);
                let why = match side {
                    Side::A => EndReason::CallerHungUp,
                    Side::B => EndReason::CalleeHungUp,
                };
                self.finish(id, why, now);
            }
            // A transfer would hand one party's address to the other.
            Method::Refer => self.respond_simple(&key, 403, None, now),
            _ => self.relay_request(id, side, key, &m, now),
        }
    }

    /// Sends a request from `from`'s leg on to the other leg.
    fn relay_request(&mut self, id: CallId, from: Side, server_key: TxKey, m: &Msg, now: Now) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let to = from.other();
        let Some(method) = m.method().cloned() else {
            return;
        };
        let (b_invite_cseq, media) = (call.b_invite_cseq, call.media);
        let source = call.leg(from).peer.addr.ip();
        let leg = call.leg(to);
        if leg.remote_tag.is_none() {
            // The other leg has no dialog yet (UPDATE before B's first 18x).
            let code = if super::unusable_sdp(m) { 488 } else { 491 };
            return self.respond_simple(&server_key, code, None, now);
        }
        // Rebuilt once, for the leg it goes to; what is not SDP is refused.
        let to = super::Towards::new(&self.anchor, id, from, source);
        let body = match super::cross_body(to, media, m, leg) {
            Ok(body) => body,
            Err(e) => return self.respond_simple(&server_key, e.status(), None, now),
        };
        // Every client INVITE transaction ACKs its non-2xx final (RFC 3261
        // 17.1.1.3): a 491 in re-INVITE glare must not be resent for 32 s.
        let (mut w, key, ack) = if method == Method::Invite {
            let (w, key, ack) = leg.invite();
            (w, key, Some(ack))
        } else {
            let (w, key) = leg.request(method.clone(), None);
            (w, key, None)
        };
        let (our_cseq, peer) = (leg.local_cseq, leg.peer);
        if let Some(rack) = &m.rack {
            // RAck names the INVITE's CSeq, which differs between the legs.
            let rseq = rack.split_whitespace().next().unwrap_or("1");
            w.header("RAck", &format!("{rseq} {b_invite_cseq} INVITE"));
        }
        self.copy_relayed(&mut w, m);
        let bytes = w.finish(m.content_type.as_deref(), &body);
        self.tx
            .send_request(key.clone(), peer, bytes, id, ack, now.mono);
        let relay = Relay {
            call: id,
            server_key,
            from,
            method,
            their_cseq: m.cseq,
            our_cseq,
        };
        if let Some(call) = self.calls.get_mut(&id) {
            // Answered ones drop out here, so a long call that refreshes
            // its session keeps a short list.
            let relays = &self.relays;
            call.relays.retain(|k| relays.contains_key(k));
            call.relays.push(key.clone());
        }
        self.relays.insert(key, relay);
    }

    /// Relays the other leg's response to a relayed request back.
    fn relay_response(&mut self, r: Relay, m: &Msg, now: Now) {
        let Some(code) = m.code() else { return };
        let Some(call) = self.calls.get_mut(&r.call) else {
            return;
        };
        if r.method == Method::Invite && (200..300).contains(&code) {
            call.pending_ack = Some(PendingAck {
                from: r.from,
                cseq: r.their_cseq,
                server_key: r.server_key.clone(),
                other_cseq: r.our_cseq,
            });
        }
        let media = call.media;
        let source = call.leg(r.from.other()).peer.addr.ip();
        let leg = call.leg(r.from);
        let contact = leg.contact();
        let to = super::Towards::new(&self.anchor, r.call, r.from.other(), source);
        let body = super::cross_or_drop(to, media, m, leg);
        let Some(mut w) = self.tx.response(&r.server_key, code, reason(code), None) else {
            return;
        };
        if matches!(r.method, Method::Invite | Method::Update) && code < 300 {
            w.header("Contact", &contact);
        }
        self.copy_relayed(&mut w, m);
        let bytes = w.finish(m.content_type.as_deref(), &body);
        self.tx.respond(&r.server_key, code, bytes, now.mono);
    }

    /// ACK for a 2xx from one leg: ACK the other leg's 2xx in turn.
    fn on_ack(&mut self, id: CallId, side: Side, m: &Msg, now: Now) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(p) = call.pending_ack.clone() else {
            return;
        };
        let initial = p.cseq == 0 && side == Side::A;
        if p.from != side || !(initial || p.cseq == m.cseq) {
            return;
        }
        call.pending_ack = None;
        if initial {
            call.confirmed = true;
            self.policy
                .milestone(id, &mut call.state, Milestone::Confirmed, now);
        }
        self.tx.acked_2xx(&p.server_key);
        self.send_ack(id, side.other(), p.other_cseq, Some(m), now);
    }

    /// Sends the ACK for our INVITE's 2xx on `side`, with the SDP (late
    /// offer answer) from `from_ack` if given.
    fn send_ack(&mut self, id: CallId, side: Side, cseq: u32, from_ack: Option<&Msg>, _now: Now) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let media = call.media;
        let source = call.leg(side.other()).peer.addr.ip();
        let leg = call.leg(side);
        let to = super::Towards::new(&self.anchor, id, side.other(), source);
        let body = from_ack.map_or_else(Vec::new, |a| super::cross_or_drop(to, media, a, leg));
        let (w, _) = leg.request(Method::Ack, Some(cseq));
        let peer = leg.peer;
        let ct = from_ack.and_then(|a| a.content_type.clone());
        let bytes = w.finish(ct.as_deref(), &body);
        if side == Side::B {
            call.last_b_ack = Some(bytes.clone());
        }
        self.tx.send_stateless(peer, bytes);
    }

    /// Sends BYE on `side`; `why` (the engine ending the call itself) goes
    /// in a Reason header, a party's own hang-up carries none.
    fn send_bye(&mut self, id: CallId, side: Side, why: Option<EndReason>, now: Now) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let leg = call.leg(side);
        if leg.remote_tag.is_none() {
            return;
        }
        let (mut w, key) = leg.request(Method::Bye, None);
        let peer = leg.peer;
        if let Some(why) = why {
            // Q.850 16: normal call clearing, with our words for why.
            w.header(
                "Reason",
                &format!("Q.850;cause=16;text=\"{}\"", why.as_str()),
            );
        }
        self.tx
            .send_request(key, peer, w.finish(None, b""), 0, None, now.mono);
    }

    /// Ends an answered call on both legs.
    pub(super) fn hang_up_both(&mut self, id: CallId, why: EndReason, now: Now) {
        if let Some(p) = self.calls.get_mut(&id).and_then(|c| c.pending_ack.take()) {
            // B's 2xx was never ACKed by A: ACK it before the BYE.
            if p.from == Side::A && p.cseq == 0 {
                self.send_ack(id, Side::B, p.other_cseq, None, now);
            }
        }
        self.send_bye(id, Side::A, Some(why), now);
        self.send_bye(id, Side::B, Some(why), now);
        self.finish(id, why, now);
    }

    /// Refuses a call whose callee answered but whose answer the caller
    /// never got: the callee's 2xx is acknowledged and the callee hung up,
    /// the caller gets the policy's status on its INVITE.
    pub(super) fn refuse_answered(&mut self, id: CallId, now: Now) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let (code, reason) = self.policy.answer_refused(id, &mut call.state, now);
        call.result = code;
        let (key, tag) = (call.a_invite.clone(), call.a.local_tag.clone());
        if let Some(p) = call.pending_ack.take() {
            if p.from == Side::A && p.cseq == 0 {
                self.send_ack(id, Side::B, p.other_cseq, None, now);
            }
        }
        self.send_bye(id, Side::B, Some(EndReason::NotCounted), now);
        self.respond_with(&key, code, &reason, Some(&tag), &[], now);
        self.finish(id, EndReason::NotCounted, now);
    }

    /// The call reached its limit: the policy gives more time or ends it.
    pub(super) fn on_limit(&mut self, id: CallId, now: Now) {
        let Some(c) = self
            .calls
            .get_mut(&id)
            .filter(|c| c.phase == Phase::Answered)
        else {
            return;
        };
        let held = c.limit.unwrap_or_default();
        match self.policy.limit(id, &mut c.state, held, now) {
            Limit::End(why) => {
                tracing::info!(call = id, why = why.as_str(), "call limit reached");
                self.hang_up_both(id, why, now);
            }
            Limit::Wait(ticket) => self.waiting.push((ticket, id)),
            Limit::Until(until) if until <= held => {
                // A policy that grants nothing more ends the call.
                self.hang_up_both(id, EndReason::MaxLength, now);
            }
            Limit::Until(until) => {
                c.limit = Some(until);
                let at = c.answered.unwrap_or(now.mono) + until;
                c.timers.push(self.timers.add(at, CallTimer::Limit(id)));
            }
        }
    }

    /// A never ACKed the 2xx we relayed (Timer L): end the call.
    pub(super) fn on_no_ack(&mut self, id: CallId, key: TxKey, now: Now) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        if call.a_invite == key && call.phase == Phase::Answered {
            tracing::warn!(call = id, "caller never acknowledged the answer");
            self.hang_up_both(id, EndReason::NoAck, now);
        }
    }

    /// A request we sent got no response.
    pub(super) fn on_client_timeout(&mut self, id: CallId, key: TxKey, now: Now) {
        if let Some(i) = self.calls.get(&id).and_then(|c| c.fork_of(&key)) {
            return self.on_fork_silent(id, i, false, now);
        }
        if let Some(r) = self.relays.remove(&key) {
            self.respond_simple(&r.server_key, 408, None, now);
        }
        if let Some(p) = self.probes.remove(&key) {
            self.policy.probed(p, None, now);
        }
    }
}
