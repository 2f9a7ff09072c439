//! `[webhooks]`: where and how hard events are delivered, with the checks
//! of its values.
use serde::Deserialize;

use crate::problems::Problems;

/// `[webhooks]`: where and how hard events are delivered.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhooksConfig {
    /// Networks webhooks may reach although they are not public (CIDR).
    pub allow_networks: Vec<String>,
    /// Seconds one attempt may take.
    pub timeout_secs: u64,
    /// Attempts per event before it is failed.
    pub max_attempts: u32,
    /// Seconds of failing without a success before a webhook is disabled.
    pub disable_after_secs: u64,
    /// Extra CA certificates (PEM) for https receivers; empty = none.
    pub ca_file: String,
}

impl WebhooksConfig {
    /// The allowed networks (validated at load).
    pub fn networks(&self) -> Vec<crate::net::Network> {
        crate::net::Network::parse_all(&self.allow_networks)
    }
}

impl WebhooksConfig {
    pub fn check(&self, p: &mut Problems<'_>) {
        p.each(
            "webhooks.allow_networks",
            self.allow_networks
                .iter()
                .map(|n| crate::net::Network::parse(n)),
        );
        if !(1..=300).contains(&self.timeout_secs) {
            p.bad("webhooks.timeout_secs", "must be 1 to 300");
        }
        if !(1..=100).contains(&self.max_attempts) {
            p.bad("webhooks.max_attempts", "must be 1 to 100");
        }
        p.at_least_one(&[("webhooks.disable_after_secs", self.disable_after_secs)]);
    }
}
