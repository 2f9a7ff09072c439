//! `[sip]`: the SIP transports, timers and trust at the edge, with the
//! checks of its values.
use serde::Deserialize;

use crate::problems::Problems;

/// `[sip]`: transports and timers.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SipConfig {
    /// UDP+TCP listen addresses.
    pub listen: Vec<String>,
    /// Host for Via/Contact; empty = derive.
    pub advertise: String,
    /// Outbound trunk; empty = none.
    pub trunk: String,
    /// Largest message in bytes.
    pub max_message_size: usize,
    /// Inbound TCP connections open at once.
    pub max_tcp_connections: usize,
    /// Our own outbound TCP connections open at once (a pool of their own).
    pub max_tcp_outbound: usize,
    /// Inbound TCP connections one source address may hold.
    pub max_tcp_per_source: usize,
    /// Seconds a TCP connection may stay silent before it is closed.
    pub tcp_idle_secs: u64,
    /// Seconds a message on TCP may take from its first byte to its last.
    pub tcp_message_secs: u64,
    /// RFC 3261 T1.
    pub t1_ms: u64,
    /// RFC 3261 T2.
    pub t2_ms: u64,
    /// RFC 3261 T4.
    pub t4_ms: u64,
    /// Ring timeout.
    pub no_answer_secs: u64,
    /// Networks (CIDR) whose requests are taken besides the trunk's.
    pub trusted: Vec<String>,
    /// Where the caller of a trunk or trusted source is read:
    /// `asserted` (P-Asserted-Identity, else From) or `from`.
    pub caller_id: String,
    /// Requests per second an untrusted source may send from outside a
    /// call (0: no limit); the trunk and trusted networks are not limited.
    pub source_rate: u32,
    /// Requests one source may send at once.
    pub source_burst: u32,
    /// Seconds a source over its rate is banned (answered nothing).
    pub source_ban_secs: u64,
}

impl SipConfig {
    /// The trusted networks (checked by [`Config::validate`]).
    pub fn trusted_networks(&self) -> Vec<crate::net::Network> {
        crate::net::Network::parse_all(&self.trusted)
    }
}

impl SipConfig {
    pub fn check(&self, p: &mut Problems<'_>) {
        if self.listen.is_empty() {
            p.bad("sip.listen", "needs at least one address");
        }
        for l in &self.listen {
            p.address("sip.listen", l);
        }
        if !self.trunk.is_empty() {
            if let Err(e) = crate::sip::Target::parse(&self.trunk) {
                p.bad("sip.trunk", e);
            }
        }
        if !(512..=65535).contains(&self.max_message_size) {
            p.bad("sip.max_message_size", "must be between 512 and 65535");
        }
        if self.t1_ms == 0 {
            p.bad("sip.t1_ms", "must be at least 1");
        } else if self.t2_ms < self.t1_ms {
            // Where the operator set one of the two: the other is a default.
            let key = if p.set("sip.t2_ms") {
                "sip.t2_ms"
            } else {
                "sip.t1_ms"
            };
            let why = format!(
                "t2_ms ({}) must be at least t1_ms ({})",
                self.t2_ms, self.t1_ms
            );
            p.bad(key, why);
        }
        p.at_least_one(&[
            ("sip.no_answer_secs", self.no_answer_secs),
            ("sip.max_tcp_connections", self.max_tcp_connections as u64),
            ("sip.max_tcp_outbound", self.max_tcp_outbound as u64),
            ("sip.max_tcp_per_source", self.max_tcp_per_source as u64),
            ("sip.tcp_idle_secs", self.tcp_idle_secs),
            ("sip.tcp_message_secs", self.tcp_message_secs),
        ]);
        p.each(
            "sip.trusted",
            self.trusted.iter().map(|n| crate::net::Network::parse(n)),
        );
        if self.source_rate > 0 && self.source_burst == 0 {
            p.bad(
                "sip.source_burst",
                "must be at least 1 when source_rate is set",
            );
        }
        if !matches!(self.caller_id.as_str(), "asserted" | "from") {
            p.bad("sip.caller_id", "must be \"asserted\" or \"from\"");
        }
    }
}
