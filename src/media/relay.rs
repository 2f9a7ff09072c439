//! The in-process RTP/RTCP relay. Each stream of a call has, per party, a
//! pair of our ports (RTP, RTCP) facing that party: the party sends there
//! and hears from there, so neither learns the other's address. The first
//! packet after each description latches where the party really sends from
//! (symmetric RTP through NAT); packets from elsewhere are dropped. Every
//! packet is rewritten for the leg it goes to (`rtp.rs`) in the buffer it
//! was received into.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::task::AbortHandle;

use super::audio::{self, Prompt, FRAME};
use super::ports::Ports;
use super::record::Recorder;
use super::rtp::{self, RtcpMap, Shown};
use super::sdp::Stream;
use super::{Anchor, CallKey, MediaError, Party, Sound};

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
}

/// Counters for /metrics.
#[derive(Default)]
struct Stats {
    rtp: AtomicU64,
    rtcp: AtomicU64,
    /// From a source other than the latched one, or not RTP at all.
    dropped: AtomicU64,
}

/// The relay.
pub struct Relay {
    cfg: RelayConfig,
    ports: Ports,
    calls: Mutex<HashMap<CallKey, CallMedia>>,
    handle: tokio::runtime::Handle,
    clock: Arc<Coarse>,
    stats: Arc<Stats>,
}

/// Milliseconds since the relay started, advanced by a task four times a
/// second: packets read it instead of the clock.
struct Coarse {
    start: Instant,
    ms: AtomicU64,
}

