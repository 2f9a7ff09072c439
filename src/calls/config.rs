//! `[[trunks]]`: the carriers calls go out through, each entry's defaults
//! and the checks of its values.
use std::collections::HashSet;

use serde::Deserialize;

use crate::problems::Problems;

/// One `[[trunks]]` entry.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrunkSection {
    /// Name, for logs and metrics.
    pub name: String,
    /// `host:port`, with `;transport=tcp` for TCP.
    pub address: String,
    /// Numbers served, as E.164 prefixes (`+86`, `+86138`); empty: all.
    #[serde(default)]
    pub prefixes: Vec<String>,
    /// Lower is tried first.
    #[serde(default = "one")]
    pub priority: u32,
    /// Share of calls among trunks of one priority.
    #[serde(default = "hundred")]
    pub weight: u32,
    /// Digest user name for the trunk's 401/407; empty: none.
    #[serde(default)]
    pub username: String,
    /// Digest password.
    #[serde(default)]
    pub password: String,
    /// `asserted` or `from`: where the caller of a call from this trunk is
    /// read (default: `sip.caller_id`).
    #[serde(default)]
    pub caller_id: String,
    /// Seconds between OPTIONS pings (0: never; the trunk is always up).
    #[serde(default = "thirty")]
    pub options_secs: u64,
    /// Milliseconds a ping waits for its answer before it counts as
    /// missed (0: the transaction's own 64×T1).
    #[serde(default = "two_thousand")]
    pub options_timeout_ms: u64,
    /// Missed pings in a row (a call the trunk left silent counts as one)
    /// that mark the trunk down.
    #[serde(default = "one")]
    pub options_down_after: u32,
    /// The trunk is a proxy (RFC 3261 §8.1.2): in-dialog requests to it
    /// carry `Route: <sip:address;lr>` when the far end did not
    /// record-route, so that it passes them on.
    #[serde(default = "yes")]
    pub outbound_proxy: bool,
    /// Seconds the trunk may stay silent (not even 100 Trying) before a
    /// call fails over to the next trunk.
    #[serde(default = "five")]
    pub setup_secs: u64,
    /// Networks (CIDR) the trunk's media may come from besides its
    /// signalling address and the addresses its SDP names.
    #[serde(default)]
    pub media_networks: Vec<String>,
}

fn one() -> u32 {
    1
}

fn hundred() -> u32 {
    100
}

fn thirty() -> u64 {
    30
}

fn two_thousand() -> u64 {
    2000
}

fn yes() -> bool {
    true
}

fn five() -> u64 {
    5
}

/// `[[trunks]]`: each entry's own values, and names unique among them.
pub fn check_trunks(trunks: &[TrunkSection], p: &mut Problems<'_>) {
    let mut names = HashSet::new();
    for (i, t) in trunks.iter().enumerate() {
        let key = |k: &str| format!("trunks[{i}].{k}");
        if t.name.is_empty() || !names.insert(t.name.as_str()) {
            p.bad(&key("name"), "must be set and unique among trunks");
        }
        if let Err(e) = crate::sip::Target::parse(&t.address) {
            p.bad(&key("address"), e);
        }
        for prefix in &t.prefixes {
            let d = prefix.strip_prefix('+').unwrap_or(prefix);
            if d.is_empty() || !d.bytes().all(|b| b.is_ascii_digit()) {
                p.bad(&key("prefixes"), format!("{prefix:?} is not + and digits"));
            }
        }
        if t.weight == 0 {
            p.bad(&key("weight"), "must be at least 1");
        }
        if !matches!(t.caller_id.as_str(), "" | "asserted" | "from") {
            p.bad(&key("caller_id"), "must be \"asserted\" or \"from\"");
        }
        if t.username.is_empty() != t.password.is_empty() {
            p.bad(&key("password"), "username and password go together");
        }
        p.each(
            &key("media_networks"),
            t.media_networks
                .iter()
                .map(|n| crate::net::Network::parse(n)),
        );
    }
}
