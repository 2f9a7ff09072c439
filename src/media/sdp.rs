//! Session descriptions rebuilt per leg from an allow-list: nothing of a
//! party's SDP crosses unless it is known to be needed and safe. The
//! origin (`o=`) is the leg's own (user `-`, a session id made for the leg,
//! a version that rises when the description changes, our address), the
//! session name is `-`, and of the media only what a call needs crosses:
//! each `m=` line, its connection and bandwidth, and the attributes in
//! [`MEDIA_ATTRIBUTES`]. Everything else (`a=ssrc` with its cname,
//! `a=tool`, `msid`, ICE, fingerprints, `i=`, `u=`, `e=`, `p=`, unknown
//! lines) is dropped. A body that is not SDP is an error: the request is
//! refused (488), never passed through.
//!
//! With the relay on, every address is sipmask's: one `c=` and the relay's
//! ports (see [`Parsed::render`]); with it off (`[media] mode = "off"`) the
//! parties' addresses pass.

use std::net::{IpAddr, SocketAddr};

/// Attributes that cross, at session or media level.
pub const MEDIA_ATTRIBUTES: &[&str] = &[
    "rtpmap",
    "fmtp",
    "ptime",
    "maxptime",
    "sendrecv",
    "sendonly",
    "recvonly",
    "inactive",
    "rtcp-mux",
    "rtcp",
    "silenceSupp",
    "framerate",
    "label",
    "mid",
    "group",
];

/// Why a body is not usable SDP.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SdpError {
    /// Not UTF-8 text.
    #[error("SDP is not text")]
    NotText,
    /// A required line is missing or malformed.
    #[error("SDP {0}")]
    Malformed(&'static str),
}

/// The origin one leg shows: its session id and the version of its last
/// description, with a digest of that description to tell a change.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Origin {
    /// Session id, made for the leg.
    pub session: u64,
    /// Version of the last description sent.
    pub version: u64,
    /// The last description sent, without its `o=` line.
    last: Vec<u8>,
}

impl Origin {
    /// The whole description: `v=`, this origin (its version raised when
    /// `rest` differs from the last one sent), `s=-`, then `rest`.
    fn head(&mut self, host_ip: &str, rest: String) -> Vec<u8> {
        if rest.as_bytes() != self.last.as_slice() {
            self.version += 1;
            self.last = rest.as_bytes().to_vec();
        }
        let ip = host_ip.trim_matches(['[', ']']);
        let ipver = if ip.contains(':') { "IP6" } else { "IP4" };
        use crate::text::Digits;
        crate::text::cat(&[
            "v=0\r\no=- ",
            Digits::new(self.session).as_str(),
            " ",
            Digits::new(self.version).as_str(),
            " IN ",
            ipver,
            " ",
            ip,
            "\r\ns=-\r\n",
            &rest,
        ])
        .into_bytes()
    }

    /// A fresh origin for a new leg.
    pub fn new() -> Origin {
        Origin {
            session: rand::random::<u32>() as u64,
            version: 0,
            last: Vec::new(),
        }
    }
}

/// Splits text into lines without their ends.
fn lines(text: &str) -> impl Iterator<Item = &str> {
    text.split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .filter(|l| !l.is_empty())
}

/// The name of an `a=` line's attribute.
fn attribute(value: &str) -> &str {
    value.split([':', ' ']).next().unwrap_or(value)
}

/// One media stream of a description, as the relay needs it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stream {
    /// Where the party takes RTP (`c=` and the `m=` port); `None` when the
    /// stream is off (port 0) or on hold by `c=0.0.0.0`.
    pub rtp: Option<SocketAddr>,
    /// Where the party takes RTCP (`a=rtcp`, else the next port, or the RTP
    /// port when multiplexed).
    pub rtcp: Option<SocketAddr>,
    /// The port was 0: the stream is declined, nothing is relayed.
    pub off: bool,
    /// A direction other than sendrecv (`a=sendonly`, `a=recvonly`,
    /// `a=inactive`) or `c=0.0.0.0`: the stream is on hold, one way or both.
    pub held: bool,
    /// The payload types the `m=` line lists.
    pub formats: Vec<u8>,
    /// Media type and transport of the `m=` line (`audio`, `RTP/AVP`).
    pub media: String,
    /// See `media`.
    pub proto: String,
}

