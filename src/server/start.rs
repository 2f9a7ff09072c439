//! The parts a server is built from, each from the config: the SIP
//! sockets, the engine's and the masking policy's settings, the trunks,
//! the relay's ranges and addresses; and the tasks that run the SIP side.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use tokio::runtime::Handle;

use crate::b2bua::{Engine, EngineConfig, Media};
use crate::bindings::Normaliser;
use crate::calls::Masking;
use crate::calls::MaskingConfig;
use crate::config::{Config, MediaMode};
use crate::media::Relay;
use crate::media::RelayConfig;
use crate::sip::transaction::TimerConfig;
use crate::sip::transport::Net;
use crate::sip::{host_port, Target};
use crate::store::Durable;
use crate::store::Writer;

use super::bind::{bind_pair, check_free};
use super::core::{handed, Core};
use super::sip_thread::SipThread;
use super::ticks::tick;
use super::{release_answers, ServerError};

/// The SIP sockets bound: UDP (on the SIP thread), TCP listeners, and
/// the addresses they are on.
pub(super) type Bound = (
    Vec<tokio::net::UdpSocket>,
    Vec<TcpListener>,
    Vec<SocketAddr>,
);

/// Binds UDP and TCP on each `sip.listen` address (checking first that
/// nobody has them, unless a sibling instance shares them): the UDP
/// sockets registered on the SIP thread, the TCP listeners, and the
/// addresses bound.
pub(super) fn bind_sip(cfg: &Config, sip: &SipThread, overlap: bool) -> Result<Bound, ServerError> {
    let (mut udps, mut tcps, mut addrs) = (Vec::new(), Vec::new(), Vec::new());
    for l in &cfg.sip.listen {
        let addr: SocketAddr = l
            .parse()
            .map_err(|_| ServerError::Config(format!("bad listen address {l}")))?;
        let bind_err = |source| ServerError::Bind {
            addr: l.clone(),
            source,
        };
        if !overlap {
            check_free(addr).map_err(bind_err)?;
        }
        let (udp, tcp, port) = bind_pair(addr).map_err(bind_err)?;
        // Registered where its receive loop runs, so its wake-ups never
        // cross threads.
        let udp = {
            let _on = sip.handle().enter();
            tokio::net::UdpSocket::from_std(udp).map_err(bind_err)?
        };
        addrs.push(SocketAddr::new(addr.ip(), port));
        udps.push(udp);
        tcps.push(tcp);
    }
    Ok((udps, tcps, addrs))
}

/// Raises the open-file limit as far as it goes and says so when it
/// still allows few relayed calls; the limit.
pub(super) fn open_files(cfg: &Config) -> u64 {
    let files = super::bind::raise_open_files();
    if cfg.media.mode == MediaMode::Relay && files < 4096 {
        tracing::warn!(
            open_files = files,
            "the open-file limit allows few relayed calls (four sockets each)"
        );
    }
    files
}

/// This instance among the siblings that share the data dir (a restart
/// overlap).
pub(super) fn handover(
    data_dir: &std::path::Path,
    instance: &str,
) -> Result<Arc<crate::handover::Handover>, ServerError> {
    let h = crate::handover::Handover::start(data_dir, instance).map_err(|source| {
        ServerError::LockFile {
            path: data_dir.join("instances").display().to_string(),
            source,
        }
    })?;
    Ok(Arc::new(h))
}

/// Whether a sibling instance runs on the same data dir (a restart
/// overlap: it holds the ports, and hands us what is ours); it learns of
/// this instance now, not at its next look.
pub(super) fn overlap(handover: &crate::handover::Handover) -> bool {
    handover.refresh();
    let overlap = !handover.siblings().is_empty();
    handover.announce();
    overlap
}

/// What the engine's policy is built on: the live table, the store's
/// writer, the events hub and the accounts.
pub(super) type Parts<'a> = (
    &'a Arc<crate::bindings::BindingTable>,
    &'a Writer,
    &'a Arc<crate::events::Hub>,
    &'a Arc<crate::registrar::Directory>,
);

