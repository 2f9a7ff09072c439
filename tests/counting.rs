//! Counting exactly over real SIP: live calls draw on one talk-time budget
//! (together they never spend more than is left), and an answer the caller
//! never acknowledges is a failed call that consumes nothing.

mod common;

use std::time::Duration;

use common::*;

const B: &str = "13900000000";
const X: &str = "17000000000";

fn usage(dir: &std::path::Path) -> (u32, u64) {
    use sipmask::store::BindingStore;
    let mut s = sipmask::store::SqliteStore::open(dir).expect("store");
    let b = s.load_all().expect("load").pop().expect("a binding");
    (b.usage.calls_used, b.usage.talk_secs_used)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_calls_share_one_talk_budget() {
    let mut callee = Ua::bind("127.0.0.3").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), callee.addr);
    let mut owner = ax(X, B);
    owner.limits.talk_budget_secs = Some(5);
    add(&cfg, owner);
    let sut = start(cfg, dir).await;
    let mut callers = Vec::new();
    for i in 0..3 {
        let ua = Ua::bind("127.0.0.2").await;
        let d = Dialog::new(ua.addr, sut.addr, &format!("1380000000{i}"), X);
        ua.send(sut.addr, &d.invite()).await;
        callers.push((ua, d));
    }
    // The callee answers every INVITE that reaches it.
    let mut answered = 0;
    while let Some(m) = callee.recv_within(Duration::from_millis(700)).await {
        if m.method() == "INVITE" {
            let contact = format!("Contact: <sip:bob@{}>\r\n", callee.addr);
            let sdp = sdp("bob", "127.0.0.3");
            callee
                .send(
                    m.from,
                    &m.reply(200, &format!("b{answered}"), &contact, &sdp),
                )
                .await;
            answered += 1;
        }
    }
    // Each caller ACKs its answer or learns the budget is spent; nobody
    // hangs up: the budget must end the calls.
    let mut talking = 0;
    for (ua, d) in callers.iter_mut() {
        let r = ua.recv().await;
        if r.code() == 200 {
            d.confirm(&r);
            ua.send(sut.addr, &d.ack(1)).await;
            talking += 1;
        } else {
            assert_eq!(r.code(), 403, "{}", r.raw);
            assert!(r.raw.contains("Talk Time Used Up"), "{}", r.raw);
            ua.send(sut.addr, &d.ack_failure(&r)).await;
        }
    }
    assert!(talking >= 1);
    // Every live call is ended by sipmask within the budget (plus a margin
    // for the wire), and the callee gets a BYE for each. The budget runs
    // on the server's clock, 50 times faster than real time.
    let ff = sut.fast_forward(50);
    let mut byes = 0;
    while byes < talking {
        let m = callee
            .recv_within(Duration::from_secs(12))
            .await
            .expect("the budget ends the calls");
        if m.method() == "BYE" {
            callee.send(m.from, &m.reply(200, "", "", "")).await;
            byes += 1;
        }
    }
    drop(ff);
    sut.server.shutdown(Duration::from_millis(100)).await;
    let (_, talk) = usage(sut.dir.path());
    assert!(talk <= 5, "live calls spent {talk} s of a 5 s budget");
    assert!(talk >= 4, "the budget was used: {talk} s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_never_acknowledged_consumes_nothing() {
    let mut caller = Ua::bind("127.0.0.2").await;
    let mut callee = Ua::bind("127.0.0.3").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(dir.path(), callee.addr);
    // Timer H (64*T1) is 3.2 s with T1 = 50 ms.
    cfg.sip.t1_ms = 50;
    cfg.sip.t2_ms = 400;
    let mut owner = ax(X, B);
    owner.limits.max_calls = Some(1);
    add(&cfg, owner);
    let sut = start(cfg, dir).await;
    let d = Dialog::new(caller.addr, sut.addr, "13800000000", X);
    caller.send(sut.addr, &d.invite()).await;
    answer(&mut callee, "b1").await;
    caller.expect_response(200).await;
    // No ACK. The callee gets a BYE once sipmask gives up on the ACK
    // (Timer H on the server's clock, run 20 times faster).
    let ff = sut.fast_forward(20);
    let bye = loop {
        let m = callee
            .recv_within(Duration::from_secs(10))
            .await
            .expect("a BYE to the callee");
        if m.method() == "BYE" {
            break m;
        }
    };
    callee.send(bye.from, &bye.reply(200, "", "", "")).await;
    drop(ff);
    sut.server.shutdown(Duration::from_millis(100)).await;
    assert_eq!(usage(sut.dir.path()), (0, 0), "no use, no talk time");
    let calls = operator_calls(sut.dir.path());
    assert_eq!(calls.len(), 1);
    assert_ne!(calls[0].result, 200, "a failed call: {:?}", calls[0]);
    assert_eq!(calls[0].duration_secs, 0);
}
