//! Our INVITEs toward the callee: one per target, in parallel, with
//! failover to the next target, answers to a next hop's challenge, setup
//! timers, how each trunk did told to the policy; their responses, the
//! winner's answer, the losers cancelled, and a 2xx nobody wants ACKed
//! and ended with one BYE.

use crate::ids::token;
use crate::sip::message::Msg;
use crate::sip::transaction::TxKey;
use crate::sip::writer::Writer;
use crate::sip::Method;
use crate::time::Now;

use bytes::Bytes;

use crate::sip::digest;
use crate::sip::transaction::AckBase;

use super::call::{Fork, Leg, PendingAck, Phase, Side};
use super::policy::{EndReason, Media, Milestone, Policy, Route, TrunkOutcome};
use super::{CallId, CallTimer, Engine};

impl<P: Policy> Engine<P> {
    /// A new INVITE towards `route` for the caller's `offer` (and its SDP
    /// when already anchored): the fork and what to send.
    pub(super) fn new_fork(
        &self,
        id: CallId,
        route: Route,
        offer: (&Msg, Option<&super::Offered<'_>>, std::net::IpAddr),
        from_user: &str,
        media: Media,
    ) -> (Fork, Bytes, AckBase) {
        let msg = offer.0;
        let me = self.me_for(&route.peer);
        let tag = token();
        let mut leg = Leg {
            call_id: token(),
            local_tag: tag.clone(),
            local_hdr: crate::text::cat(&["<sip:", from_user, "@", &me, ">;tag=", &tag]),
            remote_hdr: crate::text::cat(&["<", &route.uri, ">"]),
            remote_tag: None,
            local_cseq: 0,
            target: route.uri.clone(),
            route: route.preloaded.clone(),
            preload: route
                .proxy
                .iter()
                .chain(&route.preloaded)
                .cloned()
                .collect(),
            peer: route.peer,
            me,
            // Decremented from A's so a routing loop through us ends.
            max_forwards: msg.max_forwards.map_or(70, |v| v.saturating_sub(1).min(70)),
            origin: crate::media::sdp::Origin::new(),
        };
        let (bytes, key, ack) = self.invite_on(id, &mut leg, offer, media, None);
        let fork = Fork {
            leg,
            route,
            invite: key,
            via: ack.via.clone(),
            cseq: ack.cseq,
            heard: false,
            authed: false,
            cancel_pending: None,
            failed: None,
            answered: false,
            setup_due: None,
            auth_rejected: false,
            auth_told: false,
            dropped: Vec::new(),
        };
        (fork, bytes, ack)
    }

    /// Our INVITE on `leg` carrying the caller's offer (anchored already,
    /// or not yet; the caller's signalling address), with credentials
    /// (header name and value) when answering a challenge.
    pub(super) fn invite_on(
        &self,
        id: CallId,
        leg: &mut Leg,
        (offer, offered, a_source): (&Msg, Option<&super::Offered<'_>>, std::net::IpAddr),
        media: Media,
        auth: Option<&Credentialed<'_>>,
    ) -> (Bytes, TxKey, AckBase) {
        // The offer was checked when it came (on_invite). The body comes
        // first: an auth-int answer hashes it.
        let body = match offered {
            Some(o) => o.render(leg),
            None => {
                let to = super::Towards::new(&self.anchor, id, Side::A, a_source);
                super::cross_or_drop(to, media, offer, leg)
            }
        };
        let (mut w, key, ack) = leg.invite();
        if let Some(answer) = auth {
            let (name, value) = answer(&body);
            w.header(name, &value);
        }
        self.copy_relayed(&mut w, offer);
        (w.finish(offer.content_type.as_deref(), &body), key, ack)
    }

    /// Starts one more fork of a call (failing over to the next target).
    pub(super) fn add_fork(&mut self, id: CallId, route: Route, now: Now) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let Some(offer) = call.offer.clone() else {
            return;
        };
        let (fork, bytes, ack) = self.new_fork(
            id,
            route,
            (&offer, None, call.a.peer.addr.ip()),
            &call.from_user,
            call.media,
        );
        let (key, peer) = (fork.invite.clone(), fork.route.peer);
        self.dialogs.insert(
            (fork.leg.call_id.clone(), fork.leg.local_tag.clone()),
            (id, Side::B),
        );
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        tracing::debug!(call = id, "failing over to the next target");
        call.b_fork = call.forks.len();
        call.b_invite_cseq = fork.cseq;
        call.forks.push(fork);
        let i = call.forks.len() - 1;
        self.tx
            .send_request(key, peer, bytes, id, Some(ack), now.mono);
        self.arm_setup(id, i, now);
    }

    /// Starts fork `i`'s setup timer, if its route has one.
    pub(super) fn arm_setup(&mut self, id: CallId, i: usize, now: Now) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(fork) = call.forks.get_mut(i) else {
            return;
        };
        if let Some(setup) = fork.route.setup {
            fork.setup_due = Some(now.mono + setup);
            let t = self.timers.add(now.mono + setup, CallTimer::Setup(id, i));
            call.timers.push(t);
        }
    }

