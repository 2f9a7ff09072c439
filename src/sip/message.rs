//! An incoming SIP message reduced to what a B2BUA reads: parsed by
//! [`super::parse`], flattened into one struct with the
//! transaction and dialog identifiers already picked out. Everything else
//! is dropped here, which is why nothing of one party can leak through
//! headers we never look at.

use std::borrow::Cow;
use std::sync::Arc;

pub use super::grammar::{
    after_uri, head_end, param, param_present, parse_via, split_commas, uri_of, uri_user,
};
use super::grammar::{balanced, well_formed_via};
pub(crate) use super::grammar::{before, cut, pieces, rat};
use super::parse::Name;
use super::piece::Piece;
use super::SipError;

/// Request method; methods outside RFC 3261 and its extensions are `Other`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// INVITE
    Invite,
    /// ACK
    Ack,
    /// CANCEL
    Cancel,
    /// BYE
    Bye,
    /// OPTIONS
    Options,
    /// REGISTER
    Register,
    /// REFER (RFC 3515)
    Refer,
    /// UPDATE (RFC 3311)
    Update,
    /// PRACK (RFC 3262)
    Prack,
    /// INFO (RFC 6086)
    Info,
    /// MESSAGE (RFC 3428)
    Message,
    /// NOTIFY (RFC 6665)
    Notify,
    /// SUBSCRIBE (RFC 6665)
    Subscribe,
    /// Anything else, upper-case as on the wire.
    Other(String),
}

impl Method {
    /// Parses a method token.
    pub fn from_token(s: &str) -> Method {
        match s {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "CANCEL" => Method::Cancel,
            "BYE" => Method::Bye,
            "OPTIONS" => Method::Options,
            "REGISTER" => Method::Register,
            "REFER" => Method::Refer,
            "UPDATE" => Method::Update,
            "PRACK" => Method::Prack,
            "INFO" => Method::Info,
            "MESSAGE" => Method::Message,
            "NOTIFY" => Method::Notify,
            "SUBSCRIBE" => Method::Subscribe,
            other => Method::Other(other.to_string()),
        }
    }

    /// The wire token.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Cancel => "CANCEL",
            Method::Bye => "BYE",
            Method::Options => "OPTIONS",
            Method::Register => "REGISTER",
            Method::Refer => "REFER",
            Method::Update => "UPDATE",
            Method::Prack => "PRACK",
            Method::Info => "INFO",
            Method::Message => "MESSAGE",
            Method::Notify => "NOTIFY",
            Method::Subscribe => "SUBSCRIBE",
            Method::Other(s) => s,
        }
    }
}

/// Start line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Start {
    /// A request.
    Request {
        /// Method.
        method: Method,
        /// Request-URI as written.
        uri: Piece,
        /// User part of the Request-URI, if any.
        user: Option<Piece>,
    },
    /// A response.
    Response {
        /// Status code.
        code: u16,
    },
}

/// The top Via, taken apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopVia {
    /// `UDP`, `TCP`, ...
    pub transport: Cow<'static, str>,
    /// Host of sent-by.
    pub host: Piece,
    /// Port of sent-by, if given.
    pub port: Option<u16>,
    /// `branch` parameter.
    pub branch: Piece,
    /// `rport` present (RFC 3581).
    pub rport: bool,
}

/// Headers relayed from one leg to the other: they describe the session or
/// the capabilities of the UA, never who or where a party is.
pub const RELAYED_HEADERS: &[&str] = &[
    "Allow",
    "Supported",
    "Require",
    "Accept",
    "Session-Expires",
    "Min-SE",
    "Content-Disposition",
    "Event",
    "Subscription-State",
    "Info-Package",
    "Recv-Info",
    "RSeq",
];

