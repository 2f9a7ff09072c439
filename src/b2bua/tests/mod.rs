//! The engine's state machine without sockets: messages in as parsed
//! bytes, what it queued out, time moved by hand. A small policy routes
//! every call to one peer and writes down the milestones it hears.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::*;
use crate::sip::{Msg, Transport};

const A: &str = "127.0.0.2:5060";
const B: &str = "127.0.0.3:5060";
const ME: &str = "127.0.0.1:5060";
/// B's To tag: long and with a dash, so no random tag of ours can contain it by chance.
const B_TAG: &str = "b-side-tag";

fn peer(s: &str) -> Peer {
    Peer {
        transport: Transport::Udp,
        addr: s.parse().expect("address"),
    }
}

/// Routes every call to B as `+861700`, with the limit it is given, and
/// keeps what it hears.
#[derive(Default)]
struct Route1 {
    limit: Option<Duration>,
    refuse: bool,
    untrusted: bool,
    heard: Vec<Milestone>,
    limits_asked: u32,
    /// Addresses to fork to (none: B alone).
    forks: Vec<&'static str>,
    /// Addresses to fail over to.
    failover: Vec<&'static str>,
    setup: Option<Duration>,
    /// Routes carry credentials for a next hop's challenge.
    auth: bool,
    /// Plans wait on this ticket ([`Plan::hold`]).
    hold: Option<u64>,
    /// A held offer is refused (486) when released.
    hold_refused: bool,
    /// The first limit asks to wait on this ticket.
    wait: Option<u64>,
}

impl Policy for Route1 {
    type Call = ();

    fn screen(&mut self, _request: &Msg, _source: Peer, _now: Now) -> Screen {
        if self.untrusted {
            Screen::Refuse(super::Answer::status(403))
        } else {
            Screen::Accept
        }
    }

    fn out_of_dialog(&mut self, request: &Msg, source: Peer, now: Now) -> Screen {
        self.screen(request, source, now)
    }

    fn decide(&mut self, _offer: &Offer<'_>, _now: Now) -> Decision<()> {
        if self.refuse {
            return Decision::Refuse {
                status: 404,
                reason: "Not Found".into(),
                why: "test",
            };
        }
        let auth = self.auth.then(|| {
            std::sync::Arc::new(Credentials {
                user: "trunkuser".into(),
                password: "trunkpw".into(),
            })
        });
        let route = |a: &str| super::Route {
            auth: auth.clone(),
            setup: self.setup,
            trunk: Some(0),
            ..super::Route::to(format!("sip:callee@{a}"), peer(a))
        };
        let mut targets: Vec<_> = self.forks.iter().map(|a| route(a)).collect();
        if targets.is_empty() {
            targets.push(route(B));
        }
        let plan = Plan {
            targets,
            failover: self.failover.iter().map(|a| route(a)).collect(),
            from_user: "+861700".into(),
            media: Media::Mask,
            record: None,
            announce: false,
            warn_at: None,
            no_answer: Duration::from_secs(30),
            limit: self.limit,
            hold: self.hold,
        };
        Decision::Bridge(plan, ())
    }

    fn offer_released(
        &mut self,
        _id: CallId,
        _call: &mut (),
        _now: Now,
    ) -> Result<Option<Duration>, (u16, String)> {
        if self.hold_refused {
            Err((486, "Busy Here".into()))
        } else {
            Ok(None)
        }
    }

    fn milestone(&mut self, _id: CallId, _call: &mut (), m: Milestone, _now: Now) {
        self.heard.push(m);
    }

    fn limit(&mut self, _id: CallId, _call: &mut (), held: Duration, _now: Now) -> Limit {
        self.limits_asked += 1;
        if let Some(t) = self.wait.take() {
            return Limit::Wait(t);
        }
        // One renewal, then the end.
        if self.limits_asked == 1 {
            Limit::Until(held * 2)
        } else {
            Limit::End(EndReason::MaxLength)
        }
    }
}

/// An engine, a hand-moved clock and what came out.
struct Rig {
    e: Engine<Route1>,
    now: Now,
}

/// One message the engine sent.
struct Out {
    to: Peer,
    raw: String,
    msg: Msg,
}

impl Out {
    fn code(&self) -> Option<u16> {
        self.msg.code()
    }
    fn method(&self) -> &str {
        self.msg.method().map(|m| m.as_str()).unwrap_or("")
    }
}

