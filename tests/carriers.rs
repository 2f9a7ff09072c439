//! Carriers as they are: Debian's Kamailio (tests/carrier/carrier.cfg)
//! plays the carrier's proxy on 127.0.0.5, in front of sipmask for the
//! caller and behind it as its trunk, with the carrier's softswitch (a
//! test agent) on 127.0.0.3 and callers on 127.0.0.2. One call crosses the
//! proxy twice: caller → proxy → sipmask → proxy → softswitch.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::kamailio::{Behaviour, Kamailio};
use common::*;

const A: &str = "13800000000";
const B: &str = "13900000000";
const X: &str = "17000000000";

/// The proxy record-routing, asking no credentials.
const RECORD_ROUTING: Behaviour = Behaviour {
    record_route: true,
    password: None,
};

/// sipmask with the AXB binding and the proxy as its trunk, and the proxy.
async fn carrier(
    b: Behaviour,
    tweak: impl FnOnce(&mut sipmask::config::Config, SocketAddr),
) -> (Sut, Kamailio, Ua) {
    let switch = Ua::bind("127.0.0.3").await;
    let proxy: SocketAddr = format!("127.0.0.5:{}", free_port("127.0.0.5"))
        .parse()
        .expect("addr");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(dir.path(), proxy);
    cfg.sip.trusted.push("127.0.0.5/32".into());
    tweak(&mut cfg, proxy);
    add(&cfg, axb(A, X, B));
    let sut = start(cfg, dir).await;
    let k = Kamailio::start(proxy, sut.addr, switch.addr, b);
    (sut, k, switch)
}

/// The softswitch's answer to `inv`: `code`, its Contact, the
/// Record-Route copied (RFC 3261 §12.1.1) and an SDP for a 2xx.
fn switch_reply(switch: &Ua, inv: &Sip, code: u16) -> String {
    let mut extra = format!(
        "Contact: <sip:bob@{}>\r\nServer: CarrierSwitch/9\r\n",
        switch.addr
    );
    for rr in inv.headers("Record-Route") {
        extra.push_str(&format!("Record-Route: {rr}\r\n"));
    }
    let body = if code == 200 {
        sdp("bob", &switch.addr.ip().to_string())
    } else {
        String::new()
    };
    inv.reply(code, "switchtag", &extra, &body)
}

/// A request of the softswitch in the dialog `inv` made (it is the UAS):
/// to the caller's Contact, along the INVITE's Record-Route in order.
fn switch_request(switch: &Ua, inv: &Sip, method: &str, cseq: u32, body: &str) -> String {
    let target = inv.msg.contact.as_deref().expect("a Contact");
    let mut out = format!(
        "{method} {target} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bK{}\r\n\
         From: {};tag=switchtag\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {cseq} {method}\r\nMax-Forwards: 70\r\n\
         Contact: <sip:bob@{}>\r\n",
        switch.addr,
        unique("sw"),
        inv.msg.to,
        inv.msg.from,
        inv.msg.call_id,
        switch.addr
    );
    for rr in inv.headers("Record-Route") {
        out.push_str(&format!("Route: {rr}\r\n"));
    }
    finish(out, body)
}

/// A caller's call through the proxy, answered by the softswitch and
/// ACKed: the caller, its dialog and the INVITE the softswitch got.
async fn answered_through(k: &Kamailio, switch: &mut Ua) -> (Ua, Dialog, Sip) {
    let mut caller = Ua::bind("127.0.0.2").await;
    let mut d = Dialog::new(caller.addr, k.addr, A, X);
    caller.send(k.addr, &d.invite()).await;
    let inv = switch.expect_request("INVITE").await;
    switch
        .send(inv.from, &switch_reply(switch, &inv, 200))
        .await;
    let ok = caller.expect_response(200).await;
    d.confirm_routed(&ok);
    caller.send(k.addr, &d.ack(1)).await;
    switch.expect_request("ACK").await;
    (caller, d, inv)
}

