//! Wiring: builds the parts from a [`Config`], binds the sockets, runs the
//! UDP receive loops and the timer tick on the SIP thread (`sip_thread`)
//! and the rest on the caller's runtime, and shuts down gracefully.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::runtime::Handle;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::b2bua::{Engine, EngineConfig, Media};
use crate::bindings::{BindingTable, Normaliser};
use crate::calls::{Masking, MaskingConfig};
use crate::config::{Config, MediaMode};
use crate::media::{Relay, RelayConfig};
use crate::sip::transaction::TimerConfig;
use crate::sip::transport::Net;
use crate::sip::{host_port, Target};
use crate::store::{Backend, StoreError, Writer};
use crate::time::{SharedClock, SystemClock};

mod api;
mod bind;
mod core;
mod sip_thread;
mod ticks;

use self::core::{handed, Core};
use self::ticks::tick;
use api::{start_api, ApiDeps};
use bind::{bind_pair, check_free, lock_data_dir};
use sip_thread::SipThread;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// A socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// Address.
        addr: String,
        /// OS error.
        source: std::io::Error,
    },
    /// A thread of the server could not be started.
    #[error("cannot start the {name} thread: {source}")]
    Thread {
        /// Which thread.
        name: &'static str,
        /// OS error.
        source: std::io::Error,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A config value is unusable at run time.
    #[error("config: {0}")]
    Config(String),
    /// Another `sipmask serve` uses the data dir.
    #[error("data dir {dir} is in use by another sipmask serve (lock file {dir}/sipmask.lock)")]
    Locked {
        /// The data dir.
        dir: String,
    },
    /// The lock file could not be opened.
    #[error("cannot open {path}: {source}")]
    LockFile {
        /// Path.
        path: String,
        /// OS error.
        source: std::io::Error,
    },
}

/// A running server.
pub struct Server {
    core: Arc<Core>,
    net: Arc<Net>,
    store: Writer,
    store_thread: Option<std::thread::JoinHandle<()>>,
    // Held while taking calls; let go when draining starts, so a new
    // instance can take over.
    lock: Option<std::fs::File>,
    // Ends what a draining instance no longer does: accepting TCP and API
    // connections, webhooks, expiry, operator changes.
    front: CancellationToken,
    cancel: CancellationToken,
    tasks: JoinSet<()>,
    // Runs the UDP receive loops and the tick (some of `tasks`).
    sip: Option<SipThread>,
    /// Bound SIP addresses (UDP and TCP share each).
    pub addrs: Vec<SocketAddr>,
    /// Bound HTTP API address, if the API is on.
    pub api_addr: Option<SocketAddr>,
    /// The binding table (shared with the engine).
    pub bindings: Arc<BindingTable>,
}

/// What [`load_bindings`] opened and loaded.
pub struct Loaded {
    /// The live table.
    pub table: Arc<BindingTable>,
    /// The store it came from.
    pub store: Box<dyn Backend>,
    /// The operator change the table is current with.
    pub seen: i64,
    /// Accounts and the registrations saved before a restart.
    pub accounts: Arc<crate::registrar::Directory>,
}

