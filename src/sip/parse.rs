//! The wire grammar of a SIP message (RFC 3261 sections 7 and 25): the
//! start line, header lines (folded lines joined, compact names known) and
//! the body as Content-Length bounds it. It reads the bytes in place and
//! hands each header it knows to [`Msg`] as a borrowed name and value, so a
//! message costs only the copies `Msg` keeps; headers it does not know are
//! skipped unread.

use std::borrow::Cow;
use std::sync::Arc;

use super::message::{before, cut, head_end, rat, Method, Msg, Start, RELAYED_HEADERS};
use super::piece::Piece;
use super::SipError;

/// A header `Msg` reads, by its canonical name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Name {
    Via,
    From,
    To,
    CallId,
    CSeq,
    Contact,
    RecordRoute,
    MaxForwards,
    ContentType,
    ContentLength,
    RAck,
    Authorization,
    ProxyAuthorization,
    ProxyRequire,
    Path,
    Route,
    /// `WWW-Authenticate` or `Proxy-Authenticate`.
    Challenge,
    Expires,
    Asserted,
    /// One of [`RELAYED_HEADERS`], canonical.
    Relayed(&'static str),
}

const NAMES: &[(&str, Name)] = &[
    ("Via", Name::Via),
    ("From", Name::From),
    ("To", Name::To),
    ("Call-ID", Name::CallId),
    ("CSeq", Name::CSeq),
    ("Contact", Name::Contact),
    ("Record-Route", Name::RecordRoute),
    ("Max-Forwards", Name::MaxForwards),
    ("Content-Type", Name::ContentType),
    ("Content-Length", Name::ContentLength),
    ("RAck", Name::RAck),
    ("Authorization", Name::Authorization),
    ("Proxy-Authorization", Name::ProxyAuthorization),
    ("Proxy-Require", Name::ProxyRequire),
    ("Path", Name::Path),
    ("Route", Name::Route),
    ("WWW-Authenticate", Name::Challenge),
    ("Proxy-Authenticate", Name::Challenge),
    ("Expires", Name::Expires),
    ("P-Asserted-Identity", Name::Asserted),
];

impl Name {
    /// The header's name as errors spell it.
    pub(super) fn canonical(self) -> &'static str {
        match self {
            Name::Relayed(n) => n,
            Name::Challenge => "WWW-Authenticate",
            Name::Contact => "Contact",
            other => NAMES
                .iter()
                .find(|(_, h)| *h == other)
                .map_or("header", |(n, _)| n),
        }
    }
}

/// The header a wire name stands for (case-insensitive; compact forms of
/// RFC 3261 section 7.3.3 and its extensions), `None` for one we skip.
fn name_of(wire: &str) -> Option<Name> {
    if let [c] = wire.as_bytes() {
        return Some(match c.to_ascii_lowercase() {
            b'v' => Name::Via,
            b'f' => Name::From,
            b't' => Name::To,
            b'i' => Name::CallId,
            b'm' => Name::Contact,
            b'c' => Name::ContentType,
            b'l' => Name::ContentLength,
            b'k' => Name::Relayed("Supported"),
            b'o' => Name::Relayed("Event"),
            b'x' => Name::Relayed("Session-Expires"),
            _ => return None,
        });
    }
    // Most headers of a message are ones we skip: length and first letter
    // turn nearly all of them away before a comparison.
    let first = wire.as_bytes().first()?.to_ascii_lowercase();
    let like = |n: &str| {
        n.len() == wire.len()
            && n.as_bytes()[0].to_ascii_lowercase() == first
            && n.eq_ignore_ascii_case(wire)
    };
    NAMES
        .iter()
        .find(|(n, _)| like(n))
        .map(|(_, h)| *h)
        .or_else(|| {
            RELAYED_HEADERS
                .iter()
                .find(|n| like(n))
                .map(|n| Name::Relayed(n))
        })
}

