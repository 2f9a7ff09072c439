//! Unit tests of the transaction state machines: pure, with the clock
//! passed in, so every timer is checked without waiting.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::*;
use crate::sip::{Msg, Peer, Transport};

fn peer() -> Peer {
    Peer {
        transport: Transport::Udp,
        addr: "192.0.2.1:5060".parse::<SocketAddr>().expect("addr"),
    }
}

fn req(method: &str, branch: &str, to_tag: &str) -> Msg {
    let text = format!(
        "{method} sip:x@192.0.2.9 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch={branch};rport\r\n\
         From: <sip:a@192.0.2.1>;tag=f\r\nTo: <sip:x@192.0.2.9>{to_tag}\r\nCall-ID: c1\r\n\
         CSeq: 1 {}\r\nContent-Length: 0\r\n\r\n",
        if method == "ACK" { "ACK" } else { method }
    );
    Msg::parse(text.as_bytes(), true).expect("valid")
}

fn resp(code: u16, branch: &str, method: &str) -> Msg {
    let text = format!(
        "SIP/2.0 {code} X\r\nVia: SIP/2.0/UDP 192.0.2.9:5060;branch={branch}\r\nFrom: <sip:x@h>;tag=f\r\n\
         To: <sip:b@h>;tag=t\r\nCall-ID: c2\r\nCSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n"
    );
    Msg::parse(text.as_bytes(), true).expect("valid")
}

fn sent(tx: &mut Transactions) -> Vec<String> {
    tx.out
        .drain(..)
        .map(|(_, b)| {
            String::from_utf8_lossy(&b)
                .lines()
                .next()
                .unwrap_or("")
                .to_string()
        })
        .collect()
}

#[test]
fn invite_server_answers_100_absorbs_retransmissions_and_resends_its_final_until_ack() {
    let t0 = Instant::now();
    let cfg = TimerConfig::default();
    let mut tx = Transactions::new(cfg);
    let inv = req("INVITE", "z9hG4bKs1", "");
    let Incoming::New(key) = tx.on_request(&inv, peer(), 1, t0) else {
        panic!("new")
    };
    assert_eq!(sent(&mut tx), vec!["SIP/2.0 100 Trying"]);
    assert_eq!(tx.on_request(&inv, peer(), 1, t0), Incoming::Retransmission);
    assert_eq!(
        sent(&mut tx),
        vec!["SIP/2.0 100 Trying"],
        "last response repeated"
    );
    let w = tx
        .response(&key, 486, "Busy Here", Some("tag1"))
        .expect("response");
    tx.respond(&key, 486, w.finish(None, b""), t0);
    assert_eq!(sent(&mut tx), vec!["SIP/2.0 486 Busy Here"]);
    // Timer G: resent after T1, then 2*T1.
    tx.on_timer(t0 + cfg.t1);
    assert_eq!(sent(&mut tx).len(), 1);
    tx.on_timer(t0 + cfg.t1 * 2);
    assert!(sent(&mut tx).is_empty(), "next resend is at 3*T1");
    tx.on_timer(t0 + cfg.t1 * 3);
    assert_eq!(sent(&mut tx).len(), 1);
    assert_eq!(
        tx.on_request(&req("ACK", "z9hG4bKs1", ";tag=tag1"), peer(), 1, t0),
        Incoming::AckAbsorbed
    );
    tx.on_timer(t0 + cfg.t1 * 10);
    assert!(sent(&mut tx).is_empty(), "no resend after the ACK");
}

#[test]
fn an_unacked_final_ends_with_timer_h() {
    let t0 = Instant::now();
    let cfg = TimerConfig::default();
    let mut tx = Transactions::new(cfg);
    let Incoming::New(key) = tx.on_request(&req("INVITE", "z9hG4bKs2", ""), peer(), 7, t0) else {
        panic!()
    };
    let w = tx.response(&key, 200, "OK", Some("t")).expect("response");
    tx.respond(&key, 200, w.finish(None, b""), t0);
    let events = tx.on_timer(t0 + cfg.t1 * 64);
    assert_eq!(events, vec![TxEvent::NoAck { owner: 7, key }]);
}

