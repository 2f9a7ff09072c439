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
        };
        Decision::Bridge(plan, ())
    }

    fn milestone(&mut self, _id: CallId, _call: &mut (), m: Milestone, _now: Now) {
        self.heard.push(m);
    }

    fn limit(&mut self, _id: CallId, _call: &mut (), held: Duration, _now: Now) -> Limit {
        self.limits_asked += 1;
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
fn responses_carry_received_and_rport_of_where_the_request_came_from() {
    let mut r = Rig::new(Route1::default());
    // The caller wrote a private address and asked for rport.
    let raw = invite().replace(
        &format!("Via: SIP/2.0/UDP {A};branch=z9hG4bKa1"),
        "Via: SIP/2.0/UDP 10.1.1.1:5060;branch=z9hG4bKa1;rport",
    );
    r.send(A, &raw);
    let trying = r
        .take()
        .into_iter()
        .find(|o| o.code() == Some(100))
        .expect("100 Trying");
    assert_eq!(trying.to, peer(A), "answered where it came from");
    let via = &trying.msg.vias[0];
    assert!(
        via.contains(";received=127.0.0.2") && via.contains(";rport=5060"),
        "{via}"
    );
    assert!(!via.contains(";rport;"), "{via}");
}

#[test]
fn out_of_dialog_answers_have_a_to_tag_and_dialog_only_requests_get_481() {
    let mut r = Rig::new(Route1::default());
    let opt = invite()
        .replacen("INVITE sip", "OPTIONS sip", 1)
        .replace("CSeq: 1 INVITE", "CSeq: 1 OPTIONS");
    r.send(A, &opt);
    let ok = r.one(A);
    assert_eq!(ok.code(), Some(200));
    assert!(ok.msg.to_tag.is_some(), "{}", ok.raw);
    let bye = invite()
        .replacen("INVITE sip", "BYE sip", 1)
        .replace("CSeq: 1 INVITE", "CSeq: 2 BYE")
        .replace("z9hG4bKa1", "z9hG4bKbye");
    r.send(A, &bye);
    let no = r.one(A);
    assert_eq!(no.code(), Some(481), "{}", no.raw);
    assert!(no.msg.to_tag.is_some());
}

#[test]
fn an_untrusted_source_is_refused_before_any_decision() {
    let mut r = Rig::new(Route1 {
        untrusted: true,
        ..Default::default()
    });
    r.send(A, &invite());
    let out = r.take();
    assert_eq!(
        out.len(),
        1,
        "no 100 Trying, nothing to B: {:?}",
        raws(&out)
    );
    assert_eq!(out[0].code(), Some(403));
    assert!(r.heard().is_empty());
    assert_eq!(r.e.live_calls(), 0);
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

const C: &str = "127.0.0.4:5060";

/// A calls and the call forks to B and C: the rig and the two INVITEs.
fn forked_to_b_and_c() -> (Rig, Vec<Out>) {
    let mut r = Rig::new(Route1 {
        forks: vec![B, C],
        ..Default::default()
    });
    r.send(A, &invite());
    let (inv, _) = invites(r.take());
    (r, inv)
}

/// What was sent, split into (INVITEs, everything else).
fn invites(out: Vec<Out>) -> (Vec<Out>, Vec<Out>) {
    out.into_iter().partition(|o| o.method() == "INVITE")
}

#[test]
fn a_503_fails_over_to_the_next_target_in_a_dialog_of_its_own() {
    let mut r = Rig::new(Route1 {
        failover: vec![C],
        ..Default::default()
    });
    let first = r.offer();
    r.send(B, &reply(&first.msg, 503, B_TAG));
    let (mut inv, rest) = invites(r.take());
    assert_eq!(inv.len(), 1, "{:?}", raws(&rest));
    let second = inv.remove(0);
    assert_eq!(second.to, peer(C));
    assert_ne!(second.msg.call_id, first.msg.call_id);
    assert!(
        rest.iter().all(|o| o.to == peer(B) && o.method() == "ACK"),
        "{:?}",
        raws(&rest)
    );
    r.send(C, &reply(&second.msg, 200, "ct"));
    let ok = r.one(A);
    assert_eq!(ok.code(), Some(200));
    // A 404 is an answer, not a reason to try elsewhere.
    let mut r = Rig::new(Route1 {
        failover: vec![C],
        ..Default::default()
    });
    let first = r.offer();
    r.send(B, &reply(&first.msg, 404, B_TAG));
    let out = r.take();
    assert!(
        out.iter().any(|o| o.to == peer(A) && o.code() == Some(404)),
        "{:?}",
        raws(&out)
    );
    assert!(out.iter().all(|o| o.method() != "INVITE"));
}

#[test]
fn a_silent_target_is_given_up_after_the_setup_time() {
    let mut r = Rig::new(Route1 {
        failover: vec![C],
        setup: Some(Duration::from_secs(2)),
        ..Default::default()
    });
    r.offer();
    r.advance(Duration::from_millis(1999));
    let (inv, _) = invites(r.take());
    assert!(
        inv.iter().all(|o| o.to == peer(B)),
        "B is only retransmitted to"
    );
    r.advance(Duration::from_millis(1));
    let (inv, _) = invites(r.take());
    assert_eq!(inv.len(), 1);
    assert_eq!(inv[0].to, peer(C));
    // B is not retransmitted to any more.
    r.advance(Duration::from_secs(1));
    let (inv, _) = invites(r.take());
    assert!(inv.iter().all(|o| o.to != peer(B)), "{:?}", raws(&inv));
    // C was heard from (100 only): no more failover, and it may ring.
    let mut r = Rig::new(Route1 {
        failover: vec![C],
        setup: Some(Duration::from_secs(2)),
        ..Default::default()
    });
    let first = r.offer();
    r.send(B, &reply(&first.msg, 100, B_TAG));
    r.advance(Duration::from_secs(3));
    let (inv, _) = invites(r.take());
    assert!(inv.is_empty(), "{:?}", raws(&inv));
}

#[test]
fn a_next_hops_challenge_is_answered_once_in_the_same_dialog() {
    let mut r = Rig::new(Route1 {
        auth: true,
        ..Default::default()
    });
    let first = r.offer();
    let challenge = reply(&first.msg, 407, B_TAG).replace(
        "Content-Length: 0",
        "Proxy-Authenticate: Digest realm=\"carrier\", nonce=\"n1\", qop=\"auth\", algorithm=MD5\r\nContent-Length: 0",
    );
    r.send(B, &challenge);
    let (mut inv, rest) = invites(r.take());
    assert_eq!(rest.len(), 1, "the 407 is ACKed: {:?}", raws(&rest));
    let second = inv.remove(0);
    assert_eq!(second.msg.call_id, first.msg.call_id);
    assert_eq!(second.msg.cseq, first.msg.cseq + 1);
    assert_ne!(second.msg.top_via.branch, first.msg.top_via.branch);
    let cred = second.msg.proxy_authorization.clone().expect("credentials");
    let c = crate::sip::digest::parse_credentials(&cred).expect("parses");
    assert_eq!(c.username, "trunkuser");
    assert_eq!(c.realm, "carrier");
    let ha1 = crate::sip::digest::Ha1::new("trunkuser", "carrier", "trunkpw");
    let want =
        crate::sip::digest::response(crate::sip::digest::Algorithm::Md5, &ha1.md5, &c, "INVITE");
    assert_eq!(c.response, want);
    // Challenged again: the caller gets 503, never the carrier's 407.
    r.send(
        B,
        &challenge
            .replace(
                &format!("CSeq: {} ", first.msg.cseq),
                &format!("CSeq: {} ", second.msg.cseq),
            )
            .replace(
                first.msg.top_via.branch.as_str(),
                &second.msg.top_via.branch,
            ),
    );
    let out = r.take();
    assert!(
        out.iter().any(|o| o.to == peer(A) && o.code() == Some(503)),
        "{:?}",
        raws(&out)
    );
}

#[test]
fn when_every_fork_fails_the_best_failure_reaches_the_caller() {
    for (codes, want) in [([486, 404], 404), ([486, 603], 603), ([480, 486], 480)] {
        let mut r = Rig::new(Route1 {
            forks: vec![B, C],
            ..Default::default()
        });
        r.send(A, &invite());
        let (inv, _) = invites(r.take());
        assert_eq!(inv.len(), 2);
        let at = |p: &str| inv.iter().find(|o| o.to == peer(p)).expect("fork");
        r.send(B, &reply(&at(B).msg, codes[0], B_TAG));
        let out = r.take();
        assert!(
            out.iter().all(|o| o.to != peer(A)),
            "one fork is still waiting"
        );
        r.send(C, &reply(&at(C).msg, codes[1], "ct"));
        let out = r.take();
        let to_a: Vec<_> = out.iter().filter(|o| o.to == peer(A)).collect();
        assert_eq!(to_a.len(), 1);
        assert_eq!(to_a[0].code(), Some(want), "{codes:?}");
    }
}

#[test]
fn a_fork_that_had_not_rung_when_another_answered_is_cancelled_with_the_reason() {
    let (mut r, inv) = forked_to_b_and_c();
    let at = |p: &str| inv.iter().find(|o| o.to == peer(p)).expect("fork");
    // B answers before C sent anything: C cannot be cancelled yet.
    r.send(B, &reply(&at(B).msg, 200, B_TAG));
    let out = r.take();
    assert!(
        out.iter().all(|o| o.method() != "CANCEL"),
        "{:?}",
        raws(&out)
    );
    // C's 180 comes late: now it is cancelled, saying why.
    r.send(C, &reply(&at(C).msg, 180, "ct"));
    let cancel = r.one(C);
    assert_eq!(cancel.method(), "CANCEL");
    assert!(
        cancel
            .raw
            .contains("Reason: SIP;cause=200;text=\"Call completed elsewhere\""),
        "{}",
        cancel.raw
    );
}

#[test]
fn a_request_in_the_early_dialog_moves_the_callee_legs_cseq_on_past_the_answer() {
    let mut r = Rig::new(Route1::default());
    let inv = r.offer();
    r.send(B, &reply(&inv.msg, 183, B_TAG));
    let early = r.one(A);
    assert_eq!(early.code(), Some(183));
    r.send(A, &from_a(&early.msg, "UPDATE", 2, "up1"));
    let update = r.one(B);
    assert_eq!(update.method(), "UPDATE");
    assert!(update.msg.cseq > inv.msg.cseq);
    r.send(B, &reply(&update.msg, 200, B_TAG));
    assert_eq!(r.one(A).code(), Some(200));
    let ok = r.answer(&inv);
    r.send(A, &from_a(&ok.msg, "BYE", 3, "bye"));
    let out = r.take();
    let bye = out
        .iter()
        .find(|o| o.to == peer(B) && o.method() == "BYE")
        .expect("BYE to B");
    // RFC 3261 12.2.1.1: each new request in a dialog takes a higher CSeq.
    assert!(
        bye.msg.cseq > update.msg.cseq,
        "BYE CSeq {} after UPDATE CSeq {}",
        bye.msg.cseq,
        update.msg.cseq
    );
}

#[test]
fn a_request_still_relayed_when_the_call_ends_is_forgotten_with_it() {
    let mut r = Rig::new(Route1::default());
    let (inv, ok) = r.connect();
    // Two re-INVITEs from A: the first answered, the second still out.
    r.send(A, &from_a(&ok.msg, "INVITE", 2, "re1"));
    let re1 = relayed_invite(r.take());
    r.send(B, &reply(&re1.msg, 200, B_TAG));
    assert_eq!(r.one(A).code(), Some(200));
    r.send(A, &from_a(&ok.msg, "ACK", 2, "re1-ack"));
    r.take();
    r.send(A, &from_a(&ok.msg, "INVITE", 3, "re2"));
    let re2 = relayed_invite(r.take());
    assert!(r.e.sizes().contains("relays=1"), "{}", r.e.sizes());
    r.send(B, &from_b(&inv.msg, "BYE", 1));
    r.take();
    // The ended call is kept a while for stray messages, then forgotten.
    r.advance(Duration::from_secs(6));
    r.take();
    assert!(r.e.sizes().contains("calls=0"), "{}", r.e.sizes());
    assert!(r.e.sizes().contains("relays=0"), "{}", r.e.sizes());
    // B's late answer to the forgotten request reaches nobody.
    r.send(B, &reply(&re2.msg, 200, B_TAG));
    let late = r.take();
    assert!(late.iter().all(|o| o.to != peer(A)), "{:?}", raws(&late));
}

/// The INVITE that went to B among `out` (beside A's 100 Trying).
fn relayed_invite(out: Vec<Out>) -> Out {
    let (mut to_b, _) = invites(out);
    assert_eq!(to_b.len(), 1);
    let inv = to_b.remove(0);
    assert_eq!(inv.to, peer(B));
    inv
}

/// The 407 of a carrier that asks for credentials, for `inv`.
fn challenge(inv: &Msg) -> String {
    reply(inv, 407, B_TAG).replace(
        "Content-Length: 0",
        "Proxy-Authenticate: Digest realm=\"carrier\", nonce=\"n1\", qop=\"auth\", algorithm=MD5\r\nContent-Length: 0",
    )
}

#[test]
fn a_carrier_that_challenges_then_goes_quiet_is_left_at_the_setup_time() {
    let mut r = Rig::new(Route1 {
        auth: true,
        failover: vec![C],
        setup: Some(Duration::from_secs(2)),
        ..Default::default()
    });
    let first = r.offer();
    r.advance(Duration::from_millis(1500));
    r.take(); // its retransmissions
    r.send(B, &challenge(&first.msg));
    let (inv, _) = invites(r.take());
    assert_eq!(inv.len(), 1, "the INVITE with credentials");
    // The first INVITE's setup time passes: the second has its own.
    r.advance(Duration::from_millis(1000));
    let (inv, _) = invites(r.take());
    assert!(inv.iter().all(|o| o.to != peer(C)), "{:?}", raws(&inv));
    r.advance(Duration::from_millis(1100));
    let (inv, _) = invites(r.take());
    let to_c = inv.iter().filter(|o| o.to == peer(C)).count();
    assert_eq!(to_c, 1, "failed over: {:?}", raws(&inv));
}

#[test]
fn credentials_refused_fail_over_to_the_next_trunk() {
    let mut r = Rig::new(Route1 {
        auth: true,
        failover: vec![C],
        ..Default::default()
    });
    let first = r.offer();
    r.send(B, &challenge(&first.msg));
    let (mut inv, _) = invites(r.take());
    let second = inv.remove(0);
    r.send(B, &challenge(&second.msg));
    let (inv, rest) = invites(r.take());
    assert!(rest.iter().all(|o| o.to != peer(A)), "{:?}", raws(&rest));
    assert_eq!(inv.len(), 1);
    assert_eq!(inv[0].to, peer(C));
    r.send(C, &reply(&inv[0].msg, 486, "ct"));
    let out = r.take();
    assert!(out.iter().any(|o| o.to == peer(A) && o.code() == Some(486)));
}

/// A 2xx of a fork nobody wants, sent again because our ACK was lost, gets
/// the same ACK again; its BYE is one transaction, never a second one.
#[test]
fn a_losing_forks_2xx_sent_again_gets_the_same_ack_and_one_bye() {
    let (mut r, inv) = forked_to_b_and_c();
    let at = |p: &str| inv.iter().find(|o| o.to == peer(p)).expect("fork");
    r.send(B, &reply(&at(B).msg, 200, B_TAG));
    r.take();
    let late = reply(&at(C).msg, 200, "ct");
    r.send(C, &late);
    let out = r.take();
    let to_c: Vec<&Out> = out.iter().filter(|o| o.to == peer(C)).collect();
    let methods: Vec<&str> = to_c.iter().map(|o| o.method()).collect();
    assert_eq!(methods, ["ACK", "BYE"], "{:?}", raws(&out));
    let ack = to_c[0].raw.clone();
    for _ in 0..3 {
        r.send(C, &late);
        let again = r.one(C);
        assert_eq!(again.raw, ack);
    }
}

/// A policy that does not take requests other than INVITE and REGISTER
/// outside dialogs refuses them, whoever sends them: the hook's default.
#[test]
fn other_requests_are_refused_unless_the_policy_takes_them() {
    struct Plain;
    impl Policy for Plain {
        type Call = ();
        fn decide(&mut self, _offer: &Offer<'_>, _now: Now) -> Decision<()> {
            Decision::Refuse {
                status: 404,
                reason: "Not Found".into(),
                why: "test",
            }
        }
        fn milestone(&mut self, _id: CallId, _call: &mut (), _m: Milestone, _now: Now) {}
        fn limit(&mut self, _id: CallId, _c: &mut (), _held: Duration, _now: Now) -> Limit {
            Limit::End(EndReason::MaxLength)
        }
    }
    let mut e = Engine::new(Rig::new(Route1::default()).e.cfg.clone(), Plain);
    let now = Now {
        mono: Instant::now(),
        unix_ms: 1_795_430_252_000,
    };
    let msg = format!(
        "MESSAGE sip:x@{ME} SIP/2.0\r\nVia: SIP/2.0/UDP {A};branch=z9hG4bKm1\r\nMax-Forwards: 70\r\n\
         From: <sip:a@{A}>;tag=m\r\nTo: <sip:x@{ME}>\r\nCall-ID: m1\r\nCSeq: 1 MESSAGE\r\n\
         Content-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi"
    );
    e.on_message(
        Msg::parse(msg.as_bytes(), true).expect("parses"),
        peer(A),
        now,
    );
    let mut q = Vec::new();
    e.drain(&mut q);
    assert_eq!(q.len(), 1);
    assert!(String::from_utf8_lossy(&q[0].1).starts_with("SIP/2.0 403 "));
}