impl Coarse {
    fn now(&self) -> u64 {
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
    tasks: Vec<AbortHandle>,
    recorder: Option<Arc<Recorder>>,
}

/// Where a party takes media, and whether its real source is latched.
#[derive(Clone, Copy, Debug, Default)]
struct Remote {
    rtp: Option<SocketAddr>,
    rtcp: Option<SocketAddr>,
    rtp_latched: bool,
    rtcp_latched: bool,
}

/// One stream (one `m=` line) of a call.
#[derive(Default)]
struct StreamState {
    /// Our sockets facing each party (index: [`Party::index`]).
    facing: [OnceLock<Facing>; 2],
    /// Where each party takes media.
    remote: [Mutex<Remote>; 2],
    /// The SDP address each party gave last, to tell a new one.
    described: [Mutex<Option<SocketAddr>>; 2],
    /// Set on the first stream of a recorded call.
    recorder: OnceLock<Arc<Recorder>>,
    /// The payload types each party listed last.
    formats: [Mutex<Vec<u8>>; 2],
    /// A prompt is playing to the party: the other's media waits.
    playing: [AtomicBool; 2],
}

/// Our ports facing one party, and what that party is shown.
struct Facing {
    rtp: Arc<UdpSocket>,
    rtcp: Arc<UdpSocket>,
    addr: SocketAddr,
    shown: Shown,
    /// The SSRC this party sends with (u64::MAX: none yet).
    heard_ssrc: AtomicU64,
    /// When RTP last came from this party (coarse ms).
    last: AtomicU64,
}

impl Relay {
    /// A relay spawning its tasks on `handle`.
    pub fn new(cfg: RelayConfig, handle: tokio::runtime::Handle) -> Arc<Relay> {
        let ports = Ports::new(cfg.ports.0, cfg.ports.1);
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
        Arc::new(Relay {
            cfg,
            ports,
            calls: Mutex::new(HashMap::new()),
            handle,
            clock,
            stats: Arc::default(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<CallKey, CallMedia>> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Binds our ports facing one party and starts their pumps.
    fn open(
        &self,
        v6: bool,
        stream: &Arc<StreamState>,
        party: Party,
        tasks: &mut Vec<AbortHandle>,
    ) -> Result<SocketAddr, MediaError> {
        let slot = &stream.facing[party.index()];
        if let Some(f) = slot.get() {
            return Ok(f.addr);
        }
        let family = if v6 { self.cfg.v6 } else { self.cfg.v4 };
        let (bind, shown_ip) =
            family.ok_or(MediaError::NoFamily(if v6 { "IPv6" } else { "IPv4" }))?;
        let (lo, hi) = self.ports.bounds();
        let (a, b) = self.ports.pair(bind).ok_or(MediaError::NoPorts(lo, hi))?;
        let port = a.local_addr().map_or(0, |x| x.port());
        let _enter = self.handle.enter();
        let (Ok(a), Ok(b)) = (UdpSocket::from_std(a), UdpSocket::from_std(b)) else {
            return Err(MediaError::NoPorts(lo, hi));
        };
        let facing = Facing {
            rtp: Arc::new(a),
            rtcp: Arc::new(b),
            addr: SocketAddr::new(shown_ip, port),
            shown: Shown::new(),
            heard_ssrc: AtomicU64::new(u64::MAX),
            last: AtomicU64::new(0),
        };
        let (rtp, rtcp) = (Arc::clone(&facing.rtp), Arc::clone(&facing.rtcp));
        let addr = facing.addr;
        // Set before the pumps start, so they always find it.
        let _ = slot.set(facing);
        for (sock, rtcp_port) in [(rtp, false), (rtcp, true)] {
            let pump = Pump {
                stream: Arc::clone(stream),
                party,
                sock,
                rtcp_port,
                clock: Arc::clone(&self.clock),
                stats: Arc::clone(&self.stats),
            };
            tasks.push(self.handle.spawn(pump.run()).abort_handle());
        }
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
    ) -> Result<Vec<Option<SocketAddr>>, MediaError> {
        self.note(call, from, streams);
        let mut calls = self.lock();
        let media = calls.entry(call).or_default();
        let mut out = Vec::with_capacity(streams.len());
        for (i, s) in streams.iter().enumerate() {
            let Some(st) = media.streams.get(i).filter(|_| !s.off).map(Arc::clone) else {
                out.push(None);
                continue;
            };
            let mut tasks = std::mem::take(&mut media.tasks);
            let addr = self.open(v6, &st, from.other(), &mut tasks);
            media.tasks = tasks;
            out.push(Some(addr?));
        }
        Ok(out)
    }

    fn note(&self, call: CallKey, from: Party, streams: &[Stream]) {
        let mut calls = self.lock();
        let media = calls.entry(call).or_default();
        media.held[from.index()] = streams.iter().all(|s| s.held || s.off);
        for (i, s) in streams.iter().enumerate() {
            if media.streams.len() <= i {
                media.streams.push(Arc::default());
            }
            let st = &media.streams[i];
            if s.off {
                continue;
            }
            *st.formats[from.index()]
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = s.formats.clone();
            // A new address unlatches: the party moved (or came back from
            // hold); the same description again keeps what was learnt.
            let mut said = st.described[from.index()]
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if *said != s.rtp || s.rtp.is_none() {
                *said = s.rtp;
                *st.remote[from.index()]
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) = Remote {
                    rtp: s.rtp,
                    rtcp: s.rtcp,
                    rtp_latched: false,
                    rtcp_latched: false,
                };
            }
        }
    }

    fn answered(&self, call: CallKey) {
        let now = self.clock.now();
        if let Some(m) = self.lock().get_mut(&call) {
            m.answered.get_or_insert(now);
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
        let mut tasks = std::mem::take(&mut media.tasks);
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
            match self.open(v6, st, party, &mut tasks) {
                Ok(a) => out.push(Some(a)),
                Err(e) => failed = Some(e),
            }
        }
        media.tasks = tasks;
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

    fn release(&self, call: CallKey) {
        let Some(m) = self.lock().remove(&call) else {
            return;
        };
        for t in m.tasks {
            t.abort();
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
             # HELP sipmask_media_calls Calls with media anchored in the relay.\n\
             # TYPE sipmask_media_calls gauge\n\
             sipmask_media_calls {calls}\n",
            s.rtp.load(Ordering::Relaxed),
            s.rtcp.load(Ordering::Relaxed),
            s.dropped.load(Ordering::Relaxed),
        )
    }
}

/// Receives on one of our sockets and relays to the other party.
struct Pump {
    stream: Arc<StreamState>,
    /// The party this socket faces (the sender of what it receives).
    party: Party,
    sock: Arc<UdpSocket>,
    rtcp_port: bool,
    clock: Arc<Coarse>,
    stats: Arc<Stats>,
}

/// Larger than any RTP packet a path MTU lets through.
const MAX_PACKET: usize = 2048;

impl Pump {
    async fn run(self) {
        let mut buf = [0u8; MAX_PACKET];
        let mut out = [0u8; MAX_PACKET];
        loop {
            match self.sock.recv_from(&mut buf).await {
                Ok((n, src)) => self.relay(&mut buf, n, src, &mut out),
                // ICMP errors from earlier sends surface here on some
                // systems; the socket is still good.
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::ConnectionRefused
                            | std::io::ErrorKind::ConnectionReset
                            | std::io::ErrorKind::Interrupted
                            | std::io::ErrorKind::WouldBlock
                    ) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "media socket failed");
                    return;
                }
            }
        }
    }

    fn relay(&self, buf: &mut [u8], n: usize, src: SocketAddr, out: &mut [u8]) {
        let (x, y) = (self.party.index(), self.party.other().index());
        let s = &self.stream;
        let rtcp = self.rtcp_port || rtp::is_rtcp(&buf[..n]);
        if !latch(&s.remote[x], src, rtcp) {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let (Some(from), Some(to)) = (s.facing[x].get(), s.facing[y].get()) else {
            return;
        };
        let dest = *s.remote[y].lock().unwrap_or_else(|e| e.into_inner());
        if rtcp {
            let heard = to.heard_ssrc.load(Ordering::Relaxed);
            let map = RtcpMap {
                to: &to.shown,
                from: &from.shown,
                their_ssrc: u32::try_from(heard).ok(),
            };
            let len = rtp::rewrite_rtcp(&buf[..n], out, &map);
            let Some(addr) = dest.rtcp.or(dest.rtp) else {
                return;
            };
            if len == 0 {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
            // A multiplexing party takes RTCP on the RTP port.
            let sock = if Some(addr) == dest.rtp {
                &to.rtp
            } else {
                &to.rtcp
            };
            let _ = sock.try_send_to(&out[..len], addr);
            self.stats.rtcp.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let Some((len, heard)) = rtp::rewrite_rtp(buf, n, &to.shown) else {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        from.heard_ssrc
            .store(u64::from(heard.ssrc), Ordering::Relaxed);
        let now = self.clock.now().max(1);
        from.last.store(now, Ordering::Relaxed);
        if let Some(r) = s.recorder.get() {
            r.write(x, heard.pt, heard.ts, &buf[heard.payload..len], now);
        }
        if s.playing[y].load(Ordering::Relaxed) {
            // A prompt is speaking to them: this waits its turn (dropped).
            return;
        }
        if let Some(addr) = dest.rtp {
            // Media is late rather than never: a full socket buffer drops.
            let _ = to.rtp.try_send_to(&buf[..len], addr);
            self.stats.rtp.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Plays `prompt` to party `to` from our port facing it, one G.711 packet
/// each 20 ms, as a stream of its own (its own SSRC), then lets the other
/// party's media through again.
async fn speak(st: Arc<StreamState>, to: usize, pt: u8, prompt: Prompt) {
    // Our own 183 goes out as this starts: let it arrive first.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let Some(f) = st.facing[to].get() else {
        return;
    };
    let shown = Shown::new();
    let mut every = tokio::time::interval(Duration::from_millis(20));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pkt = [0u8; 12 + FRAME];
    for (i, chunk) in prompt.0.chunks(FRAME).enumerate() {
        every.tick().await;
        let n = i as u32;
        pkt[0] = 0x80;
        pkt[1] = if i == 0 { pt | 0x80 } else { pt };
        pkt[2..4].copy_from_slice(&shown.seq.wrapping_add(n as u16).to_be_bytes());
        pkt[4..8].copy_from_slice(&shown.ts.wrapping_add(n * FRAME as u32).to_be_bytes());
        pkt[8..12].copy_from_slice(&shown.ssrc.to_be_bytes());
        for (j, b) in pkt[12..].iter_mut().enumerate() {
            *b = audio::encode(pt, chunk.get(j).copied().unwrap_or(0));
        }
        let dest = st.remote[to].lock().unwrap_or_else(|e| e.into_inner()).rtp;
        if let Some(dest) = dest {
            let _ = f.rtp.try_send_to(&pkt, dest);
        }
    }
    st.playing[to].store(false, Ordering::Relaxed);
}

/// Whether a packet from `src` is the party's: the first one after a
/// description latches its source, later ones must come from there.
fn latch(remote: &Mutex<Remote>, src: SocketAddr, rtcp: bool) -> bool {
    let mut guard = remote.lock().unwrap_or_else(|e| e.into_inner());
    let r = &mut *guard;
    let (addr, latched) = if rtcp {
        (&mut r.rtcp, &mut r.rtcp_latched)
    } else {
        (&mut r.rtp, &mut r.rtp_latched)
    };
    if *latched {
        return *addr == Some(src);
    }
    *addr = Some(src);
    *latched = true;
    true
}
