//! Each section's checks of its own values, each problem with its key
//! and, where the file has it, its line; every problem is kept, so the
//! operator sees them all at once.

use std::collections::HashSet;
use std::net::SocketAddr;

use super::report::locate;
use super::sections::*;
use super::Problem;

/// The problems found so far in the text being checked.
pub(super) struct Problems<'t> {
    text: &'t str,
    out: Vec<Problem>,
}

impl<'t> Problems<'t> {
    pub(super) fn new(text: &'t str) -> Self {
        Problems {
            text,
            out: Vec::new(),
        }
    }

    /// `key` is wrong, for `reason`.
    pub(super) fn bad(&mut self, key: &str, reason: String) {
        self.out.push(Problem {
            line: locate(self.text, key),
            key: key.to_string(),
            reason,
        });
    }

    /// Whether the file itself sets `key` (not the defaults).
    fn set(&self, key: &str) -> bool {
        locate(self.text, key).is_some()
    }

    /// Every `(key, value)` that is 0 said to need at least 1.
    fn at_least_one(&mut self, values: &[(&str, u64)]) {
        for (key, v) in values {
            if *v == 0 {
                self.bad(key, "must be at least 1".into());
            }
        }
    }

    /// Every network of `list` (CIDR) that does not parse.
    fn networks(&mut self, key: &str, list: &[String]) {
        for n in list {
            if let Err(e) = crate::net::Network::parse(n) {
                self.bad(key, e.to_string());
            }
        }
    }

    pub(super) fn done(self) -> Vec<Problem> {
        self.out
    }
}

fn address(p: &mut Problems<'_>, key: &str, v: &str) {
    if v.parse::<SocketAddr>().is_err() {
        p.bad(key, format!("{v:?} is not an IP:port address"));
    }
}