#[test]
fn invite_client_retransmits_with_timer_a_until_a_provisional_then_times_out_only_when_silent() {
    let t0 = Instant::now();
    let cfg = TimerConfig::default();
    let mut tx = Transactions::new(cfg);
    let key = TxKey {
        branch: "z9hG4bKc1".into(),
        method: crate::sip::Method::Invite,
    };
    tx.send_request(
        key.clone(),
        peer(),
        bytes::Bytes::from_static(b"INVITE sip:b SIP/2.0\r\n\r\n"),
        3,
        None,
        t0,
    );
    sent(&mut tx);
    tx.on_timer(t0 + cfg.t1);
    tx.on_timer(t0 + cfg.t1 * 3);
    assert_eq!(sent(&mut tx).len(), 2, "A fires at T1 and 3*T1");
    assert_eq!(
        tx.on_response(&resp(180, "z9hG4bKc1", "INVITE"), t0),
        Some(3)
    );
    tx.on_timer(t0 + cfg.t1 * 7);
    assert!(sent(&mut tx).is_empty(), "no resend once ringing");
    assert!(
        tx.on_timer(t0 + cfg.t1 * 64).is_empty(),
        "Timer B only applies before a provisional"
    );

    let silent = TxKey {
        branch: "z9hG4bKc2".into(),
        method: crate::sip::Method::Invite,
    };
    tx.send_request(
        silent.clone(),
        peer(),
        bytes::Bytes::from_static(b"INVITE"),
        4,
        None,
        t0,
    );
    let events = tx.on_timer(t0 + cfg.t1 * 64 + Duration::from_millis(1));
    assert!(events.contains(&TxEvent::ClientTimeout {
        owner: 4,
        key: silent
    }));
}

#[test]
fn non_invite_client_backs_off_to_t2() {
    let t0 = Instant::now();
    let cfg = TimerConfig::default();
    let mut tx = Transactions::new(cfg);
    let key = TxKey {
        branch: "z9hG4bKn1".into(),
        method: crate::sip::Method::Bye,
    };
    tx.send_request(key, peer(), bytes::Bytes::from_static(b"BYE"), 0, None, t0);
    sent(&mut tx);
    // E: T1, 2T1, 4T1, then every T2 (4 s with T1 = 500 ms).
    let mut at = t0;
    let mut gaps = Vec::new();
    let mut last = t0;
    while gaps.len() < 6 {
        at += Duration::from_millis(50);
        tx.on_timer(at);
        if !sent(&mut tx).is_empty() {
            gaps.push((at - last).as_millis() / 100);
            last = at;
        }
    }
    assert_eq!(gaps, vec![5, 10, 20, 40, 40, 40]);
}

#[test]
fn a_response_finds_its_transaction_by_the_borrowed_key_among_many() {
    let mut tables: crate::ids::WireMap<TxKey, u32> = Default::default();
    for i in 0..2_000u32 {
        for method in [Method::Invite, Method::Bye, Method::Other("FOO".into())] {
            let key = TxKey {
                branch: format!("z9hG4bK-{i}").into(),
                method,
            };
            tables.insert(key, i);
        }
    }
    for (i, method) in [(0, "INVITE"), (777, "BYE"), (1_999, "FOO")] {
        let m = resp(200, &format!("z9hG4bK-{i}"), method);
        let key = TxKeyRef::of_response(&m);
        assert_eq!(tables.get(&key), Some(&i), "{method}");
        let owned = TxKey {
            branch: format!("z9hG4bK-{i}").into(),
            method: Method::from_token(method),
        };
        assert_eq!(key.to_owned(), owned);
        assert!(key.is(&owned));
    }
    // Same branch, another method: another transaction.
    let m = resp(200, "z9hG4bK-5", "CANCEL");
    assert_eq!(tables.get(&TxKeyRef::of_response(&m)), None);
    assert_eq!(
        tables.remove(&TxKeyRef::of_response(&resp(200, "z9hG4bK-5", "BYE"))),
        Some(5)
    );
    assert_eq!(tables.len(), 5_999);
}
