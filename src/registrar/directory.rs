//! The live directory of app accounts and where each is registered: read
//! by the call policy (who is calling, where to fork a call), changed by
//! REGISTER and by the account services, listed by the API. One lock
//! around plain maps; nothing in it waits.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use crate::bindings::TenantId;
use crate::sip::Peer;

use crate::sip::digest::Ha1;

/// An app account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// Its name: the user part of its address-of-record.
    pub name: String,
    /// The tenant it belongs to.
    pub tenant: TenantId,
    /// Tells it from an earlier account of the same name.
    pub uid: i64,
    /// Its password hashes.
    pub ha1: Ha1,
}

/// One registered contact of an account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contact {
    /// The Contact URI as registered: the Request-URI of calls to it.
    pub uri: String,
    /// Where calls are sent: the address the REGISTER came from (NAT), or
    /// the TCP connection it came over.
    pub peer: Peer,
    /// When it expires (unix ms).
    pub expires_ms: i64,
    /// Call-ID of the registering UA, with its CSeq: a REGISTER older than
    /// the last one seen changes nothing.
    pub call_id: String,
    /// See `call_id`.
    pub cseq: u32,
    /// When it was first registered (unix ms).
    pub since_ms: i64,
    /// The Path (RFC 3327) of its REGISTER, when that came from a trusted
    /// edge proxy: calls to it carry these as Route headers.
    pub path: Vec<String>,
}

#[derive(Default)]
struct Inner {
    accounts: HashMap<String, Account>,
    contacts: HashMap<String, Vec<Contact>>,
}

/// Accounts and their contacts.
#[derive(Default)]
pub struct Directory {
    inner: Mutex<Inner>,
    /// This node's SIP address, when it relays to its phones for the
    /// other nodes of a shared database (`super::flows`).
    pub(super) relay: std::sync::OnceLock<String>,
}

