//! TCP cannot be held hostage, over real sockets: idle connections and
//! slow senders are cut, one source gets only its share, a full pool makes
//! way for a newcomer by closing the longest idle connection that never
//! carried a REGISTER or an INVITE, and our own connections to a TCP trunk
//! have a pool that inbound ones cannot fill.

mod common;

use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

const A: &str = "13800000000";
const B: &str = "13900000000";
const X: &str = "17000000000";

async fn server(
    trunk: std::net::SocketAddr,
    tweak: impl FnOnce(&mut sipmask::config::Config),
) -> Sut {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(dir.path(), trunk);
    tweak(&mut cfg);
    add(&cfg, axb(A, X, B));
    start(cfg, dir).await
}

/// A TCP connection to `to` from the address `ip`.
async fn connect_from(ip: &str, to: std::net::SocketAddr) -> TcpStream {
    let sock = TcpSocket::new_v4().expect("socket");
    sock.bind(format!("{ip}:0").parse().expect("addr"))
        .expect("bind");
    sock.connect(to).await.expect("connect")
}

/// Whether the server closed `s` within `wait` (read returns 0 or fails).
async fn closed_within(s: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 512];
    matches!(
        tokio::time::timeout(wait, s.read(&mut buf)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

fn options(from: std::net::SocketAddr, to: std::net::SocketAddr) -> String {
    format!(
        "OPTIONS sip:{to} SIP/2.0\r\nVia: SIP/2.0/TCP {from};branch=z9hG4bK{b}\r\n\
         From: <sip:probe@{from}>;tag=p\r\nTo: <sip:{to}>\r\nCall-ID: {b}\r\nCSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n",
        b = unique("tcp")
    )
}

/// Sends OPTIONS on `s` and reads the status line of the answer.
async fn ask(s: &mut TcpStream, to: std::net::SocketAddr) -> String {
    let from = s.local_addr().expect("local");
    exchange(s, &options(from, to)).await
}

/// Sends a REGISTER on `s` and reads the status line of the answer.
async fn register(s: &mut TcpStream, to: std::net::SocketAddr) -> String {
    let from = s.local_addr().expect("local");
    let register = options(from, to)
        .replace("OPTIONS sip:", "REGISTER sip:")
        .replace("CSeq: 1 OPTIONS", "CSeq: 1 REGISTER");
    exchange(s, &register).await
}

/// Sends `request` on `s` and reads the status line of the answer.
async fn exchange(s: &mut TcpStream, request: &str) -> String {
    s.write_all(request.as_bytes()).await.expect("write");
    let mut buf = vec![0u8; 2048];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("an answer in time")
        .expect("read");
    String::from_utf8_lossy(&buf[..n])
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_and_slow_senders_are_cut() {
    let sut = server("127.0.0.3:9".parse().expect("addr"), |c| {
        c.sip.tcp_idle_secs = 1;
        c.sip.tcp_message_secs = 1;
    })
    .await;
    let mut idle = connect_from("127.0.0.2", sut.addr).await;
    let mut active = connect_from("127.0.0.2", sut.addr).await;
    assert_eq!(ask(&mut active, sut.addr).await, "SIP/2.0 200 OK");
    // A slow sender: a Content-Length of 16000, then a byte now and then.
    let mut slow = connect_from("127.0.0.2", sut.addr).await;
    let head = options(slow.local_addr().expect("local"), sut.addr)
        .replace("Content-Length: 0", "Content-Length: 16000");
    slow.write_all(head.as_bytes()).await.expect("write");
    let dribble = tokio::spawn(async move {
        for _ in 0..6 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if slow.write_all(b"x").await.is_err() {
                return true;
            }
        }
        closed_within(&mut slow, Duration::from_millis(100)).await
    });
    assert!(
        closed_within(&mut idle, Duration::from_secs(3)).await,
        "idle kept"
    );
    assert!(dribble.await.expect("task"), "slow sender kept");
    let api = sut.server.api_addr.expect("api");
    let m = http(api, "GET", "/metrics", None, None).await;
    for line in [
        "sipmask_tcp_connections_ended_total{reason=\"idle\"}",
        "sipmask_tcp_connections_ended_total{reason=\"slow\"} 1",
    ] {
        assert!(m.body.contains(line), "{line} in {}", m.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_source_gets_only_its_share_of_connections() {
    let sut = server("127.0.0.3:9".parse().expect("addr"), |c| {
        c.sip.max_tcp_per_source = 3;
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut s = connect_from("127.0.0.2", sut.addr).await;
        assert_eq!(ask(&mut s, sut.addr).await, "SIP/2.0 200 OK");
        held.push(s);
    }
    let mut fourth = connect_from("127.0.0.2", sut.addr).await;
    assert!(
        closed_within(&mut fourth, Duration::from_secs(2)).await,
        "a fourth connection from the same source was kept"
    );
    // Another source is not affected.
    let mut other = connect_from("127.0.0.1", sut.addr).await;
    assert_eq!(ask(&mut other, sut.addr).await, "SIP/2.0 200 OK");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_connections_cannot_starve_calls_to_a_tcp_trunk() {
    let trunk = TcpListener::bind("127.0.0.3:0").await.expect("trunk");
    let trunk_addr = trunk.local_addr().expect("addr");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(dir.path(), trunk_addr);
    cfg.sip.trunk = format!("{trunk_addr};transport=tcp");
    cfg.sip.max_tcp_connections = 4;
    add(&cfg, axb(A, X, B));
    let sut = start(cfg, dir).await;
    // Every inbound place is taken by connections that carried a
    // REGISTER (which are never evicted for a newcomer).
    let mut hogs = Vec::new();
    for ip in ["127.0.0.1", "127.0.0.2", "127.0.0.4", "127.0.0.5"] {
        let mut s = connect_from(ip, sut.addr).await;
        // Answered (401, or 403 to the untrusted): the connection is up.
        assert!(register(&mut s, sut.addr).await.starts_with("SIP/2.0 "));
        hogs.push(s);
    }
    let mut refused = connect_from("127.0.0.6", sut.addr).await;
    assert!(closed_within(&mut refused, Duration::from_secs(2)).await);
    // A UDP caller's call still goes out to the trunk over TCP.
    let caller = Ua::bind("127.0.0.2").await;
    let d = Dialog::new(caller.addr, sut.addr, A, X);
    caller.send(sut.addr, &d.invite()).await;
    let (mut conn, _) = tokio::time::timeout(Duration::from_secs(5), trunk.accept())
        .await
        .expect("sipmask connects to the trunk in time")
        .expect("accept");
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf))
        .await
        .expect("the INVITE in time")
        .expect("read");
    let got = String::from_utf8_lossy(&buf[..n]);
    assert!(got.starts_with("INVITE sip:+8613900000000@"), "{got}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_from_many_addresses_make_way_for_a_newcomer() {
    let sut = server("127.0.0.3:9".parse().expect("addr"), |c| {
        c.sip.max_tcp_connections = 12;
        c.sip.max_tcp_per_source = 4;
        c.sip.tcp_idle_secs = 600;
    })
    .await;
    // A phone registers its flow first (a REGISTER is refused here: what
    // counts is that it carried one).
    let mut phone = connect_from("127.0.0.40", sut.addr).await;
    assert!(register(&mut phone, sut.addr).await.starts_with("SIP/2.0 "));
    // Then the pool is filled with idle connections from several addresses.
    let mut idle = Vec::new();
    for i in 0..11 {
        idle.push(connect_from(&format!("127.0.0.{}", 41 + i % 3), sut.addr).await);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // A newcomer is served: the idle connection idle longest made way.
    let mut newcomer = connect_from("127.0.0.50", sut.addr).await;
    // Answered (403: it is not trusted), not closed.
    assert!(ask(&mut newcomer, sut.addr).await.starts_with("SIP/2.0 "));
    assert!(
        closed_within(&mut idle[0], Duration::from_secs(2)).await,
        "the oldest idle connection was closed"
    );
    // The phone's connection was kept.
    assert!(ask(&mut phone, sut.addr).await.starts_with("SIP/2.0 "));
    let api = sut.server.api_addr.expect("api");
    let m = http(api, "GET", "/metrics", None, None).await;
    assert!(
        m.body
            .contains("sipmask_tcp_connections_ended_total{reason=\"evicted\"} 1"),
        "{}",
        m.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_with_two_content_lengths_is_refused_400_not_framed() {
    let sut = server("127.0.0.3:9".parse().expect("addr"), |_| {}).await;
    let mut s = connect_from("127.0.0.2", sut.addr).await;
    let from = s.local_addr().expect("local");
    // Framed by the first length, the second message would hide in the body.
    let smuggled = options(from, sut.addr);
    let two = options(from, sut.addr).replace(
        "Content-Length: 0\r\n",
        &format!(
            "Content-Length: 0\r\nContent-Length: {}\r\n",
            smuggled.len()
        ),
    );
    s.write_all(format!("{two}{smuggled}").as_bytes())
        .await
        .expect("write");
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut got)).await;
    let got = String::from_utf8_lossy(&got);
    assert!(got.starts_with("SIP/2.0 400"), "{got}");
    assert!(
        !got.contains("200 OK"),
        "a message was framed by one length: {got}"
    );
}