/// Opens the store under `dir` and loads every binding into a new table.
pub fn load_bindings(cfg: &Config, dir: &std::path::Path) -> Result<Loaded, StoreError> {
    let mut store = crate::store::open(dir)?;
    // Calls of an instance that still runs (draining) are its own.
    let recovered = store.recover_live(&|id| crate::handover::alive(dir, id))?;
    if recovered > 0 {
        tracing::warn!(
            calls = recovered,
            "booked calls that were live when sipmask last stopped"
        );
    }
    // Read before loading: a change logged meanwhile is applied again,
    // harmlessly, rather than missed.
    let seen = store.last_change()?;
    let table = BindingTable::new(cfg.binding_defaults());
    let mut skipped = 0usize;
    for b in store.load_all()? {
        if let Err(e) = table.insert(b) {
            skipped += 1;
            tracing::warn!(error = %e, "binding not loaded");
        }
    }
    for (tenant, n) in store.blocklist()? {
        table.set_blocked(tenant, n, true);
    }
    // Users' soft numbers: calls to them are refused.
    let norm = crate::bindings::Normaliser {
        default_country_code: cfg.numbers.default_country_code.clone(),
    };
    for (_, soft) in store.live_softs()? {
        table.set_soft(crate::service::flow::dialled_form(&norm, &soft), true);
    }
    for (binding, soft) in store.acquired_softs()? {
        let Some(tenant) = table.get(binding).map(|b| b.tenant) else {
            continue;
        };
        let life =
            crate::service::flow::settings_of(store.as_ref(), &cfg.flow, tenant)?.x_lifetime_secs;
        table.set_shown(
            binding,
            crate::bindings::Number::from_normalised(soft),
            life,
        );
    }
    tracing::info!(bindings = table.len(), skipped, "bindings loaded");
    let accounts = Arc::new(crate::registrar::Directory::default());
    accounts.load_accounts(
        store
            .accounts(None)?
            .into_iter()
            .map(crate::service::accounts::account_of)
            .collect(),
    );
    let now_ms = crate::time::now_ms();
    // A TCP contact was reached over its connection, which a restart closed.
    let contacts: Vec<_> = store
        .contacts(now_ms)?
        .into_iter()
        .filter_map(|(a, row)| Some((a, crate::registrar::contact_of(row)?)))
        .filter(|(_, c)| c.peer.transport == crate::sip::Transport::Udp)
        .collect();
    let restored = contacts.len();
    accounts.load_contacts(contacts, now_ms);
    if restored > 0 {
        tracing::info!(contacts = restored, "registrations restored");
    }
    Ok(Loaded {
        table: Arc::new(table),
        store,
        seen,
        accounts,
    })
}

impl Server {
    /// Binds, loads and starts everything on the system clock; returns
    /// once serving.
    pub async fn start(cfg: Config) -> Result<Server, ServerError> {
        Server::start_with_clock(cfg, Arc::new(SystemClock)).await
    }

