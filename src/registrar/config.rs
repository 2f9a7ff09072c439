//! `[registrar]`: app accounts registering with digest, with the checks of
//! its values.
use serde::Deserialize;

use crate::problems::Problems;

/// `[registrar]`: app accounts registering with digest.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrarSection {
    /// Digest realm; passwords are hashed with it.
    pub realm: String,
    /// Shortest registration taken, seconds (423 below it).
    pub min_expires: u32,
    /// Longest registration granted, seconds.
    pub max_expires: u32,
    /// Registration granted when the phone names none, seconds.
    pub default_expires: u32,
    /// Seconds a nonce may be used.
    pub nonce_secs: u64,
    /// Contacts kept per account.
    pub max_contacts: usize,
    /// Digest algorithms offered, in order of preference.
    pub algorithms: Vec<String>,
}

impl RegistrarSection {
    pub fn check(&self, p: &mut Problems<'_>) {
        if self.realm.is_empty() || self.realm.contains(['"', '\\', '\r', '\n']) {
            p.bad("registrar.realm", "must be a non-empty word without quotes");
        }
        if self.min_expires == 0 || self.max_expires < self.min_expires {
            p.bad(
                "registrar.max_expires",
                "min_expires must be > 0 and max_expires >= min_expires",
            );
        }
        if self.default_expires < self.min_expires || self.default_expires > self.max_expires {
            p.bad(
                "registrar.default_expires",
                "must be between min_expires and max_expires",
            );
        }
        let known = |a: &String| matches!(a.as_str(), "SHA-256" | "MD5");
        if self.algorithms.is_empty() || !self.algorithms.iter().all(known) {
            p.bad(
                "registrar.algorithms",
                "one or both of \"SHA-256\" and \"MD5\"",
            );
        }
        p.at_least_one(&[
            ("registrar.nonce_secs", self.nonce_secs),
            ("registrar.max_contacts", self.max_contacts as u64),
        ]);
    }
}
