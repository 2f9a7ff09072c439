//! Real softphones: baresip (Debian's package, headless) registers with
//! digest as an app account and is called by SIPp through sipmask, and
//! calls a phone number out through the trunk after a 407 challenge. What
//! crosses is checked in baresip's own SIP trace. baresip 1.0 gives up on
//! a challenge offering SHA-256, so these servers offer MD5 only
//! (`registrar.algorithms`); the SHA-256 path is tested in registrar.rs.

mod common;

use std::time::Duration;

use common::baresip::Baresip;
use common::*;

const A: &str = "13800000000";
const B: &str = "13900000000";
const X: &str = "17000000000";
const X2: &str = "17000000001";
const PW: &str = "alice-secret-1";

/// A server with account alice, bindings (A, X, alice) and (alice, X2, B),
/// the trunk on 127.0.0.3:`trunk_port`.
async fn server(trunk_port: u16) -> Sut {
    let dir = tempfile::tempdir().expect("tempdir");
    let trunk = format!("127.0.0.3:{trunk_port}").parse().expect("addr");
    let mut cfg = config(dir.path(), trunk);
    cfg.registrar.algorithms = vec!["MD5".into()];
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
