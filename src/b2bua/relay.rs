//! This node as a stateless relay between another node of its cluster and
//! a phone whose flow it holds (`sip::relay`): a call that entered another
//! node reaches the phone through the node it registered with, and the
//! phone's requests in that dialog go back the same way. Nothing but a
//! node and the phone on its own flow is relayed to: a stranger's request
//! naming a flow, or one that would leave through this node for anywhere
//! else, is dropped.

use crate::sip::message::{param, parse_via, Method, Msg, Start};
use crate::sip::relay::{self, Entry};
use crate::sip::{Peer, Transport};

use super::policy::Policy;
use super::Engine;

impl<P: Policy> Engine<P> {
    /// Relays `m` if it is for this node's relay: `true` when it was (or
    /// was dropped as a relay's).
    pub(super) fn relayed(&mut self, m: &Msg, src: Peer) -> bool {
        match m.method() {
            None => {
                m.top_via.branch.starts_with(relay::BRANCH) && {
                    self.pass_response(m);
                    true
                }
            }
            Some(method) => {
                let Some(entry) = m.route.first().and_then(|r| Entry::parse(r)) else {
                    return false;
                };
                if !self.is_me(&entry.node) {
                    return false;
                }
                self.pass_request(m, method, &entry, src);
                true
            }
        }
    }

    fn is_me(&self, node: &str) -> bool {
        [&self.cfg.me_v4, &self.cfg.me_v6]
            .into_iter()
            .any(|me| me.as_deref() == Some(node))
    }

    fn pass_request(&mut self, m: &Msg, method: &Method, entry: &Entry, src: Peer) {
        let from_phone = src == entry.flow
            || (src.addr.ip() == entry.flow.addr.ip() && !self.policy.is_node(src.addr.ip()));
        let (to, record, back) = if from_phone {
            // In the dialog (the phone follows our Record-Route), to the
            // node whose contact is the Request-URI.
            let uri = match &m.start {
                Start::Request { uri, .. } => uri.as_str(),
                Start::Response { .. } => "",
            };
            let Some(to) = node_of(uri).filter(|p| self.policy.is_node(p.addr.ip())) else {
                tracing::debug!(%src, "relay: a phone's request for no node, dropped");
                return;
            };
            (to, None, Some(entry))
        } else {
            if !self.policy.is_node(src.addr.ip())
                || !self.policy.holds_flow(&entry.account, entry.flow)
            {
                // A node that started in the last second is not known yet;
                // a flow gone is the phone's to register again.
                tracing::debug!(%src, "relay: not a node, or not a flow held here");
                if *method != Method::Ack {
                    let tag = crate::ids::token();
                    self.tx
                        .reply_stateless(m, src, 403, "Not Relayed", &tag, &[]);
                }
                return;
            }
            // A dialog it starts keeps this node on its path: the phone is
            // reached only through it.
            let record = (m.to_tag.is_none() && *method == Method::Invite).then(|| entry.value());
            (entry.flow, record, None)
        };
        let me = self.me_for(&to);
        let via = relay::via(&me, to.transport, &m.top_via.branch, back);
        match relay::request(&m.head, &m.body, &via, record.as_deref()) {
            Some(bytes) => self.tx.send_stateless(to, bytes.into()),
            None => tracing::debug!(%src, "relay: Max-Forwards spent"),
        }
    }

    fn pass_response(&mut self, m: &Msg) {
        let Some(ours) = m.vias.first() else { return };
        let host = match m.top_via.port {
            Some(p) => crate::text::cat(&[&m.top_via.host, ":", &p.to_string()]),
            None => m.top_via.host.to_string(),
        };
        if !self.is_me(&host) {
            return;
        }
        let to = match relay::back(ours, &host) {
            // Back to the phone, on the flow its request came on.
            Some(e) if self.policy.holds_flow(&e.account, e.flow) => e.flow,
            Some(_) => return,
            // Back to the node that sent the request.
            None => {
                let Some(next) = m.vias.get(1).and_then(parse_via) else {
                    return;
                };
                let addr = next
                    .host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse()
                    .ok()
                    .map(|ip| std::net::SocketAddr::new(ip, next.port.unwrap_or(5060)));
                let transport = match next.transport.as_ref() {
                    "TCP" => Transport::Tcp,
                    _ => Transport::Udp,
                };
                match addr.filter(|a| self.policy.is_node(a.ip())) {
                    Some(addr) => Peer { transport, addr },
                    None => return,
                }
            }
        };
        let bytes = relay::response(&m.head, &m.body);
        self.tx.send_stateless(to, bytes.into());
    }
}

/// Where a node's contact URI (`sip:user@ip:port;transport=...`) is
/// reached.
fn node_of(uri: &str) -> Option<Peer> {
    let rest = uri.split_once(':')?.1;
    let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let (hostport, params) = match host.find(';') {
        Some(i) => host.split_at(i),
        None => (host, ""),
    };
    let addr = hostport.parse().ok().or_else(|| {
        let ip: std::net::IpAddr = hostport.parse().ok()?;
        Some(std::net::SocketAddr::new(ip, 5060))
    })?;
    let tcp = param(params, "transport").is_some_and(|t| t.eq_ignore_ascii_case("tcp"));
    Some(Peer {
        transport: if tcp { Transport::Tcp } else { Transport::Udp },
        addr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nodes_contact_uri_says_where_and_how_it_is_reached() {
        let p = node_of("sip:x@127.0.0.1:5070;transport=TCP;ob").expect("tcp");
        assert_eq!(
            (p.transport, p.addr),
            (Transport::Tcp, "127.0.0.1:5070".parse().expect("addr"))
        );
        let p = node_of("sip:127.0.0.1").expect("udp");
        assert_eq!((p.transport, p.addr.port()), (Transport::Udp, 5060));
        assert_eq!(
            node_of("sip:x@node.example:5060"),
            None,
            "no name lookups here"
        );
    }
}