    /// [`Server::start`] on `clock`: tests move a
    /// [`crate::time::ManualClock`] instead of waiting for timers.
    pub async fn start_with_clock(cfg: Config, clock: SharedClock) -> Result<Server, ServerError> {
        let data_dir = cfg.storage.data_dir.clone();
        // Locked first: loading books a crashed run's live calls, which
        // must never be a running server's live calls.
        let lock = lock_data_dir(&data_dir)?;
        let files = bind::raise_open_files();
        if cfg.media.mode == MediaMode::Relay && files < 4096 {
            tracing::warn!(
                open_files = files,
                "the open-file limit allows few relayed calls (four sockets each)"
            );
        }
        let instance = crate::ids::short("", 8);
        let handover = Arc::new(
            crate::handover::Handover::start(&data_dir, &instance).map_err(|source| {
                ServerError::LockFile {
                    path: data_dir.join("instances").display().to_string(),
                    source,
                }
            })?,
        );
        let Loaded {
            table: bindings,
            store,
            seen,
            accounts,
        } = load_bindings(&cfg, &data_dir)?;
        let hub = crate::events::Hub::new(store.webhook_tenants()?);
        let (writer, store_thread) = Writer::start(store, cfg.records.keep_days, hub.clone())
            .map_err(|source| ServerError::Thread {
                name: "store",
                source,
            })?;
        let durable = writer.durable();
        let sip = SipThread::start().map_err(|source| ServerError::Thread {
            name: "SIP",
            source,
        })?;
        let mut udps = Vec::new();
        let mut tcps = Vec::new();
        let mut addrs = Vec::new();
        handover.refresh();
        let overlap = handover.sibling().is_some();
        // The running instance learns of this one now, not at its next look.
        handover.announce();
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
            // Registered where its receive loop runs, so its wake-ups
            // never cross threads.
            let udp = {
                let _on = sip.handle().enter();
                tokio::net::UdpSocket::from_std(udp).map_err(bind_err)?
            };
            addrs.push(SocketAddr::new(addr.ip(), port));
            udps.push(udp);
            tcps.push(tcp);
        }
        let trunks = trunks_of(&cfg)?;
        let (me_v4, me_v6) = advertised(
            &addrs,
            &cfg.sip.advertise,
            trunks.first().map(|t| &t.target),
        );
        let me_v4_for_api = me_v4.clone().or_else(|| me_v6.clone());
        let engine_cfg = EngineConfig {
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
        let policy = Masking::new(
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
            },
            bindings.clone(),
            writer.clone(),
            hub.clone(),
            crate::registrar::Registrar::new(
                crate::registrar::RegistrarConfig::from_section(&cfg.registrar),
                accounts.clone(),
                Some(writer.clone()),
            ),
        );
        let mut engine = Engine::new(engine_cfg.clone(), policy);
        if cfg.media.mode == MediaMode::Relay {
            let relay = Relay::new(
                relay_config(
                    &cfg,
                    &data_dir.join("recordings"),
                    &addrs,
                    &engine_cfg,
                    files,
                )?,
                Handle::current(),
            );
            let timeout =
                (cfg.media.timeout_secs > 0).then(|| Duration::from_secs(cfg.media.timeout_secs));
            engine = engine.with_anchor(relay, timeout);
        }
        let core = Arc::new(Core {
            engine: Mutex::new(engine),
            ticks: ticks::Ticks::new(clock.now().mono),
            clock: clock.clone(),
            handover,
        });
        let cancel = CancellationToken::new();
        let front = cancel.child_token();
        let net = Net::new(
            udps,
            cfg.sip.max_message_size,
            crate::sip::guard::TcpLimits {
                inbound: cfg.sip.max_tcp_connections,
                outbound: cfg.sip.max_tcp_outbound,
                per_source: cfg.sip.max_tcp_per_source,
                idle: Duration::from_secs(cfg.sip.tcp_idle_secs),
                message: Duration::from_secs(cfg.sip.tcp_message_secs),
            },
            cancel.clone(),
            core.clone(),
        );
        let mut tasks = JoinSet::new();
        for i in 0..addrs.len() {
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
        tasks.spawn_on(
            release_answers(core.clone(), net.clone(), durable, cancel.clone()),
            sip.handle(),
        );
        tracing::info!(?addrs, "sipmask serving SIP over UDP and TCP");
        let sip_host = match (&cfg.api.sip_host, &me_v4_for_api) {
            (h, _) if !h.is_empty() => h.clone(),
            (_, Some(me)) => me.clone(),
            _ => "localhost".into(),
        };
        let api_addr = if cfg.api.listen.is_empty() {
            None
        } else {
            let deps = ApiDeps {
                table: bindings.clone(),
                core: core.clone(),
                hub: hub.clone(),
                clock: clock.clone(),
                tcp: net.guard.clone(),
                accounts: accounts.clone(),
                sip_host,
                overlap,
            };
            Some(start_api(&cfg, &data_dir, deps, &front, &mut tasks).await?)
        };
        tasks.spawn(checkpoints(crate::store::open(&data_dir)?, front.clone()));
        tasks.spawn(crate::watch::run(
            crate::store::open(&data_dir)?,
            seen,
            bindings.clone(),
            accounts.clone(),
            api_addr.as_ref().map(|(_, st)| st.clone()),
            front.clone(),
        ));
        let api_addr = api_addr.map(|(a, _)| a);
        Ok(Server {
            core,
            net,
            store: writer,
            store_thread: Some(store_thread),
            lock: Some(lock),
            front,
            cancel,
            tasks,
            sip: Some(sip),
            addrs,
            api_addr,
            bindings,
        })
    }

