//! Process life: restart with data kept (after SIGKILL), graceful shutdown
//! that ends live calls, and bad input that must neither crash the server
//! nor go unanswered.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const A: &str = "13800000000";
const B: &str = "13900000000";
const X: &str = "17000000000";

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_sipmask")
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn spawn_server(dir: &std::path::Path, port: u16, trunk: std::net::SocketAddr) -> Proc {
    let child = Proc(
        Command::new(bin())
            .args(["serve", "--data-dir"])
            .arg(dir)
            .args([
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--trunk",
                &trunk.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn sipmask"),
    );
    // Ready when it answers OPTIONS.
    let probe = Ua::bind("127.0.0.1").await;
    let mut probe = probe;
    let sut: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let opt = format!(
            "OPTIONS sip:{sut} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{b}\r\nFrom: <sip:probe@{me}>;tag=p\r\n\
             To: <sip:{sut}>\r\nCall-ID: {b}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
            me = probe.addr,
            b = unique("probe"),
        );
        probe.send(sut, &opt).await;
        if probe
            .recv_within(Duration::from_millis(200))
            .await
            .is_some_and(|m| m.code() == 200)
        {
            return child;
        }
        assert!(Instant::now() < deadline, "sipmask did not come up");
    }
}

fn calls_used(dir: &std::path::Path) -> String {
    let out = Command::new(bin())
        .args(["bindings", "list", "--data-dir"])
        .arg(dir)
        .output()
        .expect("list");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .unwrap_or("")
        .split('\t')
        .nth(4)
        .unwrap_or("")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumed_use_survives_a_crash_and_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut caller = Ua::bind("127.0.0.2").await;
    let mut callee = Ua::bind("127.0.0.3").await;
    let out = Command::new(bin())
        .args(["bindings", "add", "--data-dir"])
        .arg(dir.path())
        .args([
            "--caller",
            A,
            "--virtual",
            X,
            "--callee",
            B,
            "--max-calls",
            "1",
        ])
        .output()
        .expect("add");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let port = free_port("127.0.0.1");
    let sut: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let proc = spawn_server(dir.path(), port, callee.addr).await;
    let mut d = Dialog::new(caller.addr, sut, A, X);
    caller.send(sut, &d.invite()).await;
    answer(&mut callee, "t").await;
    let ok = caller.expect_response(200).await;
    d.confirm(&ok);
    caller.send(sut, &d.ack(1)).await;
    callee.expect_request("ACK").await;
    // The use is committed by the store thread right after the answer.
    let deadline = Instant::now() + Duration::from_secs(5);
    while calls_used(dir.path()) != "1" {
        assert!(Instant::now() < deadline, "use not persisted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(proc); // SIGKILL: no graceful flush
    let _proc = spawn_server(dir.path(), port, callee.addr).await;
    let d = Dialog::new(caller.addr, sut, A, X);
    caller.send(sut, &d.invite()).await;
    let r = caller.expect_response(403).await;
    assert!(r.raw.starts_with("SIP/2.0 403 Call Limit Reached"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_live_calls_with_bye_on_both_legs() {
    let mut caller = Ua::bind("127.0.0.2").await;
    let mut callee = Ua::bind("127.0.0.3").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), callee.addr);
    add(&cfg, axb(A, X, B));
    let sut = start(cfg, dir).await;
    let mut d = Dialog::new(caller.addr, sut.addr, A, X);
    caller.send(sut.addr, &d.invite()).await;
    answer(&mut callee, "t").await;
    let ok = caller.expect_response(200).await;
    d.confirm(&ok);
    caller.send(sut.addr, &d.ack(1)).await;
    callee.expect_request("ACK").await;
    let addr = sut.addr;
    let stopping = tokio::spawn(sut.server.shutdown(Duration::from_millis(300)));
    // New calls are refused while draining.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let d2 = Dialog::new(caller.addr, addr, A, X);
    caller.send(addr, &d2.invite()).await;
    caller.expect_response(503).await;
    caller.expect_request("BYE").await;
    callee.expect_request("BYE").await;
    tokio::time::timeout(Duration::from_secs(5), stopping)
        .await
        .expect("shutdown in time")
        .expect("join");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_messages_get_400_or_are_dropped_and_the_server_lives_on() {
    let mut ua = Ua::bind("127.0.0.2").await;
    let callee = Ua::bind("127.0.0.3").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), callee.addr);
    let sut = start(cfg, dir).await;
    for junk in [
        "\u{0}\u{1}garbage",
        "INVITE\r\n\r\n",
        "SIP/2.0 200\r\n\r\n",
        "INVITE sip:x SIP/2.0\r\nVia: nonsense\r\n\r\n",
    ] {
        ua.send(sut.addr, junk).await;
    }
    ua.send(sut.addr, &"X".repeat(20000)).await;
    let no_call_id = format!(
        "INVITE sip:{X}@{s} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKnocid\r\nFrom: <sip:{A}@{me}>;tag=a\r\n\
         To: <sip:{X}@{s}>\r\nCSeq: 1 INVITE\r\nCall-ID: \r\nContent-Length: 0\r\n\r\n",
        s = sut.addr,
        me = ua.addr
    );
    ua.send(sut.addr, &no_call_id).await;
    let reply = ua.recv_raw_within(WAIT).await.expect("a reply");
    assert!(reply.starts_with("SIP/2.0 400 Bad Request\r\n"), "{reply}");
    let unknown = no_call_id
        .replace("INVITE sip", "FROB sip")
        .replace("Call-ID: \r\n", "Call-ID: c1\r\n");
    ua.send(sut.addr, &unknown).await;
    ua.expect_response(501).await;
    let d = Dialog::new(ua.addr, sut.addr, A, X);
    ua.send(sut.addr, &d.invite()).await;
    ua.expect_response(404).await;

    // TCP: a message over the size limit is answered 513.
    let big = format!(
        "INVITE sip:{X}@{s} SIP/2.0\r\nVia: SIP/2.0/TCP {me};branch=z9hG4bKbig\r\nFrom: <sip:{A}@{me}>;tag=a\r\n\
         To: <sip:{X}@{s}>\r\nCall-ID: big\r\nCSeq: 1 INVITE\r\nContent-Length: 100000\r\n\r\n",
        s = sut.addr,
        me = ua.addr
    );
    let reply = tcp_exchange(sut.addr, big.as_bytes()).await;
    assert!(reply.starts_with("SIP/2.0 513"), "{reply}");
}
