//! The config file: types, defaults (the embedded `config/sipmask.toml`) and
//! validation that names the file, line and key of every problem.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

mod report;

use report::{locate, merge, syntax_problem};
pub use report::{ConfigError, Problem};

use crate::bindings::conditions::Defaults;
use crate::bindings::Refusal;

/// The embedded default config.
pub const DEFAULT_TOML: &str = include_str!("../../config/sipmask.toml");

/// Whole config.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[sip]`
    pub sip: SipConfig,
    /// `[numbers]`
    pub numbers: NumbersConfig,
    /// `[storage]`
    pub storage: StorageConfig,
    /// `[defaults]`
    pub defaults: DefaultsConfig,
    /// `[refusals]`
    pub refusals: Refusals,
    /// `[api]`
    pub api: ApiSection,
    /// `[records]`
    pub records: RecordsConfig,
    /// `[webhooks]`
    pub webhooks: WebhooksConfig,
    /// `[shutdown]`
    pub shutdown: ShutdownConfig,
    /// `[log]`
    pub log: LogConfig,
    /// `[registrar]`
    pub registrar: RegistrarSection,
    /// `[[trunks]]`: carriers calls to phone numbers go out through.
    pub trunks: Vec<TrunkSection>,
    /// `[flow]`: soft numbers and acquisition (tenants may override).
    pub flow: FlowSection,
    /// `[media]`: the RTP relay.
    pub media: MediaSection,
}

/// `[media]`: where calls' media goes.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaSection {
    /// `relay` (media through sipmask) or `off` (parties' addresses pass).
    pub mode: MediaMode,
    /// Lowest port of the relay's range.
    pub port_min: u16,
    /// Highest port of the relay's range.
    pub port_max: u16,
    /// Address the relay binds; empty: each family's `sip.listen` address.
    pub bind: String,
    /// Address written into SDP; empty: the SIP address peers see.
    pub advertise: String,
    /// An answered call with no RTP from either party for this long ends
    /// (0: never).
    pub timeout_secs: u64,
    /// Days a call recording is kept (0: forever).
    pub recording_keep_days: u32,
    /// Port pairs per address family opened at start and kept open.
    pub warm_pairs: u32,
    /// Whether prompts play, unless a binding says otherwise.
    pub announce: bool,
    /// WAV played to the caller before the call is bridged ("" none).
    pub announcement: String,
    /// WAV played to both parties before the maximum call length ("" none).
    pub warning: String,
    /// How long before the maximum call length the warning starts.
    pub warning_secs: u32,
    /// WAV played to a refused caller before the final status ("" none).
    pub refusal: String,
}

impl MediaSection {
    /// The prompts configured, loaded: (key, sound, prompt or why not).
    pub fn prompts(
        &self,
    ) -> Vec<(
        &'static str,
        crate::media::Sound,
        Result<crate::media::audio::Prompt, crate::media::audio::PromptError>,
    )> {
        use crate::media::Sound;
        [
            (
                "media.announcement",
                Sound::Announcement,
                &self.announcement,
            ),
            ("media.warning", Sound::Warning, &self.warning),
            ("media.refusal", Sound::Refusal, &self.refusal),
        ]
        .into_iter()
        .filter(|(_, _, path)| !path.is_empty())
        .map(|(key, sound, path)| {
            (
                key,
                sound,
                crate::media::audio::Prompt::load(Path::new(path)),
            )
        })
        .collect()
    }
}

/// `[media] mode`.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MediaMode {
    /// Every stream through sipmask's relay.
    Relay,
    /// Parties send media to each other and learn each other's address.
    Off,
}

/// `[flow]`: the defaults of flow 2, which each tenant may override.
#[derive(Clone, Debug, Deserialize, serde::Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FlowSection {
    /// First digit of soft numbers.
    pub soft_flag: u8,
    /// Second digit of soft numbers.
    pub soft_reserved: u8,
    /// A user idle this long loses its soft number (0: never).
    pub idle_recycle_secs: u64,
    /// A recycled soft number rests this long before it is issued again.
    pub soft_quarantine_secs: u64,
    /// A soft number is pushed to an agent at most once in this long.
    pub push_window_secs: u64,
    /// Interactions older than this do not permit an acquisition.
    pub lookback_secs: u64,
    /// How long an acquired X lives after the last request or interaction.
    pub x_lifetime_secs: u64,
    /// Longest call through an acquired X, seconds (0: `[defaults]`).
    pub x_max_call_secs: u32,
    /// Answered calls an acquired X allows (0: `[defaults]`).
    pub x_max_calls: u32,
}

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

