//! The call engine: turns an INVITE into a call of two legs, each its own
//! dialog, and keeps them in step (answers, CANCEL, re-INVITE, BYE,
//! in-dialog requests, timers). Owns calls, dialogs and relayed requests;
//! knows nothing of bindings, tenants, storage or HTTP. What a call is for
//! (whether it may happen, where it goes, what it is shown as, what is
//! recorded) is the [`Policy`]'s, asked at each step.
//!
//! The engine is synchronous and socket-free: the transport feeds it parsed
//! messages and clock readings ([`Now`]) and sends what it queued. One lock
//! around it is the whole concurrency story; it never reads a clock and
//! never blocks.

mod bodies;
mod call;
mod dialog;
mod forks;
mod held;
mod invite;
mod ownership;
pub mod policy;
mod probes;
mod relay;
#[cfg(test)]
mod tests;

use crate::ids::WireMap;

use bytes::Bytes;

use crate::media::Anchor;
use crate::sip::message::Msg;
use crate::sip::timer::Timers;
use crate::sip::transaction::{Incoming, TimerConfig, Transactions, TxEvent, TxKey};
use crate::sip::{Method, Peer};
use crate::time::Now;

pub use bodies::media_warnings_held_back;
use bodies::{
    cross_body, cross_or_drop, host_of, is_sdp, unusable_sdp, warn_media, Offered, Towards,
};
pub use call::{Call, Fork, Leg, Phase, Side};
pub use policy::{
    Answer, CallId, Credentials, Decision, EndReason, Ending, Limit, Media, Milestone, Offer, Plan,
    Policy, Probe, Route, Screen,
};

/// What the engine needs from the config.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Our address per family as peers should see it: (IPv4 host:port, IPv6 host:port).
    pub me_v4: Option<String>,
    /// See `me_v4`.
    pub me_v6: Option<String>,
    /// Status and reason for new calls while draining.
    pub unavailable: (u16, String),
    /// RFC 3261 timers.
    pub timers: TimerConfig,
}

#[derive(Clone, Copy, Debug)]
enum CallTimer {
    NoAnswer(CallId),
    /// Fork `.1` must have been heard from by now.
    Setup(CallId, usize),
    Limit(CallId),
    /// The last-minute warning is due.
    Warn(CallId),
    /// A refusal prompt has played: send the final status.
    Refused(CallId),
    Cleanup(CallId),
    /// A probe's answer is due (the policy's id of the probe).
    Probe(u64),
}

/// A dialog's key, (Call-ID, our tag), borrowed from a message to look
/// up [`Engine`]'s dialogs without copying either.
struct DialogRef<'a>(&'a str, &'a str);

// Hashes as the tuple of `String`s the table owns does.
impl std::hash::Hash for DialogRef<'_> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
        self.1.hash(state);
    }
}

impl hashbrown::Equivalent<(String, String)> for DialogRef<'_> {
    fn equivalent(&self, key: &(String, String)) -> bool {
        key.0 == self.0 && key.1 == self.1
    }
}

/// A request relayed to the other leg, waiting for its response.
#[derive(Clone)]
struct Relay {
    call: CallId,
    server_key: TxKey,
    from: Side,
    method: Method,
    their_cseq: u32,
    our_cseq: u32,
}

