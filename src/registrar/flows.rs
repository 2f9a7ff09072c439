//! Whose flow a registration is, on a database that nodes share. Each
//! node saves its phones' contacts with a relay entry in front that names
//! itself, the account and the flow (`sip::relay`); the other nodes read
//! them back as reached through that node, which relays to the phone over
//! the flow it holds (its NAT binding, its TCP connection). Nodes that
//! share one address (siblings on one port) reach UDP flows directly.

use crate::sip::relay::Entry;
use crate::sip::Transport;

use super::directory::{Contact, Directory};

/// Whether a contact is reached through another node's relay.
pub fn relayed(c: &Contact) -> bool {
    c.path.first().is_some_and(|p| Entry::parse(p).is_some())
}

impl Directory {
    /// This node relays to its phones for the others of its database, at
    /// `me` (its SIP `host:port`, as its Via names it).
    pub fn relay_at(&self, me: String) {
        // Set once, at start.
        let _ = self.relay.set(me);
    }

    /// The path a contact of `account` is saved with: this node's relay
    /// entry when it relays and the phone registered with it directly.
    pub fn stored_path(&self, account: &str, c: &Contact) -> Vec<String> {
        match self.relay.get() {
            Some(me) if c.path.is_empty() => vec![Entry {
                node: me.clone(),
                account: account.to_string(),
                flow: c.peer,
            }
            .value()],
            _ => c.path.clone(),
        }
    }

    /// A saved contact as this node reaches it: through the node its relay
    /// entry names, or, when that is this node's own address (which its
    /// siblings share), straight to its flow. `None` for a TCP flow that
    /// only the process holding it can use (`held`: such contacts this
    /// process has).
    pub(super) fn placed(&self, mut c: Contact, held: &[Contact]) -> Option<Contact> {
        let entry = c.path.first().and_then(|p| Entry::parse(p));
        if let Some(e) = entry {
            if self.relay.get() != Some(&e.node) {
                c.peer = e.node_peer()?;
                return Some(c);
            }
            c.path.clear();
        }
        let direct = c.peer.transport == Transport::Udp
            || held.iter().any(|h| h.peer == c.peer && h.uri == c.uri);
        direct.then_some(c)
    }

    /// Whether this process holds `flow` for a registration of `account`
    /// (the relay takes requests for it).
    pub fn holds(&self, account: &str, flow: crate::sip::Peer) -> bool {
        // Asked for every relayed message: no copy of the contacts.
        self.any_contact(account, |c| c.peer == flow && !relayed(c))
    }
}