/// Where a request goes when it has Route headers: its first hop.
fn first_hop(inv: &Sip, k: &Kamailio) -> SocketAddr {
    if inv.headers("Record-Route").is_empty() {
        inv.from
    } else {
        k.addr
    }
}

/// Asserts nothing of the other party crosses: the caller sees neither
/// the softswitch's address nor its dialog, the softswitch nothing of
/// the caller.
fn assert_no_leaks(caller: &Ua, d: &Dialog, switch: &Ua, inv: &Sip) {
    let theirs = [
        switch.addr.ip().to_string(),
        "switchtag".into(),
        "CarrierSwitch".into(),
        "bob@".into(),
        inv.msg.call_id.to_string(),
        format!("+86{B}"),
    ];
    for got in &caller.seen {
        for t in &theirs {
            assert!(!got.contains(t.as_str()), "{t} reached the caller:\n{got}");
        }
    }
    let ours = [
        caller.addr.ip().to_string(),
        d.tag.clone(),
        d.call_id.clone(),
        "Alice".into(),
        A.into(),
    ];
    for got in &switch.seen {
        for t in &ours {
            assert!(
                !got.contains(t.as_str()),
                "{t} reached the softswitch:\n{got}"
            );
        }
    }
}

/// A call both ways through a record-routing carrier: answered, ACKed
/// (no 2xx resent), put on hold by the caller, hung up by the callee;
/// every in-dialog request passes the proxy along its route.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_through_a_record_routing_carrier_both_ways() {
    let (sut, k, mut switch) = carrier(RECORD_ROUTING, |_, _| {}).await;
    let _ = &sut;
    let mut caller = Ua::bind("127.0.0.2").await;
    let mut d = Dialog::new(caller.addr, k.addr, A, X);
    caller.send(k.addr, &d.invite()).await;

    let inv = switch.expect_request("INVITE").await;
    assert_eq!(inv.headers("Record-Route").len(), 1, "{}", inv.raw);
    switch
        .send(inv.from, &switch_reply(&switch, &inv, 180))
        .await;
    switch
        .send(inv.from, &switch_reply(&switch, &inv, 200))
        .await;
    let ok = caller.expect_response(200).await;
    // The caller's own proxy stays on its path, and only it.
    let rrs = ok.headers("Record-Route");
    assert_eq!(rrs.len(), 1, "{}", ok.raw);
    assert!(
        rrs[0].contains(&k.addr.to_string()) && rrs[0].contains(&d.tag),
        "{}",
        ok.raw
    );
    d.confirm_routed(&ok);
    caller.send(k.addr, &d.ack(1)).await;
    let ack = switch.expect_request("ACK").await;
    assert!(
        ack.raw.starts_with(&format!("ACK sip:bob@{}", switch.addr)),
        "{}",
        ack.raw
    );
    // Both ACKs went through: nobody resends a 2xx.
    caller.expect_silence(Duration::from_millis(1200)).await;

    // The caller puts the call on hold: a re-INVITE along its route.
    let hold = d.request(
        "INVITE",
        &sdp(A, "127.0.0.2").replace("t=0 0\r\n", "t=0 0\r\na=sendonly\r\n"),
    );
    caller.send(k.addr, &hold).await;
    let reinv = switch.expect_request("INVITE").await;
    assert_eq!(reinv.msg.call_id, inv.msg.call_id);
    assert!(
        reinv
            .raw
            .starts_with(&format!("INVITE sip:bob@{}", switch.addr)),
        "{}",
        reinv.raw
    );
    switch
        .send(reinv.from, &switch_reply(&switch, &reinv, 200))
        .await;
    caller.expect_response(200).await;
    let cseq = d.cseq;
    caller.send(k.addr, &d.ack(cseq)).await;
    let ack = switch.expect_request("ACK").await;
    assert_eq!(ack.msg.cseq, reinv.msg.cseq);

    // The callee hangs up: its BYE along the INVITE's Record-Route.
    let bye = switch_request(&switch, &inv, "BYE", 1, "");
    switch.send(first_hop(&inv, &k), &bye).await;
    let got = switch.expect_response(200).await;
    assert_eq!(got.msg.cseq_method.as_ref(), "BYE");
    let bye = caller.expect_request("BYE").await;
    assert!(
        bye.raw.starts_with(&format!("BYE sip:{A}@{}", caller.addr)),
        "{}",
        bye.raw
    );
    caller.send(k.addr, &bye.reply(200, "", "", "")).await;
    switch.expect_silence(Duration::from_millis(600)).await;
    assert_no_leaks(&caller, &d, &switch, &inv);
}