/// The call engine with the masking policy (its trunks, registrar and
/// settings) and, when media is relayed, the relay; with the address the
/// API shows as SIP's.
pub(super) fn engine(
    cfg: &Config,
    addrs: &[SocketAddr],
    instance: String,
    open_files: u64,
    (bindings, writer, hub, accounts): Parts<'_>,
) -> Result<(Engine<Masking>, Option<String>), ServerError> {
    let trunks = trunks_of(cfg)?;
    let (engine_cfg, me_for_api) = engine_config(cfg, addrs, &trunks);
    let registrar = crate::registrar::Registrar::new(
        crate::registrar::RegistrarConfig::from_section(&cfg.registrar),
        accounts.clone(),
        Some(writer.clone()),
    );
    let policy = Masking::new(
        masking_config(cfg, trunks, instance),
        bindings.clone(),
        writer.clone(),
        hub.clone(),
        registrar,
    );
    let mut engine = Engine::new(engine_cfg.clone(), policy);
    if cfg.media.mode == MediaMode::Relay {
        let recordings = cfg.storage.data_dir.join("recordings");
        let relay_cfg = relay_config(cfg, &recordings, addrs, &engine_cfg, open_files)?;
        let relay = Relay::new(relay_cfg, Handle::current());
        let timeout =
            (cfg.media.timeout_secs > 0).then(|| Duration::from_secs(cfg.media.timeout_secs));
        engine = engine.with_anchor(relay, timeout);
    }
    Ok((engine, me_for_api))
}

/// The SIP transport over the bound UDP sockets, with the TCP limits.
pub(super) fn net(
    cfg: &Config,
    udps: Vec<tokio::net::UdpSocket>,
    cancel: &CancellationToken,
    core: &Arc<Core>,
) -> Arc<Net> {
    let limits = crate::sip::guard::TcpLimits {
        inbound: cfg.sip.max_tcp_connections,
        outbound: cfg.sip.max_tcp_outbound,
        per_source: cfg.sip.max_tcp_per_source,
        idle: Duration::from_secs(cfg.sip.tcp_idle_secs),
        message: Duration::from_secs(cfg.sip.tcp_message_secs),
    };
    Net::new(
        udps,
        cfg.sip.max_message_size,
        limits,
        cancel.clone(),
        core.clone(),
    )
}

/// Starts the node's upkeep (checkpoints, its lease, dead instances'
/// calls) and the watcher that applies operator
/// changes (`seen`: the change log's position at load) to the live table,
/// the accounts and the API's keys, each on a store connection of its own.
pub(super) fn spawn_background(
    tasks: &mut JoinSet<()>,
    up: super::Upkeep,
    seen: Arc<std::sync::atomic::AtomicI64>,
    (bindings, accounts, api): (
        &Arc<crate::bindings::BindingTable>,
        &Arc<crate::registrar::Directory>,
        Option<Arc<crate::api::ApiState>>,
    ),
    front: &CancellationToken,
) -> Result<(), ServerError> {
    let store = up.at.open()?;
    let at = up.at.clone();
    tasks.spawn(super::upkeep(store, up, front.clone()));
    let store = at.open()?;
    let watch = crate::watch::run(
        store,
        seen,
        bindings.clone(),
        accounts.clone(),
        api,
        front.clone(),
    );
    tasks.spawn(watch);
    Ok(())
}

/// The engine's settings, and the address the API shows as SIP's.
pub(super) fn engine_config(
    cfg: &Config,
    addrs: &[SocketAddr],
    trunks: &[crate::calls::trunks::Trunk],
) -> (EngineConfig, Option<String>) {
    let (me_v4, me_v6) = advertised(addrs, &cfg.sip.advertise, trunks.first().map(|t| &t.target));
    let for_api = me_v4.clone().or_else(|| me_v6.clone());
    let engine = EngineConfig {
        me_v4,
        me_v6,
        unavailable: (
            cfg.refusals.no_route.status,
            cfg.refusals.no_route.reason.clone(),
        ),
        timers: TimerConfig {
            t1: Duration::from_millis(cfg.sip.t1_ms),
            t2: Duration::from_millis(cfg.sip.t2_ms),
            t4: Duration::from_millis(cfg.sip.t4_ms),
        },
    };
    (engine, for_api)
}