/// A parsed message.
#[derive(Clone, Debug)]
pub struct Msg {
    /// Start line.
    pub start: Start,
    /// Every Via value, top first.
    pub vias: Vec<Piece>,
    /// The top Via.
    pub top_via: TopVia,
    /// From value as written.
    pub from: Piece,
    /// To value as written.
    pub to: Piece,
    /// From tag.
    pub from_tag: Option<Piece>,
    /// To tag.
    pub to_tag: Option<Piece>,
    /// Call-ID.
    pub call_id: Piece,
    /// CSeq number.
    pub cseq: u32,
    /// CSeq method.
    pub cseq_method: Piece,
    /// URI of the first Contact.
    pub contact: Option<Piece>,
    /// Record-Route values, in order.
    pub record_route: Vec<Piece>,
    /// Max-Forwards.
    pub max_forwards: Option<u32>,
    /// Content-Type.
    pub content_type: Option<Piece>,
    /// RAck value (PRACK).
    pub rack: Option<Piece>,
    /// Every P-Asserted-Identity value (RFC 3325), in order: the caller as
    /// a trusted peer asserts it. Never relayed.
    pub asserted: Vec<Piece>,
    /// Credentials: `Authorization` (to a registrar) or
    /// `Proxy-Authorization` (to a proxy), the first of each.
    pub authorization: Option<Piece>,
    /// See `authorization`.
    pub proxy_authorization: Option<Piece>,
    /// Challenges of a 401/407 response (`WWW-Authenticate` and
    /// `Proxy-Authenticate` values).
    pub challenges: Vec<Piece>,
    /// Every Contact value as written, for REGISTER only (other requests
    /// keep just the first URI in `contact`).
    pub contacts: Vec<Piece>,
    /// Expires, in seconds.
    pub expires: Option<u32>,
    /// Headers from [`RELAYED_HEADERS`], as (canonical name, value).
    pub relayed: Vec<(&'static str, Piece)>,
    /// Proxy-Require values (option tags a proxy must support).
    pub proxy_require: Vec<Piece>,
    /// Path values (RFC 3327), in order.
    pub path: Vec<Piece>,
    /// Route values, in order: read only to tell a request another node
    /// of a cluster relays through this one (`super::relay`), never sent
    /// on.
    pub route: Vec<Piece>,
    /// The head as it came (start line and headers), for a message this
    /// node relays as a proxy between nodes of a cluster.
    pub head: Arc<str>,
    /// Body.
    pub body: Vec<u8>,
}

impl Msg {
    /// A message with nothing read yet; `text` is the buffer its values
    /// will be pieces of.
    pub(super) fn empty(start: Start, text: &Arc<str>) -> Msg {
        let none = || Piece::empty_of(text);
        Msg {
            start,
            vias: Vec::new(),
            top_via: TopVia {
                transport: Cow::Borrowed(""),
                host: none(),
                port: None,
                branch: none(),
                rport: false,
            },
            from: none(),
            to: none(),
            from_tag: None,
            to_tag: None,
            call_id: none(),
            cseq: 0,
            cseq_method: none(),
            contact: None,
            record_route: Vec::new(),
            max_forwards: None,
            content_type: None,
            rack: None,
            asserted: Vec::new(),
            authorization: None,
            proxy_authorization: None,
            challenges: Vec::new(),
            contacts: Vec::new(),
            expires: None,
            relayed: Vec::new(),
            proxy_require: Vec::new(),
            path: Vec::new(),
            route: Vec::new(),
            head: Arc::clone(text),
            body: Vec::new(),
        }
    }

    /// Whether `h`, a header a message may carry once, was read already.
    fn already(&self, h: Name) -> bool {
        match h {
            Name::From => !self.from.is_empty(),
            Name::To => !self.to.is_empty(),
            Name::CallId => !self.call_id.is_empty(),
            Name::CSeq => !self.cseq_method.is_empty(),
            Name::MaxForwards => self.max_forwards.is_some(),
            _ => false,
        }
    }