impl Rig {
    fn new(policy: Route1) -> Rig {
        let cfg = EngineConfig {
            me_v4: Some(ME.into()),
            me_v6: None,
            unavailable: (503, "Service Unavailable".into()),
            timers: TimerConfig {
                t1: Duration::from_millis(500),
                t2: Duration::from_secs(4),
                t4: Duration::from_secs(5),
            },
        };
        Rig {
            e: Engine::new(cfg, policy),
            now: Now {
                mono: Instant::now(),
                unix_ms: 1_795_430_252_000,
            },
        }
    }

    fn send(&mut self, from: &str, raw: &str) {
        let m = Msg::parse(raw.as_bytes(), true).expect("test message parses");
        self.e.on_message(m, peer(from), self.now);
    }

    fn advance(&mut self, d: Duration) {
        self.now = self.now.after(d);
        self.e.on_timer(self.now);
    }

    fn take(&mut self) -> Vec<Out> {
        let mut q: Vec<(Peer, Bytes)> = Vec::new();
        self.e.drain(&mut q);
        q.into_iter()
            .map(|(to, b)| Out {
                to,
                raw: String::from_utf8_lossy(&b).into_owned(),
                msg: Msg::parse(&b, true).expect("engine output parses"),
            })
            .collect()
    }

    /// The one message sent, checked for where it went.
    fn one(&mut self, to: &str) -> Out {
        let mut out = self.take();
        assert_eq!(out.len(), 1, "expected one message, got {:?}", raws(&out));
        let o = out.remove(0);
        assert_eq!(o.to, peer(to));
        o
    }

    fn heard(&self) -> &[Milestone] {
        &self.e.policy().heard
    }

    /// A calls; B gets the INVITE. Returns it.
    fn offer(&mut self) -> Out {
        self.send(A, &invite());
        let mut out = self.take();
        // 100 Trying to A, INVITE to B.
        let trying = out.iter().position(|o| o.code() == Some(100));
        assert!(trying.is_some(), "no 100 Trying: {:?}", raws(&out));
        out.retain(|o| o.code() != Some(100));
        assert_eq!(out.len(), 1);
        let inv = out.remove(0);
        assert_eq!(inv.method(), "INVITE");
        assert_eq!(inv.to, peer(B));
        inv
    }

    /// Offer, 180 and 200 from B, ACK from A. Returns B's INVITE and the
    /// 200 A got.
    fn connect(&mut self) -> (Out, Out) {
        let inv = self.offer();
        self.send(B, &reply(&inv.msg, 180, B_TAG));
        assert_eq!(self.one(A).code(), Some(180));
        let ok = self.answer(&inv);
        (inv, ok)
    }

    /// B answers `inv` 200, A gets it and ACKs, B gets the ACK. Returns
    /// the 200 A got.
    fn answer(&mut self, inv: &Out) -> Out {
        self.send(B, &reply(&inv.msg, 200, B_TAG));
        let ok = self.one(A);
        assert_eq!(ok.code(), Some(200));
        self.send(A, &ack_from_a(&ok.msg));
        let ack = self.one(B);
        assert_eq!(ack.method(), "ACK");
        ok
    }
}

fn raws(out: &[Out]) -> Vec<&str> {
    out.iter().map(|o| o.raw.as_str()).collect()
}

fn invite() -> String {
    format!(
        "INVITE sip:+8617000000000@{ME} SIP/2.0\r\nVia: SIP/2.0/UDP {A};branch=z9hG4bKa1\r\n\
         Max-Forwards: 70\r\nFrom: <sip:13800000000@127.0.0.2>;tag=a-side-tag\r\n\
         To: <sip:+8617000000000@127.0.0.1>\r\nCall-ID: a-call\r\nCSeq: 1 INVITE\r\n\
         Contact: <sip:13800000000@{A}>\r\nContent-Length: 0\r\n\r\n"
    )
}

/// A response to `req` with To tag `tag` (and B's Contact).
fn reply(req: &Msg, code: u16, tag: &str) -> String {
    let vias: String = req.vias.iter().map(|v| format!("Via: {v}\r\n")).collect();
    let to = if req.to_tag.is_some() {
        req.to.to_string()
    } else {
        format!("{};tag={tag}", req.to)
    };
    format!(
        "SIP/2.0 {code} X\r\n{vias}From: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {} {}\r\n\
         Contact: <sip:callee@{B}>\r\nContent-Length: 0\r\n\r\n",
        req.from, req.call_id, req.cseq, req.cseq_method
    )
}