    /// Answers fork `i`'s 401/407 with the route's credentials, once: a new
    /// INVITE in the same dialog. `false` if it cannot.
    pub(super) fn retry_with_auth(&mut self, id: CallId, i: usize, m: &Msg, now: Now) -> bool {
        let Some(call) = self.calls.get(&id) else {
            return false;
        };
        let Some(fork) = call.forks.get(i) else {
            return false;
        };
        let Some(cred) = fork.route.auth.clone() else {
            return false;
        };
        let header = if m.code() == Some(407) {
            "Proxy-Authorization"
        } else {
            "Authorization"
        };
        let uri = fork.route.uri.as_str();
        let Some(challenge) = m.challenges.iter().find(|c| {
            digest::answer(c, ("INVITE", uri, b""), &cred.user, &cred.password).is_some()
        }) else {
            return false;
        };
        let answer = |body: &[u8]| {
            let v = digest::answer(challenge, ("INVITE", uri, body), &cred.user, &cred.password);
            (header, v.unwrap_or_default())
        };
        let Some(offer) = call.offer.clone() else {
            return false;
        };
        let media = call.media;
        let mut leg = fork.leg.clone();
        // The challenge ended the first INVITE's transaction, not the
        // dialog we are making: same Call-ID and tag, next CSeq.
        let a_source = call.a.peer.addr.ip();
        let (bytes, key, ack) =
            self.invite_on(id, &mut leg, (&offer, None, a_source), media, Some(&answer));
        let Some(fork) = self.calls.get_mut(&id).and_then(|c| c.forks.get_mut(i)) else {
            return false;
        };
        let peer = fork.route.peer;
        fork.leg = leg;
        fork.invite = key.clone();
        fork.via = ack.via.clone();
        fork.cseq = ack.cseq;
        fork.authed = true;
        // The challenge was an answer to the first INVITE, not this one:
        // a carrier that challenges and goes quiet is left at setup time.
        fork.heard = false;
        self.tx
            .send_request(key, peer, bytes, id, Some(ack), now.mono);
        self.arm_setup(id, i, now);
        true
    }