/// The masking policy's settings.
pub(super) fn masking_config(
    cfg: &Config,
    trunks: Vec<crate::calls::trunks::Trunk>,
    instance: String,
) -> MaskingConfig {
    MaskingConfig {
        trunks,
        refusals: cfg.refusals.clone(),
        normaliser: Normaliser {
            default_country_code: cfg.numbers.default_country_code.clone(),
        },
        no_answer: Duration::from_secs(cfg.sip.no_answer_secs),
        instance,
        trusted: cfg.sip.trusted_networks(),
        asserted_caller: cfg.sip.caller_id == "asserted",
        pike: crate::calls::pike::PikeConfig {
            per_sec: f64::from(cfg.sip.source_rate),
            burst: f64::from(cfg.sip.source_burst.max(1)),
            ban: Duration::from_secs(cfg.sip.source_ban_secs),
        },
        media: match cfg.media.mode {
            MediaMode::Relay => Media::Relay,
            MediaMode::Off => Media::Mask,
        },
        announce: cfg.media.announce,
        announcement: !cfg.media.announcement.is_empty(),
        warning: (!cfg.media.warning.is_empty())
            .then(|| Duration::from_secs(u64::from(cfg.media.warning_secs))),
        shared_store: cfg.storage.location().shared(),
        store_up: Arc::new(std::sync::atomic::AtomicBool::new(true)),
        offline_refuse: cfg.storage.offline == crate::store::config::Offline::Refuse,
        nodes: Default::default(),
    }
}

/// Starts the SIP side's tasks: the UDP receive loops, the timer tick and
/// the answers held for durability on the SIP thread; the TCP listeners
/// and the handover from sibling instances on the caller's runtime.
pub(super) fn spawn_sip(
    tasks: &mut JoinSet<()>,
    (core, net, sip): (&Arc<Core>, &Arc<Net>, &SipThread),
    tcps: Vec<TcpListener>,
    (cancel, front): (&CancellationToken, &CancellationToken),
    durable: Arc<Durable>,
) {
    for i in 0..net.udp_count() {
        tasks.spawn_on(net.clone().run_udp(i), sip.handle());
    }
    for l in tcps {
        tasks.spawn(net.clone().run_tcp_listener(l, front.clone()));
    }
    tasks.spawn_on(
        tick(core.clone(), net.clone(), cancel.clone()),
        sip.handle(),
    );
    tasks.spawn(handed(core.clone(), net.clone(), cancel.clone()));
    let release = release_answers(core.clone(), net.clone(), durable, cancel.clone());
    tasks.spawn_on(release, sip.handle());
}

/// The trunks of the config: `sip.trunk` (every number, never pinged, as
/// before there were several) and each `[[trunks]]`.
pub(super) fn trunks_of(cfg: &Config) -> Result<Vec<crate::calls::trunks::Trunk>, ServerError> {
    use crate::calls::trunks::Trunk;
    let global = cfg.sip.caller_id == "asserted";
    let mut out = Vec::new();
    if !cfg.sip.trunk.is_empty() {
        out.push(Trunk {
            name: "trunk".into(),
            target: Target::parse(&cfg.sip.trunk).map_err(ServerError::Config)?,
            prefixes: Vec::new(),
            priority: 0,
            weight: 100,
            auth: None,
            asserted_caller: global,
            options: None,
            options_timeout: None,
            down_after: 1,
            setup: None,
            outbound_proxy: true,
        });
    }
    for t in &cfg.trunks {
        let secs = |s: u64| (s > 0).then(|| Duration::from_secs(s));
        out.push(Trunk {
            name: t.name.clone(),
            target: Target::parse(&t.address).map_err(ServerError::Config)?,
            prefixes: t
                .prefixes
                .iter()
                .map(|p| format!("+{}", p.trim_start_matches('+')))
                .collect(),
            priority: t.priority,
            weight: t.weight,
            auth: (!t.username.is_empty()).then(|| {
                Arc::new(crate::b2bua::policy::Credentials {
                    user: t.username.clone(),
                    password: t.password.clone(),
                })
            }),
            asserted_caller: match t.caller_id.as_str() {
                "" => global,
                c => c == "asserted",
            },
            options: secs(t.options_secs),
            options_timeout: (t.options_timeout_ms > 0)
                .then(|| Duration::from_millis(t.options_timeout_ms)),
            down_after: t.options_down_after.max(1),
            setup: secs(t.setup_secs),
            outbound_proxy: t.outbound_proxy,
        });
    }
    Ok(out)
}

