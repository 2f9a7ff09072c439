//! Whole-system call flows over real UDP sockets: a caller UA on 127.0.0.2,
//! sipmask on 127.0.0.1, the callee (as the trunk) on 127.0.0.3. Every test
//! checks what each party actually received.

mod common;

use std::time::Duration;

use common::*;

const A: &str = "13800000000";
const B: &str = "13900000000";
const X: &str = "17000000000";

/// Whatever a party received must not contain any of `secrets`, SDP
/// included (media is anchored in sipmask).
fn assert_no_leak(seen: &[String], secrets: &[String]) {
    for raw in seen {
        for s in secrets {
            assert!(!raw.contains(s.as_str()), "leak of {s:?} in:\n{raw}");
        }
    }
}

struct Setup {
    sut: Sut,
    caller: Ua,
    callee: Ua,
}

async fn setup(
    bindings: Vec<sipmask::cli::AddArgs>,
    tweak: impl FnOnce(&mut sipmask::config::Config),
) -> Setup {
    let caller = Ua::bind("127.0.0.2").await;
    let callee = Ua::bind("127.0.0.3").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(dir.path(), callee.addr);
    tweak(&mut cfg);
    for b in bindings {
        add(&cfg, b);
    }
    let sut = start(cfg, dir).await;
    Setup {
        sut,
        caller,
        callee,
    }
}

