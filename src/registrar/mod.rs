//! The registrar (RFC 3261 section 10): app accounts authenticate with
//! digest (RFC 8760: SHA-256 and MD5, qop=auth) and register where they can
//! be reached; calls from an account are authenticated the same way (407).
//! Owns the live [`Directory`] of accounts and contacts, the nonces and
//! their use counts, and the registration counters. Contacts are saved
//! through the store's writer so they survive a restart; accounts are
//! created by `service::accounts` (API and command line).
//!
//! Imports downwards only: `b2bua` (the [`Answer`] type), `sip`, `store`,
//! `bindings`.

pub mod config;
mod directory;
mod flows;
mod register;

use std::collections::HashMap;
use std::sync::Arc;

use crate::b2bua::policy::Answer;
use crate::metrics::metric;
use crate::sip::digest;
use crate::sip::message::Msg;
use crate::store::accounts::ContactRow;
use crate::store::Writer;
use crate::time::Now;
use config::RegistrarSection;

pub use directory::{Account, Contact, Directory};

/// What the registrar needs from the config: the `[registrar]` section,
/// with its algorithm names parsed.
#[derive(Clone, Debug)]
pub struct RegistrarConfig {
    /// The section as configured.
    pub section: RegistrarSection,
    /// `section.algorithms`, parsed.
    pub algorithms: Vec<digest::Algorithm>,
}

impl RegistrarConfig {
    /// The settings of the config's `[registrar]` (checked by
    /// `Config::validate`: unknown algorithm names are left out).
    pub fn from_section(section: &RegistrarSection) -> RegistrarConfig {
        RegistrarConfig {
            algorithms: section
                .algorithms
                .iter()
                .filter_map(|a| digest::Algorithm::named(a))
                .collect(),
            section: section.clone(),
        }
    }
}

impl std::ops::Deref for RegistrarConfig {
    type Target = RegistrarSection;

    fn deref(&self) -> &RegistrarSection {
        &self.section
    }
}

/// Counters for metrics, by outcome.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// REGISTERs applied.
    pub registered: u64,
    /// Requests answered with a challenge (no credentials, or unusable).
    pub challenged: u64,
    /// Challenges with stale=true.
    pub stale: u64,
    /// Requests whose nc was not above the last seen for their nonce.
    pub replayed: u64,
    /// Wrong passwords, unknown accounts, another account's AOR.
    pub forbidden: u64,
    /// Registrations shorter than the minimum (423).
    pub too_brief: u64,
    /// Malformed REGISTERs (400).
    pub malformed: u64,
    /// Calls authenticated as an account.
    pub calls: u64,
}

/// The registrar: REGISTER, digest checks of calls, contact expiry.
pub struct Registrar {
    cfg: RegistrarConfig,
    dir: Arc<Directory>,
    nonces: digest::Nonces,
    /// Nonces used at least once: the highest nc seen and when the nonce
    /// stops being usable (unix ms).
    used: HashMap<String, (u32, i64)>,
    store: Option<Writer>,
    stats: Stats,
}

impl Registrar {
    /// A registrar over `dir`, saving contacts through `store`.
    pub fn new(cfg: RegistrarConfig, dir: Arc<Directory>, store: Option<Writer>) -> Registrar {
        Registrar {
            nonces: digest::Nonces::new(cfg.nonce_secs),
            cfg,
            dir,
            used: HashMap::new(),
            store,
            stats: Stats::default(),
        }
    }

    /// The directory.
    pub fn directory(&self) -> &Arc<Directory> {
        &self.dir
    }

    /// Counters so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Authenticates a request that needs an account (an INVITE from a
    /// source that is not trusted): the account, or the answer to send
    /// (407 challenge, 403).
    pub fn authenticate_call(&mut self, m: &Msg, now: Now) -> Result<Account, Answer> {
        let a = self.check(m.proxy_authorization.as_deref(), m, true, now)?;
        self.stats.calls += 1;
        Ok(a)
    }