/// `[numbers]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumbersConfig {
    /// Digits, no `+`; empty = none.
    pub default_country_code: String,
}

/// `[storage]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// SQLite directory.
    pub data_dir: PathBuf,
}

/// `[defaults]`: default call conditions.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefaultsConfig {
    /// 0 = unlimited.
    pub max_calls: u32,
    /// 0 = unlimited.
    pub max_call_secs: u32,
    /// 0 = unlimited.
    pub talk_budget_secs: u64,
    /// 0 = unlimited.
    pub lifetime_secs: u64,
}

/// A SIP status with its reason phrase.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Status {
    /// 400..=699.
    pub status: u16,
    /// Reason phrase.
    pub reason: String,
}

/// `[refusals]`: a status per refusal.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Refusals {
    /// See [`Refusal::UnknownNumber`].
    pub unknown_number: Status,
    /// See [`Refusal::CallerNotAllowed`].
    pub caller_not_allowed: Status,
    /// See [`Refusal::CallerBlocked`].
    pub caller_blocked: Status,
    /// See [`Refusal::NotYetValid`].
    pub not_yet_valid: Status,
    /// See [`Refusal::Expired`].
    pub expired: Status,
    /// See [`Refusal::CallsUsedUp`].
    pub calls_used_up: Status,
    /// See [`Refusal::TalkTimeUsedUp`].
    pub talk_time_used_up: Status,
    /// No trunk, or shutting down.
    pub no_route: Status,
    /// The callee is an account with no registered contact.
    pub not_registered: Status,
    /// See [`Refusal::SoftNumber`].
    pub soft_number: Status,
}

impl Refusals {
    /// The status for a refusal; the one place refusals become SIP.
    pub fn status(&self, r: Refusal) -> &Status {
        match r {
            Refusal::UnknownNumber => &self.unknown_number,
            Refusal::CallerNotAllowed => &self.caller_not_allowed,
            Refusal::CallerBlocked => &self.caller_blocked,
            Refusal::NotYetValid => &self.not_yet_valid,
            Refusal::Expired => &self.expired,
            Refusal::CallsUsedUp => &self.calls_used_up,
            Refusal::TalkTimeUsedUp => &self.talk_time_used_up,
            Refusal::SoftNumber => &self.soft_number,
        }
    }
}

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

/// `[records]`: call records.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordsConfig {
    /// Retention in days; 0 = forever.
    pub keep_days: u32,
}

/// `[shutdown]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShutdownConfig {
    /// Grace period for live calls.
    pub drain_secs: u64,
}

/// `[log]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// EnvFilter directive.
    pub level: String,
}