/// Methods a request may carry. Matched regardless of case, as peers in
/// the field send them; one not here is answered 501 by the transport.
const METHODS: &[&str] = &[
    "INVITE",
    "ACK",
    "CANCEL",
    "BYE",
    "OPTIONS",
    "REGISTER",
    "REFER",
    "UPDATE",
    "PRACK",
    "INFO",
    "MESSAGE",
    "NOTIFY",
    "SUBSCRIBE",
    "PUBLISH",
];

impl Method {
    /// The method a request line's token names, `None` when it is none we
    /// know.
    pub fn known(token: &str) -> Option<Method> {
        METHODS
            .iter()
            .find(|m| m.eq_ignore_ascii_case(token))
            .map(|m| Method::from_token(m))
    }
}

fn bad(why: &str) -> SipError {
    SipError::Parse(why.to_string())
}

impl Msg {
    /// Parses a complete message. `datagram` says the bytes are a whole UDP
    /// datagram: a body without Content-Length then runs to its end.
    pub fn parse(data: &[u8], datagram: bool) -> Result<Msg, SipError> {
        let head_end = head_end(data).ok_or_else(|| bad("no empty line ends the headers"))?;
        let head =
            std::str::from_utf8(&data[..head_end]).map_err(|_| bad("header text is not UTF-8"))?;
        // The one copy of the head: every value kept is a piece of it.
        let text: Arc<str> = Arc::from(head);
        let mut lines = Lines(&text);
        let start = start_line(&text, lines.next().unwrap_or(""))?;
        let mut m = Msg::empty(start, &text);
        let mut length = None;
        while let Some(line) = lines.next() {
            if line.is_empty() {
                break;
            }
            // A line without a colon is no header; one with a name we do
            // not read is skipped, continuation lines and all.
            let Some((name, value)) = cut(line, b':') else {
                continue;
            };
            let mut value = Cow::Borrowed(value.trim_ascii());
            while let Some(more) = lines.continuation() {
                let v = value.to_mut();
                v.push(' ');
                v.push_str(more.trim_ascii());
            }
            match name_of(name.trim_ascii()) {
                // Twice is two framings of one message: refused.
                Some(Name::ContentLength) if length.is_some() => {
                    return Err(SipError::Header("Content-Length"))
                }
                Some(Name::ContentLength) => {
                    length = Some(
                        value
                            .parse::<usize>()
                            .map_err(|_| SipError::Header("Content-Length"))?,
                    )
                }
                Some(h) => m.take(&text, h, &value)?,
                None => {}
            }
        }
        let rest = &data[head_end + 4..];
        let body = match length {
            // Bytes beyond the body are not part of the message (RFC 3261
            // section 18.3); fewer than announced is an error.
            Some(n) => rest.get(..n).ok_or(SipError::Header("Content-Length"))?,
            None if datagram => rest,
            None => &[],
        };
        m.body = body.to_vec();
        m.check()?;
        Ok(m)
    }
}

/// The lines of a message head, each without its CR LF (or bare LF).
struct Lines<'a>(&'a str);

impl<'a> Iterator for Lines<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        if self.0.is_empty() {
            return None;
        }
        let (line, rest) = match memchr::memchr(b'\n', self.0.as_bytes()) {
            Some(i) => (&self.0[..i], &self.0[i + 1..]),
            None => (self.0, ""),
        };
        self.0 = rest;
        Some(line.strip_suffix('\r').unwrap_or(line))
    }
}

impl<'a> Lines<'a> {
    /// The next line when it continues the last one (starts with
    /// whitespace: a folded header, RFC 3261 section 7.3.1).
    fn continuation(&mut self) -> Option<&'a str> {
        match self.0.as_bytes().first() {
            Some(b' ' | b'\t') => self.next(),
            _ => None,
        }
    }
}

