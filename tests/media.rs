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

/// An RTP packet of payload type `pt` as a plain phone sends it (no CSRC).
fn voice(pt: u8, ssrc: u32, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = rtp(ssrc, seq, payload);
    p[0] = 0x80;
    p[1] = pt;
    p.drain(12..16);
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

/// A's INVITE of dialog `d` offering the softphone's leaky SDP with RTP
/// on `rtp_port`.
fn leaky_invite(d: &Dialog, rtp_port: u16) -> String {
    let offer = leaky_sdp(A, "127.0.0.2", rtp_port, A_SSRC, "sendrecv");
    with_body(&d.invite(), &sdp(A, "127.0.0.2"), &offer)
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

/// A server with the binding (A, X, B) and a `tweak`ed config, the
/// caller and the callee (the trunk) with their media sockets.
struct Parties {
    sut: Sut,
    caller: Ua,
    callee: Ua,
    am: Media,
    bm: Media,
}

async fn parties(tweak: impl FnOnce(&mut sipmask::config::Config)) -> Parties {
    let caller = Ua::bind("127.0.0.2").await;
    let callee = Ua::bind("127.0.0.3").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(dir.path(), callee.addr);
    tweak(&mut cfg);
    add(&cfg, axb(A, X, B));
    let sut = start(cfg, dir).await;
    let (am, bm) = (
        Media::bind("127.0.0.2").await,
        Media::bind("127.0.0.3").await,
    );
    Parties {
        sut,
        caller,
        callee,
        am,
        bm,
    }
}

/// The callee answers `inv` 200 with `answer`, the caller ACKs: where the
/// caller was told to send its media.
async fn answer_and_ack(
    caller: &mut Ua,
    callee: &mut Ua,
    sut: SocketAddr,
    inv: &Sip,
    d: &mut Dialog,
    answer: &str,
) -> SocketAddr {
    let contact = format!("Contact: <sip:bob@{}>\r\n", callee.addr);
    callee
        .send(inv.from, &inv.reply(200, "bobtag", &contact, answer))
        .await;
    let ok = caller.expect_response(200).await;
    d.confirm(&ok);
    caller.send(sut, &d.ack(1)).await;
    callee.expect_request("ACK").await;
    media_addr(&ok.body())
}

async fn call(tweak: impl FnOnce(&mut sipmask::config::Config)) -> Call {
    let Parties {
        sut,
        mut caller,
        mut callee,
        am,
        bm,
    } = parties(tweak).await;
    let mut d = Dialog::new(caller.addr, sut.addr, A, X);
    caller.send(sut.addr, &leaky_invite(&d, am.port())).await;
    let inv = callee.expect_request("INVITE").await;
    let to_sut_b = media_addr(&inv.body());
    let answer = leaky_sdp(B, "127.0.0.3", bm.port(), B_SSRC, "sendrecv");
    let to_sut_a = answer_and_ack(&mut caller, &mut callee, sut.addr, &inv, &mut d, &answer).await;
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
        c.inv.msg.call_id.as_bytes().to_vec(),
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

/// A tone of one level: every sample of the G.711 frame the same.
fn level(pt: u8, v: i16) -> Vec<u8> {
    let b = if pt == 8 {
        audio_codec_algorithms::encode_alaw(v)
    } else {
        audio_codec_algorithms::encode_ulaw(v)
    };
    vec![b; 160]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_binding_yields_a_stereo_wav_one_party_per_channel_through_the_api() {
    use serde_json::json;
    let (mut api, keys) = common::api::api_with_tenants(&["rival"], |_| {}).await;
    api.pool(&[X]).await;
    let r = api
        .req(
            "POST",
            "/v1/bindings",
            Some(json!({ "a": A, "b": B, "conditions": { "record": true, "announce": false } })),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["conditions"]["record"], true);
    assert_eq!(r.json()["conditions"]["announce"], false);
    let x = r.json()["x"].as_str().expect("x").to_string();
    let (mut am, mut bm) = (
        Media::bind("127.0.0.2").await,
        Media::bind("127.0.0.3").await,
    );
    let mut d = Dialog::new(api.caller.addr, api.sut.addr, A, &x);
    api.caller
        .send(api.sut.addr, &leaky_invite(&d, am.port()))
        .await;
    let inv = api.callee.expect_request("INVITE").await;
    let to_b = media_addr(&inv.body());
    let contact = format!("Contact: <sip:bob@{}>\r\n", api.callee.addr);
    let answer = leaky_sdp(B, "127.0.0.3", bm.port(), B_SSRC, "sendrecv");
    api.callee
        .send(inv.from, &inv.reply(200, "bobtag", &contact, &answer))
        .await;
    let ok = api.caller.expect_response(200).await;
    let to_a = media_addr(&ok.body());
    d.confirm(&ok);
    api.caller.send(api.sut.addr, &d.ack(1)).await;
    // One second each way, paced like a phone: A loud in PCMU, B quieter
    // in PCMA.
    for seq in 0..50u16 {
        let p = voice(0, A_SSRC, seq, &level(0, 8000));
        am.rtp.send_to(&p, to_a).await.expect("send");
        let q = voice(8, B_SSRC, seq, &level(8, -4000));
        bm.rtp.send_to(&q, to_b).await.expect("send");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(bm.recv(false).await.is_some() && am.recv(false).await.is_some());
    api.caller.send(api.sut.addr, &d.request("BYE", "")).await;
    let bye = api.callee.expect_request("BYE").await;
    api.callee.send(bye.from, &bye.reply(200, "", "", "")).await;

    // The record names the recording; the download is a stereo WAV.
    let mut wav = None;
    for _ in 0..50 {
        let page = api.req("GET", "/v1/calls", None).await.json();
        let rec = page["items"][0].clone();
        if let Some(url) = rec["recording"].as_str() {
            let got = api.req("GET", url, None).await;
            if got.status == 200 {
                assert_eq!(got.header("content-type"), Some("audio/wav"));
                wav = Some(got);
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let wav = wav.expect("the recording is downloadable");
    // The test client reads bodies as text: fetch the bytes from the file
    // the API served (same length) to decode it.
    let dir = api.sut.dir.path().join("recordings");
    let file = std::fs::read_dir(&dir)
        .expect("recordings dir")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "wav"))
        .expect("a wav");
    assert_eq!(
        wav.header("content-length")
            .and_then(|l| l.parse::<u64>().ok()),
        std::fs::metadata(&file).ok().map(|m| m.len())
    );
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    assert!(!name.contains(A) && !name.contains(B), "{name}");
    let mut rd = hound::WavReader::open(&file).expect("wav");
    let spec = rd.spec();
    assert_eq!(
        (spec.channels, spec.sample_rate, spec.bits_per_sample),
        (2, 8000, 16)
    );
    let s: Vec<i16> = rd.samples::<i16>().map(|s| s.expect("sample")).collect();
    let secs = s.len() as f64 / 2.0 / 8000.0;
    assert!((0.9..1.5).contains(&secs), "{secs} s");
    let left: Vec<i16> = s.iter().step_by(2).copied().collect();
    let right: Vec<i16> = s.iter().skip(1).step_by(2).copied().collect();
    let loud = |ch: &[i16], lo: i16, hi: i16| ch.iter().filter(|v| (lo..=hi).contains(*v)).count();
    assert!(loud(&left, 7000, 9000) > 7000, "the caller on the left");
    assert!(loud(&right, -4500, -3500) > 7000, "the callee on the right");
    assert_eq!(
        loud(&left, -4500, -3500),
        0,
        "the callee is not on the left"
    );
    // Another tenant cannot fetch it.
    let rec = api.req("GET", "/v1/calls", None).await.json()["items"][0].clone();
    let url = rec["recording"].as_str().expect("url").to_string();
    assert_eq!(api.req_as(&keys[0], "GET", &url, None).await.status, 404);
    let none = api.req("GET", "/v1/calls/999999/recording", None).await;
    assert_eq!(none.status, 404);
}

/// A prompt file: `secs` of a loud square wave, 8 kHz mono 16-bit.
fn prompt_wav(dir: &std::path::Path, name: &str, secs: f64) -> String {
    let path = dir.join(name);
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&path, spec).expect("wav");
    for i in 0..(secs * 8000.0) as usize {
        w.write_sample(if (i / 10) % 2 == 0 { 12000i16 } else { -12000 })
            .expect("sample");
    }
    w.finalize().expect("finalize");
    path.display().to_string()
}

/// Mean absolute level of the G.711 audio in a packet.
fn level_of(p: &[u8]) -> f64 {
    let pt = p[1] & 0x7f;
    let s: Vec<f64> = p[12..]
        .iter()
        .map(|b| {
            f64::from(if pt == 8 {
                audio_codec_algorithms::decode_alaw(*b)
            } else {
                audio_codec_algorithms::decode_ulaw(*b)
            })
            .abs()
        })
        .collect();
    s.iter().sum::<f64>() / s.len().max(1) as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_caller_hears_the_announcement_before_the_callee_and_the_record_says_so() {
    let files = tempfile::tempdir().expect("tempdir");
    let wav = prompt_wav(files.path(), "protected.wav", 0.6);
    let Parties {
        sut,
        mut caller,
        mut callee,
        mut am,
        bm,
    } = parties(|cfg| cfg.media.announcement = wav).await;
    let mut d = Dialog::new(caller.addr, sut.addr, A, X);
    caller.send(sut.addr, &leaky_invite(&d, am.port())).await;
    // Early media of our own: 183 with our address and one G.711 codec.
    let early = caller.expect_response(183).await;
    let body = early.body();
    let to_a = media_addr(&body);
    assert_eq!(to_a.ip(), sut.addr.ip(), "{body}");
    assert!(
        body.contains("m=audio") && body.contains("a=rtpmap:0 PCMU/8000"),
        "{body}"
    );
    assert!(!body.contains(A) && !body.contains("127.0.0.2"), "{body}");
    // The callee answers at once and talks; the caller hears the prompt
    // first, then the callee.
    let inv = callee.expect_request("INVITE").await;
    let to_b = media_addr(&inv.body());
    let contact = format!("Contact: <sip:bob@{}>\r\n", callee.addr);
    let answer = leaky_sdp(B, "127.0.0.3", bm.port(), B_SSRC, "sendrecv");
    callee
        .send(inv.from, &inv.reply(200, "bobtag", &contact, &answer))
        .await;
    let ok = caller.expect_response(200).await;
    assert_eq!(
        media_addr(&ok.body()),
        to_a,
        "the same port as the early media"
    );
    d.confirm(&ok);
    caller.send(sut.addr, &d.ack(1)).await;
    let talk = tokio::spawn(async move {
        for seq in 0..75u16 {
            let p = voice(0, B_SSRC, seq, &level(0, 300));
            let _ = bm.rtp.send_to(&p, to_b).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let mut heard = Vec::new();
    while let Some((p, from)) = am.recv(false).await {
        assert_eq!(from, to_a);
        heard.push(p);
        if heard.len() >= 60 {
            break;
        }
    }
    talk.await.expect("talk");
    let ssrc = |p: &Vec<u8>| u32::from_be_bytes([p[8], p[9], p[10], p[11]]);
    let prompt_ssrc = ssrc(&heard[0]);
    let prompt: Vec<_> = heard
        .iter()
        .take_while(|p| ssrc(p) == prompt_ssrc)
        .collect();
    assert!(
        (28..=32).contains(&prompt.len()),
        "0.6 s of prompt: {} packets",
        prompt.len()
    );
    assert!(
        prompt.iter().all(|p| level_of(p) > 8000.0),
        "the prompt is loud"
    );
    assert_ne!(
        heard[0][1] & 0x80,
        0,
        "the prompt starts with the marker bit"
    );
    let rest = &heard[prompt.len()..];
    assert!(!rest.is_empty() && rest.iter().all(|p| ssrc(p) != prompt_ssrc));
    assert!(
        rest.iter().all(|p| level_of(p) < 1000.0),
        "then the callee, quietly"
    );
    for _ in 0..50 {
        if operator_calls(sut.dir.path())
            .first()
            .is_some_and(|r| r.announced)
        {
            return;
        }
        caller.send(sut.addr, &d.request("BYE", "")).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the record never said the call was announced");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_parties_hear_the_warning_before_the_maximum_call_length() {
    let files = tempfile::tempdir().expect("tempdir");
    let wav = prompt_wav(files.path(), "warning.wav", 0.3);
    let mut c = call(|cfg| {
        cfg.media.warning = wav;
        cfg.media.warning_secs = 60;
        cfg.defaults.max_call_secs = 90;
    })
    .await;
    // Nothing yet; 30 s in (the server's clock), the warning plays to both.
    assert!(c.am.recv(false).await.is_none());
    c.sut.clock.advance(Duration::from_secs(31));
    let (pa, _) =
        c.am.recv(false)
            .await
            .expect("the caller hears the warning");
    let (pb, _) =
        c.bm.recv(false)
            .await
            .expect("the callee hears the warning");
    assert!(level_of(&pa) > 8000.0 && level_of(&pb) > 8000.0);
    assert!(
        c.callee.seen.iter().all(|m| !m.starts_with("BYE")),
        "the call goes on"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_caller_hears_the_refusal_prompt_then_gets_the_status() {
    let files = tempfile::tempdir().expect("tempdir");
    let wav = prompt_wav(files.path(), "refused.wav", 0.4);
    let Parties {
        sut,
        mut caller,
        mut callee,
        mut am,
        ..
    } = parties(|cfg| cfg.media.refusal = wav).await;
    // B is not allowed to call X as A's binding is (A, X, B): B dials X
    // from a number the binding does not know.
    let d = Dialog::new(caller.addr, sut.addr, "13700000000", X);
    let offer = leaky_sdp("13700000000", "127.0.0.2", am.port(), A_SSRC, "sendrecv");
    caller
        .send(
            sut.addr,
            &with_body(&d.invite(), &sdp("13700000000", "127.0.0.2"), &offer),
        )
        .await;
    let early = caller.expect_response(183).await;
    let to_a = media_addr(&early.body());
    let mut packets = 0;
    while let Some((p, from)) = am.recv(false).await {
        assert_eq!(from, to_a);
        assert!(level_of(&p) > 8000.0);
        packets += 1;
        if packets == 20 {
            break;
        }
    }
    assert_eq!(packets, 20, "0.4 s of prompt");
    let last = caller.recv().await;
    assert!(last.code() >= 400, "then the refusal:\n{}", last.raw);
    assert_eq!(
        last.msg.to_tag, early.msg.to_tag,
        "in the same early dialog"
    );
    callee.expect_silence(Duration::from_millis(100)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sipp_call_streaming_rtp_is_relayed_both_ways_and_only_from_sipmask() {
    let uas_port = free_port("127.0.0.3");
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(
        dir.path(),
        format!("127.0.0.3:{uas_port}").parse().expect("addr"),
    );
    add(&cfg, axb(A, X, B));
    let sut = start(cfg, dir).await;
    let (a_mp, b_mp) = (free_port("127.0.0.2") & !1, free_port("127.0.0.3") & !1);
    // What the callee receives on its media port, captured.
    let capture = common::capture::Capture::start(&format!(
        "udp and dst host 127.0.0.3 and dst portrange {b_mp}-{}",
        b_mp + 1
    ));
    let sipp = Sipp::new();
    // One second of a loud tone as raw mu-law for SIPp's rtp_stream.
    let tone: Vec<u8> = (0..8000)
        .map(|i| audio_codec_algorithms::encode_ulaw(if (i / 10) % 2 == 0 { 9000 } else { -9000 }))
        .collect();
    sipp.file("voice.ulaw", &tone);
    let b_mp_s = b_mp.to_string();
    let callee = sipp.uas_with(uas_port, "uas.xml", false, &["-rtp_echo", "-mp", &b_mp_s]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let a_mp_s = a_mp.to_string();
    let caller = sipp.uac_with(sut.addr, "uac_rtp.xml", (A, X), false, &["-mp", &a_mp_s]);
    sipp_done(caller, "SIPp caller").await;
    sipp_done(callee, "SIPp callee").await;
    let got = capture.stop();
    assert!(got.len() >= 40, "the callee got {} RTP packets", got.len());
    for d in &got {
        assert_eq!(d.src.ip(), sut.addr.ip(), "from sipmask only: {d:?}");
        assert!(!contains(&d.payload, b"127.0.0.2") && !contains(&d.payload, A.as_bytes()));
    }
    // The echo came back through the relay too.
    let api = sut.server.api_addr.expect("api");
    let m = http(api, "GET", "/metrics", None, None).await.body;
    let relayed: u64 = m
        .lines()
        .find_map(|l| l.strip_prefix("sipmask_media_packets_total{kind=\"rtp\"} "))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(
        relayed >= 2 * got.len() as u64 - 4,
        "relayed {relayed} for {} each way",
        got.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callees_early_media_reaches_the_caller_through_the_relay() {
    let Parties {
        sut,
        mut caller,
        mut callee,
        mut am,
        mut bm,
    } = parties(|_| {}).await;
    let d = Dialog::new(caller.addr, sut.addr, A, X);
    caller.send(sut.addr, &leaky_invite(&d, am.port())).await;
    let inv = callee.expect_request("INVITE").await;
    let to_b = media_addr(&inv.body());
    // A ringback tone in a 183 with SDP, before any answer.
    let contact = format!("Contact: <sip:bob@{}>\r\n", callee.addr);
    let early = leaky_sdp(B, "127.0.0.3", bm.port(), B_SSRC, "sendrecv");
    callee
        .send(inv.from, &inv.reply(183, "bobtag", &contact, &early))
        .await;
    let progress = caller.expect_response(183).await;
    let to_a = media_addr(&progress.body());
    assert_eq!(to_a.ip(), sut.addr.ip(), "{}", progress.body());
    assert!(!progress.body().contains(B) && !progress.body().contains("127.0.0.3"));
    bm.rtp
        .send_to(&rtp(B_SSRC, 1, b"ringback"), to_b)
        .await
        .expect("send");
    let (p, from) = am
        .recv(false)
        .await
        .expect("early media reaches the caller");
    assert_eq!(from, to_a);
    assert!(p.ends_with(b"ringback"));
    assert_ne!(&p[8..12], &B_SSRC.to_be_bytes());
    // The caller's microphone reaches nobody while the callee rings...
    for seq in 1..=3u16 {
        am.rtp
            .send_to(&rtp(A_SSRC, seq, b"caller before the answer"), to_a)
            .await
            .expect("send");
    }
    assert!(
        bm.recv(false).await.is_none(),
        "the ringing callee heard the caller"
    );
    // ...and from the answer on, it does.
    callee
        .send(inv.from, &inv.reply(200, "bobtag", &contact, &early))
        .await;
    caller.expect_response(200).await;
    am.rtp
        .send_to(&rtp(A_SSRC, 4, b"caller after the answer"), to_a)
        .await
        .expect("send");
    let (p, _) = bm.recv(false).await.expect("answered: the callee hears");
    assert!(p.ends_with(b"caller after the answer"));
}

/// A counter of the server's /metrics.
async fn metric(sut: &Sut, name: &str) -> u64 {
    let api = sut.server.api_addr.expect("api");
    let m = http(api, "GET", "/metrics", None, None).await;
    m.body
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_sent_no_sip_cannot_take_a_calls_media() {
    let Parties {
        sut,
        mut caller,
        mut callee,
        mut am,
        mut bm,
    } = parties(|_| {}).await;
    let mut d = Dialog::new(caller.addr, sut.addr, A, X);
    caller.send(sut.addr, &leaky_invite(&d, am.port())).await;
    let inv = callee.expect_request("INVITE").await;
    let to_b = media_addr(&inv.body());
    let contact = format!("Contact: <sip:bob@{}>\r\n", callee.addr);
    callee
        .send(inv.from, &inv.reply(180, "bobtag", &contact, ""))
        .await;
    caller.expect_response(180).await;
    // The spray, while the callee rings: a host that sent no SIP, from an
    // address of neither party, at the port facing the callee.
    let mut spray = Media::bind("127.0.0.9").await;
    for seq in 0..20u16 {
        spray
            .rtp
            .send_to(&rtp(0x5eed_5eed, seq, b"spray"), to_b)
            .await
            .expect("send");
    }
    // The callee is behind NAT: its SDP names a private address; its
    // media comes from its signalling address, from another port.
    let answer = leaky_sdp(B, "10.11.12.13", 40000, B_SSRC, "sendrecv");
    let to_a = answer_and_ack(&mut caller, &mut callee, sut.addr, &inv, &mut d, &answer).await;
    // Both ports sprayed before either party sends a packet.
    for seq in 20..40u16 {
        for to in [to_a, to_b] {
            spray
                .rtp
                .send_to(&rtp(0x5eed_5eed, seq, b"spray"), to)
                .await
                .expect("send");
        }
    }
    // The parties talk; the callee from its NAT address.
    for seq in 1..=5u16 {
        am.rtp
            .send_to(&rtp(A_SSRC, seq, b"caller voice"), to_a)
            .await
            .expect("send");
        bm.rtp
            .send_to(&rtp(B_SSRC, seq, b"callee voice"), to_b)
            .await
            .expect("send");
        let (p, _) = am.recv(false).await.expect("the caller hears the callee");
        assert!(p.ends_with(b"callee voice"), "{p:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Once latched, the callee hears the caller (its first packets went
    // to the private address it described, which nobody has).
    am.rtp
        .send_to(&rtp(A_SSRC, 6, b"caller voice"), to_a)
        .await
        .expect("send");
    let (p, from) = bm.recv(false).await.expect("the callee hears the caller");
    assert!(p.ends_with(b"caller voice"));
    assert_eq!(from, to_b);
    // More spray after the latch changes nothing either.
    for to in [to_a, to_b] {
        spray
            .rtp
            .send_to(&rtp(0x5eed_5eed, 99, b"spray"), to)
            .await
            .expect("send");
    }
    assert!(spray.recv(false).await.is_none(), "the stranger got media");
    assert!(am
        .seen
        .iter()
        .chain(&bm.seen)
        .all(|p| !p.ends_with(b"spray")));
    assert!(
        metric(&sut, "sipmask_rtp_foreign_total").await >= 60,
        "the stranger's packets are counted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_held_with_sendonly_is_not_ended_by_the_media_timeout() {
    // baresip and Linphone hold with a=sendonly (answered recvonly) and then
    // send nothing: that is a hold (RFC 3264 §8.4), not a dead call.
    let mut c = call(|cfg| cfg.media.timeout_secs = 1).await;
    let hold = leaky_sdp(A, "127.0.0.2", c.am.port(), A_SSRC, "sendonly");
    c.caller
        .send(c.sut.addr, &c.d.request("INVITE", &hold))
        .await;
    let re = c.callee.expect_request("INVITE").await;
    let answer = leaky_sdp(B, "127.0.0.3", c.bm.port(), B_SSRC, "recvonly");
    c.callee
        .send(re.from, &re.reply(200, "", "", &answer))
        .await;
    c.caller.expect_response(200).await;
    c.caller.send(c.sut.addr, &c.d.ack(c.d.cseq)).await;
    c.callee.expect_request("ACK").await;
    // Three timeouts of silence: no BYE to either.
    c.callee.expect_silence(Duration::from_secs(3)).await;
    c.caller.expect_silence(Duration::from_millis(200)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_whose_ports_cannot_all_be_taken_is_refused_before_anyone_rings() {
    // Room for one pair: the call needs two (facing each party).
    let mut lo = free_port("127.0.0.1");
    lo -= lo % 2;
    let Parties {
        sut,
        mut caller,
        mut callee,
        am,
        ..
    } = parties(|cfg| {
        cfg.media.port_min = lo;
        cfg.media.port_max = lo + 1;
    })
    .await;
    let d = Dialog::new(caller.addr, sut.addr, A, X);
    caller.send(sut.addr, &leaky_invite(&d, am.port())).await;
    let r = caller.recv().await;
    assert_eq!(r.code(), 503, "{}", r.raw);
    callee.expect_silence(Duration::from_millis(300)).await;
    // Recorded as such, and nothing charged to the binding.
    let mut record = None;
    for _ in 0..50 {
        record = operator_calls(sut.dir.path()).into_iter().next();
        if record.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let record = record.expect("a call record");
    assert_eq!(
        (record.result, record.reason.as_str()),
        (503, "no media ports")
    );
    let mut out = Vec::new();
    sipmask::cli::list(sut.dir.path(), &mut out).expect("list");
    let out = String::from_utf8_lossy(&out);
    let row = out.lines().nth(1).expect("the binding");
    assert_eq!(row.split('\t').nth(4), Some("0"), "no use charged: {out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_opens_a_few_pairs_at_start_and_more_as_calls_need_them() {
    let lo = (free_port("127.0.0.1") & !1).min(60000);
    let Parties {
        sut,
        mut caller,
        mut callee,
        am,
        ..
    } = parties(|cfg| {
        cfg.media.warm_pairs = 8;
        cfg.media.port_min = lo;
        cfg.media.port_max = lo + 999;
    })
    .await;
    // Pairs resting, once at least `n` are (or two seconds passed).
    let sut = &sut;
    let resting = |n: u64| async move {
        let mut open = 0;
        for _ in 0..40 {
            open = metric(sut, "sipmask_media_slots_resting").await;
            if open >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        open
    };
    assert_eq!(
        resting(8).await,
        8,
        "warm_pairs at start, not the whole range"
    );
    // Three calls take six pairs: fewer than half are ready, so as many
    // again open in the background.
    for i in 0..3 {
        let d = Dialog::new(caller.addr, sut.addr, A, X);
        caller.send(sut.addr, &leaky_invite(&d, am.port())).await;
        let inv = callee.expect_request("INVITE").await;
        let contact = format!("Contact: <sip:bob@{}>\r\n", callee.addr);
        let answer = leaky_sdp(B, "127.0.0.3", 40000 + i * 2, B_SSRC, "sendrecv");
        callee
            .send(inv.from, &inv.reply(200, "bob", &contact, &answer))
            .await;
        caller.expect_response(200).await;
    }
    assert_eq!(resting(10).await, 10, "two left and eight more");
}