/// A description checked and split, ready to be rendered for a leg.
#[derive(Debug)]
pub struct Parsed<'a> {
    /// What crosses, in order (session lines, then each media section).
    lines: Vec<(&'a str, &'a str)>,
    /// The streams, in `m=` order.
    pub streams: Vec<Stream>,
}

/// What a media section says of its addresses, gathered as its lines
/// come: the `m=` port, its own `c=`, `a=rtcp` and `a=rtcp-mux`.
#[derive(Default)]
struct Found {
    port: u16,
    ip: Option<IpAddr>,
    rtcp: Option<(u16, Option<IpAddr>)>,
    mux: bool,
}

/// A `c=` line's address (none when it is not an IP address).
fn connection_address(value: &str) -> Result<Option<IpAddr>, SdpError> {
    let mut f = value.split_whitespace();
    let (Some(_), Some(_), Some(addr), None) = (f.next(), f.next(), f.next(), f.next()) else {
        return Err(SdpError::Malformed("c= needs three fields"));
    };
    // A multicast address carries a TTL: c=IN IP4 224.2.1.1/127.
    Ok(addr.split('/').next().unwrap_or("").parse::<IpAddr>().ok())
}

/// An `m=` line: its stream (held as the session is, so far) and port.
fn media_line(value: &str, session_held: bool) -> Result<(Stream, u16), SdpError> {
    let mut f = value.split_whitespace();
    let (media, port, proto) = (f.next(), f.next(), f.next());
    let port = port
        .and_then(|p| p.split('/').next())
        .and_then(|p| p.parse::<u16>().ok());
    let formats: Vec<u8> = f.filter_map(|p| p.parse().ok()).collect();
    let four = value.split_whitespace().nth(3).is_some();
    let (Some(media), Some(port), Some(proto), true) = (media, port, proto, four) else {
        return Err(SdpError::Malformed(
            "m= needs media, port, proto and formats",
        ));
    };
    let stream = Stream {
        rtp: None,
        rtcp: None,
        off: port == 0,
        held: session_held,
        formats,
        media: media.to_string(),
        proto: proto.to_string(),
    };
    Ok((stream, port))
}

/// What an `a=` line named `name` says of the stream (or, before any
/// `m=`, the session): its direction into `held`, its RTCP into `found`.
fn take_attribute(name: &str, value: &str, held: &mut bool, found: Option<&mut Found>) {
    match name {
        // RFC 3264 §8.4: a party holds with sendonly (and sends nothing
        // once the other side answers recvonly) or inactive; only
        // sendrecv is two-way media.
        "inactive" | "sendonly" | "recvonly" | "sendrecv" => *held = name != "sendrecv",
        "rtcp-mux" => {
            if let Some(s) = found {
                s.mux = true;
            }
        }
        "rtcp" => {
            // a=rtcp:PORT [IN IP4 ADDRESS]
            let mut f = value["rtcp".len()..]
                .trim_start_matches(':')
                .split_whitespace();
            let port = f.next().and_then(|p| p.parse::<u16>().ok());
            if let (Some(port), Some(s)) = (port, found) {
                // After the port: IN, IP4 or IP6, the address.
                s.rtcp = Some((port, f.nth(2).and_then(|a| a.parse().ok())));
            }
        }
        _ => {}
    }
}

/// Where a stream's RTP and RTCP go, from what its lines said (and the
/// session's `c=`): none when it is off or held by `c=0.0.0.0`.
fn addresses(s: &mut Stream, f: &Found, session_ip: Option<IpAddr>) {
    let port = f.port;
    let Some(ip) = f.ip.or(session_ip) else {
        return;
    };
    if ip.is_unspecified() {
        s.held = true;
    }
    if s.off || ip.is_unspecified() {
        return;
    }
    s.rtp = Some(SocketAddr::new(ip, port));
    s.rtcp = Some(match f.rtcp {
        Some((p, a)) => SocketAddr::new(a.unwrap_or(ip), p),
        None if f.mux => SocketAddr::new(ip, port),
        None => SocketAddr::new(ip, port.wrapping_add(1)),
    });
}

