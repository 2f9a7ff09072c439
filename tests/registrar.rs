//! The registrar over real UDP: app accounts register with digest
//! (SHA-256 and MD5, qop=auth) and are called at every contact they
//! registered (parallel forking, the losers CANCELled); they call out
//! after a 407 challenge as themselves, whatever From says; wrong
//! passwords, replayed nonces, stale nonces, too-brief and expired
//! registrations are refused; registrations survive a restart; the API
//! and metrics show them. Phones are on 127.0.0.5 and .6 (not trusted),
//! the trunk's callee on 127.0.0.3, trusted callers on 127.0.0.2.

mod common;

use std::time::Duration;

use common::phone::{credentials, param, Phone};
use common::*;

const A: &str = "13800000000";
const B: &str = "13900000000";
const X: &str = "17000000000";
const X2: &str = "17000000001";
const PW: &str = "alice-secret-1";

/// A server with account alice (the operator's), bindings (A, X, alice)
/// and (alice, X2, B), and the trunk's callee.
async fn server() -> (Sut, Ua) {
    let callee = Ua::bind("127.0.0.3").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), callee.addr);
    sipmask::cli::add_account(dir.path(), "sipmask", None, "alice", PW).expect("account");
    add(&cfg, axb(A, X, "sip:alice@example.com"));
    add(&cfg, axb("sip:alice@example.com", X2, B));
    (start(cfg, dir).await, callee)
}

async fn metric(sut: &Sut, name: &str) -> String {
    let api = sut.server.api_addr.expect("api");
    let m = http(api, "GET", "/metrics", None, None).await;
    m.body
        .lines()
        .find(|l| l.starts_with(name))
        .unwrap_or("")
        .to_string()
}

