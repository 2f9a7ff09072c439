//! A call: two legs, each its own dialog with its own Call-ID, tags, CSeq,
//! Via and Contact. This file holds the state and builds requests on a leg;
//! the flows that move it are in `invite.rs` and `dialog.rs`.

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::sip::message::{param_present, uri_of};
use crate::sip::transaction::{AckBase, TxKey};
use crate::sip::writer::Writer;

use super::policy::{Media, Route};
use crate::sip::{branch, Method, Peer, Transport};
use crate::text::cat;

/// Which leg.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// The caller's leg (they sent us the INVITE).
    A,
    /// The callee's leg (we sent the INVITE).
    B,
}

impl Side {
    /// The party on this leg, as the media layer names it.
    pub fn party(self) -> crate::media::Party {
        match self {
            Side::A => crate::media::Party::A,
            Side::B => crate::media::Party::B,
        }
    }

    /// The other leg.
    pub fn other(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }
}

/// One dialog of a call, seen from sipmask.
#[derive(Clone, Debug)]
pub struct Leg {
    /// Call-ID of this leg.
    pub call_id: String,
    /// Our tag.
    pub local_tag: String,
    /// Our From/To value, with our tag.
    pub local_hdr: String,
    /// Their From/To value, with their tag once known.
    pub remote_hdr: String,
    /// Their tag, once known.
    pub remote_tag: Option<String>,
    /// Last CSeq we used.
    pub local_cseq: u32,
    /// Request-URI for requests in this dialog.
    pub target: String,
    /// Route set.
    pub route: Vec<String>,
    /// The route to preload when the far end did not record-route: the
    /// trunk as an outbound proxy (RFC 3261 §8.1.2), or the Path of a
    /// registration (RFC 3327), so that in-dialog requests sent to that
    /// hop say where they go.
    pub preload: Vec<String>,
    /// Where requests go.
    pub peer: Peer,
    /// Our address (host:port) as this peer should see it.
    pub me: String,
    /// Max-Forwards of requests we start on this leg.
    pub max_forwards: u32,
    /// The SDP origin this leg is shown (our own, per leg).
    pub origin: crate::media::sdp::Origin,
}

impl Leg {
    /// The caller's leg of a new INVITE `m` from `src`; `me` is our
    /// address as the caller sees it. Its route set is the INVITE's
    /// Record-Route, in order (we are its UAS).
    pub fn caller(m: &crate::sip::message::Msg, src: Peer, me: String) -> Leg {
        let tag = crate::ids::token();
        Leg {
            call_id: m.call_id.to_string(),
            local_hdr: cat(&[&m.to, ";tag=", &tag]),
            local_tag: tag,
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
            me,
            max_forwards: 70,
            origin: crate::media::sdp::Origin::new(),
        }
    }

    /// Contact header value for this leg.
    pub fn contact(&self) -> String {
        match self.peer.transport {
            Transport::Udp => cat(&["<sip:", &self.me, ">"]),
            Transport::Tcp => cat(&["<sip:", &self.me, ";transport=tcp>"]),
        }
    }

    /// Our Via with a fresh branch; returns the value and the branch.
    pub fn via(&self) -> (String, String) {
        let b = branch();
        (
            cat(&[
                "SIP/2.0/",
                self.peer.transport.as_str(),
                " ",
                &self.me,
                ";branch=",
                &b,
                ";rport",
            ]),
            b,
        )
    }

    /// Starts an in-dialog request: bumps CSeq unless it is ACK (which reuses
    /// `cseq`). Returns the writer, the transaction key and our Via.
    fn start(&mut self, method: Method, ack_cseq: Option<u32>) -> (Writer, TxKey, String, u32) {
        let cseq = match ack_cseq {
            Some(c) => c,
            None => {
                self.local_cseq += 1;
                self.local_cseq
            }
        };
        let (via, b) = self.via();
        // RFC 3261 §12.2.1.1: a strict router (no `;lr`) takes the
        // request at its own URI, the remote target going last in Route.
        let strict = self.route.first().filter(|r| !loose(r));
        let uri = strict.map_or(self.target.as_str(), |first| uri_of(first));
        let mut w = Writer::request(method.as_str(), uri);
        w.header("Via", &via);
        match strict {
            Some(_) => {
                w.headers("Route", &self.route[1..]);
                w.header_parts("Route", &["<", &self.target, ">"]);
            }
            None => {
                w.headers("Route", &self.route);
            }
        }
        w.header_num("Max-Forwards", self.max_forwards.into());
        w.header("From", &self.local_hdr);
        w.header("To", &self.remote_hdr);
        w.header("Call-ID", &self.call_id);
        w.cseq(cseq, method.as_str());
        if method != Method::Bye && method != Method::Ack {
            w.header("Contact", &self.contact());
        }
        (
            w,
            TxKey {
                branch: b.into(),
                method,
            },
            via,
            cseq,
        )
    }

    /// Starts an in-dialog request other than INVITE (see [`Leg::invite`]).
    pub fn request(&mut self, method: Method, ack_cseq: Option<u32>) -> (Writer, TxKey) {
        let (w, key, _, _) = self.start(method, ack_cseq);
        (w, key)
    }

