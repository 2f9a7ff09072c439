//! Wiring: builds the parts from a [`Config`], binds the sockets, runs the
//! receive loops and the timer tick, and shuts down gracefully.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::b2bua::{Engine, EngineConfig};
use crate::bindings::{BindingTable, Normaliser};
use crate::config::Config;
use crate::sip::message::Msg;
use crate::sip::transaction::TimerConfig;
use crate::sip::transport::{raw_error_reply, Net, Sink};
use crate::sip::{host_port, Peer, Target};
use crate::store::{SqliteStore, Store, StoreError, Writer};

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

/// Takes the data dir's lock: one serving process per data dir, so two
/// live binding tables never diverge over one database. The OS drops the
/// lock when the process ends, however it ends.
fn lock_data_dir(dir: &std::path::Path) -> Result<std::fs::File, ServerError> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let path = dir.join("sipmask.lock");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| ServerError::LockFile {
            path: dir.display().to_string(),
            source,
        })?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .map_err(|source| ServerError::LockFile {
            path: path.display().to_string(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(ServerError::Locked {
            dir: dir.display().to_string(),
        }),
        Err(std::fs::TryLockError::Error(source)) => Err(ServerError::LockFile {
            path: path.display().to_string(),
            source,
        }),
    }
}

/// The engine behind its lock; the sockets deliver into it.
struct Core {
    engine: Mutex<Engine>,
}

impl Core {
    fn with_engine(&self, net: &Arc<Net>, f: impl FnOnce(&mut Engine)) {
        let mut out: Vec<(Peer, Bytes)> = Vec::new();
        {
            let Ok(mut e) = self.engine.lock() else {
                return;
            };
            f(&mut e);
            e.drain(&mut out);
        }
        for (peer, bytes) in out {
            net.send(peer, bytes);
        }
    }
}

impl Sink for Core {
    fn deliver(&self, data: &[u8], peer: Peer, net: &Arc<Net>) {
        // A parser bug must cost one message, not the socket's receive task.
        let udp = peer.transport == crate::sip::Transport::Udp;
        let parsed = std::panic::catch_unwind(|| Msg::parse(data, udp))
            .unwrap_or_else(|_| Err(crate::sip::SipError::Parse("parser panicked".into())));
        match parsed {
            Ok(m) => self.with_engine(net, |e| e.on_message(m, peer, Instant::now())),
            Err(err) => {
                tracing::debug!(error = %err, %peer, "bad message");
                if let Some(reply) =
                    raw_error_reply(data, if unknown_method(data) { 501 } else { 400 })
                {
                    net.send(peer, reply);
                }
            }
        }
    }
}

/// Whether `data` starts like a request whose method we do not know.
fn unknown_method(data: &[u8]) -> bool {
    let token: &[u8] = data.split(|b| *b == b' ').next().unwrap_or(b"");
    !token.is_empty()
        && token.iter().all(|b| b.is_ascii_uppercase())
        && std::str::from_utf8(token).is_ok_and(|t| t.parse::<rsipstack::sip::Method>().is_err())
}

/// A running server.
pub struct Server {
    core: Arc<Core>,
    net: Arc<Net>,
    store: Writer,
    store_thread: Option<std::thread::JoinHandle<()>>,
    // Held while serving; released when the server is dropped.
    _lock: std::fs::File,
    cancel: CancellationToken,
    tasks: JoinSet<()>,
    /// Bound SIP addresses (UDP and TCP share each).
    pub addrs: Vec<SocketAddr>,
    /// Bound HTTP API address, if the API is on.
    pub api_addr: Option<SocketAddr>,
    /// The binding table (shared with the engine).
    pub bindings: Arc<BindingTable>,
}

/// Opens the store under `dir` and loads every binding into a new table;
/// also returns the operator change the table is current with.
pub fn load_bindings(
    cfg: &Config,
    dir: &std::path::Path,
) -> Result<(Arc<BindingTable>, SqliteStore, i64), StoreError> {
    let mut store = SqliteStore::open(dir)?;
    let recovered = store.recover_live()?;
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
    tracing::info!(bindings = table.len(), skipped, "bindings loaded");
    Ok((Arc::new(table), store, seen))
}

impl Server {
    /// Binds, loads and starts everything; returns once serving.
    pub async fn start(cfg: Config) -> Result<Server, ServerError> {
        let data_dir = cfg.storage.data_dir.clone();
        // Locked first: loading books a crashed run's live calls, which
        // must never be a running server's live calls.
        let lock = lock_data_dir(&data_dir)?;
        let (bindings, store, seen) = load_bindings(&cfg, &data_dir)?;
        let hub = crate::events::Hub::new(store.webhook_tenants()?);
        let (writer, store_thread) = Writer::start(
            Box::new(store) as Box<dyn Store>,
            cfg.records.keep_days,
            hub.clone(),
        )
        .map_err(|e| ServerError::Config(format!("cannot start store thread: {e}")))?;
        let mut udps = Vec::new();
        let mut tcps = Vec::new();
        let mut addrs = Vec::new();
        for l in &cfg.sip.listen {
            let addr: SocketAddr = l
                .parse()
                .map_err(|_| ServerError::Config(format!("bad listen address {l}")))?;
            let bind_err = |source| ServerError::Bind {
                addr: l.clone(),
                source,
            };
            let udp = bind_udp(addr).map_err(bind_err)?;
            // Same port for TCP, even when the config asked for port 0.
            let port = udp.local_addr().map_err(bind_err)?.port();
            let tcp = TcpListener::bind(SocketAddr::new(addr.ip(), port))
                .await
                .map_err(bind_err)?;
            addrs.push(SocketAddr::new(addr.ip(), port));
            udps.push(udp);
            tcps.push(tcp);
        }
        let trunk = match cfg.sip.trunk.as_str() {
            "" => None,
            t => Some(Target::parse(t).map_err(ServerError::Config)?),
        };
        let (me_v4, me_v6) = advertised(&addrs, &cfg.sip.advertise, trunk.as_ref());
        let me_v4_for_api = me_v4.clone().or_else(|| me_v6.clone());
        let engine_cfg = EngineConfig {
            me_v4,
            me_v6,
            trunk,
            refusals: cfg.refusals.clone(),
            normaliser: Normaliser {
                default_country_code: cfg.numbers.default_country_code.clone(),
            },
            no_answer: Duration::from_secs(cfg.sip.no_answer_secs),
            timers: TimerConfig {
                t1: Duration::from_millis(cfg.sip.t1_ms),
                t2: Duration::from_millis(cfg.sip.t2_ms),
                t4: Duration::from_millis(cfg.sip.t4_ms),
            },
        };
        let core = Arc::new(Core {
            engine: Mutex::new(Engine::new(
                engine_cfg,
                bindings.clone(),
                writer.clone(),
                hub.clone(),
            )),
        });
        let cancel = CancellationToken::new();
        let net = Net::new(
            udps,
            cfg.sip.max_message_size,
            cfg.sip.max_tcp_connections,
            cancel.clone(),
            core.clone(),
        );
        let mut tasks = JoinSet::new();
        for i in 0..addrs.len() {
            tasks.spawn(net.clone().run_udp(i));
        }
        for l in tcps {
            tasks.spawn(net.clone().run_tcp_listener(l));
        }
        tasks.spawn(tick(core.clone(), net.clone(), cancel.clone()));
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
                sip_host,
            };
            Some(start_api(&cfg, &data_dir, deps, &cancel, &mut tasks).await?)
        };
        tasks.spawn(crate::watch::run(
            SqliteStore::open(&data_dir)?,
            seen,
            bindings.clone(),
            api_addr.as_ref().map(|(_, st)| st.clone()),
            cancel.clone(),
        ));
        let api_addr = api_addr.map(|(a, _)| a);
        Ok(Server {
            core,
            net,
            store: writer,
            store_thread: Some(store_thread),
            _lock: lock,
            cancel,
            tasks,
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
        let deadline = Instant::now() + drain;
        while self.live_calls() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let live = self.live_calls();
        if live > 0 {
            tracing::info!(live, "ending calls still up at the shutdown deadline");
            self.core
                .with_engine(&self.net, |e| e.end_all(Instant::now()));
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
        // Everything is committed (flushed above); the store thread ends
        // with the process, once the last engine reference is gone.
        drop(self.store_thread.take());
        tracing::info!("sipmask stopped");
    }
}

/// A UDP socket with large kernel buffers: a burst of calls must not be
/// dropped by the kernel while the engine is busy for a moment.
fn bind_udp(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Socket, Type};
    const BUFFER: usize = 4 << 20;
    let sock = Socket::new(Domain::for_address(addr), Type::DGRAM, None)?;
    if addr.is_ipv6() {
        sock.set_only_v6(true)?;
    }
    // The kernel caps these at net.core.[rw]mem_max; smaller is still fine.
    let _ = sock.set_recv_buffer_size(BUFFER);
    let _ = sock.set_send_buffer_size(BUFFER);
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    UdpSocket::from_std(sock.into())
}

/// Binds the HTTP API and serves it until `cancel`.
/// The running parts the API works on.
struct ApiDeps {
    table: Arc<BindingTable>,
    core: Arc<Core>,
    hub: Arc<crate::events::Hub>,
    sip_host: String,
}

async fn start_api(
    cfg: &Config,
    data_dir: &std::path::Path,
    deps: ApiDeps,
    cancel: &CancellationToken,
    tasks: &mut JoinSet<()>,
) -> Result<(SocketAddr, Arc<crate::api::ApiState>), ServerError> {
    let ApiDeps {
        table,
        core,
        hub,
        sip_host,
    } = deps;
    let addr = cfg.api.listen.clone();
    let listener = TcpListener::bind(&addr)
        .await
        .map_err(|source| ServerError::Bind {
            addr: addr.clone(),
            source,
        })?;
    let local = listener
        .local_addr()
        .map_err(|source| ServerError::Bind { addr, source })?;
    let api_cfg = crate::api::ApiConfig {
        quarantine_secs: cfg.api.quarantine_secs,
        sip_host,
        rate_per_sec: cfg.api.rate_per_sec,
        burst: cfg.api.burst,
        max_body_bytes: cfg.api.max_body_bytes,
        webhook_networks: Arc::new(cfg.webhooks.networks()),
        shutdown: cancel.clone(),
    };
    let norm = Normaliser {
        default_country_code: cfg.numbers.default_country_code.clone(),
    };
    let metrics = Arc::new(move || core.engine.lock().map(|e| e.metrics()).unwrap_or_default());
    let state = crate::api::ApiState::new(
        SqliteStore::open(data_dir)?,
        table,
        norm,
        api_cfg,
        metrics,
        hub.clone(),
    )?;
    let w = &cfg.webhooks;
    let ca = (!w.ca_file.is_empty()).then(|| std::path::Path::new(&w.ca_file));
    let client = crate::events::webhook::Client::new(
        cfg.webhooks.networks(),
        Duration::from_secs(w.timeout_secs),
        ca,
    )
    .map_err(|e| ServerError::Config(e.to_string()))?;
    let limits = crate::events::delivery::Limits {
        max_attempts: w.max_attempts,
        disable_after: Duration::from_secs(w.disable_after_secs),
    };
    tasks.spawn(crate::events::delivery::run(
        SqliteStore::open(data_dir)?,
        client,
        limits,
        hub,
        cancel.clone(),
    ));
    let state = Arc::new(state);
    tasks.spawn(crate::api::expiry::run(
        state.clone(),
        Duration::from_secs(1),
        cancel.clone(),
    ));
    let app = crate::api::router(state.clone());
    let limits = crate::api::serve::Limits {
        max_connections: cfg.api.max_connections,
        header_timeout: Duration::from_secs(cfg.api.header_timeout_secs),
    };
    tasks.spawn(crate::api::serve::run(
        listener,
        app,
        limits,
        state.stats.refused.clone(),
        cancel.clone(),
    ));
    tracing::info!(%local, "sipmask serving the HTTP API");
    Ok((local, state))
}

/// Ticks the engine's timers. 10 ms is far finer than any SIP timer needs.
async fn tick(core: Arc<Core>, net: Arc<Net>, cancel: CancellationToken) {
    let mut every = tokio::time::interval(Duration::from_millis(10));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut n: u64 = 0;
    loop {
        tokio::select! {
            _ = every.tick() => core.with_engine(&net, |e| {
                let now = Instant::now();
                e.on_timer(now);
                n += 1;
                // 10 ms ticks: a checkpoint every `EVERY`.
                if n.is_multiple_of(crate::b2bua::CHECKPOINT_TICKS) {
                    e.checkpoint(now);
                }
                if n.is_multiple_of(1000) {
                    tracing::debug!(sizes = %e.sizes(), "engine tables");
                }
            }),
            _ = cancel.cancelled() => return,
        }
    }
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
