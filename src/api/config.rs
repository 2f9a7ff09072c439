//! `[api]`: the HTTP control API's listener and limits, with the checks
//! of its values.
use serde::Deserialize;

use crate::problems::Problems;

/// `[api]`: the HTTP control API.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSection {
    /// Listen address; empty = no API.
    pub listen: String,
    /// Requests per second per tenant.
    pub rate_per_sec: u32,
    /// Burst per tenant.
    pub burst: u32,
    /// Rest of a released X, seconds.
    pub quarantine_secs: u64,
    /// Largest body.
    pub max_body_bytes: usize,
    /// Host in identifiers' URIs; empty = advertised SIP address.
    pub sip_host: String,
    /// Most HTTP connections open at once.
    pub max_connections: usize,
    /// Seconds a client has to send a request's headers.
    pub header_timeout_secs: u64,
    /// Seconds a client has to send a request's body after its headers.
    pub body_timeout_secs: u64,
    /// Most HTTP connections open at once from one IP address.
    pub max_connections_per_source: usize,
    /// Most requests of one tenant in progress at once.
    pub max_requests_per_tenant: usize,
}

impl ApiSection {
    pub fn check(&self, p: &mut Problems<'_>) {
        if !self.listen.is_empty() {
            p.address("api.listen", &self.listen);
        }
        p.at_least_one(&[
            ("api.rate_per_sec", u64::from(self.rate_per_sec)),
            ("api.burst", u64::from(self.burst)),
            ("api.max_connections", self.max_connections as u64),
            (
                "api.max_connections_per_source",
                self.max_connections_per_source as u64,
            ),
            (
                "api.max_requests_per_tenant",
                self.max_requests_per_tenant as u64,
            ),
        ]);
        if !(1..=600).contains(&self.body_timeout_secs) {
            p.bad("api.body_timeout_secs", "must be 1 to 600");
        }
        if !(1..=600).contains(&self.header_timeout_secs) {
            p.bad("api.header_timeout_secs", "must be 1 to 600");
        }
        if self.max_body_bytes < 1024 {
            p.bad("api.max_body_bytes", "must be at least 1024");
        }
    }
}
