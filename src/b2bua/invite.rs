//! Setting up a call, the caller's side: A's INVITE decided, refused (with
//! a prompt) or bridged, B's answers relayed to A, CANCEL from A
//! (including CANCEL crossing B's 200), no-answer timeout. Our INVITEs
//! toward B are in `forks.rs`.

use crate::ids::token;
use crate::sip::message::{Msg, RELAYED_HEADERS};
use crate::sip::transaction::{Incoming, TxKey};
use crate::sip::writer::{reason, Writer};
use crate::sip::{Method, Peer};
use crate::time::Now;

use super::call::{Call, Leg, Phase, Side};
use super::policy::{Decision, EndReason, Media, Milestone, Offer, Plan, Policy};
use super::{CallId, CallTimer, Engine};
use crate::media::{sdp, MediaError, Party};

impl<P: Policy> Engine<P> {
    pub(super) fn on_invite(&mut self, m: Msg, src: Peer, account: Option<String>, now: Now) {
        let Incoming::New(key) = self.tx.on_request(&m, src, 0, now.mono) else {
            return;
        };
        let id = self.next_id;
        let offer = Offer {
            id,
            request: &m,
            source: src,
            account,
        };
        // The offer is parsed once: checked here, rendered for each fork.
        let described = super::is_sdp(&m).then(|| sdp::parse(&m.body));
        let unusable = matches!(described, Some(Err(_)));
        let (decision, by_policy) = self.decide_invite(&offer, unusable, now);
        let (plan, state) = match decision {
            Decision::Bridge(plan, state) if !plan.targets.is_empty() => (plan, state),
            Decision::Bridge(..) => {
                let tag = token();
                self.respond_with(&key, 480, reason(480), Some(&tag), &[], now);
                return;
            }
            Decision::Refuse {
                status,
                reason,
                why,
            } => {
                tracing::debug!(why, status, "refusing INVITE");
                let tag = token();
                if by_policy && self.refuse_with_prompt(&m, src, &key, &tag, (status, &reason), now)
                {
                    return;
                }
                self.respond_with(&key, status, &reason, Some(&tag), &[], now);
                return;
            }
        };
        self.next_id += 1;
        if let Some(ticket) = plan.hold {
            // The policy waits on its store before anyone rings.
            self.held_offers.push(super::held::HeldOffer {
                ticket,
                id,
                invite: m,
                src,
                key,
                plan,
                state,
            });
            return;
        }
        let described = described.and_then(Result::ok);
        self.bridge(id, (&m, described), src, &key, (plan, state), now);
    }

