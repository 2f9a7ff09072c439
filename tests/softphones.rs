//! Real softphones: baresip (Debian's package, headless) registers with
//! digest as an app account and is called by SIPp through sipmask, and
//! calls a phone number out through the trunk after a 407 challenge;
//! Linphone 5.1 (linphone-daemon), a second SIP stack, registers (its
//! Contact carries +sip.instance), calls baresip and is called by it
//! through X, holds past the media timeout and sends DTMF. What
//! crosses is checked in baresip's own SIP trace. baresip 1.0 gives up on
//! a challenge offering SHA-256, so these servers offer MD5 only
//! (`registrar.algorithms`); the SHA-256 path is tested in registrar.rs.

mod common;

use std::time::Duration;

use common::baresip::Baresip;
use common::linphone::Linphone;
use common::*;

const A: &str = "13800000000";
const B: &str = "13900000000";
const X: &str = "17000000000";
const X2: &str = "17000000001";
const PW: &str = "alice-secret-1";

/// A server with account alice, bindings (A, X, alice) and (alice, X2, B),
/// the trunk on 127.0.0.3:`trunk_port`.
async fn server(trunk_port: u16) -> Sut {
    server_with(trunk_port, |_| {}).await
}

/// [`server`] with a `tweak`ed config.
async fn server_with(trunk_port: u16, tweak: impl FnOnce(&mut sipmask::config::Config)) -> Sut {
    let dir = tempfile::tempdir().expect("tempdir");
    let trunk = format!("127.0.0.3:{trunk_port}").parse().expect("addr");
    let mut cfg = config(dir.path(), trunk);
    cfg.registrar.algorithms = vec!["MD5".into()];
    tweak(&mut cfg);
    sipmask::cli::add_account(dir.path(), "sipmask", None, "alice", PW).expect("account");
    add(&cfg, axb(A, X, "sip:alice@sipmask"));
    add(&cfg, axb("sip:alice@sipmask", X2, B));
    start(cfg, dir).await
}