/// A carrier that does not record-route: sipmask's in-dialog requests go
/// to it with `Route: <sip:carrier;lr>` (it is the trunk, an outbound
/// proxy), which a standard proxy needs to pass them on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_dialog_requests_reach_the_callee_through_a_carrier_that_does_not_record_route() {
    let (sut, _k, mut switch) = carrier(Behaviour::default(), |_, _| {}).await;
    let mut caller = Ua::bind("127.0.0.2").await;
    let mut d = Dialog::new(caller.addr, sut.addr, A, X);
    caller.send(sut.addr, &d.invite()).await;
    let inv = switch.expect_request("INVITE").await;
    assert!(inv.headers("Record-Route").is_empty(), "{}", inv.raw);
    switch
        .send(inv.from, &switch_reply(&switch, &inv, 200))
        .await;
    let ok = caller.expect_response(200).await;
    d.confirm(&ok);
    caller.send(sut.addr, &d.ack(1)).await;
    let ack = switch.expect_request("ACK").await;
    assert!(
        ack.raw.starts_with(&format!("ACK sip:bob@{}", switch.addr)),
        "{}",
        ack.raw
    );
    let bye = d.request("BYE", "");
    caller.send(sut.addr, &bye).await;
    caller.expect_response(200).await;
    let bye = switch.expect_request("BYE").await;
    switch.send(bye.from, &bye.reply(200, "", "", "")).await;
    switch.expect_silence(Duration::from_millis(800)).await;
    assert_no_leaks(&caller, &d, &switch, &inv);
}

/// Trunks for the failover tests: `carrier` (the proxy, priority 1, with
/// `password` as ours) and `backup` (a test agent on 127.0.0.7,
/// priority 2).
fn two_trunks(
    proxy: SocketAddr,
    backup: SocketAddr,
    password: &str,
    extra: &str,
) -> Vec<sipmask::config::TrunkSection> {
    let text = format!(
        "[[trunks]]\nname = \"carrier\"\naddress = \"{proxy}\"\nprefixes = [\"+86\"]\noptions_secs = 0\n\
         username = \"acct\"\npassword = \"{password}\"\n{extra}\n\
         [[trunks]]\nname = \"backup\"\naddress = \"{backup}\"\npriority = 2\noptions_secs = 0\n"
    );
    sipmask::config::Config::from_toml(&text, "trunks.toml")
        .expect("trunks")
        .trunks
}

async fn metrics(sut: &Sut) -> String {
    let api = sut.server.api_addr.expect("api");
    http(api, "GET", "/metrics", None, None).await.body
}