    /// Checks credentials (`proxy`: Proxy-Authorization and 407, else
    /// Authorization and 401).
    fn check(
        &mut self,
        creds: Option<&str>,
        m: &Msg,
        proxy: bool,
        now: Now,
    ) -> Result<Account, Answer> {
        let Some(c) = creds.and_then(digest::parse_credentials) else {
            return Err(self.challenge(proxy, false, now));
        };
        let Some(account) = self.dir.account(&c.username) else {
            // The same answer as a wrong password: no account guessing.
            self.stats.forbidden += 1;
            return Err(Answer::status(403));
        };
        let method = m.method().map_or("", |x| x.as_str());
        match self
            .nonces
            .verify(&c, method, &self.cfg.realm, &account.ha1, now.unix_ms)
        {
            Ok(()) => {}
            Err(digest::Failure::Wrong) => {
                self.stats.forbidden += 1;
                return Err(Answer::status(403));
            }
            Err(digest::Failure::Stale) => return Err(self.challenge(proxy, true, now)),
            Err(digest::Failure::Unusable) => {
                if account.ha1.realm != self.cfg.realm {
                    tracing::warn!(
                        account = %crate::mask::Masked(&account.name),
                        "account's password was set for another realm: set it again"
                    );
                }
                return Err(self.challenge(proxy, false, now));
            }
        }
        let expires = self
            .nonces
            .issued(&c.nonce)
            .map_or(now.unix_ms, |t| self.nonces.expires(t));
        let seen = self.used.entry(c.nonce).or_insert((0, expires));
        if c.nc <= seen.0 {
            // A request seen before, sent again by someone: refuse it.
            self.stats.replayed += 1;
            return Err(self.challenge(proxy, false, now));
        }
        seen.0 = c.nc;
        Ok(account)
    }

    fn challenge(&mut self, proxy: bool, stale: bool, now: Now) -> Answer {
        if stale {
            self.stats.stale += 1;
        } else {
            self.stats.challenged += 1;
        }
        let (status, name) = if proxy {
            (407, "Proxy-Authenticate")
        } else {
            (401, "WWW-Authenticate")
        };
        let mut a = Answer::status(status);
        a.headers = self
            .nonces
            .challenge(&self.cfg.realm, &self.cfg.algorithms, stale, now.unix_ms)
            .into_iter()
            .map(|v| (name, v))
            .collect();
        a
    }

    /// Drops expired contacts and nonces; call now and then.
    pub fn tick(&mut self, now: Now) {
        for (name, kept) in self.dir.expire(now.unix_ms) {
            self.save(&name, &kept);
        }
        self.used.retain(|_, (_, until)| *until >= now.unix_ms);
    }

    /// A TCP connection closed: contacts registered over it are gone.
    pub fn connection_closed(&mut self, peer: crate::sip::Peer) {
        for (name, kept) in self.dir.connection_closed(peer) {
            tracing::debug!(account = %crate::mask::Masked(&name), "contact's connection closed");
            self.save(&name, &kept);
        }
    }

    /// Saves an account's contacts as they are now.
    fn save(&self, name: &str, contacts: &[Contact]) {
        if let Some(w) = &self.store {
            let rows = contacts
                .iter()
                .map(|c| ContactRow {
                    uri: c.uri.clone(),
                    transport: c.peer.transport.as_str().to_string(),
                    addr: c.peer.addr.to_string(),
                    expires_ms: c.expires_ms,
                    call_id: c.call_id.clone(),
                    cseq: c.cseq,
                    since_ms: c.since_ms,
                    path: self.dir.stored_path(name, c).join("\n"),
                })
                .collect();
            w.contacts(name.to_string(), rows);
        }
    }

    /// Appends the registrar's metrics.
    pub fn metrics(&self, out: &mut String, now_ms: i64) {
        let (accounts, contacts) = self.dir.counts(now_ms);
        metric(
            out,
            "sipmask_accounts",
            "gauge",
            "App accounts.",
            &[("", accounts as u64)],
        );
        metric(
            out,
            "sipmask_registered_contacts",
            "gauge",
            "Registered contacts not yet expired.",
            &[("", contacts as u64)],
        );
        let s = &self.stats;
        metric(
            out,
            "sipmask_digest_total",
            "counter",
            "Registrations and authenticated calls, by outcome.",
            &[
                ("result=\"registered\"", s.registered),
                ("result=\"call_authenticated\"", s.calls),
                ("result=\"challenged\"", s.challenged),
                ("result=\"stale\"", s.stale),
                ("result=\"replayed\"", s.replayed),
                ("result=\"forbidden\"", s.forbidden),
                ("result=\"too_brief\"", s.too_brief),
                ("result=\"malformed\"", s.malformed),
            ],
        );
    }
}

/// Turns stored rows back into contacts (at start).
pub fn contact_of(row: ContactRow) -> Option<Contact> {
    let transport = match row.transport.as_str() {
        "UDP" => crate::sip::Transport::Udp,
        "TCP" => crate::sip::Transport::Tcp,
        _ => return None,
    };
    Some(Contact {
        uri: row.uri,
        peer: crate::sip::Peer {
            transport,
            addr: row.addr.parse().ok()?,
        },
        expires_ms: row.expires_ms,
        call_id: row.call_id,
        cseq: row.cseq,
        since_ms: row.since_ms,
        path: row.path.lines().map(str::to_string).collect(),
    })
}