/// A's ACK for the 200 it got.
fn ack_from_a(ok: &Msg) -> String {
    format!(
        "ACK sip:{ME} SIP/2.0\r\nVia: SIP/2.0/UDP {A};branch=z9hG4bKa2\r\nMax-Forwards: 70\r\n\
         From: {}\r\nTo: {}\r\nCall-ID: a-call\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
        ok.from, ok.to
    )
}

/// A request from A in the dialog of the 200 it got.
fn from_a(ok: &Msg, method: &str, cseq: u32, branch: &str) -> String {
    format!(
        "{method} sip:{ME} SIP/2.0\r\nVia: SIP/2.0/UDP {A};branch=z9hG4bK{branch}\r\n\
         Max-Forwards: 70\r\nFrom: {}\r\nTo: {}\r\nCall-ID: a-call\r\nCSeq: {cseq} {method}\r\n\
         Contact: <sip:13800000000@{A}>\r\nContent-Length: 0\r\n\r\n",
        ok.from, ok.to
    )
}

/// A request from B in the dialog of our INVITE (B tagged `B_TAG`).
fn from_b(inv: &Msg, method: &str, cseq: u32) -> String {
    format!(
        "{method} sip:{ME} SIP/2.0\r\nVia: SIP/2.0/UDP {B};branch=z9hG4bKb{cseq}\r\n\
         Max-Forwards: 70\r\nFrom: {};tag={B_TAG}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {cseq} {method}\r\n\
         Contact: <sip:callee@{B}>\r\nContent-Length: 0\r\n\r\n",
        inv.to, inv.from, inv.call_id
    )
}

fn ended(heard: &[Milestone]) -> Option<Ending> {
    heard.iter().find_map(|m| match m {
        Milestone::Ended(e) => Some(*e),
        _ => None,
    })
}

#[test]
fn an_offer_goes_out_with_the_plans_target_and_from_and_nothing_of_a() {
    let mut r = Rig::new(Route1::default());
    let inv = r.offer();
    assert!(inv
        .raw
        .starts_with("INVITE sip:callee@127.0.0.3:5060 SIP/2.0\r\n"));
    assert!(inv
        .msg
        .from
        .starts_with("<sip:+861700@127.0.0.1:5060>;tag="));
    assert_ne!(inv.msg.call_id, "a-call");
    for leak in [
        "13800000000",
        "127.0.0.2",
        "a-call",
        "a-side-tag",
        "z9hG4bKa1",
    ] {
        assert!(!inv.raw.contains(leak), "{leak} crossed: {}", inv.raw);
    }
    assert_eq!(inv.msg.max_forwards, Some(69));
    assert_eq!(r.heard(), &[Milestone::Offered]);
    assert_eq!(r.e.live_calls(), 1);
}

#[test]
fn a_refusal_is_answered_and_nothing_is_called() {
    let mut r = Rig::new(Route1 {
        refuse: true,
        ..Default::default()
    });
    r.send(A, &invite());
    let out = r.take();
    let last = out.last().expect("an answer");
    assert_eq!(last.code(), Some(404));
    assert!(last.msg.to_tag.is_some());
    assert!(out.iter().all(|o| o.to == peer(A)));
    assert!(r.heard().is_empty());
    assert_eq!(r.e.live_calls(), 0);
}

#[test]
fn an_answer_is_relayed_and_confirmed_by_the_callers_ack() {
    let mut r = Rig::new(Route1::default());
    let (_inv, ok) = r.connect();
    assert!(!ok.raw.contains(B_TAG), "B's tag crossed: {}", ok.raw);
    assert!(!ok.raw.contains("127.0.0.3"), "B's address crossed");
    assert_eq!(
        r.heard(),
        &[
            Milestone::Offered,
            Milestone::Ringing { status: 180 },
            Milestone::Answered,
            Milestone::Confirmed
        ]
    );
}

