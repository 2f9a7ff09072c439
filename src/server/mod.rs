//! Wiring: builds the parts from a [`Config`], binds the sockets, runs the
//! UDP receive loops and the timer tick on the SIP thread (`sip_thread`)
//! and the rest on the caller's runtime, and shuts down gracefully.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::bindings::BindingTable;
use crate::config::Config;
use crate::sip::transport::{Net, Out};
use crate::store::{Backend, StoreError, Writer};
use crate::time::{SharedClock, SystemClock};

mod api;
mod bind;
mod core;
mod load;
mod sip_thread;
mod start;
mod ticks;

use self::core::Core;
use api::{start_api, ApiDeps};
use bind::lock_data_dir;
pub use load::{load_bindings, Loaded};
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
    // Where the table is saved at the stop, the operator change it is
    // current with (the watcher keeps it) and this start's number.
    save: (
        crate::store::Location,
        Arc<std::sync::atomic::AtomicI64>,
        Option<i64>,
    ),
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
        // Locked first: loading books a crashed run's live calls, which
        // must never be a running server's live calls.
        let lock = lock_data_dir(&cfg.storage.data_dir, cfg.storage.location().shared())?;
        let files = start::open_files(&cfg);
        let instance = crate::ids::short("", 8);
        let handover = start::handover(&cfg.storage.data_dir, &instance)?;
        // Every connection of this server logs changes as this instance.
        let at = crate::store::Location {
            origin: instance.clone(),
            ..cfg.storage.location()
        };
        let Loaded {
            table: bindings,
            store,
            seen,
            accounts,
            contacts,
            start,
        } = load_bindings(&cfg, &at)?;
        let hub = crate::events::Hub::new(store.webhook_tenants()?);
        let thread = |name| move |source| ServerError::Thread { name, source };
        let (writer, store_thread) =
            Writer::start(store, cfg.records.keep_days, hub.clone()).map_err(thread("store"))?;
        let durable = writer.durable();
        let sip = SipThread::start().map_err(thread("SIP"))?;
        let overlap = start::overlap(&handover);
        let (udps, tcps, addrs) = start::bind_sip(&cfg, &sip, overlap)?;
        let parts = (&bindings, &writer, &hub, &accounts);
        let (engine, me_for_api) = start::engine(&cfg, &addrs, instance.clone(), files, parts)?;
        if let (true, Some(me)) = (at.shared(), engine.me()) {
            // Other nodes reach this node's phones through it.
            accounts.relay_at(me);
        }
        let restored = accounts.load_contacts(contacts, crate::time::now_ms());
        if restored > 0 {
            tracing::info!(contacts = restored, "registrations restored");
        }
        let core = Arc::new(Core {
            engine: Mutex::new(engine),
            ticks: ticks::Ticks::new(clock.now().mono),
            clock: clock.clone(),
            handover,
        });
        let cancel = CancellationToken::new();
        let front = cancel.child_token();
        let net = start::net(&cfg, udps, &cancel, &core);
        let mut tasks = JoinSet::new();
        start::spawn_sip(
            &mut tasks,
            (&core, &net, &sip),
            tcps,
            (&cancel, &front),
            durable,
        );
        tracing::info!(?addrs, "sipmask serving SIP over UDP and TCP");
        let api_addr = if cfg.api.listen.is_empty() {
            None
        } else {
            let sip_host = match (&cfg.api.sip_host, me_for_api) {
                (h, _) if !h.is_empty() => h.clone(),
                (_, me) => me.unwrap_or_else(|| "localhost".into()),
            };
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
            Some(start_api(&cfg, &at, deps, &front, &mut tasks).await?)
        };
        let api_state = api_addr.as_ref().map(|(_, st)| st.clone());
        let up = Upkeep::of(&cfg, &core, (instance, at.clone()), api_state.as_deref());
        let watched = (&bindings, &accounts, api_state);
        let seen = Arc::new(std::sync::atomic::AtomicI64::new(seen));
        start::spawn_background(&mut tasks, up, seen.clone(), watched, &front)?;
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
            save: (at, seen, start),
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
        self.core
            .with_engine(&mut Out::now(&self.net), |e| e.stop_accepting());
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
            self.core
                .with_engine(&mut Out::now(&self.net), |e| e.end_all(now));
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
        let (store, table) = (self.store.clone(), self.bindings.clone());
        let (at, seen, start) = self.save.clone();
        let _ = tokio::task::spawn_blocking(move || {
            store.flush();
            let seen = seen.load(std::sync::atomic::Ordering::Acquire);
            load::save_table(&table, &at, seen, start);
        })
        .await;
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
                let refused = |t| durable.take_refused(t);
                core.with_engine(&mut Out::now(&net), |e| e.release_answers(upto, &refused, now));
            }
            _ = cancel.cancelled() => return,
        }
    }
}

/// The node's name: as configured, else the host's.
fn node_name(configured: &str) -> String {
    if !configured.is_empty() {
        return configured.to_string();
    }
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "sipmask".into())
}

/// The lease of the cluster's sweeps: a name no node can have.
const SWEEPS: &str = "~sweeps";

