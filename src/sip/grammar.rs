//! The grammar of header values (RFC 3261 §25) that the parser and the
//! rest of sipmask share: Via elements, name-addr, parameters, comma
//! lists, URIs, and the byte-level cuts they are made of, with memchr
//! where every message passes.

use std::borrow::Cow;

use super::message::TopVia;
use super::piece::Piece;

/// Parses one Via value; host and branch are pieces of its buffer.
pub fn parse_via(via: &Piece) -> Option<TopVia> {
    let v = via.trim_ascii();
    let sp = v.bytes().position(|b| b == b' ' || b == b'\t')?;
    let (proto, rest) = (&v[..sp], v[sp + 1..].trim_ascii());
    let transport = proto[rat(proto, b'/').map_or(0, |i| i + 1)..].trim_ascii();
    // The usual transports without an allocation each.
    let transport = ["UDP", "TCP", "TLS", "SCTP", "WS", "WSS"]
        .into_iter()
        .find(|t| t.eq_ignore_ascii_case(transport))
        .map_or_else(|| Cow::Owned(transport.to_ascii_uppercase()), Cow::Borrowed);
    let (sent_by, params) = match at(rest, b';') {
        Some(i) => (rest[..i].trim_ascii(), &rest[i..]),
        None => (rest, ""),
    };
    let (host, port) = split_host_port(sent_by)?;
    Some(TopVia {
        transport,
        host: via.sub(host),
        port,
        branch: via.sub(param(params, "branch").unwrap_or("")),
        rport: pieces(params, b';')
            .any(|p| before(p, b'=').trim_ascii().eq_ignore_ascii_case("rport")),
    })
}

/// One Via element as RFC 3261 §20.42 has it: `SIP/2.0/transport`, a
/// sent-by, and parameters each with a name. Bytes and memchr: every
/// Via of every message passes here.
pub(super) fn well_formed_via(v: &str) -> bool {
    let v = v.trim_ascii().as_bytes();
    let Some(sp) = memchr::memchr2(b' ', b'\t', v) else {
        return false;
    };
    if sp < 9 || !v[..8].eq_ignore_ascii_case(b"SIP/2.0/") {
        return false;
    }
    // The sent-by, then each parameter: none empty, none without a name.
    let rest = &v[sp + 1..];
    let mut start = 0;
    loop {
        let end = memchr::memchr(b';', &rest[start..]).map_or(rest.len(), |i| start + i);
        let part = rest[start..end].trim_ascii();
        let bad = if start == 0 { b':' } else { b'=' };
        if part.first().is_none_or(|c| *c == bad) {
            return false;
        }
        if end == rest.len() {
            return true;
        }
        start = end + 1;
    }
}

/// Quotes closed and angle brackets paired (outside quotes) in a
/// name-addr list. It jumps between the bytes that matter: every From,
/// To, Contact and Record-Route passes here.
pub(super) fn balanced(v: &str) -> bool {
    let b = v.as_bytes();
    let (mut i, mut depth) = (0, 0i32);
    while let Some(j) = memchr::memchr3(b'"', b'<', b'>', &b[i..]) {
        let at = i + j;
        i = at + 1;
        match b[at] {
            b'<' => depth += 1,
            b'>' if depth == 0 => return false,
            b'>' => depth -= 1,
            _ => loop {
                // A quoted string: to its closing quote, past escapes.
                let Some(k) = b.get(i..).and_then(|r| memchr::memchr2(b'"', b'\\', r)) else {
                    return false;
                };
                if b[i + k] == b'"' {
                    i += k + 1;
                    break;
                }
                i += k + 2;
            },
        }
    }
    depth == 0
}

/// Where a scan of a name-addr list is: inside quotes, after a backslash
/// there, how deep in `<>`.
#[derive(Default)]
struct Nesting {
    quoted: bool,
    escaped: bool,
    depth: i32,
}

impl Nesting {
    /// Takes the next byte; `true` when it is an ordinary byte outside
    /// quotes and brackets (where a comma separates).
    #[inline(always)]
    fn take(&mut self, c: u8) -> bool {
        if std::mem::take(&mut self.escaped) {
            return false;
        }
        match c {
            b'\\' if self.quoted => self.escaped = true,
            b'"' => self.quoted = !self.quoted,
            b'<' if !self.quoted => self.depth += 1,
            b'>' if !self.quoted => self.depth -= 1,
            _ => return !self.quoted && self.depth <= 0,
        }
        false
    }
}

pub(super) fn split_host_port(s: &str) -> Option<(&str, Option<u16>)> {
    if let Some(rest) = s.strip_prefix('[') {
        let end = at(rest, b']')?;
        let port = rest[end + 1..]
            .strip_prefix(':')
            .and_then(|p| p.parse().ok());
        return Some((&s[..end + 2], port));
    }
    match rat(s, b':') {
        Some(i) => Some((&s[..i], Some(s[i + 1..].trim_ascii().parse().ok()?))),
        None if !s.is_empty() => Some((s, None)),
        None => None,
    }
}

/// Position of the ASCII byte `b` in `s`. SIP values are short, so a byte
/// loop beats a general searcher; a cut at an ASCII byte is always on a
/// char boundary.
#[inline]
pub(crate) fn at(s: &str, b: u8) -> Option<usize> {
    s.bytes().position(|c| c == b)
}