/// A Request-Line or Status-Line, a line of `text`.
fn start_line(text: &Arc<str>, line: &str) -> Result<Start, SipError> {
    let mut parts = line.splitn(3, [' ', '\t']);
    let (first, second) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let third = parts.next().unwrap_or("").trim_ascii();
    // Bytes, not str slicing: the token may hold any UTF-8.
    if first.len() > 4 && first.as_bytes()[..4].eq_ignore_ascii_case(b"SIP/") {
        if !first.eq_ignore_ascii_case("SIP/2.0") {
            return Err(bad("unsupported SIP version"));
        }
        let code = second
            .parse::<u16>()
            .ok()
            .filter(|c| (100..=699).contains(c) && second.len() == 3)
            .ok_or_else(|| bad("status code is not three digits from 100 to 699"))?;
        return Ok(Start::Response { code });
    }
    let method = match Method::known(first) {
        Some(m) => m,
        // Any RFC 3261 token is a method, one we do not implement.
        None if !first.is_empty() && first.bytes().all(is_token_char) => {
            return Err(SipError::Status(501, "method not implemented"))
        }
        None => return Err(bad("request line has no method")),
    };
    if !third.eq_ignore_ascii_case("SIP/2.0") {
        if third.len() > 4 && third.as_bytes()[..4].eq_ignore_ascii_case(b"SIP/") {
            return Err(SipError::Status(505, "SIP version not supported"));
        }
        return Err(bad("request line does not end in SIP/2.0"));
    }
    let uri = second.trim_ascii();
    // A decoded user part lies outside `text`: `within` copies it.
    let user = request_user(uri)?.map(|u| Piece::within(text, &u));
    Ok(Start::Request {
        method,
        uri: Piece::within(text, uri),
        user,
    })
}

/// Checks a Request-URI (`scheme:` and, for SIP, a host) and returns its
/// user part, percent-decoded, without password or user parameters.
fn request_user(uri: &str) -> Result<Option<Cow<'_, str>>, SipError> {
    // scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) (RFC 3986).
    let (scheme, rest) = cut(uri, b':')
        .filter(|(s, r)| {
            s.as_bytes().first().is_some_and(u8::is_ascii_alphabetic)
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
                && !r.is_empty()
        })
        .ok_or_else(|| bad("Request-URI has no scheme"))?;
    let rest = before(rest, b'?');
    if scheme.eq_ignore_ascii_case("tel") {
        let number = before(rest, b';');
        return Ok(Some(decode(number)));
    }
    if !(scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips")) {
        return Err(SipError::Status(416, "Request-URI scheme not served"));
    }
    let (userinfo, hostport) = match rat(rest, b'@') {
        Some(i) => (Some(&rest[..i]), &rest[i + 1..]),
        None => (None, rest),
    };
    let hostport = before(hostport, b';');
    let host_ok = match hostport.strip_prefix('[') {
        Some(v6) => cut(v6, b']').is_some_and(|(ip, port)| {
            ip.parse::<std::net::Ipv6Addr>().is_ok()
                && (port.is_empty() || port.strip_prefix(':').is_some_and(is_port))
        }),
        None => match rat(hostport, b':') {
            Some(i) => i > 0 && is_port(&hostport[i + 1..]),
            None => !hostport.is_empty(),
        },
    };
    if !host_ok {
        return Err(bad("Request-URI has no valid host"));
    }
    Ok(userinfo.map(|u| decode(before(before(u, b':'), b';'))))
}

/// RFC 3261 §25.1 `token` characters.
fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
}

fn is_port(p: &str) -> bool {
    !p.is_empty() && p.parse::<u16>().is_ok()
}