/// The carrier checks our digest answer for real: with the wrong password
/// the call fails over to the next trunk, the failures are counted, the
/// record names the trunks, and after three in a row the carrier is
/// degraded (tried after the backup).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_trunk_password_fails_over_and_is_counted_and_recorded() {
    let mut backup = Ua::bind("127.0.0.7").await;
    let checks = Behaviour {
        password: Some("right-pw"),
        ..Default::default()
    };
    let backup_addr = backup.addr;
    let (sut, _k, mut switch) = carrier(checks, |c, proxy| {
        c.sip.trunk = String::new();
        c.trunks = two_trunks(proxy, backup_addr, "wrong-pw", "");
    })
    .await;
    // 1: refused by the carrier, answered by the backup.
    let mut caller = Ua::bind("127.0.0.2").await;
    let d = Dialog::new(caller.addr, sut.addr, A, X);
    caller.send(sut.addr, &d.invite()).await;
    answer(&mut backup, "bk").await;
    caller.expect_response(200).await;
    let m = metrics(&sut).await;
    assert!(
        m.contains("sipmask_trunk_auth_failures_total{trunk=\"carrier\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("sipmask_trunk_degraded{trunk=\"carrier\"} 0"),
        "{m}"
    );
    // 2 and 3: the backup challenges too (we have no credentials for it):
    // the caller gets 503, and the record says why and which trunks.
    for _ in 0..2 {
        let mut caller = Ua::bind("127.0.0.2").await;
        let d = Dialog::new(caller.addr, sut.addr, A, X);
        caller.send(sut.addr, &d.invite()).await;
        let inv = backup.expect_request("INVITE").await;
        let challenge =
            "Proxy-Authenticate: Digest realm=\"backup\", nonce=\"n\", algorithm=MD5\r\n";
        backup
            .send(inv.from, &inv.reply(407, "bk", challenge, ""))
            .await;
        caller.expect_response(503).await;
    }
    let m = metrics(&sut).await;
    assert!(
        m.contains("sipmask_trunk_auth_failures_total{trunk=\"carrier\"} 3"),
        "{m}"
    );
    assert!(
        m.contains("sipmask_trunk_degraded{trunk=\"carrier\"} 1"),
        "{m}"
    );
    let mut reasons = Vec::new();
    for _ in 0..100 {
        reasons = operator_calls(sut.dir.path())
            .into_iter()
            .map(|r| r.reason)
            .collect();
        if reasons.len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let refused = "trunk refused our credentials: carrier, backup";
    assert_eq!(
        reasons.iter().filter(|r| r.as_str() == refused).count(),
        2,
        "{reasons:?}"
    );
    // 4: degraded, the carrier is tried only after the backup.
    let mut caller = Ua::bind("127.0.0.2").await;
    let d = Dialog::new(caller.addr, sut.addr, A, X);
    caller.send(sut.addr, &d.invite()).await;
    answer(&mut backup, "bk").await;
    caller.expect_response(200).await;
    switch.expect_silence(Duration::from_millis(300)).await;
}

/// A carrier that dies is marked down within one ping interval plus the
/// probes' own timeouts, not 32 s of Timer F later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_carrier_killed_is_down_within_its_probe_timeouts() {
    let (sut, mut k, _switch) = carrier(Behaviour::default(), |c, proxy| {
        c.sip.trunk = String::new();
        let extra = "options_timeout_ms = 300\noptions_down_after = 2\n";
        c.trunks = two_trunks(proxy, "127.0.0.7:9".parse().expect("addr"), "pw", extra);
        c.trunks[0].options_secs = 1;
    })
    .await;
    let up = "sipmask_trunk_up{trunk=\"carrier\"} 1";
    let down = "sipmask_trunk_up{trunk=\"carrier\"} 0";
    // Up once its first ping is answered (it answers OPTIONS itself).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(metrics(&sut).await.contains(up));
    k.kill();
    let killed = std::time::Instant::now();
    while !metrics(&sut).await.contains(down) {
        assert!(
            killed.elapsed() < Duration::from_secs(10),
            "still up after 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // options_secs + options_timeout_ms × options_down_after = 1.6 s, and
    // a little for the loaded machine.
    let took = killed.elapsed();
    eprintln!("carrier down {took:?} after it was killed");
    assert!(took < Duration::from_millis(2600), "down after {took:?}");
}

/// A phone registered through the carrier's edge proxy (which adds Path,
/// RFC 3327) is called through it: the INVITE carries the Path as Route
/// and goes to the proxy, and the dialog follows the proxy's
/// Record-Route.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_registered_through_an_edge_proxy_is_called_along_its_path() {
    let (sut, k, _switch) = carrier(RECORD_ROUTING, |c, _| {
        sipmask::cli::add_account(&c.storage.data_dir, "sipmask", None, "alice", "alice-pw-1")
            .expect("account");
        add(c, axb(A, "17000000009", "sip:alice@example.com"));
    })
    .await;
    let mut phone = common::phone::Phone::new("127.0.0.6", "alice", "alice-pw-1", k.addr).await;
    // It says it supports Path: the 200 shows the Path stored.
    let ok = phone.register_adding("Supported: path\r\n").await;
    assert_eq!(ok.code(), 200, "{}", ok.raw);
    let path = ok.header("Path").unwrap_or_default();
    assert!(path.contains(&k.addr.to_string()), "{}", ok.raw);

    let mut caller = Ua::bind("127.0.0.2").await;
    let mut d = Dialog::new(caller.addr, sut.addr, A, "17000000009");
    caller.send(sut.addr, &d.invite()).await;
    let inv = phone.ua.expect_request("INVITE").await;
    assert_eq!(
        inv.from.ip().to_string(),
        "127.0.0.5",
        "through the proxy: {}",
        inv.raw
    );
    let contact = format!("Contact: <sip:alice@{}>\r\n", phone.ua.addr);
    let mut extra = contact.clone();
    for rr in inv.headers("Record-Route") {
        extra.push_str(&format!("Record-Route: {rr}\r\n"));
    }
    phone
        .ua
        .send(
            inv.from,
            &inv.reply(200, "ph", &extra, &sdp("alice", "127.0.0.6")),
        )
        .await;
    let ok = caller.expect_response(200).await;
    d.confirm(&ok);
    caller.send(sut.addr, &d.ack(1)).await;
    let ack = phone.ua.expect_request("ACK").await;
    assert_eq!(ack.from.ip().to_string(), "127.0.0.5", "{}", ack.raw);
    let bye = d.request("BYE", "");
    caller.send(sut.addr, &bye).await;
    caller.expect_response(200).await;
    let bye = phone.ua.expect_request("BYE").await;
    phone.ua.send(bye.from, &bye.reply(200, "", "", "")).await;
    for got in &phone.ua.seen {
        assert!(
            !got.contains("127.0.0.2") && !got.contains(&d.call_id),
            "{got}"
        );
    }
}

/// The other way round through the record-routing carrier: the callee's
/// side re-INVITEs (the caller answers, the ACK crosses back), then the
/// caller hangs up; both along the proxy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callees_re_invite_and_the_callers_bye_pass_the_carrier() {
    let (_sut, k, mut switch) = carrier(RECORD_ROUTING, |_, _| {}).await;
    let (mut caller, mut d, inv) = answered_through(&k, &mut switch).await;

    let reinvite = switch_request(&switch, &inv, "INVITE", 2, &sdp("bob", "127.0.0.3"));
    switch.send(k.addr, &reinvite).await;
    let got = caller.expect_request("INVITE").await;
    assert_eq!(got.from, k.addr, "through the proxy");
    // Along the caller's own route: its Contact as Request-URI, sent to
    // the proxy its Record-Route named.
    assert!(
        got.raw
            .starts_with(&format!("INVITE sip:{A}@{}", caller.addr)),
        "{}",
        got.raw
    );
    // The proxy took its own entry off the Route it was sent with.
    assert!(got.headers("Route").is_empty(), "{}", got.raw);
    let contact = format!("Contact: <sip:{A}@{}>\r\n", caller.addr);
    caller
        .send(k.addr, &got.reply(200, "", &contact, &sdp(A, "127.0.0.2")))
        .await;
    let ok2 = switch.expect_response(200).await;
    assert_eq!(ok2.msg.cseq, 2);
    let mut ack = switch_request(&switch, &inv, "ACK", 2, "");
    ack = ack.replace("Contact: <sip:bob@", "X-Was-Contact: <sip:bob@");
    switch.send(k.addr, &ack).await;
    let ack = caller.expect_request("ACK").await;
    assert_eq!(ack.msg.cseq, got.msg.cseq);

    let bye = d.request("BYE", "");
    caller.send(k.addr, &bye).await;
    caller.expect_response(200).await;
    let bye = switch.expect_request("BYE").await;
    switch.send(k.addr, &bye.reply(200, "", "", "")).await;
    caller.expect_silence(Duration::from_millis(600)).await;
    assert_no_leaks(&caller, &d, &switch, &inv);
}
