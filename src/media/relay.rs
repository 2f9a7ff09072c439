//! The in-process RTP/RTCP relay. Each stream of a call has, per party, a
//! pair of our ports (RTP, RTCP) facing that party: the party sends there
//! and hears from there, so neither learns the other's address. Media is
//! taken only from the party's own addresses (where its signalling came
//! from, what its description names, its trunk's media networks); the
//! first such source whose SSRC stays stable is latched until the next
//! description (symmetric RTP through NAT), and packets from anywhere else
//! are dropped and counted. Until the answer only the callee is heard
//! (early media): the caller's microphone reaches nobody who has not
//! answered. Every packet is rewritten for the leg it goes to (`rtp.rs`)
//! in the buffer it was received into.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::task::AbortHandle;

use super::audio::{self, Prompt};
use super::pump::{speak, Pump};
use super::record::Recorder;
use super::rtp::Shown;
use super::sdp::Stream;
use super::slot::{Pool, Slot};
use super::{Anchor, CallKey, MediaError, Party, Sound};
use crate::ids::IdMap;
use crate::net::Network;

/// Where the relay binds and what it tells parties.
#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// Port range, inclusive.
    pub ports: (u16, u16),
    /// (bind, advertised) for IPv4 legs.
    pub v4: Option<(IpAddr, IpAddr)>,
    /// (bind, advertised) for IPv6 legs.
    pub v6: Option<(IpAddr, IpAddr)>,
    /// Where recordings go.
    pub recordings: PathBuf,
    /// How long recordings are kept (`None`: forever).
    pub keep: Option<Duration>,
    /// The prompts configured.
    pub prompts: HashMap<Sound, Prompt>,
    /// Port pairs opened at start and kept open; more are opened in the
    /// background when fewer than half of them are ready.
    pub warm_pairs: usize,
    /// Per trunk (by its signalling address), the networks its media may
    /// also come from (carriers' media gateways).
    pub media_networks: Vec<(IpAddr, Vec<Network>)>,
}

/// Counters for /metrics.
#[derive(Default)]
pub(super) struct Stats {
    pub rtp: AtomicU64,
    pub rtcp: AtomicU64,
    /// Late for a slot at rest, not RTP at all, or the caller's before
    /// the answer.
    pub dropped: AtomicU64,
    /// From a source that is not the party's.
    pub foreign: AtomicU64,
}

/// The relay.
pub struct Relay {
    cfg: RelayConfig,
    /// See [`RelayConfig::media_networks`], shared with the pumps.
    networks: Arc<[(IpAddr, Vec<Network>)]>,
    /// A background task is opening pairs.
    growing: AtomicBool,
    /// This relay, for the tasks it starts.
    me: std::sync::Weak<Relay>,
    pool: Pool,
    calls: Mutex<IdMap<CallMedia>>,
    handle: tokio::runtime::Handle,
    clock: Arc<Coarse>,
    stats: Arc<Stats>,
    /// When `silent` last looked (coarse ms).
    scanned: AtomicU64,
}

/// Milliseconds since the relay started, advanced by a task four times a
/// second: packets read it instead of the clock.
pub(super) struct Coarse {
    start: Instant,
    ms: AtomicU64,
}

impl Coarse {
    pub fn now(&self) -> u64 {
        self.ms.load(Ordering::Relaxed)
    }
}

/// One call's media.
#[derive(Default)]
struct CallMedia {
    streams: Vec<Arc<StreamState>>,
    /// When answered (coarse ms).
    answered: Option<u64>,
    /// Each party's last description held the media (not sendrecv).
    held: [bool; 2],
    reported: bool,
    /// Prompts playing.
    tasks: Vec<AbortHandle>,
    recorder: Option<Arc<Recorder>>,
}

