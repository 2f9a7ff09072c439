//! Helpers for whole-system tests: a sipmask server on ephemeral ports with
//! its own data dir, and a small SIP user agent over real UDP/TCP sockets
//! that records every byte it receives (for leak checks).

#![allow(dead_code)]

pub mod api;
pub mod baresip;
pub mod capture;
pub mod cluster;
pub mod hooks;
pub mod kamailio;
pub mod linphone;
pub mod pg;
pub mod phone;
pub mod process;

use std::net::SocketAddr;
use std::time::Duration;

use sipmask::config::Config;
use sipmask::server::Server;
use sipmask::sip::Msg;
#[allow(unused_imports)]
pub use sipmask::store::prelude::*;
pub use sipmask::time::ManualClock;
pub use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

pub const WAIT: Duration = Duration::from_secs(5);

/// A running server and its data dir.
pub struct Sut {
    pub server: Server,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    /// The server's clock: tests move it instead of waiting for timers.
    pub clock: Arc<ManualClock>,
}

impl Sut {
    /// Runs the server's clock `factor` times faster than real time until
    /// the returned guard is dropped, so timers of seconds fire in
    /// milliseconds while every message still flows for real.
    pub fn fast_forward(&self, factor: u32) -> FastForward {
        let clock = self.clock.clone();
        let step = Duration::from_millis(5);
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(step).await;
                clock.advance(step * factor.saturating_sub(1));
            }
        });
        FastForward(task)
    }
}

/// Stops a [`Sut::fast_forward`] when dropped.
pub struct FastForward(tokio::task::JoinHandle<()>);

impl Drop for FastForward {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Config for tests: loopback, port 0, own data dir.
pub fn config(dir: &std::path::Path, trunk: SocketAddr) -> Config {
    let mut cfg = Config::embedded().expect("embedded config");
    cfg.sip.listen = vec!["127.0.0.1:0".into()];
    cfg.sip.trunk = trunk.to_string();
    cfg.storage.data_dir = dir.to_path_buf();
    cfg.api.listen = "127.0.0.1:0".into();
    // Webhook receivers of tests listen on loopback, which is refused by
    // default.
    cfg.webhooks.allow_networks = vec!["127.0.0.0/8".into()];
    // Tests run side by side on one range: each opens pairs only as calls
    // need them.
    cfg.media.warm_pairs = 0;
    // Callers of tests are on 127.0.0.2 or ::1 (SIPp on 127.0.0.1); 127.0.0.4 is
    // the untrusted stranger of tests/trust.rs.
    cfg.sip.trusted = vec![
        "127.0.0.1/32".into(),
        "127.0.0.2/32".into(),
        "::1/128".into(),
    ];
    cfg
}

/// Adds a binding through the CLI code path.
pub fn add(cfg: &Config, args: sipmask::cli::AddArgs) -> i64 {
    sipmask::cli::add(cfg, &cfg.storage.data_dir, args).expect("add binding")
}

pub fn axb(caller: &str, x: &str, callee: &str) -> sipmask::cli::AddArgs {
    sipmask::cli::AddArgs {
        caller: Some(caller.into()),
        virtual_number: x.into(),
        callee: callee.into(),
        ..Default::default()
    }
}

pub fn ax(x: &str, owner: &str) -> sipmask::cli::AddArgs {
    sipmask::cli::AddArgs {
        virtual_number: x.into(),
        callee: owner.into(),
        ..Default::default()
    }
}

/// Starts a server on `cfg` (whose data dir is `dir`).
pub async fn start(cfg: Config, dir: tempfile::TempDir) -> Sut {
    let clock = ManualClock::new();
    let server = Server::start_with_clock(cfg, clock.clone())
        .await
        .expect("server starts");
    let addr = server.addrs[0];
    Sut {
        server,
        addr,
        dir,
        clock,
    }
}

/// A received message with its raw text.
#[derive(Clone, Debug)]
pub struct Sip {
    pub raw: String,
    pub msg: Msg,
    pub from: SocketAddr,
}

impl Sip {
    /// First value of a header (full name, case-insensitive), from the raw text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.raw
            .split("\r\n")
            .skip(1)
            .take_while(|l| !l.is_empty())
            .find_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_string())
            })
    }

    /// Every value of a header.
    pub fn headers(&self, name: &str) -> Vec<String> {
        self.raw
            .split("\r\n")
            .skip(1)
            .take_while(|l| !l.is_empty())
            .filter_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_string())
            })
            .collect()
    }

    pub fn code(&self) -> u16 {
        self.msg.code().unwrap_or(0)
    }

    pub fn method(&self) -> String {
        self.msg
            .method()
            .map(|m| m.as_str().to_string())
            .unwrap_or_default()
    }

    pub fn body(&self) -> String {
        String::from_utf8_lossy(&self.msg.body).to_string()
    }

    /// A response to this request, echoing Via/From/To/Call-ID/CSeq, with
    /// `tag` added to To when it has none.
    pub fn reply(&self, code: u16, tag: &str, extra: &str, body: &str) -> String {
        let mut out = format!("SIP/2.0 {code} Whatever\r\n");
        for v in self.headers("Via") {
            out.push_str(&format!("Via: {v}\r\n"));
        }
        out.push_str(&format!("From: {}\r\n", self.msg.from));
        if self.msg.to_tag.is_some() || code == 100 {
            out.push_str(&format!("To: {}\r\n", self.msg.to));
        } else {
            out.push_str(&format!("To: {};tag={tag}\r\n", self.msg.to));
        }
        out.push_str(&format!(
            "Call-ID: {}\r\nCSeq: {} {}\r\n",
            self.msg.call_id, self.msg.cseq, self.msg.cseq_method
        ));
        out.push_str(extra);
        finish(out, body)
    }
}

