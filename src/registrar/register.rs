//! A REGISTER, step by step as RFC 3261 10.3 orders it: authenticate, check
//! that the account registers its own address-of-record, then apply each
//! Contact (add, refresh, remove, `*`) with its expiry, and answer with
//! the contacts now bound.

use crate::b2bua::policy::Answer;
use crate::sip::message::{after_uri, param, split_commas, uri_of, uri_user, Msg};
use crate::sip::Peer;
use crate::time::Now;

use super::{Contact, Registrar};

/// One Contact of a REGISTER, taken apart.
struct Wanted {
    uri: String,
    /// Seconds asked for (the header's own, else Expires, else default).
    expires: u32,
}

impl Registrar {
    /// Answers a REGISTER from `src`; `edge` says `src` is trusted, so
    /// that the Path it added (RFC 3327) is honoured: from anyone else a
    /// Path would let a phone send our INVITEs wherever it likes.
    pub fn register(&mut self, m: &Msg, src: Peer, edge: bool, now: Now) -> Answer {
        let account = match self.check(m.authorization.as_deref(), m, false, now) {
            Ok(a) => a,
            Err(answer) => return answer,
        };
        // An account registers its own AOR only: To names it.
        if uri_user(uri_of(&m.to)) != Some(account.name.as_str()) {
            self.stats.forbidden += 1;
            return reason(403, "Not Your Address-of-Record");
        }
        let wanted = match self.wanted(m) {
            Ok(w) => w,
            Err(a) => return a,
        };
        let now_ms = now.unix_ms;
        let mut contacts = self.dir.contacts(&account.name, now_ms);
        match wanted {
            None => {
                // `Contact: *` with Expires: 0 removes them all.
                contacts.clear();
            }
            Some(list) => {
                let min = self.cfg.min_expires;
                if list.iter().any(|w| w.expires > 0 && w.expires < min) {
                    self.stats.too_brief += 1;
                    let mut a = Answer::status(423);
                    a.headers
                        .push(("Min-Expires", self.cfg.min_expires.to_string()));
                    return a;
                }
                let path: Vec<String> = match edge {
                    true => m
                        .path
                        .iter()
                        .flat_map(|p| split_commas(p))
                        .map(str::to_string)
                        .collect(),
                    false => Vec::new(),
                };
                for w in list {
                    self.apply(&mut contacts, w, m, (src, &path), now_ms);
                }
            }
        }
        // Too many: the oldest registrations make way.
        contacts.sort_by_key(|c| c.since_ms);
        while contacts.len() > self.cfg.max_contacts {
            contacts.remove(0);
        }
        self.dir.set_contacts(&account.name, contacts.clone());
        self.save(&account.name, &contacts);
        self.stats.registered += 1;
        let mut a = Answer::status(200);
        // RFC 3327 §5.3: the Path stored goes back to a UA that supports it.
        let supported = m.relayed.iter().any(|(n, v)| {
            *n == "Supported" && v.split(',').any(|t| t.trim().eq_ignore_ascii_case("path"))
        });
        if let Some(c) = contacts
            .iter()
            .find(|c| !c.path.is_empty() && !super::flows::relayed(c))
            .filter(|_| supported)
        {
            a.headers.extend(c.path.iter().map(|p| ("Path", p.clone())));
        }
        for c in &contacts {
            let left = (c.expires_ms - now_ms).max(0) / 1000;
            a.headers
                .push(("Contact", format!("<{}>;expires={left}", c.uri)));
        }
        a
    }

    /// The Contacts asked for: `None` for `*`, else each with its expiry.
    fn wanted(&mut self, m: &Msg) -> Result<Option<Vec<Wanted>>, Answer> {
        let default = m.expires.unwrap_or(self.cfg.default_expires);
        let star = m.contacts.iter().any(|c| c == "*");
        if star {
            // RFC 3261 10.3 step 6: `*` only alone and with Expires: 0.
            if m.contacts.len() != 1 || m.expires != Some(0) {
                self.stats.malformed += 1;
                return Err(reason(400, "Contact * Needs Expires: 0 Alone"));
            }
            return Ok(None);
        }
        let mut out = Vec::with_capacity(m.contacts.len());
        for c in &m.contacts {
            let uri = uri_of(c);
            if !(uri.starts_with("sip:") || uri.starts_with("sips:")) || uri.len() > 512 {
                self.stats.malformed += 1;
                return Err(reason(400, "Bad Contact"));
            }
            let expires = param(after_uri(c), "expires")
                .map(|e| e.parse::<u32>())
                .transpose()
                .map_err(|_| {
                    self.stats.malformed += 1;
                    reason(400, "Bad Contact Expires")
                })?
                .unwrap_or(default);
            out.push(Wanted {
                uri: uri.to_string(),
                expires: expires.min(self.cfg.max_expires),
            });
        }
        Ok(Some(out))
    }

    /// Adds, refreshes or removes one contact.
    fn apply(
        &self,
        contacts: &mut Vec<Contact>,
        w: Wanted,
        m: &Msg,
        (src, path): (Peer, &[String]),
        now_ms: i64,
    ) {
        let existing = contacts.iter().position(|c| c.uri == w.uri);
        if let Some(i) = existing {
            let c = &contacts[i];
            // An older REGISTER of the same UA, arriving late, changes nothing.
            if c.call_id == m.call_id && m.cseq <= c.cseq {
                return;
            }
        }
        if w.expires == 0 {
            if let Some(i) = existing {
                contacts.remove(i);
            }
            return;
        }
        let since_ms = existing.map_or(now_ms, |i| contacts[i].since_ms);
        let c = Contact {
            uri: w.uri,
            peer: src,
            expires_ms: now_ms + i64::from(w.expires) * 1000,
            call_id: m.call_id.to_string(),
            cseq: m.cseq,
            since_ms,
            path: path.to_vec(),
        };
        match existing {
            Some(i) => contacts[i] = c,
            None => contacts.push(c),
        }
    }
}

fn reason(status: u16, reason: &str) -> Answer {
    Answer {
        status,
        reason: reason.to_string(),
        headers: Vec::new(),
    }
}
