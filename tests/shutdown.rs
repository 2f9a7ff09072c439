//! Shutdown as an operator sees it: a client holding the event stream open
//! does not keep the server up past the drain time, and a BYE lost on the
//! way is retransmitted before the process goes.

mod common;

use std::time::{Duration, Instant};

use common::api::*;
use common::*;
use tokio::io::AsyncReadExt;

const A: &str = "13800000000";
const B: &str = "13900000000";
const X: &str = "17000000000";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_event_stream_does_not_hold_up_shutdown() {
    let api = api_with(|_| {}).await;
    let mut s = api.event_stream().await;
    let mut buf = vec![0u8; 4096];
    let drain = Duration::from_secs(1);
    let t0 = Instant::now();
    tokio::time::timeout(
        drain + Duration::from_secs(5),
        api.sut.server.shutdown(drain),
    )
    .await
    .expect("shutdown ends in drain time plus a margin");
    assert!(t0.elapsed() < drain + Duration::from_secs(5));
    // And the stream was closed.
    let end = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await;
    assert!(end.is_ok(), "the event stream was closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_shutdown_bye_is_retransmitted() {
    let mut caller = Ua::bind("127.0.0.2").await;
    let mut callee = Ua::bind("127.0.0.3").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), callee.addr);
    add(&cfg, axb(A, X, B));
    let sut = start(cfg, dir).await;
    connected(&mut caller, &mut callee, sut.addr, A, X, "t").await;
    let stopping = tokio::spawn(sut.server.shutdown(Duration::from_millis(100)));
    // The callee "loses" the first BYE: no answer. A retransmission follows
    // (T1 = 500 ms), which it answers.
    let first = callee.expect_request("BYE").await;
    let again = callee.expect_request("BYE").await;
    assert_eq!(
        first.header("CSeq"),
        again.header("CSeq"),
        "the same BYE, again"
    );
    callee.send(again.from, &again.reply(200, "", "", "")).await;
    let bye = caller.expect_request("BYE").await;
    caller.send(bye.from, &bye.reply(200, "", "", "")).await;
    tokio::time::timeout(Duration::from_secs(5), stopping)
        .await
        .expect("shutdown in time")
        .expect("join");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_overlaps_a_drain() {
    let mut callee = Ua::bind("127.0.0.3").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port("127.0.0.1");
    let mut cfg = config(dir.path(), callee.addr);
    cfg.sip.listen = vec![format!("127.0.0.1:{port}")];
    let mut owner = ax(X, B);
    owner.limits.max_calls = Some(100);
    add(&cfg, owner);
    let old = start(cfg.clone(), tempfile::tempdir().expect("spare")).await;
    let sut = old.addr;
    // A call on the old instance.
    let mut caller = Ua::bind("127.0.0.2").await;
    let (mut d, _) = connected(&mut caller, &mut callee, sut, A, X, "old").await;
    let draining = tokio::spawn(old.server.shutdown(Duration::from_secs(20)));
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The new instance starts on the same port and data dir meanwhile.
    let new = sipmask::server::Server::start(cfg)
        .await
        .expect("starts while the old drains");
    // The old instance looks for a sibling at most every 100 ms.
    tokio::time::sleep(Duration::from_millis(200)).await;
    // New calls, from several sources (the kernel spreads them over both
    // sockets), all reach the callee: the old instance hands them over.
    let mut callers = Vec::new();
    for i in 0..8 {
        let ua = Ua::bind("127.0.0.2").await;
        let dd = Dialog::new(ua.addr, sut, &format!("1360000000{i}"), X);
        ua.send(sut, &dd.invite()).await;
        callers.push((ua, dd));
    }
    for n in 0..8 {
        let inv = callee.expect_request("INVITE").await;
        let contact = format!("Contact: <sip:bob@{}>\r\n", callee.addr);
        callee
            .send(
                inv.from,
                &inv.reply(200, &format!("n{n}"), &contact, &sdp("bob", "127.0.0.3")),
            )
            .await;
    }
    for (ua, _) in callers.iter_mut() {
        ua.expect_response(200).await;
    }
    // The old call hangs up normally, whichever instance the BYE reaches.
    caller.send(sut, &d.request("BYE", "")).await;
    caller.expect_response(200).await;
    let bye = callee.expect_request("BYE").await;
    callee.send(bye.from, &bye.reply(200, "", "", "")).await;
    tokio::time::timeout(Duration::from_secs(10), draining)
        .await
        .expect("the old instance ends once its call is over")
        .expect("join");
    assert_eq!(new.live_calls(), 8, "the new calls are the new instance's");
}