impl CallMedia {
    /// What a party's description says: its payload types, where it takes
    /// media, whether it holds; `source` is where its signalling came from.
    fn note(&mut self, from: Party, streams: &[Stream], source: IpAddr) {
        self.held[from.index()] = streams.iter().all(|s| s.held || s.off);
        for (i, s) in streams.iter().enumerate() {
            if self.streams.len() <= i {
                self.streams.push(Arc::default());
            }
            let st = &self.streams[i];
            if s.off {
                continue;
            }
            let mut formats = st.formats[from.index()]
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if *formats != s.formats {
                formats.clone_from(&s.formats);
            }
            drop(formats);
            // A new address unlatches: the party moved (or came back from
            // hold); the same description again keeps what was learnt.
            let mut said = st.described[from.index()]
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let mut remote = st.remote[from.index()]
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if *said != s.rtp || s.rtp.is_none() || remote.signalling != Some(source) {
                *said = s.rtp;
                *remote = Remote {
                    rtp: s.rtp,
                    rtcp: s.rtcp,
                    rtp_latch: Latch::Open,
                    rtcp_latch: Latch::Open,
                    said_rtp: s.rtp,
                    said_rtcp: s.rtcp,
                    signalling: Some(source),
                };
            }
        }
    }
}

/// Where a party takes media, and whether its real source is latched.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Remote {
    pub rtp: Option<SocketAddr>,
    pub rtcp: Option<SocketAddr>,
    pub rtp_latch: Latch,
    pub rtcp_latch: Latch,
    /// What the party's description said.
    pub said_rtp: Option<SocketAddr>,
    /// See `said_rtp`.
    pub said_rtcp: Option<SocketAddr>,
    /// Where the party's signalling came from.
    pub signalling: Option<IpAddr>,
}

impl Remote {
    /// Whether media from `ip` may be the party's: its signalling address,
    /// an address its description names, or a media network of the trunk
    /// it signals from.
    pub fn owns(&self, ip: IpAddr, networks: &[(IpAddr, Vec<Network>)]) -> bool {
        let ip = crate::net::canonical(ip);
        let same = |a: Option<IpAddr>| a.map(crate::net::canonical) == Some(ip);
        same(self.signalling)
            || same(self.said_rtp.map(|a| a.ip()))
            || same(self.said_rtcp.map(|a| a.ip()))
            || networks.iter().any(|(trunk, nets)| {
                self.signalling.map(crate::net::canonical) == Some(crate::net::canonical(*trunk))
                    && nets.iter().any(|n| n.contains(ip))
            })
    }
}

/// How far a party's media source is learnt since its last description.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) enum Latch {
    /// Nothing came yet: the first packet from the party's own addresses
    /// is taken.
    #[default]
    Open,
    /// A source sends; it is kept once its SSRC has held for a few packets,
    /// until then another of the party's addresses may take its place.
    Trying { ssrc: u32, seen: u8 },
    /// Kept until the next description.
    Fixed,
}

/// One stream (one `m=` line) of a call.
#[derive(Default)]
pub(super) struct StreamState {
    /// Our sockets facing each party (index: [`Party::index`]).
    pub facing: [OnceLock<Facing>; 2],
    /// Where each party takes media.
    pub remote: [Mutex<Remote>; 2],
    /// The SDP address each party gave last, to tell a new one.
    described: [Mutex<Option<SocketAddr>>; 2],
    /// Set on the first stream of a recorded call.
    pub recorder: OnceLock<Arc<Recorder>>,
    /// The payload types each party listed last.
    formats: [Mutex<Vec<u8>>; 2],
    /// A prompt is playing to the party: the other's media waits.
    pub playing: [AtomicBool; 2],
    /// The call was answered: the caller's media reaches the callee.
    pub answered: AtomicBool,
}