    /// A response to fork `i`'s INVITE (provisional or final).
    pub(super) fn on_b_invite_response(&mut self, id: CallId, i: usize, m: Msg, now: Now) {
        let Some(code) = m.code() else { return };
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let live = call.phase == Phase::Calling && !call.cancelled;
        let Some(fork) = call.forks.get_mut(i) else {
            return;
        };
        fork.heard = true;
        if code == 100 {
            return;
        }
        let challenged = matches!(code, 401 | 407);
        if fork.authed && !challenged && !fork.auth_told {
            fork.auth_told = true;
            if let Some(trunk) = fork.route.trunk {
                self.tell_trunk(id, trunk, TrunkOutcome::Accepted, now);
            }
        }
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(fork) = call.forks.get_mut(i) else {
            return;
        };
        if code < 200 {
            if !live || !fork.pending() {
                if let Some(reason) = fork.cancel_pending.take() {
                    self.send_cancel(id, i, reason, now);
                }
                return;
            }
            learn_remote(&mut fork.leg, &m, false);
            let (early, cseq) = (fork.leg.remote_tag.is_some(), fork.cseq);
            // The first early dialog is the one in-dialog requests (PRACK,
            // UPDATE) are relayed on; a fork's INVITE sent again with
            // credentials has a new CSeq.
            if early && (call.b_fork == i || call.b().remote_tag.is_none()) {
                call.b_fork = i;
                call.b_invite_cseq = cseq;
            }
            self.policy.milestone(
                id,
                &mut call.state,
                Milestone::Ringing { status: code },
                now,
            );
            self.relay_to_a_invite(id, i, &m, now);
            return;
        }
        if code < 300 {
            return self.on_b_answer(id, i, m, now);
        }
        // Failure: the client transaction already ACKed it.
        if live && challenged && !fork.authed && self.retry_with_auth(id, i, &m, now) {
            return;
        }
        let Some(f) = self.calls.get_mut(&id).and_then(|c| c.forks.get_mut(i)) else {
            return;
        };
        f.failed = Some(code);
        // A challenge we could not answer, or answered and got again: the
        // trunk takes no call of ours until its credentials are fixed.
        if let Some(trunk) = f.route.trunk.filter(|_| challenged) {
            f.auth_rejected = true;
            self.tell_trunk(id, trunk, TrunkOutcome::AuthRejected, now);
        }
        self.fork_failed(id, now);
    }