/// Checks `body` and keeps what may cross.
pub fn parse(body: &[u8]) -> Result<Parsed<'_>, SdpError> {
    let text = std::str::from_utf8(body).map_err(|_| SdpError::NotText)?;
    let mut it = lines(text);
    if it.next() != Some("v=0") {
        return Err(SdpError::Malformed("must start with v=0"));
    }
    let mut kept = Vec::with_capacity(16);
    let mut streams: Vec<Stream> = Vec::new();
    let (mut has_o, mut has_t) = (false, false);
    // Session-level connection address and direction, which media inherit.
    let (mut session_ip, mut session_held) = (None::<IpAddr>, false);
    // Per stream, what its addresses are made of once all lines are read.
    let mut found: Vec<Found> = Vec::new();
    for line in it {
        let Some((kind, value)) = line.split_once('=') else {
            return Err(SdpError::Malformed("has a line that is not type=value"));
        };
        match kind {
            "o" => {
                if value.split_whitespace().count() != 6 {
                    return Err(SdpError::Malformed("o= needs six fields"));
                }
                has_o = true;
            }
            "m" => {
                let (stream, port) = media_line(value, session_held)?;
                streams.push(stream);
                found.push(Found {
                    port,
                    ..Found::default()
                });
                kept.push((kind, value));
            }
            "c" => {
                let ip = connection_address(value)?;
                match found.last_mut() {
                    Some(s) => s.ip = ip,
                    None => session_ip = ip,
                }
                kept.push((kind, value));
            }
            "b" => kept.push((kind, value)),
            "t" => {
                has_t = true;
                kept.push((kind, value));
            }
            "a" => {
                let name = attribute(value);
                let held = match streams.last_mut() {
                    Some(s) => &mut s.held,
                    None => &mut session_held,
                };
                take_attribute(name, value, held, found.last_mut());
                if MEDIA_ATTRIBUTES.contains(&name) {
                    kept.push((kind, value));
                }
            }
            // s= is ours; i= u= e= p= z= k= r= and every other attribute
            // stay behind.
            _ => {}
        }
    }
    if !has_o {
        return Err(SdpError::Malformed("has no o= line"));
    }
    if streams.is_empty() {
        return Err(SdpError::Malformed("has no m= line"));
    }
    for (s, f) in streams.iter_mut().zip(&found) {
        addresses(s, f, session_ip);
    }
    if !has_t {
        kept.insert(0, ("t", "0 0"));
    }
    Ok(Parsed {
        lines: kept,
        streams,
    })
}

impl Parsed<'_> {
    /// The description for a leg shown from `host_ip`, with `origin` the
    /// leg's. With `relay` (one entry per stream: our address facing the
    /// leg, `None` for a declined stream) every address is ours: one
    /// session `c=`, the relay's ports in `m=`, and no `a=rtcp` or BUNDLE
    /// group, which would name the party's ports.
    pub fn render(
        &self,
        host_ip: &str,
        origin: &mut Origin,
        relay: Option<&[Option<SocketAddr>]>,
    ) -> Vec<u8> {
        let mut rest = String::with_capacity(256);
        let mut m = 0usize;
        if let Some(ours) = relay {
            connection(&mut rest, ours);
        }
        for &(kind, value) in &self.lines {
            let Some(ours) = relay else {
                push(&mut rest, kind, value);
                continue;
            };
            match kind {
                "c" => {}
                "a" if matches!(attribute(value), "rtcp" | "group") => {}
                "m" => {
                    let port = ours.get(m).copied().flatten().map_or(0, |a| a.port());
                    m += 1;
                    let mut f = value.splitn(3, ' ');
                    let (media, _, tail) = (f.next(), f.next(), f.next());
                    let (media, tail) = (media.unwrap_or("audio"), tail.unwrap_or(""));
                    let port = crate::text::Digits::new(port.into());
                    crate::text::push(
                        &mut rest,
                        &["m=", media, " ", port.as_str(), " ", tail, "\r\n"],
                    );
                }
                _ => push(&mut rest, kind, value),
            }
        }
        // Session-level lines kept their order (c= before b= and t=).
        origin.head(host_ip, rest)
    }
}