    /// One header value, trimmed, of a header `Msg` reads; `text` is the
    /// message's buffer, which `v` is normally a slice of.
    pub(super) fn take(&mut self, text: &Arc<str>, h: Name, v: &str) -> Result<(), SipError> {
        let piece = |part: &str| Piece::within(text, part);
        // These name one dialog and one transaction: a second of them is
        // a second answer to the same question (RFC 4475 3.1.2.19), refused
        // rather than decided by whichever comes last.
        if self.already(h) {
            return Err(SipError::Header(h.canonical()));
        }
        // RFC 4475 §3.1.2.6/§3.1.2.13: an empty Via element or parameter,
        // or a quote or bracket left open, is no header: echoing it would
        // send our answer's tag into the open quote.
        let malformed = match h {
            Name::Via => !pieces(v, b',').all(well_formed_via),
            Name::From
            | Name::To
            | Name::Contact
            | Name::RecordRoute
            | Name::Path
            | Name::Route => !balanced(v),
            _ => false,
        };
        if malformed {
            return Err(SipError::Header(h.canonical()));
        }
        match h {
            Name::Via => self.vias.extend(split_commas(v).map(piece)),
            Name::ProxyRequire => self.proxy_require.push(piece(v)),
            Name::Path => self.path.push(piece(v)),
            Name::From => {
                self.from = piece(v);
                self.from_tag = param(after_uri(v), "tag").map(piece);
            }
            Name::To => {
                self.to = piece(v);
                self.to_tag = param(after_uri(v), "tag").map(piece);
            }
            Name::CallId => self.call_id = piece(v),
            Name::CSeq => {
                let mut it = v.split_ascii_whitespace();
                self.cseq = it
                    .next()
                    .and_then(|n| n.parse().ok())
                    .ok_or(SipError::Header("CSeq"))?;
                self.cseq_method = piece(it.next().ok_or(SipError::Header("CSeq"))?);
            }
            Name::Contact => {
                if self.method() == Some(&Method::Register) {
                    self.contacts.extend(split_commas(v).map(piece));
                }
                if self.contact.is_none() {
                    let first = split_commas(v).next().unwrap_or(v);
                    if first != "*" {
                        self.contact = Some(piece(uri_of(first)));
                    }
                }
            }
            Name::RecordRoute => self.record_route.extend(split_commas(v).map(piece)),
            Name::Route => self.route.extend(split_commas(v).map(piece)),
            Name::MaxForwards => self.max_forwards = v.parse().ok(),
            Name::ContentType => self.content_type = Some(piece(v)),
            Name::RAck => self.rack = Some(piece(v)),
            Name::Authorization => {
                self.authorization.get_or_insert_with(|| piece(v));
            }
            Name::ProxyAuthorization => {
                self.proxy_authorization.get_or_insert_with(|| piece(v));
            }
            Name::Challenge => self.challenges.push(piece(v)),
            Name::Expires => self.expires = v.parse().ok(),
            Name::Asserted => self.asserted.extend(split_commas(v).map(piece)),
            Name::Relayed(canon) => self.relayed.push((canon, piece(v))),
            // Read by the parser itself.
            Name::ContentLength => {}
        }
        Ok(())
    }

    /// Option tags the request requires (Require, and Proxy-Require:
    /// sipmask is the proxy and the UAS both) that are not in `supported`,
    /// as an `Unsupported` value; `None` when every one is.
    pub fn unsupported(&self, supported: &[&str]) -> Option<String> {
        let required = self
            .relayed
            .iter()
            .filter(|(n, _)| *n == "Require")
            .map(|(_, v)| v)
            .chain(&self.proxy_require);
        let mut missing: Vec<&str> = Vec::new();
        for tag in required.flat_map(|v| v.split(',')).map(str::trim_ascii) {
            let known = supported.iter().any(|s| s.eq_ignore_ascii_case(tag));
            if !tag.is_empty() && !known && !missing.contains(&tag) {
                missing.push(tag);
            }
        }
        (!missing.is_empty()).then(|| missing.join(", "))
    }

    pub(super) fn check(&mut self) -> Result<(), SipError> {
        let top = self.vias.first().ok_or(SipError::Header("Via"))?;
        self.top_via = parse_via(top).ok_or(SipError::Header("Via"))?;
        if self.from.is_empty() {
            return Err(SipError::Header("From"));
        }
        if self.to.is_empty() {
            return Err(SipError::Header("To"));
        }
        if self.call_id.is_empty() {
            return Err(SipError::Header("Call-ID"));
        }
        if self.cseq_method.is_empty() {
            return Err(SipError::Header("CSeq"));
        }
        // A request's CSeq names its own method (RFC 3261 §8.1.1.5).
        if self
            .method()
            .is_some_and(|m| !m.as_str().eq_ignore_ascii_case(&self.cseq_method))
        {
            return Err(SipError::Header("CSeq"));
        }
        Ok(())
    }

    /// The method of a request.
    pub fn method(&self) -> Option<&Method> {
        match &self.start {
            Start::Request { method, .. } => Some(method),
            Start::Response { .. } => None,
        }
    }

    /// The status of a response.
    pub fn code(&self) -> Option<u16> {
        match self.start {
            Start::Response { code } => Some(code),
            Start::Request { .. } => None,
        }
    }

    /// User part of the From URI.
    pub fn from_user(&self) -> Option<&str> {
        uri_user(uri_of(&self.from))
    }

    /// User part of the first P-Asserted-Identity with a `sip:`, `sips:`
    /// or `tel:` URI that has one.
    pub fn asserted_user(&self) -> Option<&str> {
        self.asserted
            .iter()
            .find_map(|v| uri_user(uri_of(v)).filter(|u| !u.is_empty()))
    }

