//! Setting up a call: A's INVITE, our INVITE to B, B's answers relayed to A,
//! CANCEL from A (including CANCEL crossing B's 200), no-answer timeout.

use std::time::Instant;

use crate::sip::message::{Msg, RELAYED_HEADERS};
use crate::sip::transaction::{Incoming, TxKey};
use crate::sip::writer::{reason, Writer};
use crate::sip::{token, Peer};

use super::call::{Call, Leg, PendingAck, Phase, Side};
use super::decide::Decision;
use super::{CallTimer, Engine};

impl Engine {
    pub(super) fn on_invite(&mut self, m: Msg, src: Peer, now: Instant) {
        let Incoming::New(key) = self.tx.on_request(&m, src, 0, now) else {
            return;
        };
        let t0 = Instant::now();
        let decision = self.decide(&m, crate::time::now());
        self.lookup.observe(t0.elapsed().as_secs_f64());
        let (adm, caller) = match decision {
            Decision::Refuse {
                status,
                reason,
                why,
            } => {
                tracing::debug!(why, status, "refusing INVITE");
                self.stats.refused += 1;
                self.record_refusal(&m, status, why);
                let tag = token();
                self.respond_with(&key, status, &reason, Some(&tag), now);
                return;
            }
            Decision::Bridge(a, caller) => (a, caller),
        };
        let Some(trunk) = self.cfg.trunk.clone() else {
            return;
        };
        let id = self.next_id;
        self.next_id += 1;
        let me_a = self.me_for(&src);
        let me_b = self.me_for(&trunk.peer);
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
        let x = adm.virtual_number.as_str();
        let target = format!("sip:{}@{}", adm.callee.as_str(), trunk.host);
        let mut b = Leg {
            call_id: token(),
            local_tag: b_tag.clone(),
            local_hdr: format!("<sip:{x}@{me_b}>;tag={b_tag}"),
            remote_hdr: format!("<{target}>"),
            remote_tag: None,
            local_cseq: 0,
            target: target.clone(),
            route: Vec::new(),
            peer: trunk.peer,
            me: me_b,
            // Decremented from A's so a routing loop through us ends.
            max_forwards: m.max_forwards.map_or(70, |v| v.saturating_sub(1).min(70)),
        };
        let (mut w, b_key, ack) = b.request("INVITE", None);
        self.copy_relayed(&mut w, &m);
        let body = self.mask_body(&m, &b.me);
        let bytes = w.finish(m.content_type.as_deref(), &body);
        tracing::debug!(call = id, caller = %caller, callee = %adm.callee, binding = adm.binding, "bridging call");
        let call = Call {
            id,
            binding: adm.binding,
            caller,
            b_invite_cseq: ack.cseq,
            callee: adm.callee.clone(),
            phase: Phase::Calling,
            b_invite_uri: target,
            b_invite_via: ack.via.clone(),
            a,
            b,
            a_invite: key.clone(),
            b_invite: b_key.clone(),
            cancelled: false,
            cancel_pending: false,
            pending_ack: None,
            last_b_ack: None,
            max_secs: adm.max_secs,
            lease: adm.lease,
            started: now,
            answered: None,
            settled: false,
            confirmed: false,
            timers: Vec::new(),
            record: crate::store::CallRecord {
                tenant: adm.tenant,
                binding: Some(adm.binding),
                direction: Some(adm.direction.to_string()),
                callee: Some(adm.callee.as_str().to_string()),
                x: adm.virtual_number.as_str().to_string(),
                invite_at: crate::time::now_ms(),
                ..Default::default()
            },
        };
        self.tx.set_owner(&key, id);
        self.tx
            .send_request(b_key, trunk.peer, bytes, id, Some(ack), now);
        self.dialogs.insert(
            (call.a.call_id.clone(), call.a.local_tag.clone()),
            (id, Side::A),
        );
        self.dialogs.insert(
            (call.b.call_id.clone(), call.b.local_tag.clone()),
            (id, Side::B),
        );
        self.by_invite.insert(key, id);
        self.emit(adm.tenant, "call.offered", Some(adm.binding), || {
            serde_json::json!({ "call": id, "direction": adm.direction, "caller": call.caller.as_str(),
                "callee": adm.callee.as_str(), "x": adm.virtual_number.as_str() })
        });
        self.calls.insert(id, call);
        self.timers
            .add(now + self.cfg.no_answer, CallTimer::NoAnswer(id));
    }

    /// Copies the session/capability headers that may cross between legs.
    pub(super) fn copy_relayed(&self, w: &mut Writer, m: &Msg) {
        for (name, value) in &m.relayed {
            debug_assert!(RELAYED_HEADERS.contains(name));
            w.header(name, value);
        }
    }