impl Directory {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain maps, still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces every account (at start, and when the command line changed
    /// them); contacts of accounts that are gone go too.
    pub fn load_accounts(&self, accounts: Vec<Account>) {
        let mut g = self.lock();
        let fresh: HashMap<String, Account> =
            accounts.into_iter().map(|a| (a.name.clone(), a)).collect();
        // Contacts stay with the account that registered them: a name
        // removed and made again (between two loads) starts with none.
        let old = std::mem::replace(&mut g.accounts, fresh);
        let Inner { accounts, contacts } = &mut *g;
        contacts.retain(|name, _| {
            accounts
                .get(name)
                .is_some_and(|a| old.get(name).is_none_or(|o| o.uid == a.uid))
        });
    }

    /// Restores contacts saved before a restart, dropping expired ones
    /// and those reached over a connection (which the restart closed).
    pub fn load_contacts(&self, rows: Vec<(String, Contact)>, now_ms: i64) -> usize {
        let mut g = self.lock();
        let mut n = 0;
        for (name, c) in rows {
            if c.expires_ms > now_ms && g.accounts.contains_key(&name) {
                if let Some(c) = self.placed(c, &[]) {
                    g.contacts.entry(name).or_default().push(c);
                    n += 1;
                }
            }
        }
        n
    }

    /// Whether any contact of an account, expired or not, is as `f` says.
    pub(super) fn any_contact(&self, name: &str, f: impl Fn(&Contact) -> bool) -> bool {
        self.lock()
            .contacts
            .get(name)
            .is_some_and(|cs| cs.iter().any(f))
    }

    /// Adds or replaces an account.
    pub fn put_account(&self, a: Account) {
        self.lock().accounts.insert(a.name.clone(), a);
    }

    /// Removes an account and its contacts.
    pub fn remove_account(&self, name: &str) {
        let mut g = self.lock();
        g.accounts.remove(name);
        g.contacts.remove(name);
    }

    /// One account.
    pub fn account(&self, name: &str) -> Option<Account> {
        self.lock().accounts.get(name).cloned()
    }

    /// The tenant of an account.
    pub fn tenant_of(&self, name: &str) -> Option<TenantId> {
        self.lock().accounts.get(name).map(|a| a.tenant)
    }

    /// An account's contacts that have not expired.
    pub fn contacts(&self, name: &str, now_ms: i64) -> Vec<Contact> {
        live(self.lock().contacts.get(name), now_ms)
    }

    /// Replaces an account's contacts (an applied REGISTER).
    pub fn set_contacts(&self, name: &str, contacts: Vec<Contact>) {
        let mut g = self.lock();
        if contacts.is_empty() {
            g.contacts.remove(name);
        } else {
            g.contacts.insert(name.to_string(), contacts);
        }
    }

    /// Takes an account's contacts as another node saved them: those
    /// another node holds reached through it (`super::flows`), those of
    /// this node's own address over UDP as they are (siblings on one port
    /// share the phone's NAT binding), one over TCP only where this process
    /// holds its connection, and this process's own TCP contacts kept
    /// whatever the other node knew of them.
    pub fn adopt_contacts(&self, name: &str, stored: Vec<Contact>) {
        let udp = crate::sip::Transport::Udp;
        let mut g = self.lock();
        let held: Vec<Contact> = g
            .contacts
            .get(name)
            .map(|cs| {
                cs.iter()
                    .filter(|c| c.peer.transport != udp && !super::flows::relayed(c))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let same = |a: &Contact, b: &Contact| a.peer == b.peer && a.uri == b.uri;
        let mut next: Vec<Contact> = stored
            .into_iter()
            .filter_map(|c| self.placed(c, &held))
            .collect();
        for h in held {
            if !next.iter().any(|c| same(c, &h)) {
                next.push(h);
            }
        }
        if next.is_empty() {
            g.contacts.remove(name);
        } else {
            g.contacts.insert(name.to_string(), next);
        }
    }

    /// Drops expired contacts; returns the accounts that lost some, with
    /// what they keep.
    pub fn expire(&self, now_ms: i64) -> Vec<(String, Vec<Contact>)> {
        self.drop_contacts(|c| c.expires_ms <= now_ms)
    }

    /// Drops contacts reached over a connection that closed; returns the
    /// accounts that lost some, with what they keep.
    pub fn connection_closed(&self, peer: Peer) -> Vec<(String, Vec<Contact>)> {
        self.drop_contacts(|c| c.peer == peer)
    }

    /// Drops the contacts `gone` says; returns the accounts that lost some,
    /// with what they keep.
    fn drop_contacts(&self, gone: impl Fn(&Contact) -> bool) -> Vec<(String, Vec<Contact>)> {
        let mut g = self.lock();
        let mut changed = Vec::new();
        for (name, cs) in g.contacts.iter_mut() {
            let before = cs.len();
            cs.retain(|c| !gone(c));
            if cs.len() != before {
                changed.push((name.clone(), cs.clone()));
            }
        }
        g.contacts.retain(|_, cs| !cs.is_empty());
        changed
    }

    /// A tenant's accounts, by name, each with its live contacts.
    pub fn of_tenant(&self, tenant: TenantId, now_ms: i64) -> Vec<(Account, Vec<Contact>)> {
        let g = self.lock();
        let mut out: Vec<_> = g
            .accounts
            .values()
            .filter(|a| a.tenant == tenant)
            .map(|a| (a.clone(), live(g.contacts.get(&a.name), now_ms)))
            .collect();
        out.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        out
    }

    /// (accounts, live contacts), for metrics.
    pub fn counts(&self, now_ms: i64) -> (usize, usize) {
        let g = self.lock();
        let contacts = g
            .contacts
            .values()
            .flatten()
            .filter(|c| c.expires_ms > now_ms)
            .count();
        (g.accounts.len(), contacts)
    }
}

/// The contacts of `cs` that have not expired at `now_ms`.
fn live(cs: Option<&Vec<Contact>>, now_ms: i64) -> Vec<Contact> {
    cs.into_iter()
        .flatten()
        .filter(|c| c.expires_ms > now_ms)
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::Transport;

    fn account(name: &str, tenant: TenantId) -> Account {
        Account {
            name: name.into(),
            tenant,
            uid: 1,
            ha1: Ha1::new(name, "r", "pw"),
        }
    }

    fn contact(port: u16, expires_ms: i64, transport: Transport) -> Contact {
        Contact {
            uri: format!("sip:a@127.0.0.1:{port}"),
            peer: Peer {
                transport,
                addr: ([127, 0, 0, 1], port).into(),
            },
            expires_ms,
            call_id: "c".into(),
            cseq: 1,
            since_ms: 0,
            path: Vec::new(),
        }
    }

    #[test]
    fn expiry_and_closed_connections_drop_contacts() {
        let d = Directory::default();
        d.load_accounts(vec![account("alice", 1), account("bob", 2)]);
        d.set_contacts(
            "alice",
            vec![
                contact(5000, 1_000, Transport::Udp),
                contact(5001, 5_000, Transport::Tcp),
            ],
        );
        assert_eq!(d.contacts("alice", 500).len(), 2);
        assert_eq!(d.contacts("alice", 2_000).len(), 1);
        assert_eq!(d.counts(500), (2, 2));
        let changed = d.expire(2_000);
        assert_eq!(changed.len(), 1);
        assert_eq!(changed[0].1.len(), 1);
        let gone = d.connection_closed(contact(5001, 0, Transport::Tcp).peer);
        assert_eq!(gone, vec![("alice".to_string(), Vec::new())]);
        assert!(d.contacts("alice", 0).is_empty());
        assert_eq!(d.of_tenant(2, 0).len(), 1);
        assert!(d.of_tenant(3, 0).is_empty());
    }

    #[test]
    fn contacts_of_removed_accounts_go_with_them() {
        let d = Directory::default();
        d.load_accounts(vec![account("alice", 1)]);
        d.load_contacts(
            vec![
                ("alice".into(), contact(5000, 9_000, Transport::Udp)),
                ("alice".into(), contact(5001, 10, Transport::Udp)),
                ("ghost".into(), contact(5002, 9_000, Transport::Udp)),
            ],
            100,
        );
        assert_eq!(d.contacts("alice", 100).len(), 1);
        assert!(d.contacts("ghost", 100).is_empty());
        d.load_accounts(Vec::new());
        assert!(d.contacts("alice", 100).is_empty());
    }

    #[test]
    fn another_nodes_contacts_are_taken_over_udp_and_tcp_only_where_held_here() {
        let d = Directory::default();
        // This node holds alice's TCP contact on port 2.
        d.set_contacts("alice", vec![contact(2, 100, Transport::Tcp)]);
        // Another node saved a UDP contact, its own TCP one (3) and a view
        // without ours.
        d.adopt_contacts(
            "alice",
            vec![
                contact(1, 100, Transport::Udp),
                contact(3, 100, Transport::Tcp),
            ],
        );
        let mut ports: Vec<u16> = d
            .contacts("alice", 0)
            .iter()
            .map(|c| c.peer.addr.port())
            .collect();
        ports.sort();
        assert_eq!(ports, [1, 2], "UDP taken, ours kept, theirs over TCP not");
        // A phone gone from every node's view: gone here too.
        d.adopt_contacts("bob", Vec::new());
        assert!(d.contacts("bob", 0).is_empty());
    }
}