impl Config {
    /// Reads and validates a file.
    pub fn read(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: file.clone(),
            source,
        })?;
        Self::from_toml(&text, &file)
    }

    /// The embedded default.
    pub fn embedded() -> Result<Config, ConfigError> {
        Self::from_toml(DEFAULT_TOML, "<embedded config/sipmask.toml>")
    }

    /// Parses and validates text; `file` names it in errors. The text
    /// needs only the keys it changes: the rest come from the embedded
    /// defaults. Every unknown key, wrong type and bad value is reported,
    /// each with its line and key.
    pub fn from_toml(text: &str, file: &str) -> Result<Config, ConfigError> {
        let invalid = |problems| ConfigError::Invalid {
            file: file.to_string(),
            problems,
        };
        let user: toml::Table = text
            .parse()
            .map_err(|e| invalid(vec![syntax_problem(text, &e)]))?;
        let defaults: toml::Table = DEFAULT_TOML.parse().map_err(|e: toml::de::Error| {
            invalid(vec![Problem {
                line: None,
                key: "(embedded defaults)".into(),
                reason: e.message().to_string(),
            }])
        })?;
        let mut problems = Vec::new();
        // Unknown keys and wrong types are left out of the merge, so the
        // values can still be checked and every problem said at once.
        let leaves = report::leaves(&user, "");
        let merged = merge(defaults.clone(), user, "", text, &mut problems);
        let cfg: Config = match toml::Value::Table(merged.clone()).try_into() {
            Ok(c) => c,
            // A value of the right TOML type the typed config still
            // refuses (a negative count, an unknown variant): found one by
            // one, each said with its line, and left out so the rest are
            // checked too.
            Err(_) => {
                let kept = report::typed_leaves(defaults, &merged, leaves, text, &mut problems);
                match toml::Value::Table(kept).try_into() {
                    Ok(c) => c,
                    Err(e) => {
                        let e: toml::de::Error = e;
                        problems.push(Problem {
                            line: None,
                            key: "(value)".into(),
                            reason: e.message().to_string(),
                        });
                        return Err(invalid(problems));
                    }
                }
            }
        };
        problems.extend(cfg.validate(text));
        if problems.is_empty() {
            Ok(cfg)
        } else {
            // In the file's order, those without a line last.
            problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
            Err(invalid(problems))
        }
    }

    /// Every problem, each with its key and line.
    pub fn validate(&self, text: &str) -> Vec<Problem> {
        let mut out = Vec::new();
        let mut bad = |key: &str, reason: String| {
            out.push(Problem {
                line: locate(text, key),
                key: key.to_string(),
                reason,
            })
        };
        if self.sip.listen.is_empty() {
            bad("sip.listen", "needs at least one address".into());
        }
        for l in &self.sip.listen {
            if l.parse::<SocketAddr>().is_err() {
                bad("sip.listen", format!("{l:?} is not an IP:port address"));
            }
        }
        if !self.sip.trunk.is_empty() {
            if let Err(e) = crate::sip::Target::parse(&self.sip.trunk) {
                bad("sip.trunk", e);
            }
        }
        let f = &self.flow;
        if f.soft_flag > 9 || f.soft_reserved > 9 || f.soft_flag == 0 {
            bad(
                "flow.soft_flag",
                "soft_flag 1 to 9 and soft_reserved 0 to 9".into(),
            );
        } else if crate::bindings::number::mobile_first_digits(&self.numbers.default_country_code)
            .contains(&f.soft_flag)
        {
            bad(
                "flow.soft_flag",
                format!(
                    "{} starts real mobile numbers of +{}: soft numbers must not look like them",
                    f.soft_flag, self.numbers.default_country_code
                ),
            );
        }
        let spans = [
            f.lookback_secs,
            f.x_lifetime_secs,
            f.push_window_secs,
            f.idle_recycle_secs,
            f.soft_quarantine_secs,
        ];
        if spans.iter().any(|s| *s > 3_155_760_000) {
            bad(
                "flow.x_lifetime_secs",
                "spans of [flow] are at most 100 years".into(),
            );
        }
        if f.lookback_secs == 0 || f.x_lifetime_secs == 0 || f.push_window_secs == 0 {
            bad(
                "flow.x_lifetime_secs",
                "lookback_secs, x_lifetime_secs and push_window_secs must be at least 1".into(),
            );
        }
        let m = &self.media;
        if m.port_min < 1024 || m.port_max < m.port_min.saturating_add(3) {
            bad(
                "media.port_max",
                "the range needs port_min at least 1024 and two pairs of ports up to port_max"
                    .into(),
            );
        }
        for (key, _, loaded) in m.prompts() {
            if let Err(e) = loaded {
                bad(key, e.to_string());
            }
        }
        for (key, v) in [("media.bind", &m.bind), ("media.advertise", &m.advertise)] {
            if !v.is_empty() && v.parse::<std::net::IpAddr>().is_err() {
                bad(key, format!("{v:?} is not an IP address"));
            }
        }
        let mut names = std::collections::HashSet::new();
        for (i, t) in self.trunks.iter().enumerate() {
            let key = |k: &str| format!("trunks[{i}].{k}");
            if t.name.is_empty() || !names.insert(t.name.as_str()) {
                bad(&key("name"), "must be set and unique among trunks".into());
            }
            if let Err(e) = crate::sip::Target::parse(&t.address) {
                bad(&key("address"), e);
            }
            for p in &t.prefixes {
                let d = p.strip_prefix('+').unwrap_or(p);
                if d.is_empty() || !d.bytes().all(|b| b.is_ascii_digit()) {
                    bad(&key("prefixes"), format!("{p:?} is not + and digits"));
                }
            }
            if t.weight == 0 {
                bad(&key("weight"), "must be at least 1".into());
            }
            if !matches!(t.caller_id.as_str(), "" | "asserted" | "from") {
                bad(&key("caller_id"), "must be \"asserted\" or \"from\"".into());
            }
            if t.username.is_empty() != t.password.is_empty() {
                bad(&key("password"), "username and password go together".into());
            }
            for n in &t.media_networks {
                if let Err(e) = crate::net::Network::parse(n) {
                    bad(&key("media_networks"), e.to_string());
                }
            }
        }
        if !(512..=65535).contains(&self.sip.max_message_size) {
            bad(
                "sip.max_message_size",
                "must be between 512 and 65535".into(),
            );
        }
        if self.sip.t1_ms == 0 {
            bad("sip.t1_ms", "must be at least 1".into());
        } else if self.sip.t2_ms < self.sip.t1_ms {
            // Where the operator set one of the two: the other is a default.
            let key = if locate(text, "sip.t2_ms").is_some() {
                "sip.t2_ms"
            } else {
                "sip.t1_ms"
            };
            bad(
                key,
                format!(
                    "t2_ms ({}) must be at least t1_ms ({})",
                    self.sip.t2_ms, self.sip.t1_ms
                ),
            );
        }
        if self.sip.no_answer_secs == 0 {
            bad("sip.no_answer_secs", "must be at least 1".into());
        }
        if !self.api.listen.is_empty() && self.api.listen.parse::<SocketAddr>().is_err() {
            bad(
                "api.listen",
                format!("{:?} is not an IP:port address", self.api.listen),
            );
        }
        if self.api.rate_per_sec == 0 {
            bad("api.rate_per_sec", "must be at least 1".into());
        }
        if self.api.burst == 0 {
            bad("api.burst", "must be at least 1".into());
        }
        if self.api.max_connections == 0 {
            bad("api.max_connections", "must be at least 1".into());
        }
        if !(1..=600).contains(&self.api.body_timeout_secs) {
            bad("api.body_timeout_secs", "must be 1 to 600".into());
        }
        if self.api.max_connections_per_source == 0 {
            bad(
                "api.max_connections_per_source",
                "must be at least 1".into(),
            );
        }
        if self.api.max_requests_per_tenant == 0 {
            bad("api.max_requests_per_tenant", "must be at least 1".into());
        }
        if !(1..=600).contains(&self.api.header_timeout_secs) {
            bad("api.header_timeout_secs", "must be 1 to 600".into());
        }
        if self.api.max_body_bytes < 1024 {
            bad("api.max_body_bytes", "must be at least 1024".into());
        }
        let cc = &self.numbers.default_country_code;
        if cc.len() > 3 || !cc.bytes().all(|b| b.is_ascii_digit()) {
            bad(
                "numbers.default_country_code",
                "must be 1 to 3 digits, or empty".into(),
            );
        }
        for (name, st) in self.refusals.all() {
            if !(400..=699).contains(&st.status) {
                bad(
                    &format!("refusals.{name}"),
                    format!("status {} is not 400..699", st.status),
                );
            }
            if st.reason.is_empty() || st.reason.contains(['\r', '\n']) {
                bad(
                    &format!("refusals.{name}"),
                    "reason must be one non-empty line".into(),
                );
            }
        }
        for (key, list) in [
            ("sip.trusted", &self.sip.trusted),
            ("webhooks.allow_networks", &self.webhooks.allow_networks),
        ] {
            for n in list {
                if let Err(e) = crate::net::Network::parse(n) {
                    bad(key, e.to_string());
                }
            }
        }
        for (key, v) in [
            (
                "sip.max_tcp_connections",
                self.sip.max_tcp_connections as u64,
            ),
            ("sip.max_tcp_outbound", self.sip.max_tcp_outbound as u64),
            ("sip.max_tcp_per_source", self.sip.max_tcp_per_source as u64),
            ("sip.tcp_idle_secs", self.sip.tcp_idle_secs),
            ("sip.tcp_message_secs", self.sip.tcp_message_secs),
        ] {
            if v == 0 {
                bad(key, "must be at least 1".into());
            }
        }
        if self.sip.source_rate > 0 && self.sip.source_burst == 0 {
            bad(
                "sip.source_burst",
                "must be at least 1 when source_rate is set".into(),
            );
        }
        if !matches!(self.sip.caller_id.as_str(), "asserted" | "from") {
            bad("sip.caller_id", "must be \"asserted\" or \"from\"".into());
        }
        if !(1..=300).contains(&self.webhooks.timeout_secs) {
            bad("webhooks.timeout_secs", "must be 1 to 300".into());
        }
        let r = &self.registrar;
        if r.realm.is_empty() || r.realm.contains(['"', '\\', '\r', '\n']) {
            bad(
                "registrar.realm",
                "must be a non-empty word without quotes".into(),
            );
        }
        if r.min_expires == 0 || r.max_expires < r.min_expires {
            bad(
                "registrar.max_expires",
                "min_expires must be > 0 and max_expires >= min_expires".into(),
            );
        }
        if r.default_expires < r.min_expires || r.default_expires > r.max_expires {
            bad(
                "registrar.default_expires",
                "must be between min_expires and max_expires".into(),
            );
        }
        if r.nonce_secs == 0 {
            bad("registrar.nonce_secs", "must be at least 1".into());
        }
        if r.algorithms.is_empty()
            || r.algorithms
                .iter()
                .any(|a| !matches!(a.as_str(), "SHA-256" | "MD5"))
        {
            bad(
                "registrar.algorithms",
                "one or both of \"SHA-256\" and \"MD5\"".into(),
            );
        }
        if r.max_contacts == 0 {
            bad("registrar.max_contacts", "must be at least 1".into());
        }
        if !(1..=100).contains(&self.webhooks.max_attempts) {
            bad("webhooks.max_attempts", "must be 1 to 100".into());
        }
        if self.webhooks.disable_after_secs == 0 {
            bad("webhooks.disable_after_secs", "must be at least 1".into());
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            bad(
                "log.level",
                format!("{:?} is not a valid filter", self.log.level),
            );
        }
        out
    }

    /// Default conditions for the binding table.
    pub fn binding_defaults(&self) -> Defaults {
        let d = &self.defaults;
        Defaults {
            max_calls: d.max_calls,
            max_call_secs: d.max_call_secs,
            talk_budget_secs: d.talk_budget_secs,
            lifetime_secs: d.lifetime_secs,
        }
    }
}