/// Where the relay binds and what it advertises, per family of the SIP
/// listeners: `[media] bind`/`advertise` where set, else the SIP ones.
pub(super) fn relay_config(
    cfg: &Config,
    recordings: &std::path::Path,
    addrs: &[SocketAddr],
    engine: &EngineConfig,
    open_files: u64,
) -> Result<RelayConfig, ServerError> {
    let m = &cfg.media;
    let parse = |s: &str| s.parse::<IpAddr>().ok();
    let family = |v6: bool, me: &Option<String>| -> Result<Option<(IpAddr, IpAddr)>, ServerError> {
        let Some(listen) = addrs.iter().find(|a| a.is_ipv6() == v6) else {
            return Ok(None);
        };
        let bind = parse(&m.bind)
            .filter(|b| b.is_ipv6() == v6)
            .unwrap_or(listen.ip());
        let seen = me
            .as_deref()
            .and_then(|hp| hp.rsplit_once(':'))
            .and_then(|(h, _)| parse(h.trim_matches(['[', ']'])));
        let shown = parse(&m.advertise)
            .filter(|a| a.is_ipv6() == v6)
            .or(seen)
            .ok_or_else(|| {
                ServerError::Config(
                    "media.advertise: needed when sip.advertise is not an IP address".into(),
                )
            })?;
        Ok(Some((bind, shown)))
    };
    let mut prompts = std::collections::HashMap::new();
    for (key, sound, loaded) in m.prompts() {
        let p = loaded.map_err(|e| ServerError::Config(format!("{key}: {e}")))?;
        prompts.insert(sound, p);
    }
    // Two sockets a pair, and room for everything else the server opens.
    let files = usize::try_from(open_files).unwrap_or(usize::MAX);
    let warm_pairs = (m.warm_pairs as usize).min(files.saturating_sub(4096) / 2);
    let media_networks = cfg
        .trunks
        .iter()
        .filter(|t| !t.media_networks.is_empty())
        .filter_map(|t| {
            let ip = crate::sip::Target::parse(&t.address).ok()?.peer.addr.ip();
            Some((ip, crate::net::Network::parse_all(&t.media_networks)))
        })
        .collect();
    Ok(RelayConfig {
        media_networks,
        warm_pairs,
        prompts,
        recordings: recordings.to_path_buf(),
        keep: (m.recording_keep_days > 0)
            .then(|| Duration::from_secs(u64::from(m.recording_keep_days) * 86400)),
        ports: (m.port_min, m.port_max),
        v4: family(false, &engine.me_v4)?,
        v6: family(true, &engine.me_v6)?,
    })
}

/// Our host:port per address family for Via and Contact.
fn advertised(
    addrs: &[SocketAddr],
    advertise: &str,
    trunk: Option<&Target>,
) -> (Option<String>, Option<String>) {
    let mut v4 = None;
    let mut v6 = None;
    for a in addrs {
        let ip = if !advertise.is_empty() {
            None
        } else if a.ip().is_unspecified() {
            Some(outgoing_ip(a.ip(), trunk))
        } else {
            Some(a.ip())
        };
        let hp = match ip {
            Some(ip) => host_port(SocketAddr::new(ip, a.port())),
            None => format!("{advertise}:{}", a.port()),
        };
        let slot = if a.is_ipv6() { &mut v6 } else { &mut v4 };
        slot.get_or_insert(hp);
    }
    (v4, v6)
}

/// The local address the OS would use towards the trunk (no packet is sent).
fn outgoing_ip(unspecified: IpAddr, trunk: Option<&Target>) -> IpAddr {
    let loopback = if unspecified.is_ipv6() {
        IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1])
    } else {
        IpAddr::from([127, 0, 0, 1])
    };
    let Some(t) = trunk.filter(|t| t.peer.addr.is_ipv6() == unspecified.is_ipv6()) else {
        return loopback;
    };
    std::net::UdpSocket::bind(SocketAddr::new(unspecified, 0))
        .and_then(|s| s.connect(t.peer.addr).and_then(|_| s.local_addr()))
        .map(|a| a.ip())
        .unwrap_or(loopback)
}