#[test]
fn cancel_from_the_caller_cancels_the_callee_and_ends_487() {
    let mut r = Rig::new(Route1::default());
    let inv = r.offer();
    r.send(B, &reply(&inv.msg, 180, B_TAG));
    r.take();
    let cancel = invite()
        .replacen("INVITE sip", "CANCEL sip", 1)
        .replace("CSeq: 1 INVITE", "CSeq: 1 CANCEL");
    r.send(A, &cancel);
    let out = r.take();
    let codes: Vec<_> = out.iter().filter_map(|o| o.code()).collect();
    assert_eq!(codes, vec![200, 487], "{:?}", raws(&out));
    let to_b: Vec<_> = out.iter().filter(|o| o.to == peer(B)).collect();
    assert_eq!(to_b.len(), 1);
    assert_eq!(to_b[0].method(), "CANCEL");
    assert_eq!(to_b[0].msg.top_via.branch, inv.msg.top_via.branch);
    let e = ended(r.heard()).expect("ended");
    assert_eq!(
        (e.reason, e.status, e.talk),
        (EndReason::Cancelled, 487, None)
    );
}

#[test]
fn no_answer_gives_up_after_the_plans_ring_time() {
    let mut r = Rig::new(Route1::default());
    let inv = r.offer();
    r.send(B, &reply(&inv.msg, 180, B_TAG));
    r.take();
    r.advance(Duration::from_secs(29));
    assert!(r.take().iter().all(|o| o.method() != "CANCEL"));
    r.advance(Duration::from_secs(1));
    let out = r.take();
    assert!(out.iter().any(|o| o.to == peer(A) && o.code() == Some(480)));
    assert!(out
        .iter()
        .any(|o| o.to == peer(B) && o.method() == "CANCEL"));
    let e = ended(r.heard()).expect("ended");
    assert_eq!((e.reason, e.status), (EndReason::Cancelled, 480));
}

#[test]
fn the_limit_is_renewed_by_the_policy_then_ends_the_call_on_both_legs() {
    let mut r = Rig::new(Route1 {
        limit: Some(Duration::from_secs(60)),
        ..Default::default()
    });
    r.connect();
    r.advance(Duration::from_secs(60));
    assert!(r.take().is_empty(), "renewed: nothing sent");
    assert_eq!(r.e.policy().limits_asked, 1);
    r.advance(Duration::from_secs(59));
    assert!(r.take().is_empty());
    r.advance(Duration::from_secs(1));
    let out = r.take();
    let byes: Vec<_> = out.iter().filter(|o| o.method() == "BYE").collect();
    assert_eq!(byes.len(), 2);
    assert!(byes.iter().any(|o| o.to == peer(A)));
    assert!(byes.iter().any(|o| o.to == peer(B)));
    let e = ended(r.heard()).expect("ended");
    assert_eq!(e.reason, EndReason::MaxLength);
    assert_eq!(e.talk, Some(Duration::from_secs(120)));
}

#[test]
fn a_re_invite_crosses_with_the_other_legs_identifiers_and_its_ack_follows() {
    let mut r = Rig::new(Route1::default());
    let (inv, ok) = r.connect();
    r.send(A, &from_a(&ok.msg, "INVITE", 2, "re1"));
    let out = r.take();
    let re = out
        .iter()
        .find(|o| o.method() == "INVITE")
        .expect("re-INVITE to B");
    assert_eq!(re.to, peer(B));
    assert_eq!(re.msg.call_id, inv.msg.call_id);
    assert!(!re.raw.contains("a-call"));
    r.send(B, &reply(&re.msg, 200, B_TAG));
    let ok2 = r.one(A);
    assert_eq!((ok2.code(), ok2.msg.cseq), (Some(200), 2));
    r.send(A, &from_a(&ok.msg, "ACK", 2, "re2"));
    let ack = r.one(B);
    assert_eq!((ack.method(), ack.msg.cseq), ("ACK", re.msg.cseq));
    assert_eq!(ended(r.heard()), None);
}

#[test]
fn bye_from_the_caller_ends_the_call_with_its_talk_time() {
    let mut r = Rig::new(Route1::default());
    let (_inv, ok) = r.connect();
    r.advance(Duration::from_secs(42));
    r.send(A, &from_a(&ok.msg, "BYE", 2, "bye"));
    let out = r.take();
    assert!(out.iter().any(|o| o.to == peer(A) && o.code() == Some(200)));
    assert!(out.iter().any(|o| o.to == peer(B) && o.method() == "BYE"));
    let e = ended(r.heard()).expect("ended");
    assert_eq!(e.reason, EndReason::CallerHungUp);
    assert_eq!((e.status, e.talk), (200, Some(Duration::from_secs(42))));
    assert_eq!(r.e.live_calls(), 0);
}

