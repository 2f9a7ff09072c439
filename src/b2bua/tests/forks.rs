//! The engine's forks toward the callee, without sockets: parallel
//! forks, failover, a next hop's challenge, setup times, unwanted 2xx.

use super::*;

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