    /// Requests sent and not yet answered.
    fn pending_requests(&self) -> usize {
        self.core
            .engine
            .lock()
            .map(|e| e.pending_requests())
            .unwrap_or(0)
    }

    /// Calls not yet ended.
    pub fn live_calls(&self) -> usize {
        self.core.engine.lock().map(|e| e.live_calls()).unwrap_or(0)
    }

    /// Stops taking calls, lets live ones run up to `drain`, ends the rest
    /// with BYE, flushes the store and stops every task.
    pub async fn shutdown(mut self, drain: Duration) {
        self.core.with_engine(&self.net, |e| e.stop_accepting());
        // A new instance may start now and take the new calls (handover);
        // this one keeps only its live calls.
        drop(self.lock.take());
        self.front.cancel();
        let deadline = Instant::now() + drain;
        while self.live_calls() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let live = self.live_calls();
        if live > 0 {
            tracing::info!(live, "ending calls still up at the shutdown deadline");
            let now = self.core.clock.now();
            self.core.with_engine(&self.net, |e| e.end_all(now));
            // Wait for the BYEs' answers while the timer tick retransmits
            // lost ones (T1, 2*T1, ...), for up to the drain time again
            // (at least a second, so a zero drain still retransmits).
            let until = Instant::now() + drain.max(Duration::from_secs(1));
            tokio::time::sleep(Duration::from_millis(20)).await;
            while self.pending_requests() > 0 && Instant::now() < until {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        let store = self.store.clone();
        let _ = tokio::task::spawn_blocking(move || store.flush()).await;
        self.cancel.cancel();
        while self.tasks.join_next().await.is_some() {}
        if let Some(sip) = self.sip.take() {
            sip.stop().await;
        }
        // Everything is committed (flushed above); the store thread ends
        // with the process, once the last engine reference is gone.
        drop(self.store_thread.take());
        self.core.handover.retire();
        let held_back = crate::b2bua::media_warnings_held_back();
        if held_back > 0 {
            tracing::warn!(
                held_back,
                "media warnings held back since the last one logged"
            );
        }
        let (refusals, bans) = self
            .core
            .engine
            .lock()
            .map(|e| e.policy().log_held_back())
            .unwrap_or_default();
        if refusals + bans > 0 {
            tracing::info!(
                refusals,
                bans,
                "log lines held back since the last ones logged"
            );
        }
        tracing::info!("sipmask stopped");
    }
}

/// Relays the answers the policy held until their uses were durable, as
/// the store thread commits them (a few milliseconds: group commit).
async fn release_answers(
    core: Arc<Core>,
    net: Arc<Net>,
    durable: Arc<crate::store::Durable>,
    cancel: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = durable.wake.notified() => {
                let (upto, now) = (durable.committed(), core.clock.now());
                core.with_engine(&net, |e| e.release_answers(upto, now));
            }
            _ = cancel.cancelled() => return,
        }
    }
}

/// The trunks of the config: `sip.trunk` (every number, never pinged, as
/// before there were several) and each `[[trunks]]`.
fn trunks_of(cfg: &Config) -> Result<Vec<crate::calls::trunks::Trunk>, ServerError> {
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

/// Moves the database's log into it every second, off every request's
/// path (connections never checkpoint by themselves), and once more at the
/// end.
async fn checkpoints(store: Box<dyn Backend>, stop: CancellationToken) {
    let store: crate::store::Shared = Arc::new(Mutex::new(store));
    loop {
        let done = tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => false,
            _ = stop.cancelled() => true,
        };
        if let Err(e) = crate::store::off_thread(&store, |s| s.checkpoint()).await {
            tracing::warn!(error = %e, "database checkpoint failed");
        }
        if done {
            return;
        }
    }
}

/// Where the relay binds and what it advertises, per family of the SIP
/// listeners: `[media] bind`/`advertise` where set, else the SIP ones.
fn relay_config(
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
