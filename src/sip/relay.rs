//! Requests between the nodes of a cluster for a phone whose flow (the
//! UDP address it registered from, or its TCP connection) one node holds:
//! the Route entry that names that node, the phone's account and its flow,
//! and the stateless rewriting of what that node relays (RFC 3261
//! §16.11): its own Via on top of a request, the Route entry that named it
//! taken off, and its Via taken off a response.
//!
//! The messages relayed were built by a node for the phone (or by the
//! phone for a node): nothing of the other party is in them, so the relay
//! passes them on as they are, and never between two parties that are
//! not a node and the phone on its flow (`b2bua::relay` checks).

use std::net::SocketAddr;

use super::grammar::{param, uri_of};
use super::{Peer, Transport};

/// The addresses of the nodes of this node's cluster (their lease rows
/// say where each is reached; the upkeep refreshes them every second).
pub type Nodes = std::sync::Arc<std::sync::RwLock<Vec<std::net::IpAddr>>>;

/// The Route entry's parameter naming the phone's account.
const ACCOUNT: &str = "sm-acct";
/// The Route entry's parameter naming the phone's flow.
const FLOW: &str = "sm-flow";
/// What the branch of a relaying node's Via begins with.
pub const BRANCH: &str = "z9hG4bK-smr-";

/// A phone's flow at a node, as a Route entry names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The node holding the flow (`host:port` of its SIP).
    pub node: String,
    /// The phone's account.
    pub account: String,
    /// The flow: transport and the phone's address.
    pub flow: Peer,
}

impl Entry {
    /// As a Route (and Record-Route) value. A flow over TCP is reached
    /// over TCP: the phone reuses it for its own requests.
    pub fn value(&self) -> String {
        let (t, tp) = match self.flow.transport {
            Transport::Tcp => ("tcp", ";transport=tcp"),
            Transport::Udp => ("udp", ""),
        };
        crate::text::cat(&[
            "<sip:",
            &self.node,
            tp,
            ";lr;",
            ACCOUNT,
            "=",
            &self.account,
            ";",
            FLOW,
            "=",
            t,
            ":",
            &self.flow.addr.to_string(),
            ">",
        ])
    }

    /// The entry a Route (or Path) value names, if it is one.
    pub fn parse(value: &str) -> Option<Entry> {
        let uri = uri_of(value);
        let rest = uri.strip_prefix("sip:")?;
        let (node, params) = rest.split_once(';')?;
        let params = crate::text::cat(&[";", params]);
        let account = param(&params, ACCOUNT)?.to_string();
        let flow = param(&params, FLOW)?;
        let (t, addr) = flow.split_once(':')?;
        let transport = match t {
            "tcp" => Transport::Tcp,
            "udp" => Transport::Udp,
            _ => return None,
        };
        let addr: SocketAddr = addr.parse().ok()?;
        let ok = |c: char| c.is_ascii_alphanumeric() || "-_.!~*'()".contains(c);
        if account.is_empty() || !account.chars().all(ok) {
            return None;
        }
        Some(Entry {
            node: node.to_string(),
            account,
            flow: Peer { transport, addr },
        })
    }

    /// How the node is reached: over the flow's transport.
    pub fn node_peer(&self) -> Option<Peer> {
        Some(Peer {
            transport: self.flow.transport,
            addr: self.node.parse().ok()?,
        })
    }
}

/// A relaying node's Via: `me` over `transport`, its branch made from
/// the request's own (so that a CANCEL relayed matches its INVITE at the
/// next hop), and `back` (the flow the request came on) for its response.
pub fn via(me: &str, transport: Transport, theirs: &str, back: Option<&Entry>) -> String {
    let theirs = theirs.strip_prefix("z9hG4bK").unwrap_or(theirs);
    let mut v = crate::text::cat(&[
        "SIP/2.0/",
        transport.as_str(),
        " ",
        me,
        ";branch=",
        BRANCH,
        theirs,
    ]);
    if let Some(e) = back {
        let flow = e.value();
        // The entry's own parameters, after its URI's host.
        if let Some((_, params)) = uri_of(&flow).split_once(";lr") {
            v.push_str(params);
        }
    }
    v
}

/// The flow a relaying node's Via says a response goes back on.
pub fn back(via: &str, node: &str) -> Option<Entry> {
    let (_, params) = via.split_once(';')?;
    Entry::parse(&crate::text::cat(&["<sip:", node, ";lr;", params, ">"]))
}

/// Whether a header line is of header `long` (or its compact form).
fn is(line: &str, long: &str, compact: Option<&str>) -> bool {
    let Some((name, _)) = line.split_once(':') else {
        return false;
    };
    let name = name.trim_ascii();
    name.eq_ignore_ascii_case(long) || compact.is_some_and(|c| name.eq_ignore_ascii_case(c))
}

/// A header line without its first value (`None`: it had only that one).
fn without_first(line: &str) -> Option<String> {
    let (name, value) = line.split_once(':')?;
    let mut values = super::grammar::split_commas(value.trim_ascii());
    values.next();
    let rest: Vec<&str> = values.collect();
    (!rest.is_empty()).then(|| crate::text::cat(&[name, ": ", &rest.join(", ")]))
}

