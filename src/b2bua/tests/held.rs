//! What waits on the policy's storage: an offer held until its ticket is
//! durable (nobody rings before), and a limit that asks again once its
//! ticket is answered.

use super::*;

fn release(r: &mut Rig, upto: u64) {
    let now = r.now;
    r.e.release_answers(upto, &|_| false, now);
}

#[test]
fn a_held_offer_reaches_the_callee_only_once_its_ticket_is_durable() {
    let mut r = Rig::new(Route1 {
        hold: Some(7),
        ..Default::default()
    });
    r.send(A, &invite());
    let out = r.take();
    assert!(
        out.iter().all(|o| o.to == peer(A) && o.code() == Some(100)),
        "only 100 Trying before the ticket: {:?}",
        raws(&out)
    );
    release(&mut r, 6);
    assert!(r.take().is_empty(), "an earlier ticket releases nothing");
    release(&mut r, 7);
    let inv = r.one(B);
    assert_eq!(inv.method(), "INVITE");
    assert_eq!(r.heard(), &[Milestone::Offered]);
    // The call then goes on as any other.
    r.send(B, &reply(&inv.msg, 180, B_TAG));
    assert_eq!(r.one(A).code(), Some(180));
    r.answer(&inv);
}

#[test]
fn a_held_offer_the_policy_refuses_is_answered_and_nobody_rings() {
    let mut r = Rig::new(Route1 {
        hold: Some(1),
        hold_refused: true,
        ..Default::default()
    });
    r.send(A, &invite());
    r.take();
    release(&mut r, 1);
    let out = r.take();
    assert_eq!(out.len(), 1, "{:?}", raws(&out));
    assert_eq!((out[0].to, out[0].code()), (peer(A), Some(486)));
    assert!(r.heard().is_empty());
    assert_eq!(r.e.live_calls(), 0);
}

#[test]
fn a_held_offer_cancelled_before_its_ticket_ends_without_ringing() {
    let mut r = Rig::new(Route1 {
        hold: Some(3),
        ..Default::default()
    });
    r.send(A, &invite());
    r.take();
    let cancel = invite()
        .replacen("INVITE sip", "CANCEL sip", 1)
        .replace("CSeq: 1 INVITE", "CSeq: 1 CANCEL");
    r.send(A, &cancel);
    let codes: Vec<_> = r.take().iter().filter_map(|o| o.code()).collect();
    assert_eq!(codes, vec![200, 487]);
    release(&mut r, 3);
    assert!(r.take().is_empty(), "nothing goes to the callee");
    let e = ended(r.heard()).expect("the policy hears the end");
    assert_eq!((e.reason, e.status), (EndReason::Cancelled, 487));
}

#[test]
fn a_limit_that_waits_is_asked_again_when_its_ticket_is_answered() {
    let mut r = Rig::new(Route1 {
        limit: Some(Duration::from_secs(10)),
        wait: Some(9),
        ..Default::default()
    });
    r.connect();
    r.advance(Duration::from_secs(10));
    assert!(r.take().is_empty(), "the call goes on while it waits");
    assert_eq!(r.e.policy().limits_asked, 1);
    release(&mut r, 8);
    assert_eq!(
        r.e.policy().limits_asked,
        1,
        "an earlier ticket asks nothing"
    );
    release(&mut r, 9);
    // Asked again, and this time the policy ends the call.
    assert_eq!(r.e.policy().limits_asked, 2);
    let byes = r.take().iter().filter(|o| o.method() == "BYE").count();
    assert_eq!(byes, 2, "the answer ends the call on both legs");
    let e = ended(r.heard()).expect("ended");
    assert_eq!(e.reason, EndReason::MaxLength);
}