    /// Starts an INVITE in this dialog; with it, what its ACK for a non-2xx
    /// final copies (only an INVITE needs one, so only it pays for the copies).
    pub fn invite(&mut self) -> (Writer, TxKey, AckBase) {
        let (w, key, via, cseq) = self.start(Method::Invite, None);
        let ack = AckBase {
            uri: self.target.clone(),
            via,
            from: self.local_hdr.clone(),
            to: self.remote_hdr.clone(),
            call_id: self.call_id.clone(),
            cseq,
            route: self.route.clone(),
        };
        (w, key, ack)
    }
}

/// Whether a route entry is a loose router's (`;lr` among its URI's
/// parameters).
fn loose(route: &str) -> bool {
    let uri = uri_of(route);
    let params = uri.split_once(';').map_or("", |(_, p)| p);
    let params = params.split('?').next().unwrap_or("");
    param_present(params, "lr")
}

/// Where a call is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// INVITE sent to B, no answer yet.
    Calling,
    /// B answered; bridged.
    Answered,
    /// Over; kept a little to absorb late messages.
    Ended,
}

/// An ACK we owe one leg when the other leg ACKs a 2xx.
#[derive(Clone, Debug)]
pub struct PendingAck {
    /// Leg the ACK comes from.
    pub from: Side,
    /// Its CSeq there.
    pub cseq: u32,
    /// Server transaction of the INVITE being ACKed.
    pub server_key: TxKey,
    /// CSeq of our INVITE on the other leg.
    pub other_cseq: u32,
}

/// A call in progress; `C` is the policy's state of it.
pub struct Call<C> {
    /// Life phase.
    pub phase: Phase,
    /// Caller leg.
    pub a: Leg,
    /// The fork that is the callee leg: the one that answered, the first
    /// early dialog before that, the latest fork before either. An index,
    /// not a copy, so that the leg has one state (its CSeq, its target)
    /// and a call does not clone a `Leg` at each provisional and answer.
    /// `forks` only grows, and a call starts with one, so it is in range.
    pub b_fork: usize,
    /// Server transaction of A's INVITE.
    pub a_invite: TxKey,
    /// Our INVITEs towards B: one per target called, each its own
    /// dialog; `b_fork` says which is the callee leg.
    pub forks: Vec<Fork>,
    /// Targets left to fail over to.
    pub failover: Vec<Route>,
    /// The CSeq number of the answered INVITE, for ACK and RAck.
    pub b_invite_cseq: u32,
    /// User part of the From our INVITEs show.
    pub from_user: String,
    /// The caller's INVITE, kept only while a later INVITE may need it
    /// (targets to fail over to, a next hop's challenge to answer).
    pub offer: Option<std::sync::Arc<crate::sip::message::Msg>>,
    /// What happens to session descriptions.
    pub media: Media,
    /// Caller cancelled (or we gave up) before an answer.
    pub cancelled: bool,
    /// ACK owed to the other leg for the latest 2xx to an INVITE.
    pub pending_ack: Option<PendingAck>,
    /// Last ACK sent to B for a 2xx, re-sent if B repeats its 2xx.
    pub last_b_ack: Option<Bytes>,
    /// Talk time allowed from the answer so far (`None`: no limit).
    pub limit: Option<Duration>,
    /// The recording's name, when the call is recorded.
    pub record: Option<String>,
    /// When to play the last-minute warning, after the answer.
    pub warn_at: Option<Duration>,
    /// When B answered.
    pub answered: Option<Instant>,
    /// Whether A acknowledged the answer: only then is the call a call.
    /// A 200 never ACKed is a failure.
    pub confirmed: bool,
    /// The final status the caller got (200 once answered).
    pub result: u16,
    /// No-answer and limit timers, cancelled when the call ends.
    pub timers: Vec<crate::sip::timer::TimerKey>,
    /// Requests of this call relayed to the other leg whose final response
    /// may still come (keys into the engine's relays; some may be gone).
    /// The call's end removes its own instead of walking every relay.
    pub relays: Vec<TxKey>,
    /// The policy's state of the call.
    pub state: C,
}

/// One INVITE of ours towards B: a target of the plan.
#[derive(Clone, Debug)]
pub struct Fork {
    /// Its dialog.
    pub leg: Leg,
    /// Where it went (and its credentials).
    pub route: Route,
    /// Its client transaction.
    pub invite: TxKey,
    /// Its Via, for CANCEL.
    pub via: String,
    /// Its CSeq number.
    pub cseq: u32,
    /// Heard anything (even 100 Trying).
    pub heard: bool,
    /// Answered a challenge already (one try only).
    pub authed: bool,
    /// CANCEL to send once it sends a provisional, with its Reason.
    pub cancel_pending: Option<Option<&'static str>>,
    /// Its final failure, once it has one (408 when it never answered).
    pub failed: Option<u16>,
    /// It answered 2xx.
    pub answered: bool,
    /// When it must have been heard from (its setup time, counted again
    /// from the INVITE that answers a challenge).
    pub setup_due: Option<Instant>,
    /// Its trunk refused our credentials: another trunk may do better.
    pub auth_rejected: bool,
    /// Its trunk was told it took our credentials.
    pub auth_told: bool,
    /// The ACKs sent for 2xx of it that nobody wanted (a fork that lost,
    /// a 2xx that crossed a CANCEL, a second dialog of a forking proxy),
    /// by the 2xx's To tag: re-sent when the 2xx is; the BYE of each is
    /// one transaction, sent once.
    pub dropped: Vec<(String, Bytes)>,
}

