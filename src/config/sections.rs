//! The sections of the config file, each with its defaults: `[sip]`,
//! `[media]`, `[[trunks]]`, `[registrar]`, `[flow]`, `[api]`, ... Their
//! checks are in `check.rs`.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::bindings::conditions::Defaults;
use crate::bindings::limits::{for_each_limit, for_each_refusal};
use crate::bindings::Refusal;

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

macro_rules! defaults_section {
    ($($id:ident $name:ident: $ty:ty = $def:literal, $min:literal..=$max:literal,
       counts $counts:ident, refusal $refusal:ident, $doc:literal;)*) => {
        /// `[defaults]`: default call conditions, one per limit (0 =
        /// unlimited), and the default lifetime.
        #[derive(Clone, Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct DefaultsConfig {
            $(#[doc = $doc] pub $name: $ty,)*
            /// A binding without its own end is valid this long after
            /// creation; 0 = unlimited.
            pub lifetime_secs: u64,
        }

        impl DefaultsConfig {
            /// Default conditions for the binding table.
            pub fn binding_defaults(&self) -> Defaults {
                Defaults {
                    $($name: self.$name,)*
                    lifetime_secs: self.lifetime_secs,
                }
            }
        }
    };
}

for_each_limit!(defaults_section);

/// A SIP status with its reason phrase.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Status {
    /// 400..=699.
    pub status: u16,
    /// Reason phrase.
    pub reason: String,
}

macro_rules! refusals_section {
    ($($id:ident $name:ident, $doc:literal;)*) => {
        /// `[refusals]`: a status per refusal.
        #[derive(Clone, Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct Refusals {
            $(#[doc = $doc] pub $name: Status,)*
            /// No trunk, or shutting down.
            pub no_route: Status,
            /// The callee is an account with no registered contact.
            pub not_registered: Status,
        }

        impl Refusals {
            /// The status for a refusal; the one place refusals become SIP.
            pub fn status(&self, r: Refusal) -> &Status {
                match r {
                    $(Refusal::$id => &self.$name,)*
                }
            }

            /// Every status with its key.
            pub(super) fn all(&self) -> Vec<(&'static str, &Status)> {
                vec![
                    $((stringify!($name), &self.$name),)*
                    ("no_route", &self.no_route),
                    ("not_registered", &self.not_registered),
                ]
            }
        }
    };
}

for_each_refusal!(refusals_section);

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