    /// A fork failed: when none is left waiting, fail over to the next
    /// target or give the caller the best failure.
    pub(super) fn fork_failed(&mut self, id: CallId, now: Now) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if call.phase != Phase::Calling || call.cancelled || call.forks.iter().any(Fork::pending) {
            return;
        }
        let codes: Vec<u16> = call.forks.iter().filter_map(|f| f.failed).collect();
        let retry = call
            .forks
            .iter()
            .all(|f| f.auth_rejected || f.failed.is_some_and(|c| matches!(c, 408 | 503)));
        if retry && !call.failover.is_empty() {
            let route = call.failover.remove(0);
            return self.add_fork(id, route, now);
        }
        // RFC 3261 16.7: a 6xx wins; else the lowest status; a 408 we made
        // up for a silent target only when no target said anything, a
        // trunk's refusal of our credentials only when no callee did.
        let heard: Vec<u16> = call
            .forks
            .iter()
            .filter(|f| f.heard && !f.auth_rejected)
            .filter_map(|f| f.failed)
            .collect();
        let codes = if heard.is_empty() { codes } else { heard };
        let best = codes
            .iter()
            .copied()
            .find(|c| *c >= 600)
            .or_else(|| codes.iter().copied().min())
            .unwrap_or(480);
        let code = match best {
            401 | 407 => 503, // a next hop's challenge is ours, not the caller's
            c => c,
        };
        let silent = call.forks.iter().all(|f| !f.heard);
        let auth_failed = call.forks.iter().all(|f| f.auth_rejected || !f.heard);
        let (key, tag) = (call.a_invite.clone(), call.a.local_tag.clone());
        call.result = code;
        self.respond_simple(&key, code, Some(&tag), now);
        let why = if silent {
            EndReason::CalleeUnreachable
        } else if auth_failed {
            EndReason::TrunkAuthFailed
        } else {
            EndReason::CalleeFailed
        };
        self.finish(id, why, now);
    }

    pub(super) fn on_b_answer(&mut self, id: CallId, i: usize, m: Msg, now: Now) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(fork) = call.forks.get(i) else {
            return;
        };
        let same_dialog = fork.answered
            && call.b_fork == i
            && fork.leg.remote_tag.is_some()
            && fork.leg.remote_tag.as_deref() == m.to_tag.as_deref();
        if call.phase == Phase::Answered && same_dialog {
            // B repeats its 2xx: our ACK was lost.
            if let Some(ack) = call.last_b_ack.clone() {
                self.tx.send_stateless(fork.leg.peer, ack);
            }
            return;
        }
        if call.phase != Phase::Calling || call.cancelled || !fork.pending() {
            // A later fork, or a 200 that crossed A's CANCEL: ACK and BYE it.
            return self.drop_fork(id, i, &m, now);
        }
        let Some(fork) = call.forks.get_mut(i) else {
            return;
        };
        fork.answered = true;
        learn_remote(&mut fork.leg, &m, true);
        call.b_fork = i;
        call.b_invite_cseq = fork.cseq;
        call.offer = None;
        call.phase = Phase::Answered;
        call.answered = Some(now.mono);
        call.result = 200;
        call.pending_ack = Some(PendingAck {
            from: Side::A,
            cseq: 0,
            server_key: call.a_invite.clone(),
            other_cseq: call.b_invite_cseq,
        });
        if let Some(warn) = call.warn_at {
            call.timers
                .push(self.timers.add(now.mono + warn, CallTimer::Warn(id)));
        }
        if let Some(limit) = call.limit {
            call.timers
                .push(self.timers.add(now.mono + limit, CallTimer::Limit(id)));
        }
        tracing::debug!(call = id, fork = i, "call answered");
        if let Some(a) = &self.anchor {
            a.answered(id);
            if let Some(name) = &call.record {
                a.record(id, name);
            }
        }
        self.policy
            .milestone(id, &mut call.state, Milestone::Answered, now);
        let hold = self.policy.hold_answer(id, &mut call.state, now);
        self.cancel_forks(id, Some(ELSEWHERE), now);
        // The call is confirmed when A's ACK comes (on_ack).
        match hold {
            Some(ticket) => self.held.push(super::held::HeldAnswer {
                ticket,
                call: id,
                fork: i,
                answer: m,
            }),
            None => self.relay_to_a_invite(id, i, &m, now),
        }
    }

    /// CANCELs every fork still waiting (now, or once it sends a
    /// provisional: a CANCEL may not go before one).
    pub(super) fn cancel_forks(&mut self, id: CallId, reason: Option<&'static str>, now: Now) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let waiting: Vec<(usize, TxKey)> = call
            .forks
            .iter()
            .enumerate()
            .filter(|(_, f)| f.pending())
            .map(|(i, f)| (i, f.invite.clone()))
            .collect();
        for (i, key) in waiting {
            if self.tx.is_proceeding(&key) {
                self.send_cancel(id, i, reason, now);
            } else {
                let done = self.tx.client_done(&key);
                if let Some(f) = self.calls.get_mut(&id).and_then(|c| c.forks.get_mut(i)) {
                    f.cancel_pending = (!done).then_some(reason);
                }
            }
        }
    }

    /// ACKs and ends an unwanted 2xx dialog from fork `i`.
    /// A 2xx sent again (our ACK was lost) gets the same ACK again, and
    /// no second BYE: the first is one transaction, retransmitted by the
    /// transaction layer until answered.
    pub(super) fn drop_fork(&mut self, id: CallId, i: usize, m: &Msg, now: Now) {
        let Some(f) = self.calls.get_mut(&id).and_then(|c| c.forks.get_mut(i)) else {
            return;
        };
        let tag = m.to_tag.as_deref().unwrap_or_default();
        if let Some((_, ack)) = f.dropped.iter().find(|(t, _)| t == tag) {
            return self.tx.send_stateless(f.leg.peer, ack.clone());
        }
        // A copy: the fork's own dialog may be the call's callee leg.
        let mut leg = f.leg.clone();
        learn_remote(&mut leg, m, true);
        let (w, _) = leg.request(Method::Ack, Some(f.cseq));
        let ack = w.finish(None, b"");
        let (w, key) = leg.request(Method::Bye, None);
        let (peer, bye) = (leg.peer, w.finish(None, b""));
        f.dropped.push((tag.to_string(), ack.clone()));
        self.tx.send_stateless(peer, ack);
        self.tx.send_request(key, peer, bye, 0, None, now.mono);
    }

    /// Tells the policy how trunk `trunk` did on call `id`.
    pub(super) fn tell_trunk(&mut self, id: CallId, trunk: usize, outcome: TrunkOutcome, now: Now) {
        if let Some(call) = self.calls.get_mut(&id) {
            self.policy.trunk(&mut call.state, trunk, outcome, now);
        }
    }

    /// CANCELs fork `i`'s INVITE, with a Reason when another fork won.
    pub(super) fn send_cancel(&mut self, id: CallId, i: usize, reason: Option<&str>, now: Now) {
        let Some(f) = self.calls.get(&id).and_then(|c| c.forks.get(i)) else {
            return;
        };
        let mut w = Writer::request("CANCEL", &f.route.uri);
        w.header("Via", &f.via);
        w.header("Max-Forwards", "70");
        w.header("From", &f.leg.local_hdr);
        w.header_parts("To", &["<", &f.route.uri, ">"]);
        w.header("Call-ID", &f.leg.call_id);
        w.cseq(f.cseq, "CANCEL");
        if let Some(r) = reason {
            w.header("Reason", r);
        }
        let key = TxKey {
            branch: f.invite.branch.clone(),
            method: Method::Cancel,
        };
        let peer = f.route.peer;
        self.tx
            .send_request(key, peer, w.finish(None, b""), 0, None, now.mono);
    }

    /// Fork `i`'s INVITE got no final response (Timer B), or nothing at all
    /// within its route's setup time (`setup`): it failed with 408.
    pub(super) fn on_fork_silent(&mut self, id: CallId, i: usize, setup: bool, now: Now) {
        let Some(f) = self.calls.get_mut(&id).and_then(|c| c.forks.get_mut(i)) else {
            return;
        };
        let early = f.setup_due.is_some_and(|due| now.mono < due);
        if !f.pending() || (setup && (f.heard || early)) {
            return;
        }
        f.failed = Some(408);
        let trunk = f.route.trunk.filter(|_| !f.heard);
        if setup {
            let key = f.invite.clone();
            self.tx.forget_client(&key);
        }
        if let Some(trunk) = trunk {
            self.tell_trunk(id, trunk, TrunkOutcome::Silent, now);
        }
        self.fork_failed(id, now);
    }
}

/// Credentials for a request with a given body: the header's name and
/// value (an `auth-int` answer hashes the body in).
type Credentialed<'a> = dyn Fn(&[u8]) -> (&'static str, String) + 'a;

/// The Reason of a CANCEL to the forks that lost (RFC 3326).
const ELSEWHERE: &str = "SIP;cause=200;text=\"Call completed elsewhere\"";

/// Takes B's tag, target and route set from a response that makes or
/// confirms a dialog.
fn learn_remote(leg: &mut Leg, m: &Msg, confirm: bool) {
    if m.to_tag.is_none() {
        return;
    }
    if leg.remote_tag.is_none() || confirm {
        leg.remote_tag = m.to_tag.as_deref().map(str::to_string);
        leg.remote_hdr = m.to.to_string();
        if let Some(c) = &m.contact {
            leg.target = c.to_string();
        }
        leg.route = m.record_route.iter().rev().map(|r| r.to_string()).collect();
        if leg.route.is_empty() {
            leg.route.extend(leg.preload.iter().cloned());
        }
    }
}
