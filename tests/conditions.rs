//! Call conditions over real SIP: every refusal with its configured status
//! (and the callee never rings), concurrent INVITEs against a call limit,
//! and talk-time budgets.

mod common;

use std::time::Duration;

use common::*;

const A: &str = "13800000000";
const B: &str = "13900000000";
const X: &str = "17000000000";

async fn refused(args: Vec<sipmask::cli::AddArgs>, caller_user: &str, dialled: &str) -> (Sip, Ua) {
    let mut caller = Ua::bind("127.0.0.2").await;
    let mut callee = Ua::bind("127.0.0.3").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), callee.addr);
    for a in args {
        add(&cfg, a);
    }
    let sut = start(cfg, dir).await;
    let d = Dialog::new(caller.addr, sut.addr, caller_user, dialled);
    caller.send(sut.addr, &d.invite()).await;
    let resp = caller.recv().await;
    // The refusal is ACKed like any non-2xx final, which stops its retransmission.
    caller.send(sut.addr, &d.ack_failure(&resp)).await;
    // Each silence below is a second of the server's time (ten times
    // faster than real time): longer than T1, when a retransmission of the
    // refusal would be due.
    let _ff = sut.fast_forward(10);
    callee.expect_silence(Duration::from_millis(100)).await;
    caller.expect_silence(Duration::from_millis(100)).await;
    (resp, caller)
}

