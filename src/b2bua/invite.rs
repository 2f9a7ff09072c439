//! Setting up a call: A's INVITE, our INVITEs to B (one per target, in
//! parallel, with failover to the next target and answers to a next hop's
//! challenge), B's answers relayed to A, the losing forks cancelled,
//! CANCEL from A (including CANCEL crossing B's 200), no-answer timeout.

use crate::ids::token;
use crate::sip::message::{Msg, RELAYED_HEADERS};
use crate::sip::transaction::{Incoming, TxKey};
use crate::sip::writer::{reason, Writer};
use crate::sip::{Method, Peer};
use crate::time::Now;

use bytes::Bytes;

use crate::sip::digest;
use crate::sip::transaction::AckBase;

use super::call::{Call, Fork, Leg, PendingAck, Phase, Side};
use super::policy::{
    Decision, EndReason, Media, Milestone, Offer, Plan, Policy, Route, TrunkOutcome,
};
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
        let own = if matches!(described, Some(Err(_))) {
            Some((488, "Not Acceptable Here".to_string(), "unusable SDP"))
        } else if !self.accepting {
            let (status, reason) = self.cfg.unavailable.clone();
            Some((status, reason, "shutting down"))
        } else if m.max_forwards == Some(0) {
            Some((483, "Too Many Hops".to_string(), "max-forwards"))
        } else {
            None
        };
        let by_policy = own.is_none();
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
        let me_a = self.me_for(&src);
        let a_tag = token();
        let a = Leg {
            call_id: m.call_id.to_string(),
            local_tag: a_tag.clone(),
            local_hdr: crate::text::cat(&[&m.to, ";tag=", &a_tag]),
            remote_hdr: m.from.to_string(),
            remote_tag: m.from_tag.as_deref().map(str::to_string),
            local_cseq: 0,
            target: m.contact.as_deref().map_or_else(
                || crate::sip::message::uri_of(&m.from).to_string(),
                str::to_string,
            ),
            route: m.record_route.iter().map(|r| r.to_string()).collect(),
            preload: Vec::new(),
            peer: src,
            me: me_a,
            max_forwards: 70,
            origin: crate::media::sdp::Origin::new(),
        };
        tracing::debug!(call = id, forks = plan.targets.len(), "bridging call");
        let offered = match self.anchor_offer(id, described.and_then(Result::ok), &plan, src) {
            Ok(o) => o,
            Err(e) => {
                super::warn_media(&e, "media cannot be anchored: refusing the call");
                let tag = token();
                self.respond_with(&key, 503, reason(503), Some(&tag), &[], now);
                // Its reservation is let go, and no use is charged.
                let mut state = state;
                let ending = super::policy::Ending {
                    reason: EndReason::NoMediaPorts,
                    status: 503,
                    talk: None,
                };
                self.policy
                    .milestone(id, &mut state, Milestone::Ended(ending), now);
                return;
            }
        };
        let mut sends = Vec::with_capacity(plan.targets.len());
        let mut forks = Vec::with_capacity(plan.targets.len());
        for route in plan.targets {
            let (fork, bytes, ack) = self.new_fork(
                id,
                route,
                (&m, offered.as_ref(), src.addr.ip()),
                &plan.from_user,
                plan.media,
            );
            sends.push((fork.invite.clone(), fork.route.peer, bytes, ack));
            forks.push(fork);
        }
        let later = !plan.failover.is_empty() || forks.iter().any(|f| f.route.auth.is_some());
        let m = std::sync::Arc::new(m);
        let offer = later.then(|| std::sync::Arc::clone(&m));
        let call = Call {
            phase: Phase::Calling,
            b_invite_cseq: forks[0].cseq,
            b_fork: 0,
            forks,
            failover: plan.failover,
            from_user: plan.from_user,
            offer,
            media: plan.media,
            a,
            a_invite: key.clone(),
            cancelled: false,
            pending_ack: None,
            last_b_ack: None,
            limit: plan.limit,
            record: plan.record,
            warn_at: plan.warn_at,
            answered: None,
            confirmed: false,
            result: 0,
            timers: Vec::new(),
            relays: Vec::new(),
            state,
        };
        self.tx.set_owner(&key, id);
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
        for (i, (b_key, peer, bytes, ack)) in sends.into_iter().enumerate() {
            self.tx
                .send_request(b_key, peer, bytes, id, Some(ack), now.mono);
            self.arm_setup(id, i, now);
        }
        self.tell(id, Milestone::Offered, now);
        if plan.announce {
            self.announce(id, &m, &key, now);
        }
        let t = self
            .timers
            .add(now.mono + plan.no_answer, CallTimer::NoAnswer(id));
        if let Some(c) = self.calls.get_mut(&id) {
            c.timers.push(t);
        }
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

    /// A new INVITE towards `route` for the caller's `offer` (and its SDP
    /// when already anchored): the fork and what to send.
    fn new_fork(
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
    fn invite_on(
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
    fn add_fork(&mut self, id: CallId, route: Route, now: Now) {
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
    fn arm_setup(&mut self, id: CallId, i: usize, now: Now) {
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
    fn retry_with_auth(&mut self, id: CallId, i: usize, m: &Msg, now: Now) -> bool {
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
    fn fork_failed(&mut self, id: CallId, now: Now) {
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

    fn on_b_answer(&mut self, id: CallId, i: usize, m: Msg, now: Now) {
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
            Some(ticket) => self.held.push(super::HeldAnswer {
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
    fn cancel_forks(&mut self, id: CallId, reason: Option<&'static str>, now: Now) {
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

    /// ACKs and ends an unwanted 2xx dialog from fork `i`.
    /// A 2xx sent again (our ACK was lost) gets the same ACK again, and
    /// no second BYE: the first is one transaction, retransmitted by the
    /// transaction layer until answered.
    fn drop_fork(&mut self, id: CallId, i: usize, m: &Msg, now: Now) {
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
    fn tell_trunk(&mut self, id: CallId, trunk: usize, outcome: TrunkOutcome, now: Now) {
        if let Some(call) = self.calls.get_mut(&id) {
            self.policy.trunk(&mut call.state, trunk, outcome, now);
        }
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

    /// CANCELs fork `i`'s INVITE, with a Reason when another fork won.
    fn send_cancel(&mut self, id: CallId, i: usize, reason: Option<&str>, now: Now) {
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

/// The Reason of a CANCEL to the forks that lost (RFC 3326).
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

/// Credentials for a request with a given body: the header's name and
/// value (an `auth-int` answer hashes the body in).
type Credentialed<'a> = dyn Fn(&[u8]) -> (&'static str, String) + 'a;

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
