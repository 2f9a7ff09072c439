//! Who may call, and as whom, over real UDP: requests from outside a call
//! are taken from the trunk's address (any port) and trusted networks only,
//! never on a header's word; a trusted source's P-Asserted-Identity names
//! the caller; a request inside a call must come from that call's party.
//! The callee (the trunk) is on 127.0.0.3; 127.0.0.4 is a stranger.

mod common;

use std::time::Duration;

use common::*;

const A: &str = "13800000000";
const B: &str = "13900000000";
const X: &str = "17000000000";

/// A server with the AXB binding (A, X, B), trusting `trusted` only (the
/// defaults of the embedded config otherwise), and its callee.
async fn server(trusted: &[&str], tweak: impl FnOnce(&mut sipmask::config::Config)) -> (Sut, Ua) {
    let callee = Ua::bind("127.0.0.3").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(dir.path(), callee.addr);
    cfg.sip.trusted = trusted.iter().map(|s| s.to_string()).collect();
    tweak(&mut cfg);
    add(&cfg, axb(A, X, B));
    (start(cfg, dir).await, callee)
}

fn status_line(s: &Sip) -> &str {
    s.raw.split("\r\n").next().unwrap_or("")
}

async fn refused_requests(sut: &Sut) -> String {
    let api = sut.server.api_addr.expect("api");
    let m = http(api, "GET", "/metrics", None, None).await;
    m.body
        .lines()
        .find(|l| l.starts_with("sipmask_requests_refused_total{reason=\"untrusted_source\"}"))
        .unwrap_or("")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_spoofed_from_an_untrusted_source_never_reaches_the_callee() {
    let (sut, mut callee) = server(&[], |_| {}).await;
    let mut stranger = Ua::bind("127.0.0.4").await;
    // The stranger claims to be A, the caller of the binding. It may only
    // call as an account: it is challenged, and From counts for nothing.
    let d = Dialog::new(stranger.addr, sut.addr, A, X);
    stranger.send(sut.addr, &d.invite()).await;
    let r = stranger.recv().await;
    assert_eq!(
        status_line(&r),
        "SIP/2.0 407 Proxy Authentication Required",
        "{}",
        r.raw
    );
    assert!(r.msg.to_tag.is_some(), "{}", r.raw);
    let challenges = r.headers("Proxy-Authenticate");
    assert_eq!(challenges.len(), 2, "{}", r.raw);
    assert!(challenges[0].contains("algorithm=SHA-256") && challenges[0].contains("qop=\"auth\""));
    assert!(challenges[1].contains("algorithm=MD5"));
    // Sent once: no 100 Trying before it, no retransmission after it even
    // unacknowledged (two seconds of the server's time, past T1 and 2*T1).
    let ff = sut.fast_forward(10);
    stranger.expect_silence(Duration::from_millis(200)).await;
    drop(ff);
    stranger.send(sut.addr, &d.ack_failure(&r)).await;
    // Nor does anything else from outside a call get in.
    let opt = d
        .invite()
        .replacen("INVITE sip", "OPTIONS sip", 1)
        .replace("CSeq: 1 INVITE", "CSeq: 1 OPTIONS")
        .replace(&d.branch, "z9hG4bKopt");
    stranger.send(sut.addr, &opt).await;
    assert_eq!(stranger.recv().await.code(), 403);
    callee.expect_silence(Duration::from_millis(300)).await;
    assert_eq!(
        refused_requests(&sut).await,
        "sipmask_requests_refused_total{reason=\"untrusted_source\"} 1"
    );
    // No call record: it never reached a binding.
    sut.server.shutdown(Duration::from_millis(100)).await;
    assert!(operator_calls(sut.dir.path()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trunks_address_from_any_port_and_trusted_networks_are_taken() {
    let (sut, mut callee) = server(&["127.0.0.2/32"], |_| {}).await;
    // Same IP as the trunk, another port: a carrier sends from several.
    let mut from_trunk = Ua::bind("127.0.0.3").await;
    connected(&mut from_trunk, &mut callee, sut.addr, A, X, "t1").await;
    let mut trusted = Ua::bind("127.0.0.2").await;
    connected(&mut trusted, &mut callee, sut.addr, B, X, "t2").await;
    let mut stranger = Ua::bind("127.0.0.4").await;
    let d = Dialog::new(stranger.addr, sut.addr, A, X);
    stranger.send(sut.addr, &d.invite()).await;
    assert_eq!(stranger.recv().await.code(), 407);
    callee.expect_silence(Duration::from_millis(300)).await;
}

/// An INVITE from `user` whose P-Asserted-Identity says `asserted`.
fn asserting(d: &Dialog, user: &str, asserted: &str) -> String {
    d.invite().replace(
        &format!("P-Asserted-Identity: <sip:{user}@"),
        &format!("P-Asserted-Identity: <sip:{asserted}@"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_sources_asserted_identity_names_the_caller() {
    let (sut, mut callee) = server(&["127.0.0.2/32"], |_| {}).await;
    let mut caller = Ua::bind("127.0.0.2").await;
    // From says a stranger's number; the trusted source asserts A.
    let d = Dialog::new(caller.addr, sut.addr, "13700000000", X);
    caller
        .send(sut.addr, &asserting(&d, "13700000000", A))
        .await;
    let inv = callee.expect_request("INVITE").await;
    assert!(inv.msg.from.contains("+8617000000000"), "{}", inv.raw);
    for leak in [A, "13700000000", "P-Asserted-Identity"] {
        assert!(!inv.raw.contains(leak), "{leak} reached the callee");
    }
    // The other way round: From says A, the assertion a stranger.
    let d = Dialog::new(caller.addr, sut.addr, A, X);
    caller
        .send(sut.addr, &asserting(&d, A, "13700000000"))
        .await;
    let r = caller.expect_response(403).await;
    assert!(status_line(&r).contains("Not Allowed"), "{}", r.raw);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_caller_id_from_the_assertion_is_not_read() {
    let (sut, mut callee) = server(&["127.0.0.2/32"], |c| c.sip.caller_id = "from".into()).await;
    let mut caller = Ua::bind("127.0.0.2").await;
    let d = Dialog::new(caller.addr, sut.addr, "13700000000", X);
    caller
        .send(sut.addr, &asserting(&d, "13700000000", A))
        .await;
    let r = caller.expect_response(403).await;
    assert!(status_line(&r).contains("Not Allowed"), "{}", r.raw);
    callee.expect_silence(Duration::from_millis(200)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_inside_a_call_from_a_stranger_is_refused_and_not_relayed() {
    let (sut, mut callee) = server(&["127.0.0.2/32", "127.0.0.4/32"], |_| {}).await;
    let mut caller = Ua::bind("127.0.0.2").await;
    let (mut d, _) = connected(&mut caller, &mut callee, sut.addr, A, X, "t").await;
    // The stranger (trusted for new calls, not a party of this one) sends
    // the call's own BYE, Call-ID and tags included.
    let mut stranger = Ua::bind("127.0.0.4").await;
    let bye = d.request("BYE", "");
    stranger.send(sut.addr, &bye).await;
    assert_eq!(stranger.recv().await.code(), 403);
    callee.expect_silence(Duration::from_millis(300)).await;
    // The caller's own BYE ends the call.
    let bye = d.request("BYE", "");
    caller.send(sut.addr, &bye).await;
    caller.expect_response(200).await;
    let got = callee.expect_request("BYE").await;
    assert!(
        got.header("Reason").is_none(),
        "a hang-up is no reason: {}",
        got.raw
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_source_is_banned_and_answered_nothing_while_others_call() {
    let (sut, mut callee) = server(&["127.0.0.2/32"], |c| {
        // One a second refills too slowly to matter within the test.
        c.sip.source_rate = 1;
        c.sip.source_burst = 5;
    })
    .await;
    let mut flood = Ua::bind("127.0.0.4").await;
    for _ in 0..40 {
        let d = Dialog::new(flood.addr, sut.addr, A, "17099999999");
        flood.send(sut.addr, &d.invite()).await;
    }
    let mut answers = 0;
    while flood
        .recv_within(Duration::from_millis(300))
        .await
        .is_some()
    {
        answers += 1;
    }
    assert_eq!(answers, 5, "the burst is answered (403), the rest is not");
    // Another source's call goes through meanwhile.
    let mut caller = Ua::bind("127.0.0.2").await;
    connected(&mut caller, &mut callee, sut.addr, A, X, "t").await;
    let api = sut.server.api_addr.expect("api");
    let m = http(api, "GET", "/metrics", None, None).await;
    for line in [
        "sipmask_requests_refused_total{reason=\"rate\"} 35",
        "sipmask_source_bans_total 1",
    ] {
        assert!(m.body.contains(line), "{line} in {}", m.body);
    }
}