impl Parsed<'_> {
    /// Our own answer to this offer, for early media we play ourselves:
    /// each stream we can play to (`play[i]`, a G.711 payload type, and an
    /// address in `relay`) at our address with that codec alone; every
    /// other stream declined (port 0).
    pub fn answer(
        &self,
        host_ip: &str,
        origin: &mut Origin,
        relay: &[Option<SocketAddr>],
        play: &[Option<u8>],
    ) -> Vec<u8> {
        let mut rest = String::with_capacity(256);
        connection(&mut rest, relay);
        push(&mut rest, "t", "0 0");
        for (i, s) in self.streams.iter().enumerate() {
            match (
                relay.get(i).copied().flatten(),
                play.get(i).copied().flatten(),
            ) {
                (Some(a), Some(pt)) => {
                    push(
                        &mut rest,
                        "m",
                        &format!("{} {} {} {pt}", s.media, a.port(), s.proto),
                    );
                    let name = if pt == 8 { "PCMA" } else { "PCMU" };
                    push(&mut rest, "a", &format!("rtpmap:{pt} {name}/8000"));
                    push(&mut rest, "a", "ptime:20");
                    push(&mut rest, "a", "sendrecv");
                }
                _ => {
                    let fmt = s.formats.first().copied().unwrap_or(0);
                    push(&mut rest, "m", &format!("{} 0 {} {fmt}", s.media, s.proto));
                }
            }
        }
        origin.head(host_ip, rest)
    }
}

/// Rebuilds `body` for a leg shown from `host_ip`, with `origin` the leg's;
/// media addresses pass (no relay).
pub fn rebuild(body: &[u8], host_ip: &str, origin: &mut Origin) -> Result<Vec<u8>, SdpError> {
    Ok(parse(body)?.render(host_ip, origin, None))
}

/// The session's `c=` line: the first of our addresses.
fn connection(out: &mut String, ours: &[Option<SocketAddr>]) {
    if let Some(a) = ours.iter().flatten().next() {
        use std::fmt::Write;
        let v = if a.is_ipv6() { "IP6" } else { "IP4" };
        let _ = write!(out, "c=IN {v} {}\r\n", a.ip());
    }
}