#[test]
fn bye_from_the_callee_ends_the_call_and_reaches_the_caller() {
    let mut r = Rig::new(Route1::default());
    let (inv, ok) = r.connect();
    r.send(B, &from_b(&inv.msg, "BYE", 1));
    let out = r.take();
    assert!(out.iter().any(|o| o.to == peer(B) && o.code() == Some(200)));
    let bye = out
        .iter()
        .find(|o| o.to == peer(A) && o.method() == "BYE")
        .expect("BYE to A");
    assert_eq!(bye.msg.call_id, "a-call");
    assert_eq!(bye.msg.from_tag, ok.msg.to_tag);
    assert_eq!(
        ended(r.heard()).map(|e| e.reason),
        Some(EndReason::CalleeHungUp)
    );
}

#[test]
fn an_answer_never_acknowledged_ends_as_408_with_no_talk_time() {
    let mut r = Rig::new(Route1::default());
    let inv = r.offer();
    r.send(B, &reply(&inv.msg, 200, B_TAG));
    assert_eq!(r.one(A).code(), Some(200));
    // Timer H-like give-up of the 2xx (64*T1 = 32 s) with retransmissions.
    for _ in 0..70 {
        r.advance(Duration::from_millis(500));
    }
    let e = ended(r.heard()).expect("ended");
    assert_eq!((e.reason, e.status, e.talk), (EndReason::NoAck, 408, None));
}

#[test]
fn new_calls_are_refused_while_draining_and_the_policy_is_told_nothing() {
    let mut r = Rig::new(Route1::default());
    r.e.stop_accepting();
    r.send(A, &invite());
    let out = r.take();
    assert_eq!(out.last().and_then(|o| o.code()), Some(503));
    assert!(r.heard().is_empty());
}

#[test]
fn a_failed_re_invite_is_acked_to_the_leg_that_refused_it_and_relayed() {
    let mut r = Rig::new(Route1::default());
    let (_inv, ok) = r.connect();
    r.send(A, &from_a(&ok.msg, "INVITE", 2, "re1"));
    let re = r
        .take()
        .into_iter()
        .find(|o| o.method() == "INVITE")
        .expect("re-INVITE to B");
    // Glare: B is busy with its own re-INVITE.
    r.send(B, &reply(&re.msg, 491, B_TAG));
    let out = r.take();
    let ack = out
        .iter()
        .find(|o| o.to == peer(B) && o.method() == "ACK")
        .expect("the 491 is ACKed hop by hop");
    assert_eq!(ack.msg.cseq, re.msg.cseq);
    assert_eq!(ack.msg.top_via.branch, re.msg.top_via.branch);
    assert!(out.iter().any(|o| o.to == peer(A) && o.code() == Some(491)));
    // B's 491 again (our ACK lost): ACKed again, not relayed twice.
    r.send(B, &reply(&re.msg, 491, B_TAG));
    let again = r.take();
    assert!(again.iter().all(|o| o.to == peer(B)), "{:?}", raws(&again));
}

#[test]
fn only_the_byes_sipmask_starts_itself_carry_a_reason() {
    let mut r = Rig::new(Route1::default());
    let (_inv, ok) = r.connect();
    r.send(A, &from_a(&ok.msg, "BYE", 2, "bye"));
    let relayed = r
        .take()
        .into_iter()
        .find(|o| o.method() == "BYE")
        .expect("BYE to B");
    assert!(!relayed.raw.contains("Reason:"), "{}", relayed.raw);
    let mut r = Rig::new(Route1 {
        limit: Some(Duration::from_secs(1)),
        ..Default::default()
    });
    r.connect();
    // The policy renews once (to 2 s), then ends the call.
    r.advance(Duration::from_secs(1));
    r.advance(Duration::from_secs(1));
    let byes: Vec<_> = r
        .take()
        .into_iter()
        .filter(|o| o.method() == "BYE")
        .collect();
    assert_eq!(byes.len(), 2);
    for b in byes {
        assert!(
            b.raw
                .contains("Reason: Q.850;cause=16;text=\"maximum call length\""),
            "{}",
            b.raw
        );
    }
}

mod forks;
mod held;
mod outside;