/// Our ports facing one party, and what that party is shown.
pub(super) struct Facing {
    pub slot: Arc<Slot>,
    /// The address the slot is bound on (its pool).
    bind: IpAddr,
    addr: SocketAddr,
    pub shown: Shown,
    /// The SSRC this party sends with (u64::MAX: none yet).
    pub heard_ssrc: AtomicU64,
    /// When RTP last came from this party (coarse ms).
    pub last: AtomicU64,
    /// This party's last sender report (see `RtcpMap::from_sr`).
    pub sr: AtomicU64,
}

impl Relay {
    /// A relay spawning its tasks on `handle`.
    pub fn new(mut cfg: RelayConfig, handle: tokio::runtime::Handle) -> Arc<Relay> {
        let pool = Pool::new(cfg.ports.0, cfg.ports.1, cfg.warm_pairs);
        let clock = Arc::new(Coarse {
            start: Instant::now(),
            ms: AtomicU64::new(0),
        });
        let c = Arc::clone(&clock);
        handle.spawn(async move {
            let mut every = tokio::time::interval(Duration::from_millis(250));
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                every.tick().await;
                c.ms.store(c.start.elapsed().as_millis() as u64, Ordering::Relaxed);
            }
        });
        if let Some(keep) = cfg.keep {
            let dir = cfg.recordings.clone();
            handle.spawn(async move {
                let mut every = tokio::time::interval(Duration::from_secs(3600));
                loop {
                    every.tick().await;
                    let dir = dir.clone();
                    match tokio::task::spawn_blocking(move || super::record::sweep(&dir, keep))
                        .await
                    {
                        Ok(Ok(n)) if n > 0 => {
                            tracing::info!(deleted = n, "recordings past retention")
                        }
                        Ok(Err(e)) => tracing::warn!(error = %e, "recording retention"),
                        _ => {}
                    }
                }
            });
        }
        let relay = Arc::new_cyclic(|me| Relay {
            me: me.clone(),
            networks: std::mem::take(&mut cfg.media_networks).into(),
            growing: AtomicBool::new(false),
            cfg,
            pool,
            calls: Mutex::new(IdMap::default()),
            handle,
            clock,
            stats: Arc::default(),
            scanned: AtomicU64::new(0),
        });
        for (bind, _) in [relay.cfg.v4, relay.cfg.v6].into_iter().flatten() {
            relay.grow(bind);
        }
        relay
    }

    /// Opens `warm_pairs` more pairs on `bind` in the background: a call
    /// then takes a pair that is ready (no socket, bind, registration or
    /// task start on the signalling path). Called at start and whenever
    /// fewer than half that many are ready, so the pool follows demand
    /// instead of squatting on the whole range from the start.
    fn grow(&self, bind: IpAddr) {
        let Some(relay) = self.me.upgrade() else {
            return;
        };
        if self.cfg.warm_pairs == 0 || self.growing.swap(true, Ordering::AcqRel) {
            return;
        }
        self.handle.spawn_blocking(move || {
            let mut opened = 0;
            for _ in 0..relay.cfg.warm_pairs {
                match relay.pool.open(bind, &relay.handle, |s| relay.pump(s)) {
                    Ok(s) => relay.pool.rest_fresh(bind, s),
                    Err(_) => break,
                }
                opened += 1;
            }
            relay.growing.store(false, Ordering::Release);
            tracing::debug!(pairs = opened, %bind, "media ports opened");
        });
    }

    /// Starts the pumps of a new pair.
    fn pump(&self, slot: &Arc<Slot>) -> [AbortHandle; 2] {
        [false, true].map(|rtcp_port| {
            let pump = Pump {
                slot: Arc::clone(slot),
                rtcp_port,
                clock: Arc::clone(&self.clock),
                stats: Arc::clone(&self.stats),
                networks: Arc::clone(&self.networks),
            };
            self.handle.spawn(pump.run()).abort_handle()
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, IdMap<CallMedia>> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Binds our ports facing one party and starts their pumps.
    fn open(
        &self,
        v6: bool,
        stream: &Arc<StreamState>,
        party: Party,
    ) -> Result<SocketAddr, MediaError> {
        let slot = &stream.facing[party.index()];
        if let Some(f) = slot.get() {
            return Ok(f.addr);
        }
        let family = if v6 { self.cfg.v6 } else { self.cfg.v4 };
        let (bind, shown_ip) =
            family.ok_or(MediaError::NoFamily(if v6 { "IPv6" } else { "IPv4" }))?;
        let now = self.clock.now();
        let sockets = self.pool.take(bind, now, &self.handle, |s| self.pump(s))?;
        if self.pool.ready(bind, now) < self.cfg.warm_pairs / 2 {
            self.grow(bind);
        }
        let addr = SocketAddr::new(shown_ip, sockets.port);
        // The facing first: a packet the slot takes finds it.
        let _ = slot.set(Facing {
            slot: Arc::clone(&sockets),
            bind,
            addr,
            shown: Shown::new(),
            heard_ssrc: AtomicU64::new(u64::MAX),
            last: AtomicU64::new(0),
            sr: AtomicU64::new(0),
        });
        *sockets.serving() = Some((Arc::clone(stream), party));
        Ok(addr)
    }
}

impl Anchor for Relay {
    fn describe(
        &self,
        call: CallKey,
        from: Party,
        v6: bool,
        streams: &[Stream],
        source: IpAddr,
    ) -> Result<Vec<Option<SocketAddr>>, MediaError> {
        let mut calls = self.lock();
        let media = calls.get_or_insert_with(call, Default::default);
        media.note(from, streams, source);
        let mut out = Vec::with_capacity(streams.len());
        for (i, s) in streams.iter().enumerate() {
            let Some(st) = media.streams.get(i).filter(|_| !s.off).map(Arc::clone) else {
                out.push(None);
                continue;
            };
            let addr = self.open(v6, &st, from.other());
            out.push(Some(addr?));
        }
        Ok(out)
    }

    fn note(&self, call: CallKey, from: Party, streams: &[Stream], source: IpAddr) {
        self.lock()
            .get_or_insert_with(call, Default::default)
            .note(from, streams, source);
    }

    fn answered(&self, call: CallKey) {
        let now = self.clock.now();
        if let Some(m) = self.lock().get_mut(&call) {
            m.answered.get_or_insert(now);
            for st in &m.streams {
                st.answered.store(true, Ordering::Relaxed);
            }
        }
    }

    fn record(&self, call: CallKey, name: &str) {
        let now = self.clock.now();
        let mut calls = self.lock();
        let Some(m) = calls.get_mut(&call) else {
            return;
        };
        let Some(first) = m.streams.first() else {
            return;
        };
        match Recorder::start(&self.cfg.recordings, name, now) {
            Ok(r) => {
                let r = Arc::new(r);
                let _ = first.recorder.set(Arc::clone(&r));
                m.recorder = Some(r);
            }
            Err(e) => tracing::warn!(error = %e, "cannot record"),
        }
    }

    fn face(
        &self,
        call: CallKey,
        party: Party,
        v6: bool,
    ) -> Result<Vec<Option<SocketAddr>>, MediaError> {
        let mut calls = self.lock();
        let Some(media) = calls.get_mut(&call) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::with_capacity(media.streams.len());
        let mut failed = None;
        for st in &media.streams {
            let described = !st.formats[party.index()]
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_empty();
            if !described {
                out.push(None);
                continue;
            }
            match self.open(v6, st, party) {
                Ok(a) => out.push(Some(a)),
                Err(e) => failed = Some(e),
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    fn playable(&self, call: CallKey, party: Party) -> Vec<Option<u8>> {
        let calls = self.lock();
        let Some(media) = calls.get(&call) else {
            return Vec::new();
        };
        media
            .streams
            .iter()
            .map(|st| {
                st.formats[party.index()]
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .iter()
                    .copied()
                    .find(|pt| audio::is_g711(*pt))
            })
            .collect()
    }

    fn play(&self, call: CallKey, party: Party, sound: Sound) -> Option<Duration> {
        let prompt = self.cfg.prompts.get(&sound)?.clone();
        let pt = self.playable(call, party).first().copied().flatten()?;
        let mut calls = self.lock();
        let media = calls.get_mut(&call)?;
        let st = Arc::clone(media.streams.first()?);
        st.facing[party.index()].get()?;
        st.playing[party.index()].store(true, Ordering::Relaxed);
        let took = prompt.duration();
        let task = self.handle.spawn(speak(st, party.index(), pt, prompt));
        media.tasks.push(task.abort_handle());
        Some(took)
    }

    fn quiesce(&self) {
        self.pool.close_resting();
    }

    fn release(&self, call: CallKey) {
        let Some(m) = self.lock().remove(&call) else {
            return;
        };
        for t in m.tasks {
            t.abort();
        }
        let now = self.clock.now();
        for st in &m.streams {
            for f in st.facing.iter().filter_map(OnceLock::get) {
                self.pool.give_back(f.bind, Arc::clone(&f.slot), now);
            }
        }
        if let Some(r) = m.recorder {
            // Joining the channels reads and writes files: not on a pump.
            self.handle.spawn_blocking(move || match r.finish() {
                Ok((path, secs)) => {
                    tracing::info!(file = %path.display(), secs, "recording saved")
                }
                Err(e) => tracing::warn!(error = %e, "recording not saved"),
            });
        }
    }

    fn silent(&self, timeout: Duration) -> Vec<CallKey> {
        let now = self.clock.now();
        // Asked every engine tick; a look once a second is enough.
        if now.saturating_sub(self.scanned.load(Ordering::Relaxed)) < 1_000 {
            return Vec::new();
        }
        self.scanned.store(now, Ordering::Relaxed);
        let limit = timeout.as_millis() as u64;
        let mut out = Vec::new();
        for (id, m) in self.lock().iter_mut() {
            let Some(answered) = m.answered else { continue };
            if m.reported || m.held.iter().any(|h| *h) {
                continue;
            }
            let last = m
                .streams
                .iter()
                .flat_map(|s| s.facing.iter())
                .filter_map(|f| f.get())
                .map(|f| f.last.load(Ordering::Relaxed))
                .fold(answered, u64::max);
            if now.saturating_sub(last) > limit {
                m.reported = true;
                out.push(*id);
            }
        }
        out
    }

    fn metrics(&self) -> String {
        let s = &self.stats;
        let calls = self.lock().len();
        format!(
            "# HELP sipmask_media_packets_total RTP and RTCP packets relayed, and packets dropped (unlatched source or not RTP).\n\
             # TYPE sipmask_media_packets_total counter\n\
             sipmask_media_packets_total{{kind=\"rtp\"}} {}\n\
             sipmask_media_packets_total{{kind=\"rtcp\"}} {}\n\
             sipmask_media_packets_total{{kind=\"dropped\"}} {}\n\
             # HELP sipmask_rtp_foreign_total RTP and RTCP packets dropped because they came from an address that is not the party's (no signalling, description or trunk media network of its own).\n\
             # TYPE sipmask_rtp_foreign_total counter\n\
             sipmask_rtp_foreign_total {}\n\
             # HELP sipmask_media_calls Calls with media anchored in the relay.\n\
             # TYPE sipmask_media_calls gauge\n\
             sipmask_media_calls {calls}\n\
             # HELP sipmask_media_slots_resting Port pairs open between calls, for reuse.\n\
             # TYPE sipmask_media_slots_resting gauge\n\
             sipmask_media_slots_resting {}\n",
            s.rtp.load(Ordering::Relaxed),
            s.rtcp.load(Ordering::Relaxed),
            s.dropped.load(Ordering::Relaxed),
            s.foreign.load(Ordering::Relaxed),
            self.pool.resting(),
        )
    }
}
