//! Outbound trunks over real UDP: a call goes out through the trunk that
//! serves the number, fails over to the next on 503 or silence, answers a
//! trunk's digest challenge, and skips a trunk that stopped answering
//! OPTIONS until it answers again. Trunks are SIP peers of the test on
//! 127.0.0.3 (first) and 127.0.0.7 (second); callers on 127.0.0.2.

mod common;

use std::time::Duration;

use common::phone::verify;
use common::*;

const A: &str = "13800000000";
const B: &str = "13900000000";
const X: &str = "17000000000";

/// A server with the AXB binding (A, X, B) and two trunks serving +86,
/// `first` at priority 1 and `second` at 2; `tweak` adjusts them.
async fn server(tweak: impl FnOnce(&mut sipmask::config::Config)) -> (Sut, Ua, Ua) {
    let first = Ua::bind("127.0.0.3").await;
    let second = Ua::bind("127.0.0.7").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(dir.path(), first.addr);
    cfg.sip.trunk = String::new();
    let text = format!(
        "[[trunks]]\nname = \"first\"\naddress = \"{}\"\nprefixes = [\"+86\"]\noptions_secs = 0\n\
         setup_secs = 2\nusername = \"acct\"\npassword = \"trunk-pw\"\n\n\
         [[trunks]]\nname = \"second\"\naddress = \"{}\"\npriority = 2\noptions_secs = 0\nsetup_secs = 0\n\n\
         [[trunks]]\nname = \"elsewhere\"\naddress = \"127.0.0.8:5060\"\nprefixes = [\"+1\"]\n",
        first.addr, second.addr
    );
    cfg.trunks = sipmask::config::Config::from_toml(&text, "trunks.toml")
        .expect("trunks")
        .trunks;
    tweak(&mut cfg);
    add(&cfg, axb(A, X, B));
    (start(cfg, dir).await, first, second)
}

async fn call(sut: &Sut) -> Ua {
    let caller = Ua::bind("127.0.0.2").await;
    let d = Dialog::new(caller.addr, sut.addr, A, X);
    caller.send(sut.addr, &d.invite()).await;
    caller
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_503_fails_over_to_the_next_trunk() {
    let (sut, mut first, mut second) = server(|_| {}).await;
    let mut caller = call(&sut).await;
    let inv = first.expect_request("INVITE").await;
    assert!(
        inv.raw
            .starts_with(&format!("INVITE sip:+86{B}@{}", first.addr)),
        "{}",
        inv.raw
    );
    first.send(inv.from, &inv.reply(503, "f", "", "")).await;
    assert_eq!(
        first.expect_request("ACK").await.msg.call_id,
        inv.msg.call_id
    );
    answer(&mut second, "s").await;
    caller.expect_response(200).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_trunk_is_passed_over_after_its_setup_time() {
    let (sut, mut first, mut second) = server(|_| {}).await;
    let mut caller = call(&sut).await;
    first.expect_request("INVITE").await;
    let ff = sut.fast_forward(10);
    let inv = second.expect_request("INVITE").await;
    drop(ff);
    second.send(inv.from, &inv.reply(486, "s", "", "")).await;
    caller.expect_response(486).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trunks_challenge_is_answered_with_its_credentials() {
    let (sut, mut first, _second) = server(|_| {}).await;
    let mut caller = call(&sut).await;
    let inv = first.expect_request("INVITE").await;
    let challenge = "Proxy-Authenticate: Digest realm=\"carrier\", nonce=\"abc123\", qop=\"auth\", algorithm=SHA-256\r\n";
    first
        .send(inv.from, &inv.reply(407, "f", challenge, ""))
        .await;
    first.expect_request("ACK").await;
    let again = first.expect_request("INVITE").await;
    assert_eq!(again.msg.call_id, inv.msg.call_id);
    assert_eq!(again.msg.cseq, inv.msg.cseq + 1);
    let cred = again.header("Proxy-Authorization").expect("credentials");
    assert!(
        cred.contains("username=\"acct\"") && cred.contains("realm=\"carrier\""),
        "{cred}"
    );
    assert!(verify(&cred, "trunk-pw", "INVITE"), "{cred}");
    assert!(!verify(&cred, "other-pw", "INVITE"));
    let contact = format!("Contact: <sip:carrier@{}>\r\n", first.addr);
    first
        .send(
            again.from,
            &again.reply(200, "f", &contact, &sdp("bob", "127.0.0.3")),
        )
        .await;
    let ok = caller.expect_response(200).await;
    assert!(
        !ok.raw.contains("acct") && !ok.raw.contains("carrier"),
        "{}",
        ok.raw
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trunk_that_stops_answering_options_is_skipped_until_it_answers() {
    let (sut, mut first, mut second) = server(|c| c.trunks[0].options_secs = 5).await;
    // The first ping is answered: up.
    let ping = first.expect_request("OPTIONS").await;
    first.send(ping.from, &ping.reply(200, "p", "", "")).await;
    // The next goes unanswered (Timer F: 32 s of the server's time).
    let ff = sut.fast_forward(40);
    let unanswered = first.expect_request("OPTIONS").await;
    let api = sut.server.api_addr.expect("api");
    let mut down = false;
    for _ in 0..100 {
        let m = http(api, "GET", "/metrics", None, None).await;
        if m.body.contains("sipmask_trunk_up{trunk=\"first\"} 0") {
            down = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(ff);
    assert!(down, "the first trunk is marked down");
    let mut caller = call(&sut).await;
    answer(&mut second, "s").await;
    caller.expect_response(200).await;
    // Drain retransmissions of the unanswered ping; answer the next one.
    let ff = sut.fast_forward(10);
    let ping = loop {
        let p = first.expect_request("OPTIONS").await;
        if p.msg.call_id != unanswered.msg.call_id {
            break p;
        }
    };
    drop(ff);
    first.send(ping.from, &ping.reply(200, "p", "", "")).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let m = http(api, "GET", "/metrics", None, None).await;
    assert!(
        m.body.contains("sipmask_trunk_up{trunk=\"first\"} 1"),
        "{}",
        m.body
    );
    let mut caller = call(&sut).await;
    loop {
        let got = first.recv().await;
        if got.method() == "INVITE" {
            first.send(got.from, &got.reply(486, "f", "", "")).await;
            break;
        }
    }
    caller.expect_response(486).await;
}

/// A carrier that challenges and then says nothing to the INVITE with
/// credentials is left at its setup time too (the challenge was an
/// answer to the first INVITE, not to this one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trunk_that_challenges_then_goes_quiet_is_passed_over_after_its_setup_time() {
    let (sut, mut first, mut second) = server(|_| {}).await;
    let mut caller = call(&sut).await;
    let inv = first.expect_request("INVITE").await;
    let challenge = "Proxy-Authenticate: Digest realm=\"carrier\", nonce=\"abc\", qop=\"auth\"\r\n";
    first
        .send(inv.from, &inv.reply(407, "f", challenge, ""))
        .await;
    first.expect_request("ACK").await;
    let again = first.expect_request("INVITE").await;
    assert!(again.header("Proxy-Authorization").is_some());
    // 2 s of setup time pass in 0.5 s; Timer B (32 s) would take 8 s,
    // past the wait of `answer`.
    let ff = sut.fast_forward(4);
    answer(&mut second, "s").await;
    drop(ff);
    caller.expect_response(200).await;
}
