//! Media through the relay, over real sockets: the caller on 127.0.0.2 and
//! the callee (the trunk) on 127.0.0.3 each have an RTP and an RTCP socket;
//! every datagram either receives, SIP or media, is checked for anything of
//! the other party.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use tokio::net::UdpSocket;

const A: &str = "13800000000";
const B: &str = "13900000000";
const X: &str = "17000000000";
const A_SSRC: u32 = 0x2a2b_2c2d;
const B_SSRC: u32 = 0x3a3b_3c3d;

/// A party's media sockets (RTP on an even port, RTCP on the next) and
/// every byte they received.
struct Media {
    rtp: UdpSocket,
    rtcp: UdpSocket,
    seen: Vec<Vec<u8>>,
}

impl Media {
    async fn bind(ip: &str) -> Media {
        // Ephemeral ports (above the relay's range), RTP on an even one.
        for _ in 0..200 {
            let Ok(rtp) = UdpSocket::bind((ip, 0)).await else {
                continue;
            };
            let port = rtp.local_addr().expect("addr").port();
            if port % 2 != 0 {
                continue;
            }
            let Ok(rtcp) = UdpSocket::bind((ip, port + 1)).await else {
                continue;
            };
            return Media {
                rtp,
                rtcp,
                seen: Vec::new(),
            };
        }
        panic!("no free port pair on {ip}");
    }

    fn port(&self) -> u16 {
        self.rtp.local_addr().expect("addr").port()
    }

    /// The next datagram on RTP (or RTCP) within a second, and its source.
    async fn recv(&mut self, rtcp: bool) -> Option<(Vec<u8>, SocketAddr)> {
        let sock = if rtcp { &self.rtcp } else { &self.rtp };
        let mut buf = vec![0u8; 2048];
        let (n, from) = tokio::time::timeout(Duration::from_secs(1), sock.recv_from(&mut buf))
            .await
            .ok()?
            .ok()?;
        buf.truncate(n);
        self.seen.push(buf.clone());
        Some((buf, from))
    }
}

/// An RTP packet: PCMU, with a CSRC naming the sender again.
fn rtp(ssrc: u32, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x81, 0x00];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// A receiver report about `about` plus an SDES whose CNAME and NOTE name
/// the sender, as softphones send.
fn rtcp(ssrc: u32, about: u32, number: &str, ip: &str) -> Vec<u8> {
    let mut p = vec![0x81, 201, 0, 7];
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&about.to_be_bytes());
    p.extend_from_slice(&[0u8; 20]);
    let cname = format!("sip:{number}@{ip}");
    let mut sd = vec![0x81, 202, 0, 0];
    sd.extend_from_slice(&ssrc.to_be_bytes());
    sd.extend_from_slice(&[1, cname.len() as u8]);
    sd.extend_from_slice(cname.as_bytes());
    sd.extend_from_slice(&[7, number.len() as u8]);
    sd.extend_from_slice(number.as_bytes());
    sd.push(0);
    while sd.len() % 4 != 0 {
        sd.push(0);
    }
    let words = (sd.len() / 4 - 1) as u16;
    sd[2..4].copy_from_slice(&words.to_be_bytes());
    p.extend_from_slice(&sd);
    p
}

/// A softphone's SDP: its number in the origin, cname and tool lines.
fn leaky_sdp(number: &str, ip: &str, port: u16, ssrc: u32, dir: &str) -> String {
    format!(
        "v=0\r\no={number} {ssrc} 1 IN IP4 {ip}\r\ns=baresip\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         a=tool:baresip 1.0.0\r\nm=audio {port} RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=rtcp:{} IN IP4 {ip}\r\n\
         a=ssrc:{ssrc} cname:sip:{number}@{ip}:{port}\r\na={dir}\r\n",
        port + 1
    )
}

/// Where an SDP says to send RTP.
fn media_addr(sdp: &str) -> SocketAddr {
    let ip = sdp
        .lines()
        .find_map(|l| l.strip_prefix("c=IN IP4 "))
        .expect("c= line")
        .trim();
    let port = sdp
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|l| l.split(' ').next())
        .expect("m= line")
        .parse::<u16>()
        .expect("port");
    format!("{ip}:{port}").parse().expect("addr")
}