/// Position of the last ASCII byte `b` in `s`.
#[inline]
pub(crate) fn rat(s: &str, b: u8) -> Option<usize> {
    s.bytes().rposition(|c| c == b)
}

/// `s` around its first ASCII byte `b`, without it.
#[inline]
pub(crate) fn cut(s: &str, b: u8) -> Option<(&str, &str)> {
    at(s, b).map(|i| (&s[..i], &s[i + 1..]))
}

/// `s` up to its first ASCII byte `b` (all of it when there is none).
#[inline]
pub(crate) fn before(s: &str, b: u8) -> &str {
    cut(s, b).map_or(s, |(head, _)| head)
}

/// The pieces of `s` between ASCII bytes `b` (`str::split` on a byte).
pub(crate) fn pieces(s: &str, b: u8) -> impl Iterator<Item = &str> {
    let mut rest = Some(s);
    std::iter::from_fn(move || {
        let r = rest?;
        match cut(r, b) {
            Some((head, tail)) => {
                rest = Some(tail);
                Some(head)
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

/// Splits a header value on commas that are not inside quotes or `<>`.
/// Empty elements are skipped.
pub fn split_commas(v: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(v);
    std::iter::from_fn(move || loop {
        let s = rest?;
        let piece = match next_comma(s) {
            Some(i) => {
                rest = Some(&s[i + 1..]);
                &s[..i]
            }
            None => {
                rest = None;
                s
            }
        };
        let piece = piece.trim_ascii();
        if !piece.is_empty() {
            return Some(piece);
        }
    })
}

/// Where the first comma outside quotes and `<>` is. Most values (a Via,
/// a bare URI) have no quote or bracket before their first comma, or no
/// comma: memchr answers those without a walk.
pub(super) fn next_comma(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let first = memchr::memchr(b',', b)?;
    if memchr::memchr3(b'"', b'<', b'>', &b[..first]).is_none() {
        return Some(first);
    }
    let mut n = Nesting::default();
    b.iter().position(|&c| n.take(c) && c == b',')
}

/// A name-addr (`"Bob" <sip:b@h>;tag=1`) or addr-spec (`sip:b@h;tag=1`)
/// split into its URI and what follows it (header parameters), per RFC
/// 3261 §25.1: a display name may be a quoted string holding `<`, `>`, `;`
/// and escaped quotes, and parameters after `>` may hold `<` and `>` inside
/// quotes (`+sip.instance="<urn:uuid:...>"`). Without `<` outside quotes
/// the value is an addr-spec and its parameters start at the first `;`.
pub(super) fn split_name_addr(v: &str) -> (&str, &str) {
    let b = v.as_bytes();
    let (mut i, mut quoted) = (0, false);
    while i < b.len() {
        match b[i] {
            b'\\' if quoted => i += 1,
            b'"' => quoted = !quoted,
            b'<' if !quoted => {
                // A URI holds no `>` of its own (it would be escaped).
                return match at(&v[i + 1..], b'>') {
                    Some(j) => (&v[i + 1..i + 1 + j], &v[i + 2 + j..]),
                    None => (v[i + 1..].trim_ascii(), ""),
                };
            }
            _ => {}
        }
        i += 1;
    }
    match at(v, b';') {
        Some(i) => (v[..i].trim_ascii(), &v[i..]),
        None => (v.trim_ascii(), ""),
    }
}

/// The URI of a name-addr or addr-spec (see [`split_name_addr`]).
pub fn uri_of(v: &str) -> &str {
    split_name_addr(v).0
}

/// The part after the URI, where header parameters live.
pub fn after_uri(v: &str) -> &str {
    split_name_addr(v).1
}

/// Value of `;name=value` in a parameter list.
pub fn param<'a>(params: &'a str, name: &str) -> Option<&'a str> {
    pieces(params, b';').find_map(|p| {
        let (n, v) = cut(p, b'=')?;
        n.trim_ascii()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim_ascii())
    })
}

/// Whether `;name` or `;name=value` is in a parameter list.
pub fn param_present(params: &str, name: &str) -> bool {
    pieces(params, b';').any(|p| before(p, b'=').trim_ascii().eq_ignore_ascii_case(name))
}

/// User part of a `sip:`/`sips:`/`tel:` URI.
pub fn uri_user(uri: &str) -> Option<&str> {
    let rest = cut(uri, b':')?.1;
    if uri.get(..3).is_some_and(|s| s.eq_ignore_ascii_case("tel")) {
        return Some(before(rest, b';'));
    }
    let (user, _) = cut(rest, b'@')?;
    Some(before(user, b';'))
}

/// Position of the empty line (CR LF CR LF) that ends a message's head.
pub fn head_end(data: &[u8]) -> Option<usize> {
    // Built once: `memmem::find` sets up a searcher on every call, which
    // cost as much as the search itself on a message's few hundred bytes.
    static BLANK: std::sync::OnceLock<memchr::memmem::Finder<'static>> = std::sync::OnceLock::new();
    BLANK
        .get_or_init(|| memchr::memmem::Finder::new(b"\r\n\r\n"))
        .find(data)
}