/// The head's lines after its start line, and the start line.
fn lines(head: &str) -> (&str, impl Iterator<Item = &str>) {
    let mut it = head.trim_end_matches(['\r', '\n']).split("\r\n");
    let start = it.next().unwrap_or("");
    (start, it)
}

fn assemble(out: Vec<String>, body: &[u8]) -> Vec<u8> {
    let mut bytes = out.join("\r\n").into_bytes();
    bytes.extend_from_slice(b"\r\n\r\n");
    bytes.extend_from_slice(body);
    bytes
}

/// A request relayed: `via` on top, the first Route value (the entry that
/// named this node) taken off, Max-Forwards one less, and `record` (a
/// Record-Route value) added. `None` when Max-Forwards is spent.
pub fn request(head: &str, body: &[u8], via: &str, record: Option<&str>) -> Option<Vec<u8>> {
    let (start, rest) = lines(head);
    let mut out = vec![start.to_string(), crate::text::cat(&["Via: ", via])];
    if let Some(r) = record {
        out.push(crate::text::cat(&["Record-Route: ", r]));
    }
    let mut routed = false;
    let mut forwards = false;
    for line in rest {
        if !routed && is(line, "Route", None) {
            routed = true;
            out.extend(without_first(line));
        } else if !forwards && is(line, "Max-Forwards", None) {
            forwards = true;
            let left: u32 = line.split_once(':')?.1.trim_ascii().parse().ok()?;
            out.push(format!(
                "Max-Forwards: {}",
                left.checked_sub(1).filter(|l| *l > 0)?
            ));
        } else {
            out.push(line.to_string());
        }
    }
    if !forwards {
        out.push("Max-Forwards: 69".into());
    }
    Some(assemble(out, body))
}

/// A response relayed: the top Via (this node's) taken off.
pub fn response(head: &str, body: &[u8]) -> Vec<u8> {
    let (start, rest) = lines(head);
    let mut out = vec![start.to_string()];
    let mut popped = false;
    for line in rest {
        if !popped && is(line, "Via", Some("v")) {
            popped = true;
            out.extend(without_first(line));
        } else {
            out.push(line.to_string());
        }
    }
    assemble(out, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(t: Transport) -> Entry {
        Entry {
            node: "10.0.0.2:5060".into(),
            account: "alice".into(),
            flow: Peer {
                transport: t,
                addr: "192.0.2.7:40212".parse().expect("addr"),
            },
        }
    }

    #[test]
    fn an_entry_reads_back_and_strangers_are_not_entries() {
        for t in [Transport::Udp, Transport::Tcp] {
            let e = entry(t);
            assert_eq!(Entry::parse(&e.value()), Some(e.clone()), "{}", e.value());
        }
        assert!(entry(Transport::Tcp).value().contains(";transport=tcp;"));
        for v in [
            "<sip:10.0.0.2:5060;lr>",
            "<sip:10.0.0.2;lr;sm-acct=a;sm-flow=sctp:1.2.3.4:5>",
            "<sip:10.0.0.2;lr;sm-acct=a;sm-flow=udp:nowhere>",
            "<sip:10.0.0.2;lr;sm-acct=a%40b;sm-flow=udp:1.2.3.4:5>",
        ] {
            assert_eq!(Entry::parse(v), None, "{v}");
        }
    }

    #[test]
    fn a_request_gets_a_via_loses_its_route_and_a_hop() {
        let head =
            "INVITE sip:bob@192.0.2.7 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\n\
            Route: <sip:10.0.0.2;lr;sm-acct=a;sm-flow=udp:192.0.2.7:5060>, <sip:next;lr>\r\n\
            Max-Forwards: 70\r\nContent-Length: 2\r\n\r\n";
        let out = request(
            head,
            b"hi",
            "SIP/2.0/UDP 10.0.0.2;branch=z9hG4bK-smr-1",
            Some("<r>"),
        )
        .expect("relayed");
        let text = String::from_utf8(out).expect("text");
        assert_eq!(
            text,
            "INVITE sip:bob@192.0.2.7 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.2;branch=z9hG4bK-smr-1\r\n\
             Record-Route: <r>\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\n\
             Route: <sip:next;lr>\r\nMax-Forwards: 69\r\nContent-Length: 2\r\n\r\nhi"
        );
        let spent = head.replace("Max-Forwards: 70", "Max-Forwards: 1");
        assert_eq!(request(&spent, b"", "v", None), None);
    }

    #[test]
    fn a_response_loses_its_top_via_even_in_a_shared_line() {
        let head =
            "SIP/2.0 200 OK\r\nv: SIP/2.0/UDP me;branch=z9hG4bK-smr-1, SIP/2.0/UDP a;branch=x\r\n\
            To: <sip:b>;tag=1\r\n\r\n";
        let text = String::from_utf8(response(head, b"")).expect("text");
        assert_eq!(
            text,
            "SIP/2.0 200 OK\r\nv: SIP/2.0/UDP a;branch=x\r\nTo: <sip:b>;tag=1\r\n\r\n"
        );
    }
}