/// Places a call from `s.caller` as `user` to `target`, answered by the callee.
async fn connect(s: &mut Setup, user: &str, target: &str) -> (Dialog, Sip) {
    let (d, inv) = connected(
        &mut s.caller,
        &mut s.callee,
        s.sut.addr,
        user,
        target,
        "bobtag1",
    )
    .await;
    // The 180 reached the caller before the 200.
    assert!(s.caller.seen.iter().any(|m| m.starts_with("SIP/2.0 180")));
    (d, inv)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axb_call_is_bridged_and_masked_both_ways() {
    let mut s = setup(vec![axb(A, X, B)], |_| {}).await;
    let (mut d, inv) = connect(&mut s, A, X).await;
    assert!(
        inv.raw.starts_with("INVITE sip:+8613900000000@127.0.0.3"),
        "{}",
        inv.raw
    );
    assert!(
        inv.msg.from.contains("+8617000000000"),
        "callee sees X: {}",
        inv.msg.from
    );
    s.caller.send(s.sut.addr, &d.request("BYE", "")).await;
    s.caller.expect_response(200).await;
    let bye = s.callee.expect_request("BYE").await;
    s.callee.send(bye.from, &bye.reply(200, "", "", "")).await;

    let caller_secrets = vec![
        A.to_string(),
        "Alice".into(),
        "127.0.0.2".into(),
        format!(":{}", s.caller.addr.port()),
        d.call_id.clone(),
        d.tag.clone(),
    ];
    assert_no_leak(&s.callee.seen, &caller_secrets);
    let callee_secrets = vec![
        B.to_string(),
        // The user name as it appears, not bare: three lowercase letters
        // can turn up inside a random tag or branch of ours by chance.
        "bob@".into(),
        "o=bob ".into(),
        "s=bob ".into(),
        "BobPhone".into(),
        "127.0.0.3".into(),
        format!(":{}", s.callee.addr.port()),
        inv.msg.call_id.to_string(),
        "bobtag1".into(),
    ];
    assert_no_leak(&s.caller.seen, &callee_secrets);

    // B dials X and reaches A, who sees X.
    s.callee.seen.clear();
    let mut d = Dialog::new(s.caller.addr, s.sut.addr, B, X);
    s.caller.send(s.sut.addr, &d.invite()).await;
    let inv = answer(&mut s.callee, "bobtag2").await;
    assert!(
        inv.raw.starts_with("INVITE sip:+8613800000000@"),
        "{}",
        inv.raw
    );
    assert!(inv.msg.from.contains("+8617000000000"));
    let ok = s.caller.expect_response(200).await;
    d.confirm(&ok);
    s.caller.send(s.sut.addr, &d.ack(1)).await;
    s.callee.expect_request("ACK").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ax_call_reaches_the_owner_from_any_caller() {
    let mut s = setup(vec![ax(X, B)], |_| {}).await;
    let (_, inv) = connect(&mut s, "13711112222", X).await;
    assert!(
        inv.raw.starts_with("INVITE sip:+8613900000000@"),
        "{}",
        inv.raw
    );
    assert!(!inv.raw.contains("13711112222"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_callee_is_relayed_and_acked_hop_by_hop() {
    let mut s = setup(vec![axb(A, X, B)], |_| {}).await;
    let d = Dialog::new(s.caller.addr, s.sut.addr, A, X);
    s.caller.send(s.sut.addr, &d.invite()).await;
    let inv = s.callee.expect_request("INVITE").await;
    s.callee
        .send(inv.from, &inv.reply(486, "busytag", "", ""))
        .await;
    let ack = s.callee.expect_request("ACK").await;
    assert_eq!(ack.msg.call_id, inv.msg.call_id);
    let busy = s.caller.expect_response(486).await;
    assert!(busy.msg.to_tag.is_some());
    assert!(!busy.raw.contains("busytag"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_answer_cancels_the_callee_and_tells_the_caller() {
    let mut s = setup(vec![axb(A, X, B)], |c| c.sip.no_answer_secs = 1).await;
    let d = Dialog::new(s.caller.addr, s.sut.addr, A, X);
    s.caller.send(s.sut.addr, &d.invite()).await;
    let inv = s.callee.expect_request("INVITE").await;
    s.callee
        .send(inv.from, &inv.reply(180, "ring", "", ""))
        .await;
    s.caller.expect_response(180).await;
    // The ring time passes on the server's clock, not in real time.
    s.sut.clock.advance(Duration::from_secs(1));
    let cancel = s.callee.expect_request("CANCEL").await;
    assert_eq!(cancel.msg.top_via.branch, inv.msg.top_via.branch);
    s.callee
        .send(cancel.from, &cancel.reply(200, "ring", "", ""))
        .await;
    s.callee
        .send(inv.from, &inv.reply(487, "ring", "", ""))
        .await;
    s.caller.expect_response(480).await;
    s.callee.expect_request("ACK").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_cancel_during_ringing_reaches_the_callee() {
    let mut s = setup(vec![axb(A, X, B)], |_| {}).await;
    let d = Dialog::new(s.caller.addr, s.sut.addr, A, X);
    s.caller.send(s.sut.addr, &d.invite()).await;
    let inv = s.callee.expect_request("INVITE").await;
    s.callee
        .send(inv.from, &inv.reply(180, "ring", "", ""))
        .await;
    s.caller.expect_response(180).await;
    s.caller.send(s.sut.addr, &d.cancel()).await;
    let ok = s.caller.recv().await;
    let other = s.caller.recv().await;
    let mut codes = [
        (ok.code(), ok.msg.cseq_method.to_string()),
        (other.code(), other.msg.cseq_method.to_string()),
    ];
    codes.sort();
    assert_eq!(
        codes,
        [(200, "CANCEL".to_string()), (487, "INVITE".to_string())]
    );
    let cancel = s.callee.expect_request("CANCEL").await;
    s.callee
        .send(cancel.from, &cancel.reply(200, "ring", "", ""))
        .await;
    s.callee
        .send(inv.from, &inv.reply(487, "ring", "", ""))
        .await;
    s.callee.expect_request("ACK").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_200_crossing_the_cancel_is_acked_and_hung_up() {
    let mut s = setup(vec![axb(A, X, B)], |_| {}).await;
    let d = Dialog::new(s.caller.addr, s.sut.addr, A, X);
    s.caller.send(s.sut.addr, &d.invite()).await;
    let inv = s.callee.expect_request("INVITE").await;
    s.callee.send(inv.from, &inv.reply(180, "t", "", "")).await;
    s.caller.expect_response(180).await;
    s.caller.send(s.sut.addr, &d.cancel()).await;
    let cancel = s.callee.expect_request("CANCEL").await;
    // The callee answered before it saw the CANCEL.
    let contact = format!("Contact: <sip:bob@{}>\r\n", s.callee.addr);
    s.callee
        .send(
            inv.from,
            &inv.reply(200, "t", &contact, &sdp("bob", "127.0.0.3")),
        )
        .await;
    s.callee
        .send(cancel.from, &cancel.reply(200, "t", "", ""))
        .await;
    s.callee.expect_request("ACK").await;
    s.callee.expect_request("BYE").await;
    let mut codes = Vec::new();
    while !codes.contains(&487) {
        let m = s.caller.recv().await;
        codes.push(m.code());
    }
    assert!(
        !codes.iter().any(|c| (200..300).contains(c) && *c != 200),
        "{codes:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callee_hangs_up_and_the_caller_gets_bye() {
    let mut s = setup(vec![axb(A, X, B)], |_| {}).await;
    let (d, inv) = connect(&mut s, A, X).await;
    let bye = format!(
        "BYE sip:x@{sut} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKbye1\r\nFrom: {to};tag=bobtag1\r\n\
         To: {from}\r\nCall-ID: {cid}\r\nCSeq: 9 BYE\r\nContent-Length: 0\r\n\r\n",
        sut = s.sut.addr,
        me = s.callee.addr,
        to = inv.msg.to,
        from = inv.msg.from,
        cid = inv.msg.call_id,
    );
    s.callee.send(s.sut.addr, &bye).await;
    s.callee.expect_response(200).await;
    let got = s.caller.expect_request("BYE").await;
    assert_eq!(got.msg.call_id, d.call_id);
    assert_eq!(got.msg.to_tag.as_deref(), Some(d.tag.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reinvite_and_info_are_relayed_with_the_other_legs_identifiers() {
    let mut s = setup(vec![axb(A, X, B)], |_| {}).await;
    let (mut d, inv) = connect(&mut s, A, X).await;
    let body = sdp(A, "127.0.0.2");
    s.caller.send(s.sut.addr, &d.request("INVITE", &body)).await;
    let re = s.callee.expect_request("INVITE").await;
    assert_eq!(re.msg.call_id, inv.msg.call_id);
    assert_eq!(re.msg.to_tag.as_deref(), Some("bobtag1"));
    assert!(re.msg.cseq > inv.msg.cseq);
    // Media is anchored: the callee is told to send to sipmask.
    assert!(
        re.body().contains("c=IN IP4 127.0.0.1\r\n"),
        "{}",
        re.body()
    );
    assert!(!re.body().contains("m=audio 4000"), "{}", re.body());
    let contact = format!("Contact: <sip:bob@{}>\r\n", s.callee.addr);
    s.callee
        .send(
            re.from,
            &re.reply(200, "", &contact, &sdp("bob", "127.0.0.3")),
        )
        .await;
    let ok = s.caller.expect_response(200).await;
    assert_eq!(ok.msg.cseq, d.cseq);
    s.caller.send(s.sut.addr, &d.ack(d.cseq)).await;
    let ack = s.callee.expect_request("ACK").await;
    assert_eq!(ack.msg.cseq, re.msg.cseq);

    s.caller.send(s.sut.addr, &d.request("INFO", "")).await;
    let info = s.callee.expect_request("INFO").await;
    s.callee.send(info.from, &info.reply(200, "", "", "")).await;
    s.caller.expect_response(200).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maximum_call_length_ends_both_legs() {
    let mut args = axb(A, X, B);
    args.limits.max_call_secs = Some(1);
    let mut s = setup(vec![args], |_| {}).await;
    let (_d, _inv) = connect(&mut s, A, X).await;
    s.sut.clock.advance(Duration::from_secs(1));
    let to_caller = s.caller.expect_request("BYE").await;
    let to_callee = s.callee.expect_request("BYE").await;
    assert!(to_caller.header("Reason").is_some());
    assert!(to_callee.header("Reason").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_dialog_request_for_an_unknown_dialog_gets_481() {
    let mut s = setup(vec![], |_| {}).await;
    let mut d = Dialog::new(s.caller.addr, s.sut.addr, A, X);
    d.remote_to = format!("<sip:{X}@{}>;tag=nosuchtag", s.sut.addr);
    s.caller.send(s.sut.addr, &d.request("BYE", "")).await;
    s.caller.expect_response(481).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retransmitted_invite_reaches_the_callee_once() {
    let mut s = setup(vec![axb(A, X, B)], |_| {}).await;
    let d = Dialog::new(s.caller.addr, s.sut.addr, A, X);
    s.caller.send(s.sut.addr, &d.invite()).await;
    s.caller.send(s.sut.addr, &d.invite()).await;
    let first = s.caller.recv_within(WAIT).await.expect("100");
    let second = s.caller.recv_within(WAIT).await.expect("100 again");
    assert_eq!((first.code(), second.code()), (100, 100));
    s.callee.expect_request("INVITE").await;
    s.callee.expect_silence(Duration::from_millis(300)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_answer_of_a_forking_callee_is_acked_then_hung_up() {
    let mut s = setup(vec![axb(A, X, B)], |_| {}).await;
    let mut d = Dialog::new(s.caller.addr, s.sut.addr, A, X);
    s.caller.send(s.sut.addr, &d.invite()).await;
    let inv = s.callee.expect_request("INVITE").await;
    let contact = format!("Contact: <sip:bob@{}>\r\n", s.callee.addr);
    let body = sdp("bob", "127.0.0.3");
    s.callee
        .send(inv.from, &inv.reply(200, "fork1", &contact, &body))
        .await;
    s.callee
        .send(inv.from, &inv.reply(200, "fork2", &contact, &body))
        .await;
    let ok = s.caller.expect_response(200).await;
    d.confirm(&ok);
    s.caller.send(s.sut.addr, &d.ack(1)).await;
    let mut acks = Vec::new();
    let mut byes = Vec::new();
    while acks.len() < 2 || byes.is_empty() {
        let m = s.callee.recv().await;
        match m.method().as_str() {
            "ACK" => acks.push(m.msg.to_tag.as_deref().map(str::to_string)),
            "BYE" => byes.push(m.msg.to_tag.as_deref().map(str::to_string)),
            _ => {}
        }
    }
    assert!(acks.contains(&Some("fork1".into())) && acks.contains(&Some("fork2".into())));
    assert_eq!(byes, vec![Some("fork2".to_string())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_over_ipv6_reaches_an_ipv4_trunk() {
    let Ok(probe) = std::net::UdpSocket::bind("[::1]:0") else {
        eprintln!("no IPv6 loopback here; skipping");
        return;
    };
    drop(probe);
    let mut caller = Ua::bind("[::1]").await;
    let mut callee = Ua::bind("127.0.0.3").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(dir.path(), callee.addr);
    cfg.sip.listen = vec!["127.0.0.1:0".into(), "[::1]:0".into()];
    add(&cfg, axb(A, X, B));
    let sut = start(cfg, dir).await;
    let v6 = sut.server.addrs[1];
    let mut d = Dialog::new(caller.addr, v6, A, X);
    caller.send(v6, &d.invite()).await;
    let inv = answer(&mut callee, "v6tag").await;
    assert!(
        inv.msg.top_via.host.starts_with("127.0.0.1"),
        "IPv4 Via towards the IPv4 trunk"
    );
    let ok = caller.expect_response(200).await;
    assert!(
        ok.header("Contact").is_some_and(|c| c.contains("[::1]")),
        "IPv6 Contact towards the caller"
    );
    // Media too: each leg is told an address of its own family.
    assert!(ok.body().contains("c=IN IP6 ::1\r\n"), "{}", ok.body());
    assert!(
        inv.body().contains("c=IN IP4 127.0.0.1\r\n"),
        "{}",
        inv.body()
    );
    d.confirm(&ok);
    caller.send(v6, &d.ack(1)).await;
    callee.expect_request("ACK").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reliable_provisional_and_prack_are_relayed_with_rack_mapped() {
    let mut s = setup(vec![axb(A, X, B)], |_| {}).await;
    let mut d = Dialog::new(s.caller.addr, s.sut.addr, A, X);
    s.caller.send(s.sut.addr, &d.invite()).await;
    let inv = s.callee.expect_request("INVITE").await;
    let extra = format!(
        "Contact: <sip:bob@{}>\r\nRequire: 100rel\r\nRSeq: 1\r\n",
        s.callee.addr
    );
    s.callee
        .send(
            inv.from,
            &inv.reply(183, "early", &extra, &sdp("bob", "127.0.0.3")),
        )
        .await;
    let early = s.caller.expect_response(183).await;
    assert_eq!(early.header("RSeq").as_deref(), Some("1"));
    assert_eq!(early.header("Require").as_deref(), Some("100rel"));
    d.confirm(&early);
    let prack = d
        .request("PRACK", "")
        .replace("Content-Length: 0", "RAck: 1 1 INVITE\r\nContent-Length: 0");
    s.caller.send(s.sut.addr, &prack).await;
    let got = s.callee.expect_request("PRACK").await;
    assert_eq!(
        got.header("RAck"),
        Some(format!("1 {} INVITE", inv.msg.cseq))
    );
    assert_eq!(got.msg.to_tag.as_deref(), Some("early"));
    s.callee.send(got.from, &got.reply(200, "", "", "")).await;
    let ok = s.caller.expect_response(200).await;
    assert_eq!(ok.msg.cseq_method, "PRACK");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binding_expiring_during_a_call_does_not_cut_it() {
    let mut args = axb(A, X, B);
    args.not_after = Some((sipmask::time::now() + 2).to_string());
    let mut s = setup(vec![args], |_| {}).await;
    let (mut d, _) = connect(&mut s, A, X).await;
    s.sut.clock.advance(Duration::from_millis(2500));
    s.caller.send(s.sut.addr, &d.request("INFO", "")).await;
    let info = s.callee.expect_request("INFO").await;
    s.callee.send(info.from, &info.reply(200, "", "", "")).await;
    s.caller.expect_response(200).await;
    // New calls are refused now.
    let d2 = Dialog::new(s.caller.addr, s.sut.addr, A, X);
    s.caller.send(s.sut.addr, &d2.invite()).await;
    s.caller.expect_response(404).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_after_the_answer_gets_200_and_changes_nothing() {
    let mut s = setup(vec![axb(A, X, B)], |_| {}).await;
    let mut d = Dialog::new(s.caller.addr, s.sut.addr, A, X);
    s.caller.send(s.sut.addr, &d.invite()).await;
    answer(&mut s.callee, "t").await;
    let ok = s.caller.expect_response(200).await;
    // The CANCEL crossed our 200 on its way: it must not end the call.
    s.caller.send(s.sut.addr, &d.cancel()).await;
    let r = s.caller.recv().await;
    assert_eq!((r.code(), r.msg.cseq_method.as_str()), (200, "CANCEL"));
    d.confirm(&ok);
    s.caller.send(s.sut.addr, &d.ack(1)).await;
    s.callee.expect_request("ACK").await;
    s.caller.send(s.sut.addr, &d.request("INFO", "")).await;
    let info = s.callee.expect_request("INFO").await;
    s.callee.send(info.from, &info.reply(200, "", "", "")).await;
    s.caller.expect_response(200).await;
    // And a CANCEL for an INVITE nobody saw gets 481.
    let stranger = Dialog::new(s.caller.addr, s.sut.addr, A, X);
    s.caller.send(s.sut.addr, &stranger.cancel()).await;
    s.caller.expect_response(481).await;
}

/// The ACK for a non-2xx final response `resp` to `req` (RFC 3261
/// 17.1.1.3: the INVITE's branch, Request-URI and CSeq number, the
/// response's To).
fn ack_for(req_raw: &str, resp: &Sip) -> String {
    let req = sipmask::sip::Msg::parse(req_raw.as_bytes(), true).expect("request parses");
    let uri = match &req.start {
        sipmask::sip::message::Start::Request { uri, .. } => uri.clone(),
        _ => unreachable!("a request"),
    };
    finish(
        format!(
            "ACK {uri} SIP/2.0\r\nVia: {}\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {} ACK\r\nMax-Forwards: 70\r\n",
            req.vias[0], req.from, resp.msg.to, req.call_id, req.cseq
        ),
        "",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn re_invite_glare_ends_with_acks_and_no_retransmissions() {
    let mut s = setup(vec![axb(A, X, B)], |_| {}).await;
    let (mut d, inv) = connect(&mut s, A, X).await;
    // Both phones put the call on hold at once.
    let from_a = d.request("INVITE", &sdp(A, "127.0.0.2"));
    s.caller.send(s.sut.addr, &from_a).await;
    let target = inv.header("Contact").expect("contact");
    let target = target.trim_matches(['<', '>']);
    let from_b = finish(
        format!(
            "INVITE {target} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKglareb;rport\r\n\
             From: {to};tag=bobtag1\r\nTo: {from}\r\nCall-ID: {cid}\r\nCSeq: 7 INVITE\r\n\
             Contact: <sip:bob@{me}>\r\nMax-Forwards: 70\r\n",
            me = s.callee.addr,
            to = inv.msg.to,
            from = inv.msg.from,
            cid = inv.msg.call_id,
        ),
        &sdp("bob", "127.0.0.3"),
    );
    s.callee.send(s.sut.addr, &from_b).await;
    // Each side gets the other's re-INVITE and refuses it: 491.
    let at_b = s.callee.expect_request("INVITE").await;
    s.callee.send(at_b.from, &at_b.reply(491, "", "", "")).await;
    let at_a = s.caller.expect_request("INVITE").await;
    s.caller.send(at_a.from, &at_a.reply(491, "", "", "")).await;
    // Each side's 491 is ACKed hop by hop, and each gets a 491 for its
    // own re-INVITE, which it ACKs.
    let mut acked = [false; 2];
    let mut refused = [false; 2];
    for _ in 0..4 {
        for (i, ua) in [&mut s.caller, &mut s.callee].into_iter().enumerate() {
            let Some(m) = ua.recv_within(Duration::from_millis(300)).await else {
                continue;
            };
            if m.method() == "ACK" {
                acked[i] = true;
            } else if m.code() == 491 {
                refused[i] = true;
                let own = if i == 0 { &from_a } else { &from_b };
                ua.send(m.from, &ack_for(own, &m)).await;
            }
        }
    }
    assert_eq!(acked, [true, true], "both 491s were ACKed by sipmask");
    assert_eq!(refused, [true, true], "both re-INVITEs got their 491");
    // Nothing is resent afterwards (Timer G/H of sipmask's 491s, Timer A of
    // its re-INVITEs: 32 s of the server's time).
    let ff = s.sut.fast_forward(40);
    s.caller.expect_silence(Duration::from_millis(1000)).await;
    s.callee.expect_silence(Duration::from_millis(10)).await;
    drop(ff);
    let api = s.sut.server.api_addr.expect("api");
    let m = http(api, "GET", "/metrics", None, None).await;
    assert!(
        m.body.contains("sipmask_retransmissions_total 0"),
        "{}",
        m.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdp_is_rebuilt_per_leg_and_unusable_sdp_is_refused() {
    let mut s = setup(vec![axb(A, X, B)], |_| {}).await;
    let d = Dialog::new(s.caller.addr, s.sut.addr, A, X);
    // A softphone's SDP, with the caller's number in cname and tool lines.
    let leaky = format!(
        "v=0\r\no={A} 2732856622 7 IN IP4 127.0.0.2\r\ns=baresip\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\n\
         a=tool:baresip 1.0.0\r\nm=audio 6031 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=ssrc:2732856622 cname:sip:{A}@127.0.0.2:6031\r\n\
         a=msid:x y\r\na=sendrecv\r\n"
    );
    let plain = sdp(A, "127.0.0.2");
    let invite = d.invite().replace(&plain, &leaky).replace(
        &format!("Content-Length: {}", plain.len()),
        &format!("Content-Length: {}", leaky.len()),
    );
    s.caller.send(s.sut.addr, &invite).await;
    let inv = s.callee.expect_request("INVITE").await;
    let body = inv.body();
    for leak in [A, "2732856622", "baresip", "ssrc", "msid"] {
        assert!(!body.contains(leak), "{leak} crossed:\n{body}");
    }
    assert!(
        body.contains("a=rtpmap:101 telephone-event/8000") && body.contains("a=sendrecv"),
        "{body}"
    );
    assert!(body.starts_with("v=0\r\no=- "), "{body}");
    // Not SDP at all: 488, and the callee hears nothing.
    let d2 = Dialog::new(s.caller.addr, s.sut.addr, A, X);
    let bad = d2.invite().replace("v=0\r\n", "v=1\r\n");
    s.caller.send(s.sut.addr, &bad).await;
    let r = s.caller.expect_response(488).await;
    assert_eq!(r.msg.call_id, d2.call_id);
    s.callee.expect_silence(Duration::from_millis(200)).await;
    // Inside a call too: a re-INVITE with unusable SDP is refused, not relayed.
    let mut s = setup(vec![axb(A, X, B)], |_| {}).await;
    let (mut d3, _) = connect(&mut s, A, X).await;
    let bad = d3
        .request("INVITE", &sdp(A, "127.0.0.2"))
        .replace("v=0\r\n", "v=1\r\n");
    s.caller.send(s.sut.addr, &bad).await;
    let r = s.caller.expect_response(488).await;
    assert_eq!(r.msg.cseq, d3.cseq);
    s.callee.expect_silence(Duration::from_millis(200)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capability_headers_are_ours_not_the_callers_software() {
    // Linphone 5.1's lists, distinctive enough to name the app.
    let mut s = setup(vec![axb(A, X, B)], |_| {}).await;
    let d = Dialog::new(s.caller.addr, s.sut.addr, A, X);
    let invite = d.invite().replacen(
        "\r\n",
        "\r\nAllow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY, MESSAGE, SUBSCRIBE, INFO, PRACK, UPDATE\r\n\
         Supported: replaces, outbound, gruu, path, record-aware, 100rel\r\n\
         Accept: application/sdp\r\nAccept: text/plain\r\nAccept: application/vnd.gsma.rcs-ft-http+xml\r\n",
        1,
    );
    s.caller.send(s.sut.addr, &invite).await;
    let inv = s.callee.expect_request("INVITE").await;
    assert_eq!(inv.header("Allow").as_deref(), Some(sipmask::b2bua::ALLOW));
    assert_eq!(inv.headers("Supported"), ["100rel"]);
    assert_eq!(inv.headers("Accept"), ["application/sdp, text/plain"]);
    for print in ["record-aware", "gruu", "REFER", "vnd.gsma"] {
        assert!(!inv.raw.contains(print), "{print} crossed:\n{}", inv.raw);
    }
    // A party that lists nothing we carry gets no Supported at all, not
    // an empty one.
    let contact = format!("Contact: <sip:bob@{}>\r\n", s.callee.addr);
    let ok = inv
        .reply(200, "bobtag", &contact, &sdp(B, "127.0.0.3"))
        .replacen(
            "\r\n",
            "\r\nSupported: outbound, gruu\r\nAllow: INVITE, BYE, X-SECRET\r\n",
            1,
        );
    s.callee.send(inv.from, &ok).await;
    let ok = s.caller.expect_response(200).await;
    assert!(ok.header("Supported").is_none(), "{}", ok.raw);
    assert_eq!(ok.header("Allow").as_deref(), Some(sipmask::b2bua::ALLOW));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callers_record_route_is_echoed_and_followed() {
    // The caller's INVITE came through two record-routing proxies (RFC
    // 3261 §12.1.1): the dialog's responses carry their Record-Route, and
    // our requests in the dialog follow them as Route.
    let mut s = setup(vec![axb(A, X, B)], |_| {}).await;
    let d = Dialog::new(s.caller.addr, s.sut.addr, A, X);
    let rr = "Record-Route: <sip:p1.example.com;lr>\r\nRecord-Route: <sip:p2.example.com;lr>\r\n";
    let invite = d.invite().replacen("\r\n", &format!("\r\n{rr}"), 1);
    s.caller.send(s.sut.addr, &invite).await;
    let inv = s.callee.expect_request("INVITE").await;
    assert!(
        !inv.raw.contains("p1.example.com"),
        "the caller's proxies reached the callee:\n{}",
        inv.raw
    );
    let contact = format!("Contact: <sip:bob@{}>\r\n", s.callee.addr);
    s.callee
        .send(inv.from, &inv.reply(180, "bob", &contact, ""))
        .await;
    let ringing = s.caller.expect_response(180).await;
    assert_eq!(
        ringing.headers("Record-Route"),
        ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"],
        "{}",
        ringing.raw
    );
    s.callee
        .send(
            inv.from,
            &inv.reply(200, "bob", &contact, &sdp(B, "127.0.0.3")),
        )
        .await;
    let ok = s.caller.expect_response(200).await;
    assert_eq!(ok.headers("Record-Route").len(), 2, "{}", ok.raw);
    let mut d = d;
    d.confirm(&ok);
    s.caller.send(s.sut.addr, &d.ack(1)).await;
    s.callee.expect_request("ACK").await;
    // The callee hangs up: the BYE to the caller follows the route set.
    let callee_bye = format!(
        "BYE sip:+8617000000000@{sut} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{b}\r\n\
         From: {to};tag=bob\r\nTo: {from}\r\nCall-ID: {cid}\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n",
        sut = s.sut.addr,
        me = s.callee.addr,
        b = unique("bye"),
        to = inv.msg.to,
        from = inv.msg.from,
        cid = inv.msg.call_id,
    );
    s.callee.send(inv.from, &callee_bye).await;
    let to_caller = s.caller.expect_request("BYE").await;
    assert_eq!(
        to_caller.headers("Route"),
        ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"],
        "{}",
        to_caller.raw
    );
}