/// The engine, over a policy.
pub struct Engine<P: Policy> {
    cfg: EngineConfig,
    policy: P,
    tx: Transactions,
    calls: crate::ids::IdMap<Call<P::Call>>,
    /// (Call-ID, our tag) of each leg -> call and side.
    dialogs: WireMap<(String, String), (CallId, Side)>,
    /// A's INVITE server transaction -> call, for CANCEL.
    by_invite: WireMap<TxKey, CallId>,
    relays: WireMap<TxKey, Relay>,
    /// The policy's pings waiting for an answer, by transaction.
    probes: WireMap<TxKey, u64>,
    /// Probes with a timeout of their own: the policy's id, the probe's
    /// transaction and when its answer is due.
    probes_due: std::collections::HashMap<u64, (TxKey, std::time::Instant)>,
    timers: Timers<CallTimer>,
    next_id: CallId,
    accepting: bool,
    /// Where media is anchored when a plan says [`Media::Relay`].
    anchor: Option<std::sync::Arc<dyn Anchor>>,
    /// An answered call with no media for this long ends.
    media_timeout: Option<std::time::Duration>,
    /// Refusals waiting for their prompt to end.
    refusing: crate::ids::IdMap<Refusing>,
    /// Answers held until the policy's storage has what they commit to
    /// ([`Policy::hold_answer`]).
    held: Vec<held::HeldAnswer>,
    /// Offers held until the policy's storage answers
    /// ([`Plan::hold`]).
    held_offers: Vec<held::HeldOffer<P::Call>>,
    /// Calls whose limit waits on the policy's storage
    /// ([`Limit::Wait`]): (ticket, call).
    waiting: Vec<(u64, CallId)>,
}

/// A refusal held back while its prompt plays.
struct Refusing {
    key: TxKey,
    status: u16,
    reason: String,
    tag: String,
}

impl<P: Policy> Engine<P> {
    /// A new engine that asks `policy` about calls.
    pub fn new(cfg: EngineConfig, policy: P) -> Engine<P> {
        let tx = Transactions::new(cfg.timers);
        Engine {
            cfg,
            policy,
            tx,
            calls: Default::default(),
            dialogs: Default::default(),
            by_invite: Default::default(),
            relays: Default::default(),
            probes: Default::default(),
            probes_due: Default::default(),
            timers: Timers::default(),
            next_id: 1,
            accepting: true,
            anchor: None,
            media_timeout: None,
            refusing: Default::default(),
            held: Vec::new(),
            held_offers: Vec::new(),
            waiting: Vec::new(),
        }
    }

    /// Anchors media of calls whose plan says [`Media::Relay`] in `anchor`;
    /// answered calls silent for `timeout` end (`None`: never).
    pub fn with_anchor(
        mut self,
        anchor: std::sync::Arc<dyn Anchor>,
        timeout: Option<std::time::Duration>,
    ) -> Engine<P> {
        self.anchor = Some(anchor);
        self.media_timeout = timeout;
        self
    }

    /// The policy.
    pub fn policy(&self) -> &P {
        &self.policy
    }

    /// This node's SIP address (`host:port`) as its Via names it.
    pub fn me(&self) -> Option<String> {
        self.cfg.me_v4.clone().or_else(|| self.cfg.me_v6.clone())
    }

    /// Takes what must be sent.
    pub fn drain(&mut self, into: &mut Vec<(Peer, Bytes)>) {
        into.append(&mut self.tx.out);
    }

    /// Calls not yet ended.
    pub fn live_calls(&self) -> usize {
        self.calls
            .values()
            .filter(|c| c.phase != Phase::Ended)
            .count()
    }

    /// Requests we sent (BYE, CANCEL, ...) still waiting for their final
    /// response: shutdown waits for them so lost ones are retransmitted.
    pub fn pending_requests(&self) -> usize {
        self.tx.awaiting_final()
    }