fn status_line(s: &Sip) -> &str {
    s.raw.split("\r\n").next().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_number_is_refused_with_404() {
    let (r, _) = refused(vec![], A, X).await;
    assert_eq!(status_line(&r), "SIP/2.0 404 Not Found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stranger_on_an_axb_number_is_not_allowed() {
    let (r, _) = refused(vec![axb(A, X, B)], "13711112222", X).await;
    assert_eq!(status_line(&r), "SIP/2.0 403 Caller Not Allowed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_outside_the_allow_list_is_refused() {
    let mut a = ax(X, B);
    a.allow = vec!["13600000000".into()];
    let (r, _) = refused(vec![a], A, X).await;
    assert_eq!(status_line(&r), "SIP/2.0 403 Caller Not Allowed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binding_not_yet_valid_is_refused() {
    let mut a = axb(A, X, B);
    a.not_before = Some((sipmask::time::now() + 3600).to_string());
    let (r, _) = refused(vec![a], A, X).await;
    assert_eq!(status_line(&r), "SIP/2.0 480 Not Yet Valid");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_binding_is_refused() {
    let mut a = axb(A, X, B);
    a.not_after = Some("2020-01-01T00:00:00Z".into());
    let (r, _) = refused(vec![a], A, X).await;
    assert_eq!(status_line(&r), "SIP/2.0 404 Number Expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusal_statuses_come_from_the_config() {
    let mut caller = Ua::bind("127.0.0.2").await;
    let callee = Ua::bind("127.0.0.3").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(dir.path(), callee.addr);
    cfg.refusals.unknown_number = sipmask::config::Status {
        status: 410,
        reason: "Gone Away".into(),
    };
    let sut = start(cfg, dir).await;
    let d = Dialog::new(caller.addr, sut.addr, A, X);
    caller.send(sut.addr, &d.invite()).await;
    assert_eq!(status_line(&caller.recv().await), "SIP/2.0 410 Gone Away");
}

/// Places one answered call and hangs up after `talk`.
async fn call_once(caller: &mut Ua, callee: &mut Ua, sut: std::net::SocketAddr, talk: Duration) {
    let (mut d, _) = connected(caller, callee, sut, A, X, "t").await;
    tokio::time::sleep(talk).await;
    caller.send(sut, &d.request("BYE", "")).await;
    caller.expect_response(200).await;
    let bye = callee.expect_request("BYE").await;
    callee.send(bye.from, &bye.reply(200, "", "", "")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn used_up_calls_and_talk_time_are_refused() {
    let mut caller = Ua::bind("127.0.0.2").await;
    let mut callee = Ua::bind("127.0.0.3").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), callee.addr);
    let mut a = axb(A, X, B);
    a.limits.max_calls = Some(1);
    add(&cfg, a);
    let mut t = axb("13800000001", "17000000001", B);
    t.limits.talk_budget_secs = Some(1);
    add(&cfg, t);
    let sut = start(cfg, dir).await;

    call_once(&mut caller, &mut callee, sut.addr, Duration::ZERO).await;
    let d = Dialog::new(caller.addr, sut.addr, A, X);
    caller.send(sut.addr, &d.invite()).await;
    assert_eq!(
        status_line(&caller.recv().await),
        "SIP/2.0 403 Call Limit Reached"
    );

    // The talk budget also caps the call: it is ended after 1 s.
    connected(
        &mut caller,
        &mut callee,
        sut.addr,
        "13800000001",
        "17000000001",
        "t2",
    )
    .await;
    sut.clock.advance(Duration::from_secs(1));
    caller.expect_request("BYE").await;
    callee.expect_request("BYE").await;
    let d = Dialog::new(caller.addr, sut.addr, "13800000001", "17000000001");
    caller.send(sut.addr, &d.invite()).await;
    assert_eq!(
        status_line(&caller.recv().await),
        "SIP/2.0 403 Talk Time Used Up"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daily_limit_refuses_until_midnight_where_the_binding_lives() {
    let mut caller = Ua::bind("127.0.0.2").await;
    let mut callee = Ua::bind("127.0.0.3").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), callee.addr);
    let mut a = axb(A, X, B);
    a.limits.max_calls_per_day = Some(1);
    a.time_zone = Some("Asia/Kolkata".into());
    add(&cfg, a);
    let sut = start(cfg, dir).await;
    // Kolkata is UTC+05:30 all year: its midnight is 18:30 UTC.
    let local = |t: i64| t + 19_800;
    let mut to_midnight = 86_400 - local(sipmask::time::now()).rem_euclid(86_400);
    if to_midnight < 60 {
        // Too close to a real midnight for the first two calls to share a
        // day: start from the next one.
        sut.clock.advance(Duration::from_secs(120));
        to_midnight += 86_400 - 120;
    }

    call_once(&mut caller, &mut callee, sut.addr, Duration::ZERO).await;
    // The other party's calls count on the same binding.
    for from in [A, B] {
        let d = Dialog::new(caller.addr, sut.addr, from, X);
        caller.send(sut.addr, &d.invite()).await;
        let r = caller.recv().await;
        caller.send(sut.addr, &d.ack_failure(&r)).await;
        assert_eq!(status_line(&r), "SIP/2.0 403 Daily Call Limit Reached");
    }

    sut.clock
        .advance(Duration::from_secs(to_midnight.unsigned_abs() + 5));
    call_once(&mut caller, &mut callee, sut.addr, Duration::ZERO).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_invites_against_ten_allowed_calls_connect_exactly_ten() {
    let mut caller = Ua::bind("127.0.0.2").await;
    let mut callee = Ua::bind("127.0.0.3").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), callee.addr);
    let mut a = ax(X, B);
    a.limits.max_calls = Some(10);
    add(&cfg, a);
    let sut = start(cfg, dir).await;
    for _ in 0..50 {
        let d = Dialog::new(caller.addr, sut.addr, A, X);
        caller.send(sut.addr, &d.invite()).await;
    }
    // Every INVITE gets its final answer: 10 reach the callee, 40 are refused.
    // Collected until a quiet spell; retransmissions count once.
    let mut invites = std::collections::HashMap::new();
    while let Some(m) = callee.recv_within(Duration::from_millis(300)).await {
        if m.method() == "INVITE" {
            invites.insert(m.msg.call_id.clone(), m);
        }
    }
    assert_eq!(invites.len(), 10);
    for inv in invites.values() {
        let contact = format!("Contact: <sip:bob@{}>\r\n", callee.addr);
        callee
            .send(
                inv.from,
                &inv.reply(200, "t", &contact, &sdp("bob", "127.0.0.3")),
            )
            .await;
    }
    // Retransmitted finals (nothing is ACKed here) count once per call.
    let mut finals = std::collections::HashMap::new();
    while finals.len() < 50 {
        let m = caller.recv().await;
        assert!(matches!(m.code(), 200 | 403), "unexpected {}", m.raw);
        finals.insert(m.msg.call_id.clone(), m.code());
    }
    let ok = finals.values().filter(|c| **c == 200).count();
    assert_eq!((ok, finals.len() - ok), (10, 40));
}
