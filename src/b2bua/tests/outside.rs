//! Requests outside calls, without sockets: answers carry where the
//! request came from, dialog-only requests get 481, and who may send
//! what is the policy's.

use super::*;

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
