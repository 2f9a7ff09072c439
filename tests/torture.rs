//! The situations of RFC 4475 (SIP torture test messages), written from
//! its text as messages of our own, sent over real UDP to a running
//! server, each with the answer the RFC asks for: what is a valid token,
//! scheme or version is answered (501, 416, 505, 420), what is malformed
//! gets 400, and nothing crashes or goes unanswered.

mod common;

use std::time::Duration;

use common::*;

/// A request from `ua` with `start` as its request line and `headers`
/// (CRLF-ended) after the usual ones.
fn request(ua: &Ua, start: &str, method: &str, headers: &str, call: &str) -> String {
    format!(
        "{start}\r\nVia: SIP/2.0/UDP {};branch=z9hG4bK{call}\r\nMax-Forwards: 70\r\n\
         From: <sip:tester@{}>;tag=t{call}\r\nTo: <sip:sipmask@127.0.0.1>\r\nCall-ID: {call}\r\n\
         CSeq: 1 {method}\r\n{headers}Content-Length: 0\r\n\r\n",
        ua.addr, ua.addr
    )
}

async fn server() -> Sut {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), "127.0.0.3:5060".parse().expect("addr"));
    start(cfg, dir).await
}

/// Sends `text` and returns the status of the answer (0: none in 2 s).
async fn status_of(ua: &mut Ua, sut: &Sut, text: &str) -> (u16, String) {
    ua.send(sut.addr, text).await;
    loop {
        let Some(raw) = ua.recv_raw_within(Duration::from_secs(2)).await else {
            return (0, String::new());
        };
        let code: u16 = raw.get(8..11).and_then(|c| c.parse().ok()).unwrap_or(0);
        if code != 100 {
            return (code, raw);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_torture_case_gets_the_answer_the_rfc_asks_for() {
    let sut = server().await;
    let mut ua = Ua::bind("127.0.0.2").await;
    let options = format!("OPTIONS sip:x@{} SIP/2.0", sut.addr);
    let plain = |headers: &str, call: &str| request(&ua, &options, "OPTIONS", headers, call);
    let cases: Vec<(&str, String, u16)> = vec![
        // Any token is a method; ours or not, never a parse error.
        (
            "method with escapes",
            request(
                &ua,
                &format!("RE%47IST%45R sip:x@{} SIP/2.0", sut.addr),
                "RE%47IST%45R",
                "",
                "c1",
            ),
            501,
        ),
        (
            "method of every token character",
            request(
                &ua,
                &format!(
                    "!interesting-Method0123456789_*+`.%~' sip:x@{} SIP/2.0",
                    sut.addr
                ),
                "!interesting-Method0123456789_*+`.%~'",
                "",
                "c2",
            ),
            501,
        ),
        // A scheme with digits, `+`, `-` and `.` is a scheme, one we do
        // not serve.
        (
            "scheme with dots",
            request(
                &ua,
                "OPTIONS soap.beep://192.0.2.1:3002 SIP/2.0",
                "OPTIONS",
                "",
                "c3",
            ),
            416,
        ),
        (
            "unknown scheme",
            request(&ua, "OPTIONS isbn:2983792873 SIP/2.0", "OPTIONS", "", "c4"),
            416,
        ),
        // Another SIP version.
        (
            "version 7.0",
            request(
                &ua,
                &format!("OPTIONS sip:x@{} SIP/7.0", sut.addr),
                "OPTIONS",
                "",
                "c5",
            ),
            505,
        ),
        // Malformed: a CSeq naming another method, duplicated single
        // headers, an empty Via element or parameter, an unclosed quote.
        (
            "CSeq method mismatch",
            request(&ua, &options, "INVITE", "", "c6"),
            400,
        ),
        ("two Call-IDs", plain("Call-ID: other\r\n", "c7"), 400),
        ("two Max-Forwards", plain("Max-Forwards: 69\r\n", "c8"), 400),
        ("empty Via element", plain("Via: ;\r\n", "c9"), 400),
        (
            "empty Via parameter",
            plain("Via: SIP/2.0/UDP 192.0.2.9;;branch=z9hG4bKx\r\n", "c10"),
            400,
        ),
        (
            "unclosed quote",
            plain("", "c11").replace("To: <sip:sipmask", "To: \"Mr. J. User <sip:sipmask"),
            400,
        ),
        // An extension required of us that we lack.
        (
            "unknown Require",
            plain("Require: nothingwecando\r\n", "c12"),
            420,
        ),
        (
            "unknown Proxy-Require",
            plain("Proxy-Require: foo\r\n", "c13"),
            420,
        ),
        // What is well-formed, however odd, is answered as usual: folded
        // lines, compact names, odd spacing, a Require we support.
        (
            "tortuous but valid",
            plain(
                "Require: timer\r\nSubject:\r\n  folded\r\n\tline\r\nk: timer\r\n",
                "c14",
            )
            .replace("Max-Forwards: 70", "Max-Forwards:    70 "),
            200,
        ),
    ];
    for (what, text, want) in cases {
        let (code, raw) = status_of(&mut ua, &sut, &text).await;
        assert_eq!(code, want, "{what}:\n{text}\n--- got:\n{raw}");
        if want == 420 {
            assert!(raw.contains("\r\nUnsupported: "), "{what}: {raw}");
        }
        if what == "unclosed quote" {
            // Nothing of ours lands inside the open quote.
            let to = raw.lines().find(|l| l.starts_with("To:")).unwrap_or("");
            assert!(!to.contains(";tag="), "{raw}");
        }
    }
}

/// Two clients using one branch (an attacker can copy anyone's) are two
/// transactions: each gets its own answer (RFC 3261 §17.2.3 matches the
/// sent-by too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_with_one_branch_each_get_their_own_answer() {
    let sut = server().await;
    let mut first = Ua::bind("127.0.0.2").await;
    let mut second = Ua::bind("127.0.0.2").await;
    let start = format!("OPTIONS sip:x@{} SIP/2.0", sut.addr);
    let one = request(&first, &start, "OPTIONS", "", "samebranch")
        .replace("Call-ID: samebranch", "Call-ID: first-call");
    let two = request(&second, &start, "OPTIONS", "", "samebranch")
        .replace("Call-ID: samebranch", "Call-ID: second-call");
    let (code, raw) = status_of(&mut first, &sut, &one).await;
    assert_eq!(code, 200, "{raw}");
    assert!(raw.contains("Call-ID: first-call"), "{raw}");
    let (code, raw) = status_of(&mut second, &sut, &two).await;
    assert_eq!(code, 200, "{raw}");
    assert!(raw.contains("Call-ID: second-call"), "{raw}");
}
