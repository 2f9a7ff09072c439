//! What receiving and sending in batches could break, over real UDP: a
//! burst larger than a batch is answered once per request, a request at
//! the largest size a datagram allows is handled beside small ones, a
//! source that floods does not keep another from calling, and timers fire
//! on time while batches keep coming (they run at a batch's end then).

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;

const A: &str = "13800000000";
const B: &str = "13900000000";
const X: &str = "17000000000";

/// A server with the AXB binding that trusts 127.0.0.2 (trusted sources
/// are not rate limited), and its callee.
async fn server() -> (Sut, Ua) {
    server_with(16384).await
}

/// [`server`] taking messages of up to `max` bytes.
async fn server_with(max: usize) -> (Sut, Ua) {
    let callee = Ua::bind("127.0.0.3").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(dir.path(), callee.addr);
    cfg.sip.trusted = vec!["127.0.0.2/32".to_string()];
    cfg.sip.max_message_size = max;
    add(&cfg, axb(A, X, B));
    (start(cfg, dir).await, callee)
}

fn options(from: std::net::SocketAddr, to: std::net::SocketAddr, n: usize, pad: usize) -> String {
    let filler = "x".repeat(pad);
    format!(
        "OPTIONS sip:{to} SIP/2.0\r\nVia: SIP/2.0/UDP {from};branch=z9hG4bK-burst-{n}\r\n\
         From: <sip:probe@{from}>;tag=b{n}\r\nTo: <sip:{to}>\r\nCall-ID: burst-{n}@test\r\n\
         CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nX-Filler: {filler}\r\nContent-Length: 0\r\n\r\n"
    )
}

/// The Call-IDs of the responses `ua` receives until `want` or a second of
/// silence, with how often each came.
async fn answered(ua: &mut Ua, want: usize) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    let mut total = 0;
    while total < want {
        let Some(r) = ua.recv_raw_within(Duration::from_secs(2)).await else {
            break;
        };
        assert!(r.starts_with("SIP/2.0 200"), "{r}");
        let id = r
            .split("\r\n")
            .find_map(|l| l.strip_prefix("Call-ID: "))
            .unwrap_or("")
            .to_string();
        *seen.entry(id).or_insert(0) += 1;
        total += 1;
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_a_thousand_requests_is_answered_once_each() {
    let (sut, _callee) = server().await;
    let mut ua = Ua::bind("127.0.0.2").await;
    for n in 0..1000 {
        ua.send(sut.addr, &options(ua.addr, sut.addr, n, 0)).await;
    }
    let seen = answered(&mut ua, 1000).await;
    assert_eq!(seen.len(), 1000, "each request answered");
    assert!(seen.values().all(|n| *n == 1), "none answered twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_of_the_largest_size_is_handled_beside_small_ones() {
    for max in [16384, 65507] {
        largest_beside_small(max).await;
    }
}

/// With messages of up to `max` bytes taken: one of `max` bytes is answered
/// between small ones, one of `max + 1` (when UDP can carry it) is not.
async fn largest_beside_small(max: usize) {
    let (sut, _callee) = server_with(max).await;
    let mut ua = Ua::bind("127.0.0.2").await;
    let small = options(ua.addr, sut.addr, 1, 0);
    // 65,507 bytes is the most an IPv4 UDP datagram carries.
    let fit = options(ua.addr, sut.addr, 2, 0);
    let fit = options(ua.addr, sut.addr, 2, max - fit.len());
    assert_eq!(fit.len(), max);
    let over = options(ua.addr, sut.addr, 3, max + 1 - small.len());
    ua.send(sut.addr, &small).await;
    ua.send(sut.addr, &fit).await;
    if over.len() <= 65507 {
        ua.send(sut.addr, &over).await;
    }
    ua.send(sut.addr, &options(ua.addr, sut.addr, 4, 0)).await;
    let seen = answered(&mut ua, 3).await;
    let mut ids: Vec<&str> = seen.keys().map(String::as_str).collect();
    ids.sort();
    assert_eq!(ids, ["burst-1@test", "burst-2@test", "burst-4@test"]);
    ua.expect_silence(Duration::from_millis(300)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_source_does_not_keep_another_from_calling() {
    // The flood comes from an untrusted source: the server reads every
    // datagram of it (the rate limit bans the source once read), and the
    // batches it reads them in must leave the trusted caller its turn.
    let (sut, mut callee) = server().await;
    let flood = Ua::bind("127.0.0.4").await;
    let (to, from) = (sut.addr, flood.addr);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flooding = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // Thousands a second, hundreds of times what a phone sends,
                // and within what a debug build reads: a faster flood only
                // measures the kernel dropping datagrams from everyone.
                for _ in 0..20 {
                    flood.send(to, &options(from, to, n, 200)).await;
                    n += 1;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            n
        })
    };
    // Calls keep connecting while the flood goes on.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut caller = Ua::bind("127.0.0.2").await;
    for i in 0..3 {
        connected(&mut caller, &mut callee, sut.addr, A, X, &format!("t{i}")).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let sent = flooding.await.expect("flood");
    assert!(sent >= 1000, "the flood was a flood: {sent} requests");
    // And the server read it, refusing all but the first few.
    let api = sut.server.api_addr.expect("api");
    let m = http(api, "GET", "/metrics", None, None).await;
    let refused: u64 = m
        .body
        .lines()
        .find_map(|l| l.strip_prefix("sipmask_requests_refused_total{reason=\"rate\"} "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    assert!(
        refused >= sent as u64 / 2,
        "{refused} of {sent} read and refused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timers_fire_while_datagrams_keep_the_server_busy() {
    // Keep-alives every millisecond: a batch ends in every 10 ms, so the
    // batches run the timers and the timers' own wake-up keeps being put
    // off. Timer A must still resend an unanswered INVITE after T1 and
    // again 2*T1 later (500 ms, 1 s).
    let (sut, mut callee) = server().await;
    let pinger = Ua::bind("127.0.0.2").await;
    let to = sut.addr;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let pinging = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut n = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                pinger.send_bytes(to, b"\r\n\r\n").await;
                n += 1;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            n
        })
    };
    let caller = Ua::bind("127.0.0.2").await;
    let d = Dialog::new(caller.addr, sut.addr, A, X);
    caller.send(sut.addr, &d.invite()).await;
    let first = callee.expect_request("INVITE").await;
    let via = first.header("Via");
    for resend in ["after T1", "after 2*T1"] {
        let again = callee.expect_request("INVITE").await;
        assert_eq!(again.header("Via"), via, "the same INVITE, resent {resend}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let pings = pinging.await.expect("pinger");
    assert!(
        pings >= 500,
        "the server was kept busy: {pings} keep-alives"
    );
}
