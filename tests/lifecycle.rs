//! Process life: restart with data kept (after SIGKILL), graceful shutdown
//! that ends live calls, and bad input that must neither crash the server
//! nor go unanswered.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::process::{serve_process, Proc};
use common::*;

const A: &str = "13800000000";
const B: &str = "13900000000";
const X: &str = "17000000000";

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_sipmask")
}

async fn spawn_server(dir: &std::path::Path, port: u16, trunk: std::net::SocketAddr) -> Proc {
    spawn_server_with(dir, port, trunk, None).await
}

async fn spawn_server_with(
    dir: &std::path::Path,
    port: u16,
    trunk: std::net::SocketAddr,
    config: Option<&std::path::Path>,
) -> Proc {
    let mut args = vec!["--data-dir".to_string(), dir.display().to_string()];
    if let Some(c) = config {
        args.extend(["--config".to_string(), c.display().to_string()]);
    }
    serve_process(bin(), args, port, trunk).await
}

/// Adds the binding (A, X, B) allowing `max_calls` calls, as the
/// command line does.
fn add_counted(dir: &std::path::Path, max_calls: u32) {
    let out = Command::new(bin())
        .args(["bindings", "add", "--data-dir"])
        .arg(dir)
        .args(["--caller", A, "--virtual", X, "--callee", B, "--max-calls"])
        .arg(max_calls.to_string())
        .output()
        .expect("add");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
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
    add_counted(dir.path(), 1);
    let port = free_port("127.0.0.1");
    let sut: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let proc = spawn_server(dir.path(), port, callee.addr).await;
    connected(&mut caller, &mut callee, sut, A, X, "t").await;
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
async fn every_use_a_caller_was_answered_on_survives_a_kill_at_once() {
    // A counted binding: its uses must be exact across a crash. Calls
    // come in a burst; the server is killed the moment the last caller has
    // its 200, before any ACK: every 200 a caller got is a use on disk.
    let dir = tempfile::tempdir().expect("tempdir");
    let callee = Ua::bind("127.0.0.3").await;
    add_counted(dir.path(), 1000);
    let port = free_port("127.0.0.1");
    let sut: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let proc = spawn_server(dir.path(), port, callee.addr).await;
    // The callee answers every INVITE at once.
    let answering = tokio::spawn(async move {
        let mut callee = callee;
        loop {
            let Some(inv) = callee.recv_within(Duration::from_secs(10)).await else {
                return;
            };
            if inv.method() == "INVITE" {
                let contact = format!("Contact: <sip:b@{}>\r\n", callee.addr);
                let ok = inv.reply(200, "b", &contact, &sdp(B, "127.0.0.3"));
                callee.send(inv.from, &ok).await;
            }
        }
    });
    let mut callers = Vec::new();
    for _ in 0..20 {
        let caller = Ua::bind("127.0.0.2").await;
        let d = Dialog::new(caller.addr, sut, A, X);
        caller.send(sut, &d.invite()).await;
        callers.push(caller);
    }
    let mut answered = 0;
    for c in &mut callers {
        let r = c.expect_response(200).await;
        assert_eq!(r.code(), 200);
        answered += 1;
    }
    drop(proc); // SIGKILL at once: no ACK was sent, nothing flushed
    answering.abort();
    assert_eq!(calls_used(dir.path()), answered.to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_live_calls_with_bye_on_both_legs() {
    let mut caller = Ua::bind("127.0.0.2").await;
    let mut callee = Ua::bind("127.0.0.3").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), callee.addr);
    add(&cfg, axb(A, X, B));
    let sut = start(cfg, dir).await;
    connected(&mut caller, &mut callee, sut.addr, A, X, "t").await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_then_ends_live_calls_and_exits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut caller = Ua::bind("127.0.0.2").await;
    let mut callee = Ua::bind("127.0.0.3").await;
    let cfg_path = dir.path().join("sipmask.toml");
    let text = sipmask::config::DEFAULT_TOML.replace("drain_secs = 30", "drain_secs = 1");
    std::fs::write(&cfg_path, text).expect("config");
    let out = Command::new(bin())
        .args(["bindings", "add", "--data-dir"])
        .arg(dir.path())
        .args(["--caller", A, "--virtual", X, "--callee", B])
        .output()
        .expect("add");
    assert!(out.status.success());
    let port = free_port("127.0.0.1");
    let sut: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let mut proc = spawn_server_with(dir.path(), port, callee.addr, Some(&cfg_path)).await;
    connected(&mut caller, &mut callee, sut, A, X, "t").await;
    let pid = proc.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill")
        .success());
    // Live calls get the drain period, then BYE on both legs.
    caller.expect_request("BYE").await;
    callee.expect_request("BYE").await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(status) = proc.0.try_wait().expect("wait") {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "sipmask did not exit after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_keepalive_ping_gets_a_pong() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let callee = Ua::bind("127.0.0.3").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let sut = start(config(dir.path(), callee.addr), dir).await;
    let mut s = tokio::net::TcpStream::connect(sut.addr)
        .await
        .expect("connect");
    s.write_all(b"\r\n\r\n").await.expect("ping");
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(WAIT, s.read(&mut buf))
        .await
        .expect("pong in time")
        .expect("read");
    assert_eq!(&buf[..n], b"\r\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_mangled_messages_neither_crash_nor_disturb_a_call() {
    use rand::{Rng, SeedableRng};
    let mut caller = Ua::bind("127.0.0.2").await;
    let mut callee = Ua::bind("127.0.0.3").await;
    let junk = Ua::bind("127.0.0.4").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), callee.addr);
    add(&cfg, axb(A, X, B));
    let sut = start(cfg, dir).await;
    // Valid messages of every kind, then mangled: bytes flipped, cut,
    // repeated, headers duplicated.
    // They dial a number without a binding, so none of them rings the callee.
    let mut d = Dialog::new(junk.addr, sut.addr, A, "17099999999");
    let seeds = [
        d.invite(),
        d.cancel(),
        d.ack(1),
        d.request("BYE", ""),
        d.request("INFO", "x"),
    ];
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for i in 0..3000 {
        let mut m = seeds[i % seeds.len()].clone().into_bytes();
        for _ in 0..rng.random_range(1..6) {
            match rng.random_range(0..4) {
                0 if !m.is_empty() => {
                    let at = rng.random_range(0..m.len());
                    m[at] = rng.random();
                }
                1 if !m.is_empty() => m.truncate(rng.random_range(0..m.len())),
                2 => {
                    let at = rng.random_range(0..=m.len());
                    m.splice(
                        at..at,
                        b"\r\nVia: SIP/2.0/UDP [::1;branch=\xff\r\n".iter().copied(),
                    );
                }
                _ => {
                    let at = rng.random_range(0..=m.len());
                    m.splice(at..at, "€ñ\u{0}:;<>\"".bytes());
                }
            }
        }
        junk.send_bytes(sut.addr, &m).await;
    }
    // The server still bridges a call.
    connected(&mut caller, &mut callee, sut.addr, A, X, "t").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_loses_only_seconds_of_a_live_call() {
    let mut caller = Ua::bind("127.0.0.2").await;
    let mut callee = Ua::bind("127.0.0.3").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(bin())
        .args(["bindings", "add", "--data-dir"])
        .arg(dir.path())
        .args(["--caller", A, "--virtual", X, "--callee", B])
        .output()
        .expect("add");
    assert!(out.status.success());
    let port = free_port("127.0.0.1");
    let sut: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let proc = spawn_server(dir.path(), port, callee.addr).await;
    connected(&mut caller, &mut callee, sut, A, X, "t").await;
    // Talk for 5 s, then the process dies without a word.
    tokio::time::sleep(Duration::from_secs(5)).await;
    drop(proc);
    let _proc = spawn_server(dir.path(), port, callee.addr).await;
    let talk: u64 = {
        use sipmask::store::BindingStore;
        let mut s = sipmask::store::SqliteStore::open(dir.path()).expect("store");
        s.load_all().expect("load")[0].usage.talk_secs_used
    };
    // A call is written at its second checkpoint (one a second), then its
    // heartbeat moves every second: at most 2 s (plus a commit) is lost.
    assert!((2..=5).contains(&talk), "booked {talk} s of a 5 s call");
    let calls = operator_calls(dir.path());
    assert_eq!(calls.len(), 1, "the live call has its record");
    assert_eq!(calls[0].reason, "sipmask stopped during the call");
    assert_eq!(calls[0].duration_secs, talk);
    // The operator reads the records of command-line bindings.
    let out = Command::new(bin())
        .args(["calls", "--data-dir"])
        .arg(dir.path())
        .output()
        .expect("calls");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("sipmask stopped during the call"), "{text}");
    assert!(text.contains("+8613800000000"), "{text}");
}