impl Refusals {
    fn all(&self) -> [(&'static str, &Status); 8] {
        [
            ("unknown_number", &self.unknown_number),
            ("caller_not_allowed", &self.caller_not_allowed),
            ("caller_blocked", &self.caller_blocked),
            ("not_yet_valid", &self.not_yet_valid),
            ("expired", &self.expired),
            ("calls_used_up", &self.calls_used_up),
            ("talk_time_used_up", &self.talk_time_used_up),
            ("no_route", &self.no_route),
        ]
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn every_problem_is_said_with_its_line_and_key_whatever_else_is_wrong() {
        let text = "[sip]\nt1_ms = 0\nsource_rate = -5\nunknownkey = 3\n\n\
                    [media]\nmode = \"bogus\"\n";
        let err = Config::from_toml(text, "t.toml")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        for want in [
            "t.toml:2: sip.t1_ms: must be at least 1",
            "t.toml:3: sip.source_rate: invalid value: integer `-5`",
            "t.toml:4: sip.unknownkey: unknown key",
            "t.toml:7: media.mode: unknown variant `bogus`",
        ] {
            assert!(err.contains(want), "{want} in:\n{err}");
        }
        let dup = Config::from_toml("[sip]\nt1_ms = 100\n[sip]\nt2_ms = 200\n", "d.toml")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(dup.starts_with("d.toml:3: sip: "), "{dup}");
        assert!(dup.contains("duplicate key `sip`"), "{dup}");
        let cross = Config::from_toml("[sip]\nt2_ms = 100\n", "c.toml")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(cross.starts_with("c.toml:2: sip.t2_ms: "), "{cross}");
    }
    use super::*;

    #[test]
    fn a_bad_trunk_is_named_by_its_place_and_line() {
        let text = "[[trunks]]\nname = \"a\"\naddress = \"127.0.0.1:5070\"\n\n\
                    [[trunks]]\nname = \"b\"\naddress = \"nowhere\"\nweight = 0\n";
        let err = Config::from_toml(text, "t.toml")
            .expect_err("invalid")
            .to_string();
        assert!(err.contains("t.toml:7: trunks[1].address"), "{err}");
        assert!(err.contains("t.toml:8: trunks[1].weight"), "{err}");
        let ok = Config::from_toml(
            "[[trunks]]\nname = \"a\"\naddress = \"127.0.0.1:5070\"\n",
            "t.toml",
        )
        .expect("valid");
        assert_eq!(ok.trunks[0].priority, 1);
        assert_eq!(ok.trunks[0].options_secs, 30);
    }

    #[test]
    fn embedded_config_is_valid() {
        let c = Config::embedded().expect("embedded config must validate");
        assert_eq!(c.sip.listen, vec!["0.0.0.0:5060".to_string()]);
    }

    #[test]
    fn bad_value_names_file_line_and_key() {
        let text = DEFAULT_TOML.replace("t1_ms = 500", "t1_ms = 0");
        let err = Config::from_toml(&text, "x.toml")
            .expect_err("invalid")
            .to_string();
        let line = text
            .lines()
            .position(|l| l.starts_with("t1_ms"))
            .expect("line")
            + 1;
        assert!(err.contains(&format!("x.toml:{line}: sip.t1_ms")), "{err}");
    }

    #[test]
    fn unknown_key_is_rejected_with_its_line() {
        let text = DEFAULT_TOML.replace("t1_ms = 500", "t1_ms = 500\ntypo_ms = 1");
        let err = Config::from_toml(&text, "x.toml")
            .expect_err("invalid")
            .to_string();
        assert!(err.contains("typo_ms"), "{err}");
        assert!(err.contains("x.toml:"), "{err}");
    }

    #[test]
    fn a_short_file_takes_the_defaults() {
        let c = Config::from_toml("[sip]\ntrunk = \"127.0.0.1:5090\"\n", "short.toml")
            .expect("only what changes");
        assert_eq!(c.sip.trunk, "127.0.0.1:5090");
        assert_eq!(c.sip.t1_ms, 500);
        assert_eq!(c.api.rate_per_sec, 100);
    }

    #[test]
    fn every_problem_is_reported_with_its_own_line_and_key() {
        let text = "[sip]\n# retransmit interval\nt1_msec = 5\nt2_ms = \"x\"\n\n[api]\nburst = 0\n[nope]\n";
        let err = Config::from_toml(text, "typo.toml")
            .expect_err("invalid")
            .to_string();
        assert!(
            err.contains("typo.toml:3: sip.t1_msec: unknown key"),
            "{err}"
        );
        assert!(
            err.contains("typo.toml:4: sip.t2_ms: expected integer, found string"),
            "{err}"
        );
        assert!(err.contains("typo.toml:8: nope: unknown key"), "{err}");
        let err = Config::from_toml("[api]\nburst = 0\n[sip]\nno_answer_secs = 0\n", "v.toml")
            .expect_err("invalid")
            .to_string();
        assert!(err.contains("v.toml:2: api.burst"), "{err}");
        assert!(err.contains("v.toml:4: sip.no_answer_secs"), "{err}");
    }

    #[test]
    fn bad_refusal_status_is_reported() {
        let text = DEFAULT_TOML.replace(
            "status = 404, reason = \"Not Found\"",
            "status = 200, reason = \"Not Found\"",
        );
        let err = Config::from_toml(&text, "x.toml")
            .expect_err("invalid")
            .to_string();
        assert!(err.contains("refusals.unknown_number"), "{err}");
    }
}