/// Adds Content-Type (for a body) and Content-Length, then the body.
pub fn finish(mut head: String, body: &str) -> String {
    if !body.is_empty() {
        head.push_str("Content-Type: application/sdp\r\n");
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    head
}

/// A UDP user agent bound to `ip`, recording what it receives.
pub struct Ua {
    sock: UdpSocket,
    pub addr: SocketAddr,
    pub seen: Vec<String>,
}

impl Ua {
    pub async fn bind(ip: &str) -> Ua {
        let sock = UdpSocket::bind(format!("{ip}:0")).await.expect("bind ua");
        // Room for a burst of answers, past rmem_max where allowed (root).
        let s = socket2::SockRef::from(&sock);
        let _ = s.set_recv_buffer_size(4 << 20);
        if s.recv_buffer_size().unwrap_or(0) < 4 << 20 {
            use std::os::fd::AsRawFd;
            let n: libc::c_int = 4 << 20;
            // SAFETY: setsockopt reads an int from a live local.
            unsafe {
                libc::setsockopt(
                    sock.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_RCVBUFFORCE,
                    (&n as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                );
            }
        }
        let addr = sock.local_addr().expect("addr");
        Ua {
            sock,
            addr,
            seen: Vec::new(),
        }
    }

    pub async fn send_bytes(&self, to: SocketAddr, data: &[u8]) {
        self.sock.send_to(data, to).await.expect("send");
    }

    pub async fn send(&self, to: SocketAddr, text: &str) {
        self.sock.send_to(text.as_bytes(), to).await.expect("send");
    }

    /// Next datagram as text, unparsed (for replies to broken requests).
    pub async fn recv_raw_within(&mut self, wait: Duration) -> Option<String> {
        let mut buf = vec![0u8; 65536];
        let (n, _) = tokio::time::timeout(wait, self.sock.recv_from(&mut buf))
            .await
            .ok()?
            .ok()?;
        Some(String::from_utf8_lossy(&buf[..n]).to_string())
    }

    /// Next message within `wait`, or `None`.
    pub async fn recv_within(&mut self, wait: Duration) -> Option<Sip> {
        let mut buf = vec![0u8; 65536];
        let (n, from) = tokio::time::timeout(wait, self.sock.recv_from(&mut buf))
            .await
            .ok()?
            .ok()?;
        let raw = String::from_utf8_lossy(&buf[..n]).to_string();
        self.seen.push(raw.clone());
        let msg = Msg::parse(&buf[..n], true).expect("sipmask sent a parsable message");
        Some(Sip { raw, msg, from })
    }

    /// Next message that is not a 100 Trying.
    pub async fn recv(&mut self) -> Sip {
        loop {
            let m = self.recv_within(WAIT).await.expect("a message in time");
            if m.code() != 100 {
                return m;
            }
        }
    }

    /// Next request with `method` (skips retransmissions and responses).
    pub async fn expect_request(&mut self, method: &str) -> Sip {
        loop {
            let m = self.recv().await;
            if m.method() == method {
                return m;
            }
        }
    }

    /// Next response with `code` (skipping other provisionals).
    pub async fn expect_response(&mut self, code: u16) -> Sip {
        loop {
            let m = self.recv().await;
            if m.code() == code {
                return m;
            }
            assert!(
                m.code() < 200 || m.code() == code,
                "expected {code}, got:\n{}",
                m.raw
            );
        }
    }

    /// Asserts nothing but 100/retransmissions arrive for `wait`.
    pub async fn expect_silence(&mut self, wait: Duration) {
        if let Some(m) = self.recv_within(wait).await {
            panic!("expected nothing, got:\n{}", m.raw);
        }
    }
}

/// A caller's call: its identifiers, to build requests from.
pub struct Dialog {
    pub me: SocketAddr,
    pub server: SocketAddr,
    pub user: String,
    pub target: String,
    pub call_id: String,
    pub tag: String,
    pub remote_to: String,
    pub cseq: u32,
    pub branch: String,
    /// Route set and remote target, once learnt with
    /// [`Dialog::confirm_routed`] (through a proxy); until then in-dialog
    /// requests go to `server` without Route.
    pub route: Vec<String>,
    pub remote_target: Option<String>,
}

static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

pub fn unique(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{prefix}{}x{n}", std::process::id())
}

pub fn sdp(user: &str, ip: &str) -> String {
    format!("v=0\r\no={user} 1 1 IN IP4 {ip}\r\ns={user} phone\r\nc=IN IP4 203.0.113.10\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n")
}

impl Dialog {
    pub fn new(me: SocketAddr, server: SocketAddr, user: &str, target: &str) -> Dialog {
        Dialog {
            me,
            server,
            user: user.into(),
            target: target.into(),
            call_id: unique("alice-call-"),
            tag: unique("alicetag"),
            remote_to: format!("<sip:{target}@{server}>"),
            cseq: 1,
            branch: format!("z9hG4bK{}", unique("a")),
            route: Vec::new(),
            remote_target: None,
        }
    }

    fn base(&self, method: &str, uri: &str, cseq: u32, branch: &str) -> String {
        format!(
            "{method} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch={branch};rport\r\n\
             From: \"Alice Secret\" <sip:{user}@{me}>;tag={tag}\r\nTo: {to}\r\nCall-ID: {cid}\r\n\
             CSeq: {cseq} {method}\r\nContact: <sip:{user}@{me}>\r\nMax-Forwards: 70\r\n\
             User-Agent: AliceSoftphone/1.0\r\nP-Asserted-Identity: <sip:{user}@{me}>\r\n\
             Remote-Party-ID: <sip:{user}@{me}>;party=calling\r\n{route}",
            me = self.me,
            user = self.user,
            tag = self.tag,
            to = self.remote_to,
            cid = self.call_id,
            route = self
                .route
                .iter()
                .map(|r| format!("Route: {r}\r\n"))
                .collect::<String>(),
        )
    }

    /// Like [`Dialog::confirm`], and takes the route set (the 2xx's
    /// Record-Route, reversed) and remote target (its Contact) too.
    pub fn confirm_routed(&mut self, resp: &Sip) {
        self.confirm(resp);
        self.route = resp.headers("Record-Route");
        self.route.reverse();
        self.remote_target = resp.msg.contact.as_deref().map(str::to_string);
    }

    /// Request-URI of in-dialog requests.
    fn in_dialog_uri(&self) -> String {
        self.remote_target
            .clone()
            .unwrap_or_else(|| format!("sip:{}", self.server))
    }

    pub fn invite(&self) -> String {
        let uri = format!("sip:{}@{}", self.target, self.server);
        finish(
            self.base("INVITE", &uri, self.cseq, &self.branch),
            &sdp(&self.user, &self.me.ip().to_string()),
        )
    }

    pub fn cancel(&self) -> String {
        let uri = format!("sip:{}@{}", self.target, self.server);
        let b = self.base("CANCEL", &uri, self.cseq, &self.branch);
        finish(b, "")
    }

    /// Takes the To (with tag) of a response to make later requests in-dialog.
    pub fn confirm(&mut self, resp: &Sip) {
        self.remote_to = resp.msg.to.to_string();
    }

    pub fn ack(&self, cseq: u32) -> String {
        let uri = self.in_dialog_uri();
        finish(
            self.base("ACK", &uri, cseq, &format!("z9hG4bK{}", unique("ack"))),
            "",
        )
    }

    /// The ACK for a non-2xx final: same branch as the INVITE, To from the response.
    pub fn ack_failure(&self, resp: &Sip) -> String {
        let uri = format!("sip:{}@{}", self.target, self.server);
        let mut d = Dialog {
            remote_to: resp.msg.to.to_string(),
            ..self.clone_ids()
        };
        d.cseq = 1;
        finish(d.base("ACK", &uri, 1, &self.branch), "")
    }

    fn clone_ids(&self) -> Dialog {
        Dialog {
            me: self.me,
            server: self.server,
            user: self.user.clone(),
            target: self.target.clone(),
            call_id: self.call_id.clone(),
            tag: self.tag.clone(),
            remote_to: self.remote_to.clone(),
            cseq: self.cseq,
            branch: self.branch.clone(),
            route: self.route.clone(),
            remote_target: self.remote_target.clone(),
        }
    }

    pub fn request(&mut self, method: &str, body: &str) -> String {
        self.cseq += 1;
        let uri = self.in_dialog_uri();
        finish(
            self.base(method, &uri, self.cseq, &format!("z9hG4bK{}", unique("r"))),
            body,
        )
    }
}

/// A callee that answers from `ua`: returns the INVITE it got.
pub async fn answer(ua: &mut Ua, tag: &str) -> Sip {
    let inv = ua.expect_request("INVITE").await;
    let contact = format!("Contact: <sip:bob@{}>\r\nServer: BobPhone/2.0\r\n", ua.addr);
    ua.send(inv.from, &inv.reply(180, tag, &contact, "")).await;
    ua.send(
        inv.from,
        &inv.reply(200, tag, &contact, &sdp("bob", &ua.addr.ip().to_string())),
    )
    .await;
    inv
}

/// Sends one message over a fresh TCP connection and reads one reply.
pub async fn tcp_exchange(to: SocketAddr, data: &[u8]) -> String {
    let mut s = TcpStream::connect(to).await.expect("connect");
    s.write_all(data).await.expect("write");
    let mut buf = vec![0u8; 8192];
    let n = tokio::time::timeout(WAIT, s.read(&mut buf))
        .await
        .expect("reply in time")
        .unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).to_string()
}

/// An HTTP response as the test client saw it.
#[derive(Debug)]
pub struct Http {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Http {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request over a fresh connection (`Connection: close`).
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<&str>,
) -> Http {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(k) = key {
        req.push_str(&format!("Authorization: Bearer {k}\r\n"));
    }
    if let Some(b) = body {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(body.unwrap_or(""));
    let mut s = TcpStream::connect(addr).await.expect("connect to API");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut raw))
        .await
        .expect("API answers in time")
        .expect("read");
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").expect("HTTP head");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .expect("status");
    let headers = lines
        .filter_map(|l| {
            l.split_once(':')
                .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        })
        .collect::<Vec<_>>();
    let chunked = headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    Http {
        status,
        headers,
        body,
    }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((len, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(len.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Call records of the operator's (command-line) bindings in `dir`.
pub fn operator_calls(dir: &std::path::Path) -> Vec<sipmask::store::CallRecord> {
    let s = sipmask::store::SqliteStore::open(dir).expect("store");
    let f = sipmask::store::CallFilter {
        limit: 100,
        ..Default::default()
    };
    s.calls(sipmask::bindings::OPERATOR, &f).expect("records").0
}

/// Creates a tenant in `dir` and returns its key.
pub fn tenant(dir: &std::path::Path, name: &str) -> String {
    let mut store = sipmask::store::open(dir).expect("store");
    sipmask::service::tenants::add_tenant(store.as_mut(), name, sipmask::time::now())
        .expect("tenant")
}

/// A port free for both UDP and TCP on `ip` (asked of the OS).
pub fn free_port(ip: &str) -> u16 {
    loop {
        let u = std::net::UdpSocket::bind((ip, 0)).expect("udp");
        let port = u.local_addr().expect("addr").port();
        if std::net::TcpListener::bind((ip, port)).is_ok() {
            return port;
        }
    }
}

/// SIPp runs in a working dir of their own. Fails loudly if `sipp` is
/// missing: the test command in README.md installs it.
pub struct Sipp {
    dir: tempfile::TempDir,
}

impl Sipp {
    pub fn new() -> Sipp {
        let found = std::process::Command::new("sipp")
            .arg("-v")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok();
        assert!(
            found,
            "sipp is not installed: run the test command from README.md (it installs sip-tester)"
        );
        Sipp {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn spawn(&self, args: &[String]) -> std::process::Child {
        std::process::Command::new("timeout")
            .arg("30")
            .arg("sipp")
            .args(args)
            .args(["-nostdin", "-m", "1", "-trace_err"])
            .current_dir(self.dir.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run sipp")
    }

    fn scenario(n: &str) -> String {
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("sipp-scenarios")
            .join(n)
            .display()
            .to_string()
    }

    /// The SIPp callee (`uas`) on 127.0.0.3:`port`.
    pub fn uas(&self, port: u16, uas: &str, tcp: bool) -> std::process::Child {
        self.uas_with(port, uas, tcp, &[])
    }

    /// [`Sipp::uas`] with more arguments (`-rtp_echo`, say).
    pub fn uas_with(&self, port: u16, uas: &str, tcp: bool, more: &[&str]) -> std::process::Child {
        let t = if tcp { "t1" } else { "u1" };
        let args: Vec<String> = ["-sf", &Self::scenario(uas), "-i", "127.0.0.3", "-p"]
            .iter()
            .map(|s| s.to_string())
            .chain([port.to_string(), "-t".into(), t.into()])
            .chain(more.iter().map(|s| s.to_string()))
            .collect();
        self.spawn(&args)
    }

    /// A file in SIPp's working dir (audio for `rtp_stream`).
    pub fn file(&self, name: &str, bytes: &[u8]) {
        std::fs::write(self.dir.path().join(name), bytes).expect("write sipp file");
    }

    /// The SIPp caller (`uac`) on 127.0.0.2 as `caller` dialling `dialled`
    /// via `sut`.
    pub fn uac(
        &self,
        sut: SocketAddr,
        uac: &str,
        caller: &str,
        dialled: &str,
        tcp: bool,
    ) -> std::process::Child {
        self.uac_with(sut, uac, (caller, dialled), tcp, &[])
    }

    /// [`Sipp::uac`] with more arguments.
    pub fn uac_with(
        &self,
        sut: SocketAddr,
        uac: &str,
        (caller, dialled): (&str, &str),
        tcp: bool,
        more: &[&str],
    ) -> std::process::Child {
        let t = if tcp { "t1" } else { "u1" };
        let port = free_port("127.0.0.2");
        let args: Vec<String> = [
            sut.to_string(),
            "-sf".into(),
            Self::scenario(uac),
            "-i".into(),
            "127.0.0.2".into(),
            "-p".into(),
            port.to_string(),
            "-t".into(),
            t.into(),
            "-s".into(),
            dialled.into(),
            "-key".into(),
            "caller".into(),
            caller.into(),
        ]
        .into_iter()
        .chain(more.iter().map(|s| s.to_string()))
        .collect();
        self.spawn(&args)
    }

    /// One call: the SIPp callee (`uas`) on 127.0.0.3:`uas_port`, the SIPp
    /// caller (`uac`) on 127.0.0.2 as `caller` dialling `dialled` via `sut`.
    /// Both scenarios must end successfully.
    #[allow(clippy::too_many_arguments)]
    pub async fn call(
        &self,
        sut: SocketAddr,
        uas_port: u16,
        uas: &str,
        uac: &str,
        caller: &str,
        dialled: &str,
        tcp: bool,
    ) {
        let callee = self.uas(uas_port, uas, tcp);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let caller = self.uac(sut, uac, caller, dialled, tcp);
        tokio::task::spawn_blocking(move || {
            sipp_ok(caller, "SIPp caller");
            sipp_ok(callee, "SIPp callee");
        })
        .await
        .expect("join");
    }
}

/// Waits for a SIPp run and asserts it succeeded.
pub async fn sipp_done(child: std::process::Child, who: &'static str) {
    tokio::task::spawn_blocking(move || sipp_ok(child, who))
        .await
        .expect("join");
}

fn sipp_ok(child: std::process::Child, who: &str) {
    let out = child.wait_with_output().expect("sipp exits");
    assert!(
        out.status.success(),
        "{who} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .join("\n"),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Places a call from `user` to `x` via `sut`, has `callee` answer it with
/// `tag`, and ACKs it. Returns the caller's dialog and the callee's INVITE.
pub async fn connected(
    caller: &mut Ua,
    callee: &mut Ua,
    sut: SocketAddr,
    user: &str,
    x: &str,
    tag: &str,
) -> (Dialog, Sip) {
    let mut d = Dialog::new(caller.addr, sut, user, x);
    caller.send(sut, &d.invite()).await;
    let inv = answer(callee, tag).await;
    let ok = caller.expect_response(200).await;
    d.confirm(&ok);
    caller.send(sut, &d.ack(1)).await;
    callee.expect_request("ACK").await;
    (d, inv)
}