    /// Sends a decided call's INVITEs to its callee's targets.
    pub(super) fn bridge(
        &mut self,
        id: CallId,
        (m, described): (&Msg, Option<sdp::Parsed<'_>>),
        src: Peer,
        key: &TxKey,
        (mut plan, state): (Plan, P::Call),
        now: Now,
    ) {
        let a = Leg::caller(m, src, self.me_for(&src));
        tracing::debug!(call = id, forks = plan.targets.len(), "bridging call");
        let offered = match self.anchor_offer(id, described, &plan, src) {
            Ok(o) => o,
            Err(e) => return self.refuse_unanchored(id, key, state, &e, now),
        };
        let mut sends = Vec::with_capacity(plan.targets.len());
        let mut forks = Vec::with_capacity(plan.targets.len());
        for route in std::mem::take(&mut plan.targets) {
            let (fork, bytes, ack) = self.new_fork(
                id,
                route,
                (m, offered.as_ref(), src.addr.ip()),
                &plan.from_user,
                plan.media,
            );
            sends.push((fork.invite.clone(), fork.route.peer, bytes, ack));
            forks.push(fork);
        }
        let later = !plan.failover.is_empty() || forks.iter().any(|f| f.route.auth.is_some());
        // Kept only for what comes later (failover, a challenge).
        let offer = later.then(|| std::sync::Arc::new(m.clone()));
        let (announce, no_answer) = (plan.announce, plan.no_answer);
        let call = Call::calling(a, key.clone(), forks, plan, offer, state);
        self.keep_call(id, key, call);
        for (i, (b_key, peer, bytes, ack)) in sends.into_iter().enumerate() {
            self.tx
                .send_request(b_key, peer, bytes, id, Some(ack), now.mono);
            self.arm_setup(id, i, now);
        }
        self.tell(id, Milestone::Offered, now);
        if announce {
            self.announce(id, m, key, now);
        }
        let t = self
            .timers
            .add(now.mono + no_answer, CallTimer::NoAnswer(id));
        if let Some(c) = self.calls.get_mut(&id) {
            c.timers.push(t);
        }
    }

    /// A held offer's ticket is durable: the policy says whether it is
    /// bridged (with the first limit its store granted) or refused. One
    /// whose caller cancelled meanwhile (its INVITE already answered 487)
    /// ends there.
    pub(super) fn release_offer(&mut self, h: super::held::HeldOffer<P::Call>, now: Now) {
        let super::held::HeldOffer {
            id,
            invite,
            src,
            key,
            mut plan,
            mut state,
            ..
        } = h;
        let outcome = self.policy.offer_released(id, &mut state, now);
        match outcome {
            Ok(_) if !self.tx.is_pending(&key) => {
                let ending = super::policy::Ending {
                    reason: EndReason::Cancelled,
                    status: 487,
                    talk: None,
                };
                self.policy
                    .milestone(id, &mut state, Milestone::Ended(ending), now);
            }
            Ok(limit) => {
                plan.limit = limit.or(plan.limit);
                let described = super::is_sdp(&invite)
                    .then(|| sdp::parse(&invite.body).ok())
                    .flatten();
                self.bridge(id, (&invite, described), src, &key, (plan, state), now);
            }
            Err((status, reason)) => {
                tracing::debug!(call = id, status, "refusing a held INVITE");
                if self.tx.is_pending(&key) {
                    let tag = token();
                    self.respond_with(&key, status, &reason, Some(&tag), &[], now);
                }
            }
        }
    }

    /// A bridged call whose media cannot be anchored (no ports): 503 to
    /// the caller, and the policy lets its reservation go, charging no use.
    fn refuse_unanchored(
        &mut self,
        id: CallId,
        key: &TxKey,
        mut state: P::Call,
        e: &MediaError,
        now: Now,
    ) {
        super::warn_media(e, "media cannot be anchored: refusing the call");
        let tag = token();
        self.respond_with(key, 503, reason(503), Some(&tag), &[], now);
        let ending = super::policy::Ending {
            reason: EndReason::NoMediaPorts,
            status: 503,
            talk: None,
        };
        self.policy
            .milestone(id, &mut state, Milestone::Ended(ending), now);
    }

    /// What becomes of a new INVITE: the engine's own refusals first (an
    /// unusable SDP, draining, Max-Forwards 0; the policy is told), else
    /// the policy's decision. With whether the policy made it.
    fn decide_invite(
        &mut self,
        offer: &Offer<'_>,
        unusable_sdp: bool,
        now: Now,
    ) -> (Decision<P::Call>, bool) {
        let own = if unusable_sdp {
            Some((488, "Not Acceptable Here".to_string(), "unusable SDP"))
        } else if !self.accepting {
            let (status, reason) = self.cfg.unavailable.clone();
            Some((status, reason, "shutting down"))
        } else if offer.request.max_forwards == Some(0) {
            Some((483, "Too Many Hops".to_string(), "max-forwards"))
        } else {
            None
        };
        match own {
            Some((status, reason, why)) => {
                self.policy.refused(offer, status, why, now);
                let refusal = Decision::Refuse {
                    status,
                    reason,
                    why,
                };
                (refusal, false)
            }
            None => (self.policy.decide(offer, now), true),
        }
    }

    /// Keeps a new call: its INVITE's transaction and both legs' dialogs
    /// lead to it.
    fn keep_call(&mut self, id: CallId, key: &TxKey, call: Call<P::Call>) {
        self.tx.set_owner(key, id);
        self.dialogs.insert(
            (call.a.call_id.clone(), call.a.local_tag.clone()),
            (id, Side::A),
        );
        for f in &call.forks {
            self.dialogs.insert(
                (f.leg.call_id.clone(), f.leg.local_tag.clone()),
                (id, Side::B),
            );
        }
        self.by_invite.insert(key.clone(), id);
        self.calls.insert(id, call);
    }

    /// Plays the refusal prompt to a refused caller as early media (183
    /// with an SDP of ours) and sends the final status once it has played;
    /// false (nothing sent) when no prompt is configured, the caller
    /// offered no G.711 or media is not relayed.
    fn refuse_with_prompt(
        &mut self,
        m: &Msg,
        src: Peer,
        key: &TxKey,
        tag: &str,
        (status, reason_phrase): (u16, &str),
        now: Now,
    ) -> bool {
        let Some(anchor) = self.anchor.clone() else {
            return false;
        };
        if !super::is_sdp(m) {
            return false;
        }
        let Ok(parsed) = sdp::parse(&m.body) else {
            return false;
        };
        let id = self.next_id;
        self.next_id += 1;
        let me = self.me_for(&src);
        anchor.note(id, Party::A, &parsed.streams, src.addr.ip());
        let early = early_prompt(
            anchor.as_ref(),
            id,
            &parsed,
            super::host_of(&me),
            &mut sdp::Origin::new(),
            crate::media::Sound::Refusal,
        );
        let Some((body, took)) = early else {
            anchor.release(id);
            return false;
        };
        if !self.send_183(
            key,
            tag,
            &crate::text::cat(&["<sip:", &me, ">"]),
            &body,
            now,
        ) {
            anchor.release(id);
            return false;
        }
        self.refusing.insert(
            id,
            super::Refusing {
                key: key.clone(),
                status,
                reason: reason_phrase.to_string(),
                tag: tag.to_string(),
            },
        );
        // The prompt starts a moment after the 183 (see the relay).
        let at = now.mono + took + std::time::Duration::from_millis(300);
        self.timers.add(at, CallTimer::Refused(id));
        true
    }

    /// The refusal prompt has played: the final status, and the media freed.
    pub(super) fn on_refused(&mut self, id: CallId, now: Now) {
        if let Some(a) = &self.anchor {
            a.release(id);
        }
        if let Some(r) = self.refusing.remove(&id) {
            self.respond_with(&r.key, r.status, &r.reason, Some(&r.tag), &[], now);
        }
    }

    /// Answers the caller's offer ourselves with early media (183 and an
    /// SDP naming our port facing it) and plays the announcement there
    /// while the callee is called; the callee's media reaches the caller
    /// once it has played. Nothing happens when the media is not relayed
    /// or the caller offered no G.711.
    fn announce(&mut self, id: CallId, offer: &Msg, key: &TxKey, now: Now) {
        let Some(anchor) = self.anchor.clone() else {
            return;
        };
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if call.media != Media::Relay || !super::is_sdp(offer) {
            return;
        }
        let Ok(parsed) = sdp::parse(&offer.body) else {
            return;
        };
        let early = early_prompt(
            anchor.as_ref(),
            id,
            &parsed,
            super::host_of(&call.a.me),
            &mut call.a.origin,
            crate::media::Sound::Announcement,
        );
        let Some((body, _)) = early else {
            return;
        };
        let (tag, contact) = (call.a.local_tag.clone(), call.a.contact());
        if self.send_183(key, &tag, &contact, &body, now) {
            self.tell(id, Milestone::Announced, now);
        }
    }

    /// Sends 183 Session Progress with our SDP on A's INVITE transaction;
    /// false when the transaction has already answered.
    fn send_183(&mut self, key: &TxKey, tag: &str, contact: &str, body: &[u8], now: Now) -> bool {
        let Some(mut w) = self.tx.response(key, 183, reason(183), Some(tag)) else {
            return false;
        };
        w.header("Contact", contact);
        let bytes = w.finish(Some("application/sdp"), body);
        self.tx.respond(key, 183, bytes, now.mono);
        true
    }

    /// Anchors the caller's offer (`parsed`, when it carries SDP) and opens
    /// the ports facing the caller before any fork carries it, so that a
    /// full port range refuses the call (503) instead of sending an INVITE
    /// or a 2xx without its description; the offer, ready to be rendered
    /// for each fork.
    fn anchor_offer<'m>(
        &self,
        id: CallId,
        parsed: Option<sdp::Parsed<'m>>,
        plan: &Plan,
        src: Peer,
    ) -> Result<Option<super::Offered<'m>>, MediaError> {
        let Some(parsed) = parsed else {
            return Ok(None);
        };
        let relay = match (&self.anchor, plan.media, plan.targets.first()) {
            (Some(anchor), Media::Relay, Some(route)) => {
                let v6 = self.me_for(&route.peer).starts_with('[');
                let ours = anchor.describe(id, Party::A, v6, &parsed.streams, src.addr.ip());
                // The ports facing the caller too, before anyone rings: a
                // range that runs out later would leave the answer without
                // its description (RFC 3264) on a call charged as answered.
                let a_v6 = self.me_for(&src).starts_with('[');
                let facing_a = ours.and_then(|o| anchor.face(id, Party::A, a_v6).map(|_| o));
                Some(facing_a.inspect_err(|_| anchor.release(id))?)
            }
            _ => None,
        };
        Ok(Some(super::Offered { parsed, relay }))
    }

    /// Writes the session/capability headers that cross between legs.
    /// Capability lists are our own: `Allow` is what we take, `Supported`,
    /// `Require` and `Accept` are what we carry end to end among what the
    /// party listed, in our order and spelling, one header each; a party's
    /// own list (its software shows through it) never crosses.
    pub(super) fn copy_relayed(&self, w: &mut Writer, m: &Msg) {
        let mut lists: [(&str, &[&str], Vec<&str>); 3] = [
            ("Supported", super::OPTION_TAGS, Vec::new()),
            ("Require", super::OPTION_TAGS, Vec::new()),
            ("Accept", super::ACCEPT, Vec::new()),
        ];
        let mut allow = false;
        for (name, value) in &m.relayed {
            debug_assert!(RELAYED_HEADERS.contains(name));
            if *name == "Allow" {
                allow = true;
            } else if let Some((_, ours, got)) = lists.iter_mut().find(|(n, ..)| n == name) {
                for theirs in value.split(',') {
                    let theirs = theirs.split(';').next().unwrap_or("").trim();
                    if let Some(o) = ours.iter().find(|o| o.eq_ignore_ascii_case(theirs)) {
                        if !got.contains(o) {
                            got.push(o);
                        }
                    }
                }
            } else {
                w.header(name, value);
            }
        }
        if allow {
            w.header("Allow", super::ALLOW);
        }
        for (name, ours, got) in lists {
            let kept: Vec<&str> = ours.iter().copied().filter(|o| got.contains(o)).collect();
            if !kept.is_empty() {
                w.header(name, &kept.join(", "));
            }
        }
    }

    /// Relays fork `fork`'s 18x or 2xx to A's INVITE transaction.
    pub(super) fn relay_to_a_invite(&mut self, id: CallId, fork: usize, m: &Msg, now: Now) {
        let Some(code) = m.code() else { return };
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(b_source) = call.forks.get(fork).map(|f| f.leg.peer.addr.ip()) else {
            return;
        };
        let (key, tag, contact) = (
            call.a_invite.clone(),
            call.a.local_tag.clone(),
            call.a.contact(),
        );
        let to = super::Towards::new(&self.anchor, id, Side::B, b_source);
        let body = super::cross_or_drop(to, call.media, m, &mut call.a);
        let Some(mut w) = self.tx.response(&key, code, reason(code), Some(&tag)) else {
            return;
        };
        w.header("Contact", &contact);
        // RFC 3261 §12.1.1: a response that makes the caller's dialog
        // carries the Record-Route of its INVITE, so that the proxies on
        // the caller's path stay on it (they are the caller's side's own,
        // never the callee's).
        w.headers("Record-Route", &call.a.route);
        self.copy_relayed(&mut w, m);
        let bytes = w.finish(m.content_type.as_deref(), &body);
        self.tx.respond(&key, code, bytes, now.mono);
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
        let (key, tag) = (call.a_invite.clone(), call.a.local_tag.clone());
        self.respond_simple(&key, code, Some(&tag), now);
        self.cancel_forks(id, None, now);
        self.finish(id, EndReason::Cancelled, now);
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
}

/// Early media of our own for the caller of `id`, whose offer is `offer`:
/// our ports facing it opened, `sound` started, and our SDP answer naming
/// them (with `origin`, the one the caller is shown); with how long the
/// sound plays. `None` when it cannot play (no ports, no G.711, no such
/// prompt configured).
fn early_prompt(
    anchor: &dyn crate::media::Anchor,
    id: CallId,
    offer: &sdp::Parsed<'_>,
    host: &str,
    origin: &mut sdp::Origin,
    sound: crate::media::Sound,
) -> Option<(Vec<u8>, std::time::Duration)> {
    let ours = anchor.face(id, Party::A, host.contains(':')).ok()?;
    let play = anchor.playable(id, Party::A);
    let took = anchor.play(id, Party::A, sound)?;
    Some((offer.answer(host, origin, &ours, &play), took))
}