/// What the upkeep of a node keeps up: its name's lease, and the calls of
/// instances that died.
pub(crate) struct Upkeep {
    /// The node's name, whose lease it holds on a shared database.
    pub node: String,
    /// This process.
    pub instance: String,
    /// Where the data lives (and this host's instances).
    pub at: crate::store::Location,
    /// The server's clock.
    pub clock: SharedClock,
    /// Whether the node holds its name's lease (`/readyz` says so).
    pub lease: Arc<std::sync::atomic::AtomicBool>,
    /// Whether the shared database answers (the call policy refuses
    /// counted bindings while it does not).
    pub store_up: Arc<std::sync::atomic::AtomicBool>,
    /// Whether this node holds the sweeps' lease (the services sweep).
    pub sweeper: Arc<std::sync::atomic::AtomicBool>,
    /// Where this node's SIP is reached, written in its lease row.
    pub sip: String,
    /// Where the nodes whose leases are fresh are reached (the relay to
    /// this node's phones takes requests from them only).
    pub nodes: crate::sip::relay::Nodes,
}

impl Upkeep {
    /// The upkeep of the node `cfg` describes, as process `instance`,
    /// sharing the policy's view of the store and the API's of the lease.
    fn of(
        cfg: &Config,
        core: &Core,
        (instance, at): (String, crate::store::Location),
        api: Option<&crate::api::ApiState>,
    ) -> Upkeep {
        // What the upkeep shares with the engine, read under one lock.
        let (store_up, sip, nodes) = core
            .engine
            .lock()
            .map(|e| {
                let p = e.policy();
                (p.store_up(), e.me().unwrap_or_default(), p.nodes())
            })
            .unwrap_or_default();
        Upkeep {
            store_up,
            sip,
            nodes,
            node: node_name(&cfg.storage.node),
            instance,
            at,
            clock: core.clock.clone(),
            lease: api.map_or_else(Default::default, |a| a.lease.clone()),
            sweeper: api.map_or_else(Default::default, |a| a.svc.sweeper.clone()),
        }
    }
}

/// One heartbeat on a shared database: the node's name held (`take`: taken,
/// at its first beat), the nodes' addresses read for the relay, whether
/// the database answers, and the sweeps' lease.
async fn beat_leases(store: &crate::store::Shared, up: &Upkeep, now: i64, take: bool) {
    use std::sync::atomic::Ordering;
    let (node, me, sip) = (up.node.clone(), up.instance.clone(), up.sip.clone());
    let held = crate::store::off_thread(store, move |s| {
        let held = s.hold_node(
            (&node, &sip),
            &me,
            now,
            now - crate::store::NODE_LEASE_MS,
            take,
        )?;
        let nodes = s.node_addresses(now - crate::store::NODE_LEASE_MS)?;
        Ok::<_, crate::store::StoreError>((held, nodes))
    })
    .await
    .map(|(held, nodes)| {
        let ips = nodes
            .iter()
            .filter_map(|n| Some(n.parse::<SocketAddr>().ok()?.ip()));
        if let Ok(mut known) = up.nodes.write() {
            *known = ips.collect();
        }
        held
    });
    let was_up = up.store_up.swap(held.is_ok(), Ordering::Relaxed);
    if was_up != held.is_ok() {
        if was_up {
            tracing::error!("the database is out of reach: counted bindings are refused");
        } else {
            tracing::info!("the database answers again");
        }
    }
    // The sweeps are one node's: whoever holds their lease (a name
    // no node can have), taken over when its holder stops beating.
    let me = up.instance.clone();
    let sweeps = crate::store::off_thread(store, move |s| {
        s.hold_node(
            (SWEEPS, ""),
            &me,
            now,
            now - crate::store::NODE_LEASE_MS,
            false,
        )
    })
    .await;
    up.sweeper
        .store(matches!(sweeps, Ok(true)), Ordering::Relaxed);
    let had = up.lease.swap(matches!(held, Ok(true)), Ordering::Relaxed);
    if had && !matches!(held, Ok(true)) {
        tracing::error!(node = %up.node, error = ?held.err(),
                "this node no longer holds its name: another instance took it, or the database is out of reach");
    }
}

/// Every second: moves the database's log into it (off every request's
/// path: connections never checkpoint by themselves) and, on a shared
/// database, beats the node's lease; every five, settles the calls of
/// instances that died (here, or on a node elsewhere whose beat lapsed).
async fn upkeep(store: Box<dyn Backend>, up: Upkeep, stop: CancellationToken) {
    let store: crate::store::Shared = Arc::new(Mutex::new(store));
    let mut beat = 0u64;
    loop {
        // The first beat at once: the other nodes learn of this one (and
        // relay for it) as soon as they next look.
        let pause = Duration::from_secs(u64::from(beat > 0));
        let done = tokio::select! {
            _ = tokio::time::sleep(pause) => false,
            _ = stop.cancelled() => true,
        };
        if let Err(e) = crate::store::off_thread(&store, |s| s.checkpoint()).await {
            tracing::warn!(error = %e, "database checkpoint failed");
        }
        if done {
            return;
        }
        beat += 1;
        let now = up.clock.now().unix_ms;
        if up.at.shared() {
            // The newest process of a node name takes it at its first beat
            // (a restart's overlap hands over); after that it only holds.
            beat_leases(&store, &up, now, beat == 1).await;
        }
        if beat.is_multiple_of(5) {
            let (dir, fresh) = (up.at.dir.clone(), up.at.fresh_since(now));
            let swept = crate::store::off_thread(&store, move |s| {
                let alive = |id: &str| crate::handover::alive(&dir, id);
                let n = s.recover_live(&alive, fresh)?;
                // Then their holds: uses reserved and talk time leased.
                s.release_dead_holds(&alive, fresh)?;
                Ok::<_, crate::store::StoreError>(n)
            })
            .await;
            match swept {
                Ok(0) => {}
                Ok(n) => tracing::warn!(calls = n, "booked the calls of an instance that died"),
                Err(e) => tracing::warn!(error = %e, "settling dead instances' calls failed"),
            }
        }
    }
}