    /// User part of the To URI.
    pub fn to_user(&self) -> Option<&str> {
        uri_user(uri_of(&self.to))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &str = "INVITE sip:17000000000@10.0.0.1 SIP/2.0\r\n\
        v: SIP/2.0/UDP 10.0.0.2:5061;branch=z9hG4bK-1;rport\r\n\
        Via : SIP/2.0/TCP [2001:db8::1]:5070;branch=z9hG4bK-0\r\n\
        f: \"Alice\" <sip:13800000000@10.0.0.2:5061>;tag=abc\r\n\
        t: <sip:17000000000@10.0.0.1>\r\n\
        i: call-1@10.0.0.2\r\n\
        CSeq: 7 INVITE\r\n\
        m: <sip:13800000000@10.0.0.2:5061;transport=udp>\r\n\
        P-Asserted-Identity: <sip:13800000000@10.0.0.2>\r\n\
        Supported: 100rel, timer\r\n\
        c: application/sdp\r\n\r\n\
        v=0\r\n";

    #[test]
    fn compact_headers_and_spaces_before_colon_parse() {
        let m = Msg::parse(INVITE.as_bytes(), true).expect("parse");
        assert_eq!(m.method(), Some(&Method::Invite));
        assert_eq!(m.vias.len(), 2);
        assert_eq!(m.top_via.branch, "z9hG4bK-1");
        assert!(m.top_via.rport);
        assert_eq!(m.top_via.port, Some(5061));
        assert_eq!(m.from_tag.as_deref(), Some("abc"));
        assert_eq!(m.from_user(), Some("13800000000"));
        assert_eq!(m.to_user(), Some("17000000000"));
        assert_eq!(m.call_id, "call-1@10.0.0.2");
        assert_eq!((m.cseq, m.cseq_method.as_str()), (7, "INVITE"));
        assert_eq!(m.asserted_user(), Some("13800000000"));
        assert_eq!(
            m.contact.as_deref(),
            Some("sip:13800000000@10.0.0.2:5061;transport=udp")
        );
        assert_eq!(m.relayed, vec![("Supported", Piece::from("100rel, timer"))]);
        // No Content-Length on UDP: the body runs to the end of the datagram.
        assert_eq!(m.body, b"v=0\r\n");
    }

    #[test]
    fn a_second_from_to_call_id_cseq_or_max_forwards_and_a_cseq_of_another_method_are_errors() {
        for (name, line) in [
            ("From", "From: <sip:x@h>;tag=2\r\n"),
            ("To", "t: <sip:y@h>\r\n"),
            ("Call-ID", "Call-ID: other\r\n"),
            ("CSeq", "CSeq: 8 INVITE\r\n"),
            ("Max-Forwards", "Max-Forwards: 20\r\nMax-Forwards: 30\r\n"),
        ] {
            let twice = INVITE.replacen("\r\n", &format!("\r\n{line}"), 1);
            assert!(
                matches!(Msg::parse(twice.as_bytes(), true), Err(SipError::Header(h)) if h == name),
                "{name}"
            );
        }
        let other = INVITE.replace("7 INVITE", "7 OPTIONS");
        assert!(matches!(
            Msg::parse(other.as_bytes(), true),
            Err(SipError::Header("CSeq"))
        ));
    }

    #[test]
    fn missing_call_id_is_an_error() {
        let bad = INVITE.replace("i: call-1@10.0.0.2\r\n", "");
        assert!(matches!(
            Msg::parse(bad.as_bytes(), true),
            Err(SipError::Header("Call-ID"))
        ));
    }

    #[test]
    fn commas_split_outside_quotes_and_angle_brackets_only() {
        let v = r#""Doe, J" <sip:a@h;x=1,2>;q=1 , <sip:b@h>,,sip:c@h"#;
        let parts: Vec<&str> = split_commas(v).collect();
        assert_eq!(
            parts,
            [r#""Doe, J" <sip:a@h;x=1,2>;q=1"#, "<sip:b@h>", "sip:c@h"]
        );
        assert_eq!(split_commas(" ").count(), 0);
    }

    /// Linphone 5.1's REGISTER: its Contact carries `+sip.instance` with
    /// `<` and `>` inside quotes after the URI.
    const LINPHONE_REGISTER: &str = "REGISTER sip:127.0.0.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.168.1.20:5062;branch=z9hG4bK.V1tbz5R7y;rport\r\n\
From: <sip:alice@127.0.0.1>;tag=yHa~Gx2Lm\r\n\
To: sip:alice@127.0.0.1\r\n\
CSeq: 21 REGISTER\r\n\
Call-ID: 7fXz-PqwKZ\r\n\
Max-Forwards: 70\r\n\
Supported: replaces, outbound, gruu, path, record-aware\r\n\
Accept: application/sdp\r\n\
Accept: text/plain\r\n\
Accept: application/vnd.gsma.rcs-ft-http+xml\r\n\
Contact: <sip:alice@192.168.1.20:5062;transport=udp>;+org.linphone.specs=\"lime\";+sip.instance=\"<urn:uuid:2f0d1b8e-5c0a-4c7e-9d1f-6a3b5e7c9d01>\";expires=600\r\n\
Expires: 600\r\n\
User-Agent: Linphone-Desktop/5.1.2 (debian) Debian GNU/Linux 12, Qt 5.15.8 LinphoneCore/5.1.2\r\n\
Content-Length: 0\r\n\r\n";

    #[test]
    fn linphone_contacts_keep_their_uri_and_parameters() {
        let m = Msg::parse(LINPHONE_REGISTER.as_bytes(), true).expect("parse");
        assert_eq!(
            m.contact.as_deref(),
            Some("sip:alice@192.168.1.20:5062;transport=udp")
        );
        assert_eq!(m.contacts.len(), 1);
        let c = &m.contacts[0];
        assert_eq!(uri_of(c), "sip:alice@192.168.1.20:5062;transport=udp");
        assert_eq!(param(after_uri(c), "expires"), Some("600"));
        assert_eq!(
            param(after_uri(c), "+sip.instance"),
            Some("\"<urn:uuid:2f0d1b8e-5c0a-4c7e-9d1f-6a3b5e7c9d01>\"")
        );
        assert_eq!(m.from_tag.as_deref(), Some("yHa~Gx2Lm"));
        // An INVITE's Contact from Linphone: a display name, a GRUU, the
        // instance after it.
        let invite = "\"Alice <home>\" <sip:alice@192.168.1.20:5062;gr=urn:uuid:2f0d>;+sip.instance=\"<urn:uuid:2f0d>\"";
        assert_eq!(
            uri_of(invite),
            "sip:alice@192.168.1.20:5062;gr=urn:uuid:2f0d"
        );
        assert_eq!(
            param(after_uri(invite), "+sip.instance"),
            Some("\"<urn:uuid:2f0d>\"")
        );
        // A quoted display name with an escaped quote and a `>`.
        let v = r#""a \" > b" <sip:x@h>;tag=9"#;
        assert_eq!((uri_of(v), after_uri(v)), ("sip:x@h", ";tag=9"));
        assert_eq!(split_commas(r#""a \" ," <sip:x@h>, <sip:y@h>"#).count(), 2);
        // addr-spec: parameters start at the first `;`.
        assert_eq!(uri_of("sip:a@h;tag=1"), "sip:a@h");
        assert_eq!(after_uri("sip:a@h;tag=1"), ";tag=1");
    }

    #[test]
    fn byte_cuts_keep_multibyte_text_whole() {
        // Cuts happen at ASCII bytes only, so text around them stays valid.
        assert_eq!(param("€x;tag=ü€;lr", "tag"), Some("ü€"));
        assert_eq!(uri_of("\"Ünïcödé\" <sip:€@h>;tag=1"), "sip:€@h");
        assert_eq!(after_uri("<sip:a@h>;tag=é"), ";tag=é");
        assert_eq!(uri_user("sip:ü;x=1@h"), Some("ü"));
        assert_eq!(pieces("a;;b", b';').collect::<Vec<_>>(), ["a", "", "b"]);
        assert_eq!(pieces("", b';').collect::<Vec<_>>(), [""]);
        let v =
            parse_via(&Piece::from("SIP/2.0/udp h€st:5060;branch=z9hG4bK€;RPORT")).expect("via");
        assert_eq!((v.transport.as_ref(), v.host.as_str()), ("UDP", "h€st"));
        assert_eq!((v.branch.as_str(), v.rport), ("z9hG4bK€", true));
        let v = parse_via(&Piece::from("SIP/2.0/quic h")).expect("via");
        assert_eq!((v.transport.as_ref(), v.port), ("QUIC", None));
    }

    #[test]
    fn ipv6_via_parses() {
        let v = parse_via(&Piece::from(
            "SIP/2.0/TCP [2001:db8::1]:5070;branch=z9hG4bKx",
        ))
        .expect("via");
        assert_eq!(v.host, "[2001:db8::1]");
        assert_eq!(v.port, Some(5070));
    }

    #[test]
    fn garbage_does_not_panic() {
        for s in [
            "",
            "\r\n\r\n",
            "INVITE\r\n\r\n",
            "SIP/2.0 abc\r\n\r\n",
            "INVITE sip:x SIP/2.0\r\nVia: x\r\n\r\n",
        ] {
            let _ = Msg::parse(s.as_bytes(), true);
        }
    }
}