/// baresip as alice on 127.0.0.5, registered.
async fn alice(sut: &Sut) -> Baresip {
    let line = format!(
        "<sip:alice@{};transport=udp>;auth_pass={PW};answermode=auto;regint=600",
        sut.addr
    );
    let phone = Baresip::start("127.0.0.5", &line).await;
    // It may register before its control connection is up: ask sipmask.
    let api = sut.server.api_addr.expect("api");
    for _ in 0..200 {
        let m = http(api, "GET", "/metrics", None, None).await;
        if m.body.contains("sipmask_registered_contacts 1") {
            return phone;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("baresip never registered:\n{}", phone.trace());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registered_baresip_receives_a_masked_call_placed_by_sipp() {
    let sut = server(free_port("127.0.0.3")).await;
    let mut phone = alice(&sut).await;
    let sipp = Sipp::new();
    let caller = sipp.uac(sut.addr, "uac.xml", A, X, false);
    let ev = phone
        .event("CALL_ESTABLISHED", Duration::from_secs(10))
        .await;
    assert_eq!(ev["peeruri"], format!("sip:+86{X}@{}", sut.addr), "{ev}");
    sipp_done(caller, "SIPp caller").await;
    phone.event("CALL_CLOSED", Duration::from_secs(10)).await;
    let trace = phone.trace();
    assert!(trace.contains("INVITE sip:alice-"), "{trace}");
    for leak in [A, "sipp", "SIPp"] {
        assert!(
            !trace.contains(leak),
            "{leak} reached the account's phone:\n{trace}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_baresip_account_calls_a_phone_number_through_the_trunk() {
    let trunk_port = free_port("127.0.0.3");
    let sut = server(trunk_port).await;
    let mut phone = alice(&sut).await;
    let sipp = Sipp::new();
    let callee = sipp.uas(trunk_port, "uas.xml", false);
    tokio::time::sleep(Duration::from_millis(300)).await;
    phone
        .command("dial", &format!("sip:{X2}@{}", sut.addr))
        .await;
    phone
        .event("CALL_ESTABLISHED", Duration::from_secs(10))
        .await;
    phone.command("hangup", "").await;
    sipp_done(callee, "SIPp callee (the trunk)").await;
    let trace = phone.trace();
    assert!(
        trace.contains("407 Proxy Authentication Required"),
        "{trace}"
    );
    for leak in ["callee@127.0.0.3", "CalleePhone", B] {
        assert!(
            !trace.contains(leak),
            "{leak} reached the account's phone:\n{trace}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_registered_baresips_both_ring_and_the_loser_gets_cancel() {
    let sut = server(free_port("127.0.0.3")).await;
    let mut mobile = alice(&sut).await;
    // The desk phone rings and waits for someone to pick up.
    let line = format!(
        "<sip:alice@{};transport=udp>;auth_pass={PW};answermode=manual;regint=600",
        sut.addr
    );
    let mut desk = Baresip::start("127.0.0.6", &line).await;
    let api = sut.server.api_addr.expect("api");
    for _ in 0..200 {
        let m = http(api, "GET", "/metrics", None, None).await;
        if m.body.contains("sipmask_registered_contacts 2") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let sipp = Sipp::new();
    let caller = sipp.uac(sut.addr, "uac.xml", A, X, false);
    desk.event("CALL_INCOMING", Duration::from_secs(10)).await;
    mobile
        .event("CALL_ESTABLISHED", Duration::from_secs(10))
        .await;
    desk.event("CALL_CLOSED", Duration::from_secs(10)).await;
    sipp_done(caller, "SIPp caller").await;
    let trace = desk.trace();
    assert!(trace.contains("CANCEL sip:alice-"), "{trace}");
    assert!(
        trace.contains("Reason: SIP;cause=200;text=\"Call completed elsewhere\""),
        "{trace}"
    );
    assert!(!trace.contains(A), "{trace}");
}

/// G.711 decoded (ITU-T G.711, written out here so the test does not
/// share the server's codec): mu-law for PT 0, A-law for PT 8.
fn g711(pt: u8, b: u8) -> f64 {
    if pt == 0 {
        let u = !b;
        let t = ((i32::from(u & 0x0f) << 3) + 0x84) << ((u & 0x70) >> 4);
        f64::from(if u & 0x80 != 0 { 0x84 - t } else { t - 0x84 })
    } else {
        let a = b ^ 0x55;
        let seg = (a & 0x70) >> 4;
        let mut t = i32::from(a & 0x0f) << 4;
        t += if seg == 0 { 8 } else { 0x108 };
        if seg > 1 {
            t <<= seg - 1;
        }
        f64::from(if a & 0x80 != 0 { t } else { -t })
    }
}

/// Root mean square of the G.711 audio in RTP datagrams.
fn loudness(rtp: &[&capture::Datagram]) -> f64 {
    let samples: Vec<f64> = rtp
        .iter()
        .filter(|d| d.payload.len() > 12 && matches!(d.payload[1] & 0x7f, 0 | 8))
        .flat_map(|d| {
            let pt = d.payload[1] & 0x7f;
            d.payload[12..].iter().map(move |b| g711(pt, *b))
        })
        .collect();
    if samples.is_empty() {
        return 0.0;
    }
    (samples.iter().map(|s| s * s).sum::<f64>() / samples.len() as f64).sqrt()
}

fn has(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// The SSRC a baresip announced in the SDP it sent.
fn ssrc_in(trace: &str) -> Option<u32> {
    trace
        .lines()
        .find_map(|l| l.strip_prefix("a=ssrc:"))
        .and_then(|l| l.split(' ').next())
        .and_then(|s| s.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_baresips_talk_through_the_relay_and_nothing_of_either_reaches_the_other() {
    let trunk_port = free_port("127.0.0.3");
    // baresip binds its media sockets to every address, and so sends from
    // 127.0.0.1 to sipmask on 127.0.0.1 whatever its own address. Media is
    // taken only from a party's signalling address, its SDP's addresses or
    // its trunk's media networks: alice signals from 127.0.0.1 (not
    // trusted here: she is an account that authenticates), and the trunk
    // (bob, on 127.0.0.3) has its media gateway on 127.0.0.1.
    let sut = server_with(trunk_port, |cfg| {
        cfg.sip.trusted.retain(|n| n != "127.0.0.1/32");
        cfg.sip.trunk.clear();
        cfg.trunks = vec![toml::from_str(&format!(
            "name = \"carrier\"\naddress = \"127.0.0.3:{trunk_port}\"\n\
             options_secs = 0\nmedia_networks = [\"127.0.0.1/32\"]\n"
        ))
        .expect("trunk")];
    })
    .await;
    // Each phone's media ports in a range of its own, so the capture sees
    // exactly what each phone receives: the ports tell the phones apart.
    let (a_rtp, b_rtp) = (free_port("127.0.0.1") & !1, free_port("127.0.0.3") & !1);
    let capture = capture::Capture::start(&format!(
        "udp and (dst portrange {a_rtp}-{} or dst port {trunk_port} or dst portrange {b_rtp}-{})",
        a_rtp + 3,
        b_rtp + 3
    ));
    let mut alice = {
        let line = format!(
            "<sip:alice@{};transport=udp>;auth_pass={PW};answermode=auto;regint=600",
            sut.addr
        );
        let extra = format!("rtp_ports\t{a_rtp}-{}\n", a_rtp + 3);
        Baresip::start_with("127.0.0.1", free_port("127.0.0.1"), &line, &extra).await
    };
    let api = sut.server.api_addr.expect("api");
    for _ in 0..200 {
        let m = http(api, "GET", "/metrics", None, None).await;
        if m.body.contains("sipmask_registered_contacts 1") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The carrier's side: B's phone on the trunk's address (baresip finds
    // its account by the Request-URI's user).
    let mut bob = Baresip::start_with(
        "127.0.0.3",
        trunk_port,
        "<sip:+8613900000000@127.0.0.3>;regint=0;answermode=auto",
        &format!("rtp_ports\t{b_rtp}-{}\n", b_rtp + 3),
    )
    .await;
    alice
        .command("dial", &format!("sip:{X2}@{}", sut.addr))
        .await;
    alice
        .event("CALL_ESTABLISHED", Duration::from_secs(10))
        .await;
    // Long enough for both to send RTCP (the first report comes within
    // a few seconds).
    tokio::time::sleep(Duration::from_secs(7)).await;
    alice.command("hangup", "").await;
    bob.event("CALL_CLOSED", Duration::from_secs(10)).await;
    let got = capture.stop();
    let (a_trace, b_trace) = (alice.trace(), bob.trace());

    let bobs = |p: u16| p == trunk_port || (b_rtp..b_rtp + 4).contains(&p);
    let to_bob: Vec<_> = got.iter().filter(|d| bobs(d.dst.port())).collect();
    let to_alice: Vec<_> = got.iter().filter(|d| !bobs(d.dst.port())).collect();
    let media =
        |v: &[&capture::Datagram], port: u16| v.iter().filter(|d| d.dst.port() != port).count();
    assert!(
        media(&to_bob, trunk_port) > 100,
        "bob got {} datagrams ({b_rtp}): {}",
        to_bob.len(),
        b_trace
            .lines()
            .filter(|l| l.starts_with("m=") || l.starts_with("c=") || l.starts_with("UDP"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        media(&to_alice, 0) > 100,
        "alice got {} datagrams",
        to_alice.len()
    );
    for d in to_bob.iter().chain(to_alice.iter()) {
        assert_eq!(
            d.src.ip().to_string(),
            "127.0.0.1",
            "everything comes from sipmask: {d:?}"
        );
    }
    let rtcp = |v: &[&capture::Datagram]| {
        v.iter()
            .any(|d| d.payload.len() > 1 && (200..=204).contains(&d.payload[1]))
    };
    assert!(rtcp(&to_bob) && rtcp(&to_alice), "RTCP crossed both ways");

    let a_ssrc = ssrc_in(&a_trace)
        .map(|s| s.to_be_bytes().to_vec())
        .unwrap_or_default();
    let b_ssrc = ssrc_in(&b_trace)
        .map(|s| s.to_be_bytes().to_vec())
        .unwrap_or_default();
    // (Her address is sipmask's own here: her port and SSRC tell her.)
    let secrets_of_alice: Vec<Vec<u8>> = vec![
        "alice".into(),
        "baresip".into(),
        a_ssrc,
        format!(":{a_rtp}").into(),
    ];
    let secrets_of_bob: Vec<Vec<u8>> = vec![
        B.into(),
        "bob".into(),
        "127.0.0.3".into(),
        "baresip".into(),
        b_ssrc,
    ];
    for d in &to_bob {
        for s in &secrets_of_alice {
            assert!(
                !has(&d.payload, s),
                "bob received {:?} in {d:?}",
                String::from_utf8_lossy(s)
            );
        }
    }
    for d in &to_alice {
        for s in &secrets_of_bob {
            // alice's own SIP address in To/Request-URI is hers, not bob's.
            assert!(
                !has(&d.payload, s),
                "alice received {:?} in {d:?}",
                String::from_utf8_lossy(s)
            );
        }
    }
    // Each heard the other's tone, through sipmask.
    let (a_heard, b_heard) = (loudness(&to_alice), loudness(&to_bob));
    assert!(
        a_heard > 1000.0 && b_heard > 1000.0,
        "alice {a_heard}, bob {b_heard}"
    );
}

/// Waits until sipmask counts `n` registered contacts.
async fn registered(sut: &Sut, n: usize) -> bool {
    let api = sut.server.api_addr.expect("api");
    let want = format!("sipmask_registered_contacts {n}");
    for _ in 0..200 {
        if http(api, "GET", "/metrics", None, None)
            .await
            .body
            .contains(&want)
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linphone_and_baresip_call_each_other_hold_and_send_dtmf() {
    // Two independent phones, both app accounts: alice (baresip) and lin
    // (Linphone 5.1, whose Contact carries +sip.instance="<urn:...>").
    // Both signal from 127.0.0.1, where both send their media from.
    const LIN_PW: &str = "lin-secret-2";
    let dir = tempfile::tempdir().expect("tempdir");
    let trunk = format!("127.0.0.3:{}", free_port("127.0.0.3"))
        .parse()
        .expect("addr");
    let mut cfg = config(dir.path(), trunk);
    cfg.registrar.algorithms = vec!["MD5".into()];
    cfg.sip.trusted.retain(|n| n != "127.0.0.1/32");
    // A hold sends nothing: it must outlive the media timeout.
    cfg.media.timeout_secs = 2;
    sipmask::cli::add_account(dir.path(), "sipmask", None, "alice", PW).expect("alice");
    sipmask::cli::add_account(dir.path(), "sipmask", None, "lin", LIN_PW).expect("lin");
    add(&cfg, axb("sip:alice@sipmask", X, "sip:lin@sipmask"));
    let sut = start(cfg, dir).await;
    let a_rtp = free_port("127.0.0.1") & !1;
    let mut alice = Baresip::start_with(
        "127.0.0.1",
        free_port("127.0.0.1"),
        &format!(
            "<sip:alice@{};transport=udp>;auth_pass={PW};answermode=auto;regint=600",
            sut.addr
        ),
        &format!("rtp_ports\t{a_rtp}-{}\n", a_rtp + 3),
    )
    .await;
    assert!(registered(&sut, 1).await, "{}", alice.trace());
    let mut lin = Linphone::start(
        "127.0.0.1",
        free_port("127.0.0.1"),
        free_port("127.0.0.1") & !1,
    )
    .await;
    let r = lin
        .command(&format!(
            "register sip:lin@{0} sip:{0} {LIN_PW} lin NULL",
            sut.addr
        ))
        .await;
    assert!(r.contains("Status: Ok"), "{r}");
    assert!(
        registered(&sut, 2).await,
        "linphone never registered:\n{}",
        lin.trace()
    );

    // alice calls lin through X; lin answers.
    alice
        .command("dial", &format!("sip:{X}@{}", sut.addr))
        .await;
    let ev = lin
        .expect("LinphoneCallIncomingReceived", Duration::from_secs(10))
        .await;
    let id = ev
        .lines()
        .find_map(|l| l.strip_prefix("Id: "))
        .unwrap_or_else(|| panic!("no call id in {ev:?}"))
        .to_string();
    let r = lin.command("answer").await;
    assert!(r.contains("Status: Ok"), "{r}");
    alice
        .event("CALL_ESTABLISHED", Duration::from_secs(10))
        .await;
    lin.expect("LinphoneCallStreamsRunning", Duration::from_secs(10))
        .await;
    // lin holds (sendonly, then nothing) past the media timeout, resumes.
    let r = lin.command("call-pause").await;
    assert!(r.contains("Status: Ok"), "{r}");
    lin.expect("LinphoneCallPaused", Duration::from_secs(10))
        .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let r = lin.command(&format!("call-resume {id}")).await;
    assert!(
        r.contains("Status: Ok"),
        "held call cut: {r}\n{}",
        lin.trace()
    );
    lin.expect("LinphoneCallStreamsRunning", Duration::from_secs(10))
        .await;
    // DTMF from lin reaches alice (RFC 4733 through the relay).
    // DTMF from lin reaches alice's phone as RFC 4733 events (digit 5),
    // through sipmask with its own SSRC.
    let capture = capture::Capture::start(&format!("udp and dst portrange {a_rtp}-{}", a_rtp + 3));
    let r = lin.command("dtmf 5").await;
    assert!(r.contains("Status: Ok"), "{r}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let got = capture.stop();
    let events: Vec<_> = got
        .iter()
        .filter(|d| d.payload.len() >= 16 && d.payload[1] & 0x7f == 101)
        .collect();
    assert!(
        events.iter().any(|d| d.payload[12] == 5),
        "no RFC 4733 digit 5 reached alice: {} datagrams",
        got.len()
    );
    assert!(events.iter().all(|d| d.src.ip() == sut.addr.ip()));
    alice.command("hangup", "").await;
    lin.expect("LinphoneCallEnd", Duration::from_secs(10)).await;
    alice.event("CALL_CLOSED", Duration::from_secs(10)).await;

    // And the other way: lin calls alice through X.
    let r = lin.command(&format!("call sip:{X}@{}", sut.addr)).await;
    assert!(r.contains("Status: Ok"), "{r}");
    alice
        .event("CALL_ESTABLISHED", Duration::from_secs(10))
        .await;
    lin.expect("LinphoneCallStreamsRunning", Duration::from_secs(10))
        .await;
    lin.command("terminate").await;
    alice.event("CALL_CLOSED", Duration::from_secs(10)).await;

    // What each phone was shown: X, never the other's account or stack.
    let a = alice.trace();
    for leak in ["sip:lin@", "belle-sip", "Linphone", "+sip.instance"] {
        assert!(!a.contains(leak), "alice received {leak:?}:\n{a}");
    }
}