    /// B answered our INVITE (provisional or final).
    pub(super) fn on_b_invite_response(&mut self, id: u64, m: Msg, now: Instant) {
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
            if code != 100 && call.record.ringing_at.is_none() {
                call.record.ringing_at = Some(crate::time::now_ms());
                let (t, b) = (call.record.tenant, call.record.binding);
                self.emit(
                    t,
                    "call.ringing",
                    b,
                    || serde_json::json!({ "call": id, "status": code }),
                );
            }
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
            call.record.result = code;
            self.respond_simple(&key, code, Some(&tag), now);
        }
        self.finish(id, "callee failed", now);
    }

    fn on_b_answer(&mut self, id: u64, m: Msg, now: Instant) {
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
            return self.drop_fork(id, &m);
        }
        learn_remote(&mut call.b, &m, true);
        call.phase = Phase::Answered;
        call.answered = Some(now);
        call.record.answer_at = Some(crate::time::now_ms());
        call.record.result = 200;
        let (t, b) = (call.record.tenant, call.record.binding);
        call.pending_ack = Some(PendingAck {
            from: Side::A,
            cseq: 0,
            server_key: call.a_invite.clone(),
            other_cseq: call.b_invite_cseq,
        });
        // The first limit: the lease of talk time, or the length cap.
        let limit = call.lease.or((call.max_secs > 0).then_some(call.max_secs));
        if let Some(secs) = limit {
            let at = now + std::time::Duration::from_secs(secs);
            call.timers
                .push(self.timers.add(at, CallTimer::MaxLength(id)));
        }
        tracing::debug!(call = id, "call answered");
        self.emit(t, "call.answered", b, || serde_json::json!({ "call": id }));
        // The use is consumed when A's ACK confirms the answer (on_ack).
        self.relay_to_a_invite(id, &m, now);
    }

    /// Relays B's 18x or 2xx to A's INVITE transaction.
    fn relay_to_a_invite(&mut self, id: u64, m: &Msg, now: Instant) {
        let Some(code) = m.code() else { return };
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let (key, tag, contact, me) = (
            call.a_invite.clone(),
            call.a.local_tag.clone(),
            call.a.contact(),
            call.a.me.clone(),
        );
        let Some(mut w) = self.tx.response(&key, code, reason(code), Some(&tag)) else {
            return;
        };
        w.header("Contact", &contact);
        self.copy_relayed(&mut w, m);
        let body = self.mask_body(m, &me);
        let bytes = w.finish(m.content_type.as_deref(), &body);
        self.tx.respond(&key, code, bytes, now);
    }

    /// ACKs and ends an unwanted 2xx dialog from B.
    fn drop_fork(&mut self, id: u64, m: &Msg) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let mut fork = call.b.clone();
        learn_remote(&mut fork, m, true);
        let (w, _, _) = fork.request("ACK", Some(call.b_invite_cseq));
        self.tx.send_stateless(fork.peer, w.finish(None, b""));
        let (w, key, _) = fork.request("BYE", None);
        self.tx
            .send_request(key, fork.peer, w.finish(None, b""), 0, None, Instant::now());
    }

    pub(super) fn on_cancel(&mut self, m: Msg, src: Peer, now: Instant) {
        let Incoming::New(key) = self.tx.on_request(&m, src, 0, now) else {
            return;
        };
        let invite_key = TxKey {
            branch: key.branch.clone(),
            method: "INVITE".into(),
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
    pub(super) fn abandon(&mut self, id: u64, code: u16, now: Instant) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if call.phase != Phase::Calling || call.cancelled {
            return;
        }
        call.cancelled = true;
        call.record.result = code;
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
        self.settle(id, false);
        self.finish(id, "cancelled", now);
    }

    fn send_cancel(&mut self, id: u64, now: Instant) {
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
            method: "CANCEL".into(),
        };
        let peer = call.b.peer;
        self.tx
            .send_request(key, peer, w.finish(None, b""), 0, None, now);
    }

    pub(super) fn on_no_answer(&mut self, id: u64, now: Instant) {
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
    pub(super) fn on_b_invite_timeout(&mut self, id: u64, now: Instant) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        if call.phase == Phase::Calling && !call.cancelled {
            let (key, tag) = (call.a_invite.clone(), call.a.local_tag.clone());
            self.respond_simple(&key, 408, Some(&tag), now);
            if let Some(c) = self.calls.get_mut(&id) {
                c.record.result = 408;
            }
            self.finish(id, "callee unreachable", now);
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