fn with_body(req: &str, old: &str, new: &str) -> String {
    req.replace(old, new).replace(
        &format!("Content-Length: {}", old.len()),
        &format!("Content-Length: {}", new.len()),
    )
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Asserts no secret (text or bytes) is in anything a party received.
fn assert_clean(what: &str, seen: &[Vec<u8>], secrets: &[Vec<u8>]) {
    for d in seen {
        for s in secrets {
            assert!(
                !contains(d, s),
                "{what} received {:?} in:\n{}",
                String::from_utf8_lossy(s),
                String::from_utf8_lossy(d)
            );
        }
    }
}

struct Call {
    sut: Sut,
    caller: Ua,
    callee: Ua,
    am: Media,
    bm: Media,
    d: Dialog,
    inv: Sip,
    /// Where each party was told to send.
    to_sut_a: SocketAddr,
    to_sut_b: SocketAddr,
}

async fn call(tweak: impl FnOnce(&mut sipmask::config::Config)) -> Call {
    let mut caller = Ua::bind("127.0.0.2").await;
    let mut callee = Ua::bind("127.0.0.3").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(dir.path(), callee.addr);
    tweak(&mut cfg);
    add(&cfg, axb(A, X, B));
    let sut = start(cfg, dir).await;
    let (am, bm) = (
        Media::bind("127.0.0.2").await,
        Media::bind("127.0.0.3").await,
    );
    let mut d = Dialog::new(caller.addr, sut.addr, A, X);
    let offer = leaky_sdp(A, "127.0.0.2", am.port(), A_SSRC, "sendrecv");
    let plain = sdp(A, "127.0.0.2");
    caller
        .send(sut.addr, &with_body(&d.invite(), &plain, &offer))
        .await;
    let inv = callee.expect_request("INVITE").await;
    let to_sut_b = media_addr(&inv.body());
    let contact = format!("Contact: <sip:bob@{}>\r\n", callee.addr);
    let answer = leaky_sdp(B, "127.0.0.3", bm.port(), B_SSRC, "sendrecv");
    callee
        .send(inv.from, &inv.reply(200, "bobtag", &contact, &answer))
        .await;
    let ok = caller.expect_response(200).await;
    let to_sut_a = media_addr(&ok.body());
    d.confirm(&ok);
    caller.send(sut.addr, &d.ack(1)).await;
    callee.expect_request("ACK").await;
    Call {
        sut,
        caller,
        callee,
        am,
        bm,
        d,
        inv,
        to_sut_a,
        to_sut_b,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtp_and_rtcp_cross_only_through_sipmask_with_the_legs_own_identity() {
    let mut c = call(|_| {}).await;
    let sut_ip = c.sut.addr.ip();
    assert_eq!(
        c.to_sut_a.ip(),
        sut_ip,
        "the caller is told to send to sipmask"
    );
    assert_eq!(
        c.to_sut_b.ip(),
        sut_ip,
        "the callee is told to send to sipmask"
    );
    assert_ne!(c.to_sut_a.port(), c.to_sut_b.port());
    for body in [
        c.inv.body(),
        c.caller.seen.last().cloned().unwrap_or_default(),
    ] {
        assert!(!body.contains("a=rtcp:"), "{body}");
    }

    // A -> B: RTP arrives from sipmask's port facing B, rewritten.
    let voice = b"hello from the caller";
    for seq in 1..=3u16 {
        c.am.rtp
            .send_to(&rtp(A_SSRC, seq, voice), c.to_sut_a)
            .await
            .expect("send");
        let (p, from) = c.bm.recv(false).await.expect("B hears A");
        assert_eq!(from, c.to_sut_b, "from sipmask's address facing B");
        assert_eq!(&p[12..], voice, "payload intact, CSRC gone");
        assert_eq!(p[0] & 0x0f, 0, "no CSRC");
        assert_ne!(&p[8..12], &A_SSRC.to_be_bytes(), "SSRC rewritten");
    }
    // B -> A likewise.
    c.bm.rtp
        .send_to(&rtp(B_SSRC, 9, b"callee speaks"), c.to_sut_b)
        .await
        .expect("send");
    let (p, from) = c.am.recv(false).await.expect("A hears B");
    assert_eq!(from, c.to_sut_a);
    assert_ne!(&p[8..12], &B_SSRC.to_be_bytes());
    let b_seen_by_a = u32::from_be_bytes([p[8], p[9], p[10], p[11]]);

    // RTCP from A, about B's stream as A sees it: CNAME and NOTE rebuilt,
    // the report mapped back to B's own SSRC.
    let to_rtcp_a = SocketAddr::new(sut_ip, c.to_sut_a.port() + 1);
    c.am.rtcp
        .send_to(&rtcp(A_SSRC, b_seen_by_a, A, "127.0.0.2"), to_rtcp_a)
        .await
        .expect("send");
    let (p, from) = c.bm.recv(true).await.expect("B gets A's RTCP");
    assert_eq!(from, SocketAddr::new(sut_ip, c.to_sut_b.port() + 1));
    assert_eq!(p[1], 201);
    assert_eq!(
        &p[8..12],
        &B_SSRC.to_be_bytes(),
        "the block names B's own SSRC"
    );
    assert!(
        contains(&p, b"@sipmask"),
        "{:?}",
        String::from_utf8_lossy(&p)
    );

    // A stranger sending to the caller's port reaches nobody.
    let stranger = UdpSocket::bind("127.0.0.4:0").await.expect("bind");
    stranger
        .send_to(&rtp(0x0bad_0bad, 1, b"spoofed"), c.to_sut_a)
        .await
        .expect("send");
    assert!(
        c.bm.recv(false).await.is_none(),
        "a stranger's packet was relayed"
    );

    let a_secrets: Vec<Vec<u8>> = vec![
        A.into(),
        b"127.0.0.2".to_vec(),
        A_SSRC.to_be_bytes().to_vec(),
        A_SSRC.to_string().into(),
        c.am.port().to_string().into(),
        b"baresip".to_vec(),
        c.d.call_id.clone().into(),
    ];
    let mut b_got: Vec<Vec<u8>> = c
        .callee
        .seen
        .iter()
        .map(|s| s.clone().into_bytes())
        .collect();
    b_got.extend(c.bm.seen.iter().cloned());
    assert_clean("the callee", &b_got, &a_secrets);
    let b_secrets: Vec<Vec<u8>> = vec![
        B.into(),
        b"127.0.0.3".to_vec(),
        B_SSRC.to_be_bytes().to_vec(),
        B_SSRC.to_string().into(),
        c.bm.port().to_string().into(),
        c.inv.msg.call_id.clone().into(),
    ];
    let mut a_got: Vec<Vec<u8>> = c
        .caller
        .seen
        .iter()
        .map(|s| s.clone().into_bytes())
        .collect();
    a_got.extend(c.am.seen.iter().cloned());
    assert_clean("the caller", &a_got, &b_secrets);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_and_resume_keep_the_relay_and_media_flows_again() {
    let mut c = call(|_| {}).await;
    // Hold: A sends a=sendonly; B sees sipmask's same address and sendonly.
    let hold = leaky_sdp(A, "127.0.0.2", c.am.port(), A_SSRC, "sendonly");
    c.caller
        .send(c.sut.addr, &c.d.request("INVITE", &hold))
        .await;
    let re = c.callee.expect_request("INVITE").await;
    let body = re.body();
    assert_eq!(media_addr(&body), c.to_sut_b, "{body}");
    assert!(body.contains("a=sendonly"), "{body}");
    let answer = leaky_sdp(B, "127.0.0.3", c.bm.port(), B_SSRC, "recvonly");
    c.callee
        .send(re.from, &re.reply(200, "", "", &answer))
        .await;
    let ok = c.caller.expect_response(200).await;
    assert_eq!(media_addr(&ok.body()), c.to_sut_a);
    c.caller.send(c.sut.addr, &c.d.ack(c.d.cseq)).await;
    c.callee.expect_request("ACK").await;
    // Resume.
    let resume = leaky_sdp(A, "127.0.0.2", c.am.port(), A_SSRC, "sendrecv");
    c.caller
        .send(c.sut.addr, &c.d.request("INVITE", &resume))
        .await;
    let re = c.callee.expect_request("INVITE").await;
    assert!(re.body().contains("a=sendrecv"));
    let answer = leaky_sdp(B, "127.0.0.3", c.bm.port(), B_SSRC, "sendrecv");
    c.callee
        .send(re.from, &re.reply(200, "", "", &answer))
        .await;
    c.caller.expect_response(200).await;
    c.caller.send(c.sut.addr, &c.d.ack(c.d.cseq)).await;
    c.am.rtp
        .send_to(&rtp(A_SSRC, 50, b"back again"), c.to_sut_a)
        .await
        .expect("send");
    let (p, _) = c.bm.recv(false).await.expect("media after resume");
    assert_eq!(&p[12..], b"back again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_call_is_ended_after_the_media_timeout() {
    let mut c = call(|cfg| cfg.media.timeout_secs = 2).await;
    // Media for a while keeps the call up...
    for seq in 0..3u16 {
        c.am.rtp
            .send_to(&rtp(A_SSRC, seq, b"x"), c.to_sut_a)
            .await
            .expect("send");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(c.callee.seen.iter().all(|m| !m.starts_with("BYE")));
    // ...silence ends it: BYE to both.
    let bye_b = c.callee.expect_request("BYE").await;
    c.callee
        .send(bye_b.from, &bye_b.reply(200, "", "", ""))
        .await;
    let bye_a = c.caller.expect_request("BYE").await;
    assert_eq!(bye_a.msg.call_id, c.d.call_id);
    let mut reason = String::new();
    for _ in 0..50 {
        if let Some(r) = operator_calls(c.sut.dir.path()).first() {
            reason = r.reason.clone();
            if !reason.is_empty() {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(reason, "no media", "the record says why");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_relay_off_addresses_pass_as_documented() {
    let c = call(|cfg| cfg.media.mode = sipmask::config::MediaMode::Off).await;
    assert_eq!(c.to_sut_b, SocketAddr::from(([127, 0, 0, 2], c.am.port())));
    assert!(!c.inv.body().contains(A), "the SDP is still rebuilt");
}