impl SipConfig {
    pub(super) fn check(&self, p: &mut Problems<'_>) {
        if self.listen.is_empty() {
            p.bad("sip.listen", "needs at least one address".into());
        }
        for l in &self.listen {
            address(p, "sip.listen", l);
        }
        if !self.trunk.is_empty() {
            if let Err(e) = crate::sip::Target::parse(&self.trunk) {
                p.bad("sip.trunk", e);
            }
        }
        if !(512..=65535).contains(&self.max_message_size) {
            p.bad(
                "sip.max_message_size",
                "must be between 512 and 65535".into(),
            );
        }
        if self.t1_ms == 0 {
            p.bad("sip.t1_ms", "must be at least 1".into());
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
        p.networks("sip.trusted", &self.trusted);
        if self.source_rate > 0 && self.source_burst == 0 {
            p.bad(
                "sip.source_burst",
                "must be at least 1 when source_rate is set".into(),
            );
        }
        if !matches!(self.caller_id.as_str(), "asserted" | "from") {
            p.bad("sip.caller_id", "must be \"asserted\" or \"from\"".into());
        }
    }
}

impl FlowSection {
    /// `country` is `numbers.default_country_code`: soft numbers must not
    /// look like its mobile numbers.
    pub(super) fn check(&self, country: &str, p: &mut Problems<'_>) {
        if self.soft_flag > 9 || self.soft_reserved > 9 || self.soft_flag == 0 {
            p.bad(
                "flow.soft_flag",
                "soft_flag 1 to 9 and soft_reserved 0 to 9".into(),
            );
        } else if crate::bindings::number::mobile_first_digits(country).contains(&self.soft_flag) {
            p.bad(
                "flow.soft_flag",
                format!(
                    "{} starts real mobile numbers of +{country}: soft numbers must not look like them",
                    self.soft_flag
                ),
            );
        }
        let spans = [
            self.lookback_secs,
            self.x_lifetime_secs,
            self.push_window_secs,
            self.idle_recycle_secs,
            self.soft_quarantine_secs,
        ];
        if spans.iter().any(|s| *s > 3_155_760_000) {
            p.bad(
                "flow.x_lifetime_secs",
                "spans of [flow] are at most 100 years".into(),
            );
        }
        if self.lookback_secs == 0 || self.x_lifetime_secs == 0 || self.push_window_secs == 0 {
            p.bad(
                "flow.x_lifetime_secs",
                "lookback_secs, x_lifetime_secs and push_window_secs must be at least 1".into(),
            );
        }
    }
}

impl MediaSection {
    pub(super) fn check(&self, p: &mut Problems<'_>) {
        if self.port_min < 1024 || self.port_max < self.port_min.saturating_add(3) {
            p.bad(
                "media.port_max",
                "the range needs port_min at least 1024 and two pairs of ports up to port_max"
                    .into(),
            );
        }
        for (key, _, loaded) in self.prompts() {
            if let Err(e) = loaded {
                p.bad(key, e.to_string());
            }
        }
        for (key, v) in [
            ("media.bind", &self.bind),
            ("media.advertise", &self.advertise),
        ] {
            if !v.is_empty() && v.parse::<std::net::IpAddr>().is_err() {
                p.bad(key, format!("{v:?} is not an IP address"));
            }
        }
    }
}

/// `[[trunks]]`: each entry's own values, and names unique among them.
pub(super) fn trunks(trunks: &[TrunkSection], p: &mut Problems<'_>) {
    let mut names = HashSet::new();
    for (i, t) in trunks.iter().enumerate() {
        let key = |k: &str| format!("trunks[{i}].{k}");
        if t.name.is_empty() || !names.insert(t.name.as_str()) {
            p.bad(&key("name"), "must be set and unique among trunks".into());
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
            p.bad(&key("weight"), "must be at least 1".into());
        }
        if !matches!(t.caller_id.as_str(), "" | "asserted" | "from") {
            p.bad(&key("caller_id"), "must be \"asserted\" or \"from\"".into());
        }
        if t.username.is_empty() != t.password.is_empty() {
            p.bad(&key("password"), "username and password go together".into());
        }
        p.networks(&key("media_networks"), &t.media_networks);
    }
}

impl ApiSection {
    pub(super) fn check(&self, p: &mut Problems<'_>) {
        if !self.listen.is_empty() {
            address(p, "api.listen", &self.listen);
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
            p.bad("api.body_timeout_secs", "must be 1 to 600".into());
        }
        if !(1..=600).contains(&self.header_timeout_secs) {
            p.bad("api.header_timeout_secs", "must be 1 to 600".into());
        }
        if self.max_body_bytes < 1024 {
            p.bad("api.max_body_bytes", "must be at least 1024".into());
        }
    }
}

impl NumbersConfig {
    pub(super) fn check(&self, p: &mut Problems<'_>) {
        let cc = &self.default_country_code;
        if cc.len() > 3 || !cc.bytes().all(|b| b.is_ascii_digit()) {
            p.bad(
                "numbers.default_country_code",
                "must be 1 to 3 digits, or empty".into(),
            );
        }
    }
}

impl Refusals {
    pub(super) fn check(&self, p: &mut Problems<'_>) {
        for (name, st) in self.all() {
            let key = format!("refusals.{name}");
            if !(400..=699).contains(&st.status) {
                p.bad(&key, format!("status {} is not 400..699", st.status));
            }
            if st.reason.is_empty() || st.reason.contains(['\r', '\n']) {
                p.bad(&key, "reason must be one non-empty line".into());
            }
        }
    }
}

impl WebhooksConfig {
    pub(super) fn check(&self, p: &mut Problems<'_>) {
        p.networks("webhooks.allow_networks", &self.allow_networks);
        if !(1..=300).contains(&self.timeout_secs) {
            p.bad("webhooks.timeout_secs", "must be 1 to 300".into());
        }
        if !(1..=100).contains(&self.max_attempts) {
            p.bad("webhooks.max_attempts", "must be 1 to 100".into());
        }
        p.at_least_one(&[("webhooks.disable_after_secs", self.disable_after_secs)]);
    }
}

impl RegistrarSection {
    pub(super) fn check(&self, p: &mut Problems<'_>) {
        if self.realm.is_empty() || self.realm.contains(['"', '\\', '\r', '\n']) {
            p.bad(
                "registrar.realm",
                "must be a non-empty word without quotes".into(),
            );
        }
        if self.min_expires == 0 || self.max_expires < self.min_expires {
            p.bad(
                "registrar.max_expires",
                "min_expires must be > 0 and max_expires >= min_expires".into(),
            );
        }
        if self.default_expires < self.min_expires || self.default_expires > self.max_expires {
            p.bad(
                "registrar.default_expires",
                "must be between min_expires and max_expires".into(),
            );
        }
        let known = |a: &String| matches!(a.as_str(), "SHA-256" | "MD5");
        if self.algorithms.is_empty() || !self.algorithms.iter().all(known) {
            p.bad(
                "registrar.algorithms",
                "one or both of \"SHA-256\" and \"MD5\"".into(),
            );
        }
        p.at_least_one(&[
            ("registrar.nonce_secs", self.nonce_secs),
            ("registrar.max_contacts", self.max_contacts as u64),
        ]);
    }
}

impl LogConfig {
    pub(super) fn check(&self, p: &mut Problems<'_>) {
        if tracing_subscriber::EnvFilter::try_new(&self.level).is_err() {
            p.bad(
                "log.level",
                format!("{:?} is not a valid filter", self.level),
            );
        }
    }
}