impl Fork {
    /// Still waiting for a final response.
    pub fn pending(&self) -> bool {
        self.failed.is_none() && !self.answered
    }
}

impl<C> Call<C> {
    /// A call being set up: the caller's leg `a` and its INVITE's server
    /// transaction, our INVITEs toward the callee (at least one), what the
    /// plan says beyond its targets, the caller's INVITE when a later
    /// INVITE may need it, and the policy's state.
    pub fn calling(
        a: Leg,
        a_invite: TxKey,
        forks: Vec<Fork>,
        plan: super::policy::Plan,
        offer: Option<std::sync::Arc<crate::sip::message::Msg>>,
        state: C,
    ) -> Call<C> {
        Call {
            phase: Phase::Calling,
            b_invite_cseq: forks.first().map_or(0, |f| f.cseq),
            b_fork: 0,
            forks,
            failover: plan.failover,
            from_user: plan.from_user,
            offer,
            media: plan.media,
            a,
            a_invite,
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
        }
    }

    /// The fork whose INVITE transaction is `key`.
    /// `key` is owned or borrowed from a response ([`TxKeyRef`]).
    ///
    /// [`TxKeyRef`]: crate::sip::transaction::TxKeyRef
    pub fn fork_of<Q: hashbrown::Equivalent<TxKey> + ?Sized>(&self, key: &Q) -> Option<usize> {
        self.forks.iter().position(|f| key.equivalent(&f.invite))
    }

    /// The callee leg.
    pub fn b(&self) -> &Leg {
        &self.forks[self.b_fork].leg
    }

    /// Where a leg's requests go (and come from).
    pub fn peer(&self, side: Side) -> Peer {
        match side {
            Side::A => self.a.peer,
            Side::B => self.b().peer,
        }
    }

    /// One leg.
    pub fn leg(&mut self, side: Side) -> &mut Leg {
        match side {
            Side::A => &mut self.a,
            Side::B => &mut self.forks[self.b_fork].leg,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leg(route: &[&str]) -> Leg {
        Leg {
            call_id: "c1".into(),
            local_tag: "t1".into(),
            local_hdr: "<sip:+8617000000000@10.0.0.1>;tag=t1".into(),
            remote_hdr: "<sip:+8613900000000@10.0.0.9>;tag=r1".into(),
            remote_tag: Some("r1".into()),
            local_cseq: 1,
            target: "sip:bob@10.0.0.3:5070".into(),
            route: route.iter().map(|r| r.to_string()).collect(),
            preload: Vec::new(),
            peer: Peer {
                addr: "10.0.0.9:5060".parse().expect("addr"),
                transport: Transport::Udp,
            },
            me: "10.0.0.1:5060".into(),
            max_forwards: 70,
            origin: crate::media::sdp::Origin::new(),
        }
    }

    fn head(w: Writer) -> String {
        String::from_utf8_lossy(&w.finish(None, b"")).to_string()
    }

    #[test]
    fn loose_routes_keep_the_remote_target_as_request_uri() {
        let mut l = leg(&["<sip:10.0.0.9;lr;ftag=t1>", "<sip:core.example;lr>"]);
        let (w, _) = l.request(Method::Bye, None);
        let text = head(w);
        assert!(
            text.starts_with("BYE sip:bob@10.0.0.3:5070 SIP/2.0\r\nVia: "),
            "{text}"
        );
        assert!(
            text.contains("Route: <sip:10.0.0.9;lr;ftag=t1>\r\nRoute: <sip:core.example;lr>\r\n"),
            "{text}"
        );
    }

    /// RFC 3261 §12.2.1.1: a strict router gets the request at its URI,
    /// and the remote target goes last in Route.
    #[test]
    fn a_strict_router_gets_the_request_uri_and_the_target_goes_last() {
        let mut l = leg(&["<sip:10.0.0.9;transport=udp>", "<sip:core.example;lr>"]);
        let (w, _) = l.request(Method::Bye, None);
        let text = head(w);
        assert!(
            text.starts_with("BYE sip:10.0.0.9;transport=udp SIP/2.0\r\n"),
            "{text}"
        );
        assert!(
            text.contains("Route: <sip:core.example;lr>\r\nRoute: <sip:bob@10.0.0.3:5070>\r\n"),
            "{text}"
        );
        assert!(!text.contains("Route: <sip:10.0.0.9"), "{text}");
        // `lr` as a value (lr=on) is loose too; `lr` in a header
        // parameter outside the URI is not.
        assert!(loose("<sip:p;lr=on>"));
        assert!(!loose("<sip:p>;lr"));
    }
}