/// A trusted caller's INVITE from A to `x`.
async fn call(sut: &Sut, x: &str) -> (Ua, Dialog) {
    let caller = Ua::bind("127.0.0.2").await;
    let d = Dialog::new(caller.addr, sut.addr, A, x);
    caller.send(sut.addr, &d.invite()).await;
    (caller, d)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registered_account_receives_a_masked_call() {
    let (sut, _trunk) = server().await;
    let mut phone = Phone::new("127.0.0.5", "alice", PW, sut.addr).await;
    let ok = phone.register(600).await;
    assert_eq!(ok.code(), 200, "{}", ok.raw);
    let contact = ok.header("Contact").expect("contacts listed");
    assert!(
        contact.contains(&phone.contact()) && contact.contains("expires=600"),
        "{contact}"
    );
    assert!(ok.raw.contains(";received=127.0.0.5;rport="), "{}", ok.raw);
    assert_eq!(
        metric(&sut, "sipmask_registered_contacts").await,
        "sipmask_registered_contacts 1"
    );

    let (mut caller, _d) = call(&sut, X).await;
    let inv = phone.ua.expect_request("INVITE").await;
    assert!(
        inv.raw.starts_with(&format!(
            "INVITE {} SIP/2.0",
            phone.contact().trim_matches(['<', '>'])
        )),
        "{}",
        inv.raw
    );
    assert!(inv.msg.from.contains("+8617000000000"), "{}", inv.raw);
    for leak in [A, "Alice Secret", "AliceSoftphone", "127.0.0.2"] {
        assert!(
            !inv.raw.contains(leak),
            "{leak} reached the account's phone:\n{}",
            inv.raw
        );
    }
    let tag = "ph1";
    phone.ua.send(inv.from, &inv.reply(180, tag, "", "")).await;
    let contact = format!("Contact: <sip:alice@{}>\r\n", phone.ua.addr);
    phone
        .ua
        .send(
            inv.from,
            &inv.reply(200, tag, &contact, &sdp("alice", "127.0.0.5")),
        )
        .await;
    let ok = caller.expect_response(200).await;
    for leak in ["sip:alice", "127.0.0.5"] {
        assert!(
            !ok.raw.contains(leak),
            "{leak} reached the caller:\n{}",
            ok.raw
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_contacts_both_ring_and_the_loser_gets_cancel() {
    let (sut, _trunk) = server().await;
    let mut desk = Phone::new("127.0.0.5", "alice", PW, sut.addr).await;
    let mut mobile = Phone::new("127.0.0.6", "alice", PW, sut.addr).await;
    assert_eq!(desk.register(600).await.code(), 200);
    let both = mobile.register(600).await;
    assert_eq!(both.headers("Contact").len(), 2, "{}", both.raw);

    let (mut caller, _d) = call(&sut, X).await;
    let on_desk = desk.ua.expect_request("INVITE").await;
    let on_mobile = mobile.ua.expect_request("INVITE").await;
    assert_ne!(
        on_desk.msg.call_id, on_mobile.msg.call_id,
        "each fork is a dialog of its own"
    );
    desk.ua
        .send(on_desk.from, &on_desk.reply(180, "d", "", ""))
        .await;
    mobile
        .ua
        .send(on_mobile.from, &on_mobile.reply(180, "m", "", ""))
        .await;
    caller.expect_response(180).await;
    let contact = format!("Contact: <sip:alice@{}>\r\n", mobile.ua.addr);
    mobile
        .ua
        .send(
            on_mobile.from,
            &on_mobile.reply(200, "m", &contact, &sdp("alice", "127.0.0.6")),
        )
        .await;
    caller.expect_response(200).await;
    let cancel = desk.ua.expect_request("CANCEL").await;
    assert_eq!(cancel.msg.call_id, on_desk.msg.call_id);
    assert_eq!(
        cancel.header("Reason").as_deref(),
        Some("SIP;cause=200;text=\"Call completed elsewhere\"")
    );
    desk.ua
        .send(cancel.from, &cancel.reply(200, "d", "", ""))
        .await;
    desk.ua
        .send(on_desk.from, &on_desk.reply(487, "d", "", ""))
        .await;
    let ack = desk.ua.expect_request("ACK").await;
    assert_eq!(ack.msg.call_id, on_desk.msg.call_id);
    assert_eq!(ack.msg.cseq, on_desk.msg.cseq);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_with_no_contact_is_temporarily_unavailable() {
    let (sut, mut trunk) = server().await;
    let (mut caller, _d) = call(&sut, X).await;
    let r = caller.expect_response(480).await;
    assert!(
        r.raw.starts_with("SIP/2.0 480 Temporarily Unavailable"),
        "{}",
        r.raw
    );
    trunk.expect_silence(Duration::from_millis(200)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_replays_and_stale_nonces_are_refused() {
    let (sut, _trunk) = server().await;
    let mut phone = Phone::new("127.0.0.5", "alice", "not-the-password", sut.addr).await;
    let c = phone.contact();
    let r = phone.register_with(&c, 600, "MD5").await;
    assert_eq!(r.code(), 403, "{}", r.raw);
    // An unknown account gets the same answer: no guessing names.
    let mut ghost = Phone::new("127.0.0.5", "ghost", PW, sut.addr).await;
    assert_eq!(ghost.register(600).await.code(), 403);

    // A good registration, then the same request (nonce and nc) again.
    phone.password = PW.into();
    let m = phone.register_msg(&c, Some(600), None);
    phone.ua.send(sut.addr, &m).await;
    let ch = phone.ua.expect_response(401).await;
    let challenge = ch.headers("WWW-Authenticate")[1].clone();
    assert!(challenge.contains("algorithm=MD5"), "{challenge}");
    let uri = format!("sip:{}", sut.addr);
    let auth = credentials(&challenge, "alice", PW, "REGISTER", &uri, 1);
    let first = phone.register_msg(&c, Some(600), Some(&auth));
    phone.ua.send(sut.addr, &first).await;
    assert_eq!(phone.ua.recv().await.code(), 200);
    // Replayed under a new branch (so not a retransmission) with the same nc.
    let replay = phone.register_msg(&c, Some(600), Some(&auth));
    phone.ua.send(sut.addr, &replay).await;
    assert_eq!(
        phone.ua.recv().await.code(),
        401,
        "a replayed nc is refused"
    );
    // The next nc on the same nonce is fine.
    let auth2 = credentials(&challenge, "alice", PW, "REGISTER", &uri, 2);
    let next = phone.register_msg(&c, Some(600), Some(&auth2));
    phone.ua.send(sut.addr, &next).await;
    assert_eq!(phone.ua.recv().await.code(), 200);

    // Past the nonce's life (300 s): stale=true, so the phone answers anew.
    sut.clock.advance(Duration::from_secs(301));
    let auth3 = credentials(&challenge, "alice", PW, "REGISTER", &uri, 3);
    let late = phone.register_msg(&c, Some(600), Some(&auth3));
    phone.ua.send(sut.addr, &late).await;
    let stale = phone.ua.recv().await;
    assert_eq!(stale.code(), 401);
    let fresh = stale.headers("WWW-Authenticate")[0].clone();
    assert_eq!(param(&fresh, "stale").as_deref(), Some("true"), "{fresh}");
    assert_ne!(param(&fresh, "nonce"), param(&challenge, "nonce"));

    // Another account's AOR is not this one's to register.
    let mut other = Phone::new("127.0.0.5", "alice", PW, sut.addr).await;
    let bob_aor = other
        .register_msg(&c, Some(600), None)
        .replace("<sip:alice@", "<sip:bob@");
    other.ua.send(sut.addr, &bob_aor).await;
    let ch = other.ua.expect_response(401).await;
    let auth = credentials(
        &ch.headers("WWW-Authenticate")[0],
        "alice",
        PW,
        "REGISTER",
        &uri,
        1,
    );
    let m = other
        .register_msg(&c, Some(600), Some(&auth))
        .replace("<sip:alice@", "<sip:bob@");
    other.ua.send(sut.addr, &m).await;
    assert_eq!(other.ua.recv().await.code(), 403);
    assert_eq!(
        metric(&sut, "sipmask_digest_total{result=\"forbidden\"}").await,
        "sipmask_digest_total{result=\"forbidden\"} 3"
    );
    assert_eq!(
        metric(&sut, "sipmask_digest_total{result=\"replayed\"}").await,
        "sipmask_digest_total{result=\"replayed\"} 1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_bounds_removal_and_expired_registrations() {
    let (sut, _trunk) = server().await;
    let mut phone = Phone::new("127.0.0.5", "alice", PW, sut.addr).await;
    let brief = phone.register(10).await;
    assert_eq!(brief.code(), 423, "{}", brief.raw);
    assert_eq!(brief.header("Min-Expires").as_deref(), Some("60"));
    // Longer than the maximum: cut to it.
    let long = phone.register(99_999).await;
    assert!(
        long.header("Contact")
            .expect("contact")
            .contains("expires=3600"),
        "{}",
        long.raw
    );
    // `*` needs Expires: 0 and nothing else.
    let bad = phone.register_with("*", 600, "SHA-256").await;
    assert_eq!(bad.code(), 400, "{}", bad.raw);
    let gone = phone.register_with("*", 0, "SHA-256").await;
    assert_eq!(gone.code(), 200);
    assert!(gone.header("Contact").is_none(), "{}", gone.raw);
    // Registered for a minute, then the minute passes: nobody to call.
    assert_eq!(phone.register(60).await.code(), 200);
    sut.clock.advance(Duration::from_secs(61));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (mut caller, _d) = call(&sut, X).await;
    caller.expect_response(480).await;
    phone.ua.expect_silence(Duration::from_millis(200)).await;
    assert_eq!(
        metric(&sut, "sipmask_registered_contacts").await,
        "sipmask_registered_contacts 0"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_calls_out_as_itself_after_a_challenge() {
    let (sut, mut trunk) = server().await;
    let mut phone = Phone::new("127.0.0.5", "alice", PW, sut.addr).await;
    // From claims A, a number with a binding of its own: it counts for
    // nothing; the account is the caller.
    let d = Dialog::new(phone.ua.addr, sut.addr, A, X2);
    phone.ua.send(sut.addr, &d.invite()).await;
    let ch = phone.ua.expect_response(407).await;
    phone.ua.send(sut.addr, &d.ack_failure(&ch)).await;
    let challenge = ch.headers("Proxy-Authenticate")[0].clone();
    let uri = format!("sip:{X2}@{}", sut.addr);
    let auth = credentials(&challenge, "alice", PW, "INVITE", &uri, 1);
    let mut d2 = Dialog::new(phone.ua.addr, sut.addr, A, X2);
    d2.cseq = 2;
    let inv = d2.invite().replacen(
        "Max-Forwards: 70\r\n",
        &format!("Max-Forwards: 70\r\nProxy-Authorization: {auth}\r\n"),
        1,
    );
    phone.ua.send(sut.addr, &inv).await;
    let out = trunk.expect_request("INVITE").await;
    assert!(
        out.raw.starts_with(&format!("INVITE sip:+86{B}@")),
        "{}",
        out.raw
    );
    assert!(out.msg.from.contains("+8617000000001"), "{}", out.raw);
    for leak in ["alice", A, "Proxy-Authorization", "127.0.0.5"] {
        assert!(
            !out.raw.contains(leak),
            "{leak} reached the callee:\n{}",
            out.raw
        );
    }
    // The same INVITE with a wrong password is refused outright.
    let bad = credentials(&challenge, "alice", "wrong-password", "INVITE", &uri, 2);
    let d3 = Dialog::new(phone.ua.addr, sut.addr, A, X2);
    let inv = d3.invite().replacen(
        "Max-Forwards: 70\r\n",
        &format!("Max-Forwards: 70\r\nProxy-Authorization: {bad}\r\n"),
        1,
    );
    phone.ua.send(sut.addr, &inv).await;
    assert_eq!(phone.ua.expect_response(403).await.code(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_survive_a_restart_and_show_in_the_api() {
    let (sut, _trunk) = server().await;
    let mut phone = Phone::new("127.0.0.5", "alice", PW, sut.addr).await;
    assert_eq!(phone.register(600).await.code(), 200);
    let Sut { server: s, dir, .. } = sut;
    let mut cfg = config(dir.path(), "127.0.0.3:9".parse().expect("addr"));
    cfg.sip.listen = vec![s.addrs[0].to_string()];
    s.shutdown(Duration::from_millis(50)).await;
    let sut = start(cfg, dir).await;
    let (mut caller, _d) = call(&sut, X).await;
    let inv = phone.ua.expect_request("INVITE").await;
    phone
        .ua
        .send(inv.from, &inv.reply(486, "busy", "", ""))
        .await;
    caller.expect_response(486).await;

    // The operator's accounts are not a tenant's; a tenant's own are.
    let api = sut.server.api_addr.expect("api");
    let key = tenant(sut.dir.path(), "acme");
    let auth = key.as_str();
    let r = http(api, "GET", "/v1/accounts", Some(auth), None).await;
    assert_eq!(r.json()["items"], serde_json::json!([]));
    let body = serde_json::json!({ "name": "bob", "password": "bob-secret-1" });
    let r = http(
        api,
        "POST",
        "/v1/accounts",
        Some(auth),
        Some(&body.to_string()),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(r.json()["aor"]
        .as_str()
        .expect("aor")
        .starts_with("sip:bob@"));
    assert!(!r.body.contains("bob-secret-1"));
    let taken = serde_json::json!({ "name": "alice", "password": "whatever-1" });
    let r = http(
        api,
        "POST",
        "/v1/accounts",
        Some(auth),
        Some(&taken.to_string()),
    )
    .await;
    assert_eq!(r.status, 409, "{}", r.body);
    let mut bob = Phone::new("127.0.0.6", "bob", "bob-secret-1", sut.addr).await;
    assert_eq!(bob.register(600).await.code(), 200);
    let r = http(api, "GET", "/v1/registrations", Some(auth), None).await;
    let items = r.json()["items"].clone();
    assert_eq!(items.as_array().map(Vec::len), Some(1), "{}", r.body);
    assert_eq!(items[0]["account"], "bob");
    assert_eq!(items[0]["source"], bob.ua.addr.to_string());
    let pw = serde_json::json!({ "password": "bob-secret-2" });
    let r = http(
        api,
        "PUT",
        "/v1/accounts/bob/password",
        Some(auth),
        Some(&pw.to_string()),
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.body);
    bob.password = "bob-secret-2".into();
    assert_eq!(bob.register(600).await.code(), 200);
    let r = http(api, "DELETE", "/v1/accounts/alice", Some(auth), None).await;
    assert_eq!(r.status, 404, "another tenant's account is not found");
    let r = http(api, "DELETE", "/v1/accounts/bob", Some(auth), None).await;
    assert_eq!(r.status, 204);
    assert_eq!(bob.register(600).await.code(), 403);
}

/// Reads one SIP message from a TCP stream (headers and Content-Length body).
async fn read_tcp(s: &mut tokio::net::TcpStream, buf: &mut Vec<u8>) -> String {
    use tokio::io::AsyncReadExt;
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                let msg: Vec<u8> = buf.drain(..end + 4 + len).collect();
                let text = String::from_utf8_lossy(&msg).to_string();
                if !text.starts_with("SIP/2.0 100 ") {
                    return text;
                }
                continue;
            }
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut chunk))
            .await
            .expect("a message in time")
            .expect("read");
        assert!(n > 0, "connection closed");
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tcp_contact_is_reached_over_its_connection_while_it_is_open() {
    use tokio::io::AsyncWriteExt;
    let (sut, _trunk) = server().await;
    let sock = tokio::net::TcpSocket::new_v4().expect("socket");
    sock.bind("127.0.0.5:0".parse().expect("addr"))
        .expect("bind");
    let mut s = sock.connect(sut.addr).await.expect("connect");
    let me = s.local_addr().expect("addr");
    let mut buf = Vec::new();
    // The contact names a port nobody listens on: calls must come over
    // the connection, not to it.
    let register = |cseq: u32, auth: Option<&str>| {
        let mut h = format!(
            "REGISTER sip:{srv} SIP/2.0\r\nVia: SIP/2.0/TCP {me};branch=z9hG4bKt{cseq}\r\n\
             From: <sip:alice@{srv}>;tag=tt\r\nTo: <sip:alice@{srv}>\r\nCall-ID: tcp-reg\r\n\
             CSeq: {cseq} REGISTER\r\nContact: <sip:alice@127.0.0.5:9;transport=tcp>\r\n\
             Expires: 600\r\nMax-Forwards: 70\r\n",
            srv = sut.addr
        );
        if let Some(a) = auth {
            h.push_str(&format!("Authorization: {a}\r\n"));
        }
        h + "Content-Length: 0\r\n\r\n"
    };
    s.write_all(register(1, None).as_bytes())
        .await
        .expect("write");
    let ch = read_tcp(&mut s, &mut buf).await;
    assert!(ch.starts_with("SIP/2.0 401"), "{ch}");
    let challenge = ch
        .lines()
        .find_map(|l| l.strip_prefix("WWW-Authenticate: "))
        .expect("challenge")
        .to_string();
    let auth = credentials(
        &challenge,
        "alice",
        PW,
        "REGISTER",
        &format!("sip:{}", sut.addr),
        1,
    );
    s.write_all(register(2, Some(&auth)).as_bytes())
        .await
        .expect("write");
    let ok = read_tcp(&mut s, &mut buf).await;
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
    let (mut caller, _d) = call(&sut, X).await;
    let inv = read_tcp(&mut s, &mut buf).await;
    assert!(
        inv.starts_with("INVITE sip:alice@127.0.0.5:9;transport=tcp SIP/2.0"),
        "{inv}"
    );
    assert!(inv.contains("SIP/2.0/TCP"), "{inv}");
    let parsed = sipmask::sip::Msg::parse(inv.as_bytes(), false).expect("parses");
    let vias: String = parsed
        .vias
        .iter()
        .map(|v| format!("Via: {v}\r\n"))
        .collect();
    let busy = format!(
        "SIP/2.0 486 Busy Here\r\n{vias}From: {}\r\nTo: {};tag=tb\r\nCall-ID: {}\r\nCSeq: {} INVITE\r\nContent-Length: 0\r\n\r\n",
        parsed.from, parsed.to, parsed.call_id, parsed.cseq
    );
    s.write_all(busy.as_bytes()).await.expect("write");
    caller.expect_response(486).await;
    // The connection closes: the contact goes with it.
    drop(s);
    let mut gone = false;
    for _ in 0..100 {
        if metric(&sut, "sipmask_registered_contacts").await == "sipmask_registered_contacts 0" {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gone, "the contact outlived its connection");
    let (mut caller, _d) = call(&sut, X).await;
    caller.expect_response(480).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_removed_from_the_command_line_is_not_rung_and_its_name_inherits_nothing() {
    let (sut, _trunk) = server().await;
    let mut phone = Phone::new("127.0.0.5", "alice", PW, sut.addr).await;
    assert_eq!(phone.register(600).await.code(), 200);
    sipmask::cli::remove_account(sut.dir.path(), "alice").expect("removed");
    // The running server applies the command's change (it polls every
    // 250 ms): alice's phone is not rung any more.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let (mut caller, _d) = call(&sut, X).await;
    let r = caller.recv().await;
    assert!(r.code() >= 400, "{}", r.raw);
    phone.ua.expect_silence(Duration::from_millis(300)).await;
    // A new account of the same name, at once (within one poll): the
    // previous owner's phone is not its phone.
    sipmask::cli::add_account(sut.dir.path(), "sipmask", None, "alice", "another-owner-2")
        .expect("added again");
    tokio::time::sleep(Duration::from_millis(800)).await;
    let (mut caller, _d) = call(&sut, X).await;
    let r = caller.expect_response(480).await;
    assert_eq!(r.code(), 480);
    phone.ua.expect_silence(Duration::from_millis(300)).await;
    assert_eq!(
        metric(&sut, "sipmask_registered_contacts").await,
        "sipmask_registered_contacts 0"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_removed_and_added_again_within_one_poll_inherits_nothing() {
    let (sut, _trunk) = server().await;
    let mut phone = Phone::new("127.0.0.5", "alice", PW, sut.addr).await;
    assert_eq!(phone.register(600).await.code(), 200);
    sipmask::cli::remove_account(sut.dir.path(), "alice").expect("removed");
    sipmask::cli::add_account(sut.dir.path(), "sipmask", None, "alice", "another-owner-2")
        .expect("added again");
    tokio::time::sleep(Duration::from_millis(800)).await;
    let (mut caller, _d) = call(&sut, X).await;
    caller.expect_response(480).await;
    phone.ua.expect_silence(Duration::from_millis(300)).await;
}

/// A Path (RFC 3327) is honoured only from a trusted edge proxy: a phone
/// that writes one itself would have our INVITEs sent wherever it likes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_from_an_untrusted_phone_is_ignored() {
    let (sut, _trunk) = server().await;
    let mut phone = Phone::new("127.0.0.5", "alice", PW, sut.addr).await;
    let forged = "Path: <sip:198.51.100.7;lr>\r\nSupported: path\r\n";
    let ok = phone.register_adding(forged).await;
    assert_eq!(ok.code(), 200, "{}", ok.raw);
    assert!(ok.header("Path").is_none(), "{}", ok.raw);
    let (_caller, _d) = call(&sut, X).await;
    let inv = phone.ua.expect_request("INVITE").await;
    assert!(inv.header("Route").is_none(), "{}", inv.raw);
}