fn push(out: &mut String, kind: &str, value: &str) {
    out.push_str(kind);
    out.push('=');
    out.push_str(value);
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    const BARESIP: &str = "v=0\r\no=13800000000 2732856622 1 IN IP4 127.0.0.1\r\ns=baresip\r\n\
        c=IN IP4 127.0.0.1\r\nt=0 0\r\na=tool:baresip 1.0.0\r\nm=audio 6031 RTP/AVP 0 8 101\r\n\
        b=AS:64\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
        a=fmtp:101 0-15\r\na=sendrecv\r\na=ssrc:2732856622 cname:sip:13800000000@127.0.0.1:6031\r\n\
        a=msid:abc def\r\na=candidate:1 1 UDP 2130706431 10.0.0.5 6031 typ host\r\n\
        a=ptime:20\r\na=x-unknown:1\r\ni=Alice's phone\r\n";

    #[test]
    fn rtcp_goes_where_a_rtcp_says_else_to_the_next_port() {
        let sdp = |extra: &str| {
            format!(
                "v=0\r\no=- 1 1 IN IP4 192.0.2.5\r\ns=-\r\nc=IN IP4 192.0.2.5\r\nt=0 0\r\n\
                 m=audio 4000 RTP/AVP 0\r\n{extra}m=audio 5000 RTP/AVP 8\r\nc=IN IP4 192.0.2.6\r\n"
            )
        };
        let rtcp = |extra: &str| {
            let body = sdp(extra);
            let p = parse(body.as_bytes()).expect("valid");
            p.streams.iter().map(|s| s.rtcp).collect::<Vec<_>>()
        };
        let at = |a: &str| Some(a.parse::<SocketAddr>().expect("addr"));
        assert_eq!(rtcp(""), [at("192.0.2.5:4001"), at("192.0.2.6:5001")]);
        assert_eq!(
            rtcp("a=rtcp-mux\r\n"),
            [at("192.0.2.5:4000"), at("192.0.2.6:5001")]
        );
        assert_eq!(
            rtcp("a=rtcp:4444\r\n"),
            [at("192.0.2.5:4444"), at("192.0.2.6:5001")]
        );
        assert_eq!(
            rtcp("a=rtcp:4444 IN IP4 198.51.100.7\r\n"),
            [at("198.51.100.7:4444"), at("192.0.2.6:5001")]
        );
        for bad in [
            "m=audio 4000 RTP/AVP\r\n",
            "c=IN IP4\r\n",
            "c=IN IP4 1.2.3.4 x\r\n",
        ] {
            let body =
                format!("v=0\r\no=- 1 1 IN IP4 192.0.2.5\r\ns=-\r\n{bad}m=audio 1 RTP/AVP 0\r\n");
            assert!(parse(body.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_the_allow_list_crosses() {
        let mut o = Origin::new();
        let out = String::from_utf8(rebuild(BARESIP.as_bytes(), "192.0.2.1", &mut o).expect("ok"))
            .expect("utf8");
        assert_eq!(
            out,
            format!(
                "v=0\r\no=- {} 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                 m=audio 6031 RTP/AVP 0 8 101\r\nb=AS:64\r\na=rtpmap:0 PCMU/8000\r\n\
                 a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=sendrecv\r\na=ptime:20\r\n",
                o.session
            )
        );
        for leak in [
            "13800000000",
            "2732856622",
            "baresip",
            "msid",
            "candidate",
            "x-unknown",
            "Alice",
        ] {
            assert!(!out.contains(leak), "{leak}");
        }
    }

    #[test]
    fn the_version_rises_only_when_the_description_changes() {
        let mut o = Origin::new();
        rebuild(BARESIP.as_bytes(), "192.0.2.1", &mut o).expect("ok");
        rebuild(BARESIP.as_bytes(), "192.0.2.1", &mut o).expect("ok");
        assert_eq!(o.version, 1, "the same description again keeps its version");
        let hold = BARESIP.replace("a=sendrecv", "a=sendonly");
        rebuild(hold.as_bytes(), "192.0.2.1", &mut o).expect("ok");
        assert_eq!(o.version, 2);
    }

    #[test]
    fn every_direction_but_sendrecv_is_a_hold() {
        for (dir, held) in [
            ("sendrecv", false),
            ("sendonly", true),
            ("recvonly", true),
            ("inactive", true),
        ] {
            let sdp = BARESIP.replace("a=sendrecv", &format!("a={dir}"));
            let p = parse(sdp.as_bytes()).expect("parse");
            assert!(p.streams.iter().all(|s| s.held == held), "{dir}");
        }
        // At session level, inherited by the streams.
        let sdp = BARESIP
            .replace("a=sendrecv\r\n", "")
            .replace("t=0 0\r\n", "t=0 0\r\na=recvonly\r\n");
        let p = parse(sdp.as_bytes()).expect("parse");
        assert!(p.streams.iter().all(|s| s.held));
    }

    #[test]
    fn what_is_not_sdp_is_refused() {
        let mut o = Origin::new();
        for bad in [
            &b"\xff\xfe"[..],
            b"hello",
            b"v=0\r\ns=x\r\nm=audio 1 RTP/AVP 0\r\n",
            b"v=0\r\no=a 1 1 IN IP4 1.2.3.4\r\ns=x\r\n",
            b"v=0\r\no=a 1 1 IN IP4 1.2.3.4\r\nm=audio x RTP/AVP 0\r\n",
            b"v=0\r\no=a 1 1 IN IP4 1.2.3.4\r\nnonsense\r\nm=audio 1 RTP/AVP 0\r\n",
        ] {
            assert!(
                rebuild(bad, "192.0.2.1", &mut o).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(o.version, 0);
    }

    #[test]
    fn ipv6_origins_say_so() {
        let mut o = Origin::new();
        let out = rebuild(BARESIP.as_bytes(), "[2001:db8::1]", &mut o).expect("ok");
        assert!(String::from_utf8_lossy(&out).contains(" IN IP6 2001:db8::1\r\n"));
    }
}