    /// When the earliest timer of a transaction or a call is due; `None`
    /// when none is pending. What [`Engine::on_timer`] does besides
    /// (housekeeping of the policy, silent media) has no deadline here.
    pub fn next_due(&self) -> Option<std::time::Instant> {
        match (self.tx.next_due(), self.timers.next()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Sizes of the engine's tables, for logs and leak hunting.
    pub fn sizes(&self) -> String {
        let (st, ct) = self.tx.counts();
        format!(
            "calls={} dialogs={} by_invite={} relays={} call_timers={} server_tx={st} client_tx={ct} tx_timers={}",
            self.calls.len(),
            self.dialogs.len(),
            self.by_invite.len(),
            self.relays.len(),
            self.timers.len(),
            self.tx.timer_count(),
        )
    }

    /// The engine's and the policy's metrics in Prometheus text format.
    pub fn metrics(&self) -> String {
        use crate::metrics::metric;
        let (st, ct) = self.tx.counts();
        let mut out = String::with_capacity(1024);
        self.policy.metrics(&mut out);
        if let Some(a) = &self.anchor {
            out.push_str(&a.metrics());
        }
        metric(
            &mut out,
            "sipmask_active_calls",
            "gauge",
            "Calls not yet ended.",
            &[("", self.live_calls() as u64)],
        );
        metric(
            &mut out,
            "sipmask_transactions",
            "gauge",
            "Live SIP transactions.",
            &[
                ("side=\"server\"", st as u64),
                ("side=\"client\"", ct as u64),
            ],
        );
        metric(
            &mut out,
            "sipmask_retransmissions_total",
            "counter",
            "SIP retransmissions sent.",
            &[("", self.tx.retransmissions)],
        );
        out
    }

    /// Handles one message from `src`.
    pub fn on_message(&mut self, m: Msg, src: Peer, now: Now) {
        if self.relayed(&m, src) {
            return;
        }
        let outside = m.to_tag.is_none()
            && m.method()
                .is_some_and(|x| !matches!(x, Method::Ack | Method::Cancel));
        let mut account = None;
        if outside {
            let screened = match m.method() {
                Some(Method::Invite | Method::Register) => self.policy.screen(&m, src, now),
                _ => self.policy.out_of_dialog(&m, src, now),
            };
            match screened {
                Screen::Accept => {}
                Screen::Account(a) => account = Some(a),
                Screen::Refuse(a) => {
                    let tag = crate::ids::token();
                    return self
                        .tx
                        .reply_stateless(&m, src, a.status, &a.reason, &tag, &a.headers);
                }
                Screen::Drop => return,
            }
        }
        // RFC 3261 §8.2.2.3: an extension the request requires and we do
        // not have is refused, never ignored (ACK and CANCEL take none).
        let checked = m
            .method()
            .is_some_and(|x| !matches!(x, Method::Ack | Method::Cancel));
        if let Some(tags) = checked.then(|| m.unsupported(REQUIRABLE)).flatten() {
            let tag = crate::ids::token();
            let headers = [("Unsupported", tags)];
            return self
                .tx
                .reply_stateless(&m, src, 420, "Bad Extension", &tag, &headers);
        }
        match m.method().cloned() {
            None => self.on_response(m, now),
            Some(Method::Cancel) => self.on_cancel(m, src, now),
            Some(method) if m.to_tag.is_some() => self.on_in_dialog(method, m, src, now),
            Some(Method::Invite) => self.on_invite(m, src, account, now),
            Some(Method::Ack) => {} // ACK outside any dialog: nothing to do.
            Some(_) => self.on_other(&m, src, now),
        }
    }

    /// A request outside any dialog that starts none: the policy's answer
    /// (REGISTER), else ours.
    fn on_other(&mut self, m: &Msg, src: Peer, now: Now) {
        let Incoming::New(key) = self.tx.on_request(m, src, 0, now.mono) else {
            return;
        };
        // A final response adds a To tag when the request had none (RFC
        // 3261 8.2.6.2).
        let tag = crate::ids::token();
        if let Some(a) = self.policy.request(m, src, now) {
            return self.respond_with(&key, a.status, &a.reason, Some(&tag), &a.headers, now);
        }
        let code = match m.method() {
            Some(Method::Options) => 200,
            // Requests that only exist inside a dialog, without a To tag:
            // no such dialog (RFC 3261 12.2.2, 15.1.2).
            Some(Method::Bye | Method::Update | Method::Prack | Method::Info | Method::Refer) => {
                481
            }
            _ => 405,
        };
        self.respond_simple(&key, code, Some(&tag), now);
    }

    /// A TCP connection closed (the transport says so).
    pub fn on_closed(&mut self, peer: Peer, now: Now) {
        self.policy.closed(peer, now);
    }

    /// Fires due timers, then lets the policy look at the live calls.
    pub fn on_timer(&mut self, now: Now) {
        for ev in self.tx.on_timer(now.mono) {
            match ev {
                TxEvent::ClientTimeout { owner, key } => self.on_client_timeout(owner, key, now),
                TxEvent::NoAck { owner, key } => self.on_no_ack(owner, key, now),
            }
        }
        while let Some(t) = self.timers.pop_due(now.mono) {
            match t {
                CallTimer::NoAnswer(id) => self.on_no_answer(id, now),
                CallTimer::Setup(id, i) => self.on_fork_silent(id, i, true, now),
                CallTimer::Limit(id) => self.on_limit(id, now),
                CallTimer::Warn(id) => self.on_warn(id),
                CallTimer::Refused(id) => self.on_refused(id, now),
                CallTimer::Cleanup(id) => self.forget(id),
                CallTimer::Probe(id) => self.on_probe_timeout(id, now),
            }
        }
        self.end_silent(now);
        {
            let mut live = self
                .calls
                .iter()
                .filter(|(_, c)| c.phase != Phase::Ended)
                .map(|(id, c)| (*id, &c.state));
            self.policy.tick(&mut live, now);
        }
        for p in self.policy.probes(now) {
            self.send_probe(p, now);
        }
    }

    /// Plays the last-minute warning to both parties of an answered call.
    fn on_warn(&mut self, id: CallId) {
        let Some(anchor) = &self.anchor else { return };
        if self
            .calls
            .get(&id)
            .is_some_and(|c| c.phase == Phase::Answered)
        {
            anchor.play(id, crate::media::Party::A, crate::media::Sound::Warning);
            anchor.play(id, crate::media::Party::B, crate::media::Sound::Warning);
        }
    }

    /// Ends answered calls from which the anchor heard no media for the
    /// timeout: BYE to both, "no media" in the record.
    fn end_silent(&mut self, now: Now) {
        let (Some(anchor), Some(timeout)) = (&self.anchor, self.media_timeout) else {
            return;
        };
        for id in anchor.silent(timeout) {
            if self
                .calls
                .get(&id)
                .is_some_and(|c| c.phase == Phase::Answered)
            {
                tracing::info!(call = id, "no media: ending the call");
                self.hang_up_both(id, EndReason::NoMedia, now);
            }
        }
    }

    /// Stops taking new calls (SIGTERM).
    pub fn stop_accepting(&mut self) {
        self.accepting = false;
        if let Some(a) = &self.anchor {
            a.quiesce();
        }
    }

    /// Ends every live call: BYE to both legs of answered ones, CANCEL and
    /// 503 for unanswered ones.
    pub fn end_all(&mut self, now: Now) {
        let ids: Vec<CallId> = self.calls.keys().copied().collect();
        for id in ids {
            match self.calls.get(&id).map(|c| c.phase) {
                Some(Phase::Answered) => self.hang_up_both(id, EndReason::Shutdown, now),
                Some(Phase::Calling) => self.abandon(id, 503, now),
                _ => {}
            }
        }
    }

    /// Responds on a server transaction with a standard reason phrase.
    fn respond_simple(&mut self, key: &TxKey, code: u16, to_tag: Option<&str>, now: Now) {
        let reason = crate::sip::writer::reason(code);
        self.respond_with(key, code, reason, to_tag, &[], now);
    }

    fn respond_with(
        &mut self,
        key: &TxKey,
        code: u16,
        reason: &str,
        to_tag: Option<&str>,
        headers: &[(&'static str, String)],
        now: Now,
    ) {
        if let Some(mut w) = self.tx.response(key, code, reason, to_tag) {
            if code == 405 || (key.method == Method::Options && code == 200) {
                w.header("Allow", ALLOW);
            }
            for (name, value) in headers {
                w.header(name, value);
            }
            self.tx.respond(key, code, w.finish(None, b""), now.mono);
        }
    }

    /// Our address as `peer` should see it.
    fn me_for(&self, peer: &Peer) -> String {
        let v = if peer.addr.is_ipv6() {
            &self.cfg.me_v6
        } else {
            &self.cfg.me_v4
        };
        v.clone()
            .or_else(|| self.cfg.me_v4.clone())
            .or_else(|| self.cfg.me_v6.clone())
            .unwrap_or_default()
    }

    /// Marks a call over, tells the policy and schedules its removal.
    fn finish(&mut self, id: CallId, reason: EndReason, now: Now) {
        let Some(c) = self.calls.get_mut(&id) else {
            return;
        };
        if c.phase == Phase::Ended {
            return;
        }
        // An answer A never acknowledged is no call: no talk time.
        let status = match (c.answered, c.confirmed) {
            (Some(_), false) => 408,
            _ => c.result,
        };
        let talk = c
            .answered
            .filter(|_| c.confirmed)
            .map(|t| now.mono.saturating_duration_since(t));
        c.phase = Phase::Ended;
        if let Some(a) = &self.anchor {
            a.release(id);
        }
        let pending = std::mem::take(&mut c.timers);
        tracing::debug!(call = id, why = reason.as_str(), "call over");
        let ending = Ending {
            reason,
            status,
            talk,
        };
        self.policy
            .milestone(id, &mut c.state, Milestone::Ended(ending), now);
        for k in pending {
            self.timers.cancel(k);
        }
        // A crossing BYE still finds the call for a while; retransmissions
        // are answered by the transaction layer, which keeps its own state.
        self.timers
            .add(now.mono + self.cfg.timers.t4, CallTimer::Cleanup(id));
    }

    /// Tells the policy a milestone of call `id`.
    fn tell(&mut self, id: CallId, m: Milestone, now: Now) {
        if let Some(c) = self.calls.get_mut(&id) {
            self.policy.milestone(id, &mut c.state, m, now);
        }
    }

    fn forget(&mut self, id: CallId) {
        if let Some(a) = &self.anchor {
            a.release(id);
        }
        if let Some(c) = self.calls.remove(&id) {
            self.dialogs.remove(&(c.a.call_id, c.a.local_tag));
            for f in c.forks {
                self.dialogs.remove(&(f.leg.call_id, f.leg.local_tag));
            }
            self.by_invite.remove(&c.a_invite);
            for k in &c.relays {
                self.relays.remove(k);
            }
        }
    }
}

/// SIP extensions carried end to end (RFC 3262 reliable provisionals,
/// through PRACK; RFC 4028 session timers, through Session-Expires, Min-SE
/// and UPDATE), for Supported and Require.
pub const OPTION_TAGS: &[&str] = &["100rel", "timer"];

/// Option tags a request may require of us: those we carry end to end,
/// and Path on a REGISTER (RFC 3327), which the registrar honours.
pub const REQUIRABLE: &[&str] = &["100rel", "timer", "path"];

/// Body types that cross, for Accept.
pub const ACCEPT: &[&str] = &[
    "application/sdp",
    "text/plain",
    "message/cpim",
    "message/sipfrag",
    "application/dtmf-relay",
];

/// Methods we take, for Allow headers.
pub const ALLOW: &str =
    "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO, PRACK, NOTIFY, MESSAGE, REGISTER";

#[cfg(test)]
mod dialog_ref_tests {
    use super::DialogRef;

    #[test]
    fn a_dialog_is_found_by_the_borrowed_key_and_only_its_own() {
        let mut dialogs: crate::ids::WireMap<(String, String), u32> = Default::default();
        for i in 0..1_000u32 {
            dialogs.insert((format!("call-{i}"), format!("tag-{i}")), i);
        }
        assert_eq!(dialogs.get(&DialogRef("call-321", "tag-321")), Some(&321));
        assert_eq!(dialogs.get(&DialogRef("call-321", "tag-322")), None);
        // The parts do not run together: ("ab", "c") is not ("a", "bc").
        dialogs.insert(("ab".into(), "c".into()), 7);
        assert_eq!(dialogs.get(&DialogRef("a", "bc")), None);
        assert!(dialogs.contains_key(&DialogRef("ab", "c")));
    }
}