/// `%XX` escapes decoded (RFC 3261 section 19.1.2); a broken escape is
/// kept as written.
fn decode(s: &str) -> Cow<'_, str> {
    if !s.contains('%') {
        return Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    Cow::Owned(String::from_utf8(out).unwrap_or_else(|_| s.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message with start line `start`, its CSeq naming the line's
    /// method (BYE for a response).
    fn head(start: &str) -> String {
        let method = match start.split(' ').next() {
            Some(m) if !m.starts_with("SIP") && !m.is_empty() => m,
            _ => "BYE",
        };
        format!(
            "{start}\r\nVia: SIP/2.0/UDP a.example:5060;branch=z9hG4bK-1\r\n\
             From: <sip:a@a.example>;tag=1\r\nTo: <sip:b@b.example>\r\n\
             Call-ID: c1\r\nCSeq: 2 {method}\r\nContent-Length: 0\r\n\r\n"
        )
    }

    /// RFC 4475: what is a method, a scheme or a version we do not serve
    /// is answered with its own status, not 400.
    #[test]
    fn tokens_schemes_and_versions_we_lack_carry_their_status() {
        let status = |line: &str| match Msg::parse(head(line).as_bytes(), true) {
            Err(SipError::Status(code, _)) => code,
            Err(_) => 400,
            Ok(_) => 200,
        };
        assert_eq!(status("RE%47IST%45R sip:b@b.example SIP/2.0"), 501);
        assert_eq!(status("!odd-Method_*+`.%~' sip:b@b.example SIP/2.0"), 501);
        assert_eq!(status("BYE€ sip:b@b.example SIP/2.0"), 400);
        assert_eq!(status("OPTIONS soap.beep://192.0.2.1 SIP/2.0"), 416);
        assert_eq!(status("OPTIONS 1soap:x SIP/2.0"), 400);
        assert_eq!(status("OPTIONS sip:b@b.example SIP/7.0"), 505);
        assert_eq!(status("OPTIONS tel:+8613900000000 SIP/2.0"), 200);
    }

    #[test]
    fn empty_via_parts_and_open_quotes_are_malformed() {
        let with = |extra: &str| {
            let text = head("OPTIONS sip:b@b.example SIP/2.0")
                .replace("Content-Length", &format!("{extra}\r\nContent-Length"));
            Msg::parse(text.as_bytes(), true)
        };
        assert!(with("Via: ;").is_err());
        assert!(with("Via: SIP/2.0/UDP h;;branch=z9hG4bKx").is_err());
        assert!(with("Via: SIP/2.0/UDP h;branch=z9hG4bKx,,SIP/2.0/UDP g").is_err());
        assert!(with("Contact: \"open <sip:a@h>").is_err());
        assert!(with("Record-Route: <sip:p;lr").is_err());
        let ok = with(
            "Via: SIP/2.0/UDP h:5070;branch=z9hG4bKx;rport\r\nContact: \"a \\\" b\" <sip:a@h>",
        );
        assert!(ok.is_ok(), "{ok:?}");
        let m = with("Require: timer, Foo\r\nProxy-Require: bar").expect("parses");
        assert_eq!(m.unsupported(&["timer"]).as_deref(), Some("Foo, bar"));
    }

    #[test]
    fn request_lines_without_a_host_or_scheme_are_refused() {
        for (line, ok) in [
            ("BYE  SIP/2.0", false),
            ("BYE \t SIP/2.0", false),
            ("BYE sip: SIP/2.0", false),
            ("BYE sip:bob@ SIP/2.0", false),
            ("BYE sip:bob@host:99999 SIP/2.0", false),
            ("BYE sip:[::zz]:5060 SIP/2.0", false),
            ("BYE bob SIP/2.0", false),
            ("BYE sip:bob@host SIP/3.0", false),
            ("BYE sip:bob@host", false),
            ("FROB sip:bob@host SIP/2.0", false),
            ("BYE€ñ sip:bob@host SIP/2.0", false),
            ("CA€ñ sip:bob@host SIP/2.0", false),
            ("€ñ :;<>\"INVITE sip:bob@host SIP/2.0", false),
            ("SIP€ 200 OK", false),
            ("BYE sip:bob@127.0.0.1:5060 SIP/2.0", true),
            ("BYE sip:bob@b.example;transport=udp SIP/2.0", true),
            ("INVITE sip:[::1]:5060 SIP/2.0", true),
            ("INVITE tel:+15551234567 SIP/2.0", true),
            ("bye sip:bob@host SIP/2.0", true),
        ] {
            let parsed = Msg::parse(head(line).as_bytes(), true);
            assert_eq!(parsed.is_ok(), ok, "{line:?}: {:?}", parsed.err());
        }
    }

    #[test]
    fn the_request_user_is_decoded_and_bare() {
        for (uri, user) in [
            ("sip:%2B8613800000000@h", Some("+8613800000000")),
            ("sip:alice:secret@h:5060", Some("alice")),
            ("sip:+15551234567;npdi@h;user=phone", Some("+15551234567")),
            ("tel:+15551234567;phone-context=x", Some("+15551234567")),
            ("sip:h", None),
            ("sip:50%@h", Some("50%")),
        ] {
            assert_eq!(request_user(uri).ok().flatten().as_deref(), user, "{uri}");
        }
    }

    #[test]
    fn status_lines_need_a_three_digit_code() {
        for (line, ok) in [
            ("SIP/2.0 200 OK", true),
            ("SIP/2.0 404", true),
            ("sip/2.0 180 Ringing", true),
            ("SIP/2.0 99 Low", false),
            ("SIP/2.0 700 High", false),
            ("SIP/2.0 0200 OK", false),
            ("SIP/2.0 abc", false),
            ("SIP/1.0 200 OK", false),
        ] {
            assert_eq!(
                Msg::parse(head(line).as_bytes(), true).is_ok(),
                ok,
                "{line:?}"
            );
        }
    }

    #[test]
    fn folded_values_join_and_unknown_headers_are_skipped() {
        let raw = "OPTIONS sip:h SIP/2.0\r\nVia: SIP/2.0/UDP a:5060;branch=z9hG4bK-1\r\n\
                   X-Secret: a\r\n  continued: still secret\r\n\
                   f: <sip:a@a>\r\n ;tag=9\r\nt: <sip:b@b>\r\ni: c1\r\nCSeq: 1 OPTIONS\r\n\
                   Supported: timer,\r\n\t100rel\r\nnot a header\r\n\r\n";
        let m = Msg::parse(raw.as_bytes(), true).expect("parse");
        assert_eq!(m.from, "<sip:a@a> ;tag=9");
        assert_eq!(m.from_tag.as_deref(), Some("9"));
        assert_eq!(m.relayed, vec![("Supported", Piece::from("timer, 100rel"))]);
    }

    #[test]
    fn content_length_bounds_the_body() {
        let with = |cl: &str, body: &str| {
            format!(
                "INVITE sip:b@h SIP/2.0\r\nv: SIP/2.0/UDP a:5060;branch=z9hG4bK-1\r\n\
                 f: <sip:a@a>;tag=1\r\nt: <sip:b@b>\r\ni: c1\r\nCSeq: 1 INVITE\r\n\
                 {cl}\r\n{body}"
            )
        };
        let m = Msg::parse(with("l: 3\r\n", "abcdef").as_bytes(), true).expect("parse");
        assert_eq!(m.body, b"abc");
        let m = Msg::parse(with("", "abcdef").as_bytes(), true).expect("parse");
        assert_eq!(m.body, b"abcdef");
        let m = Msg::parse(with("", "abcdef").as_bytes(), false).expect("parse");
        assert!(m.body.is_empty());
        for cl in [
            "Content-Length: 7\r\n",
            "Content-Length: x\r\n",
            "l: -1\r\n",
        ] {
            assert_eq!(
                Msg::parse(with(cl, "abcdef").as_bytes(), true).err(),
                Some(SipError::Header("Content-Length")),
                "{cl}"
            );
        }
    }

    #[test]
    fn every_name_we_read_is_known_in_any_case_and_no_other() {
        for (n, h) in NAMES {
            for w in [
                n.to_string(),
                n.to_ascii_lowercase(),
                n.to_ascii_uppercase(),
            ] {
                assert_eq!(name_of(&w), Some(*h), "{w}");
            }
        }
        for n in RELAYED_HEADERS {
            assert_eq!(name_of(&n.to_ascii_lowercase()), Some(Name::Relayed(n)));
        }
        for w in [
            "Tx",
            "Vias",
            "X-Call-ID",
            "Subject",
            "User-Agent",
            "",
            "Call-IDs",
        ] {
            assert_eq!(name_of(w), None, "{w}");
        }
    }

    #[test]
    fn header_text_must_be_utf8() {
        let mut raw = head("OPTIONS sip:h SIP/2.0").into_bytes();
        let at = raw.len() - 4;
        raw.splice(at..at, *b"\r\nX: \xff");
        assert!(Msg::parse(&raw, true).is_err());
    }
}
