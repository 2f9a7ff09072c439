//! Limits on TCP connections, so no client can shut out the others:
//! separate pools for inbound connections and for our own outbound ones (to
//! trunks: inbound ones can never starve them), a cap per source address,
//! and, when the inbound pool is full, the connection idle longest among
//! those that never carried a REGISTER or an INVITE makes way for the
//! newcomer (idle connections cannot shut out phones); counters for the
//! metrics, and warnings at most once per interval.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use dashmap::DashMap;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How many connections, and how long they may idle or dribble.
#[derive(Clone, Copy, Debug)]
pub struct TcpLimits {
    /// Inbound connections open at once.
    pub inbound: usize,
    /// Our own outbound connections open at once.
    pub outbound: usize,
    /// Inbound connections one source address may hold.
    pub per_source: usize,
    /// A connection with nothing received for this long is closed.
    pub idle: Duration,
    /// A message must arrive whole within this long of its first byte.
    pub message: Duration,
}

/// Why a connection ended or was refused, for the metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Closed {
    /// Refused: the inbound pool was full.
    Full,
    /// Refused: its source held its share.
    PerSource,
    /// Closed: nothing received for the idle time.
    Idle,
    /// Closed: a message dribbled in slower than allowed.
    Slow,
    /// Closed: the pool was full and it had carried nothing worth keeping.
    Evicted,
}

const KINDS: [(Closed, &str); 5] = [
    (Closed::Full, "full"),
    (Closed::PerSource, "per_source"),
    (Closed::Idle, "idle"),
    (Closed::Slow, "slow"),
    (Closed::Evicted, "evicted"),
];

/// An inbound connection that may make way: when it was last heard
/// (ms since the guard started), and how to tell it to close.
struct Evictable {
    last: Arc<AtomicU64>,
    close: CancellationToken,
}

/// The pools and counters.
pub struct Guard {
    limits: TcpLimits,
    inbound: Arc<Semaphore>,
    outbound: Arc<Semaphore>,
    per_source: DashMap<IpAddr, usize>,
    counts: [AtomicU64; 5],
    warnings: crate::metrics::Throttle,
    /// Inbound connections that carried no REGISTER or INVITE, by id.
    evictable: Mutex<HashMap<u64, Evictable>>,
    next_id: AtomicU64,
    start: Instant,
}

/// A connection's place in its pool, given back when dropped.
pub struct Slot {
    _permit: OwnedSemaphorePermit,
    source: Option<(IpAddr, Arc<Guard>)>,
    /// Inbound: its id among the evictable, when it was last heard, and
    /// the signal that it is to make way.
    id: u64,
    last: Arc<AtomicU64>,
    close: CancellationToken,
}

impl Slot {
    /// The connection carried something: it is not idle.
    pub fn heard(&self) {
        if let Some((_, g)) = &self.source {
            self.last.store(g.ms(), Ordering::Relaxed);
        }
    }

    /// The connection carried a REGISTER or an INVITE: a phone's flow or a
    /// call's, never evicted for a newcomer.
    pub fn keep(&self) {
        if let Some((_, g)) = &self.source {
            g.evictables().remove(&self.id);
        }
    }

    /// Resolves when the connection is to make way for a newcomer.
    pub async fn evicted(&self) {
        self.close.cancelled().await
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some((ip, g)) = self.source.take() {
            g.evictables().remove(&self.id);
            g.per_source.remove_if_mut(&ip, |_, n| {
                *n = n.saturating_sub(1);
                *n == 0
            });
        }
    }
}

impl Guard {
    /// Empty pools of the given sizes.
    pub fn new(limits: TcpLimits) -> Arc<Guard> {
        Arc::new(Guard {
            inbound: Arc::new(Semaphore::new(limits.inbound)),
            outbound: Arc::new(Semaphore::new(limits.outbound)),
            per_source: DashMap::new(),
            counts: Default::default(),
            warnings: crate::metrics::Throttle::new(Duration::from_secs(10)),
            evictable: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            start: Instant::now(),
            limits,
        })
    }

    fn ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    fn evictables(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Evictable>> {
        self.evictable.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Tells the connection idle longest among those that carried no
    /// REGISTER or INVITE to close, for a newcomer; false if there is none.
    pub fn evict_one(&self) -> bool {
        let mut e = self.evictables();
        let oldest = e
            .iter()
            .min_by_key(|(_, v)| v.last.load(Ordering::Relaxed))
            .map(|(id, _)| *id);
        match oldest.and_then(|id| e.remove(&id)) {
            Some(v) => {
                v.close.cancel();
                true
            }
            None => false,
        }
    }

    /// A place for an inbound connection from `ip` once one is given back
    /// (an evicted connection closing), waiting up to `wait`.
    pub async fn inbound_within(
        self: &Arc<Self>,
        ip: IpAddr,
        wait: Duration,
    ) -> Result<Slot, Closed> {
        let permit = tokio::time::timeout(wait, self.inbound.clone().acquire_owned())
            .await
            .ok()
            .and_then(Result::ok)
            .ok_or(Closed::Full)?;
        self.admit(ip, Some(permit))
    }

    /// The limits.
    pub fn limits(&self) -> TcpLimits {
        self.limits
    }

    /// A place for an inbound connection from `ip`, or why not.
    pub fn inbound(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, Closed> {
        self.admit(ip, None)
    }

    /// [`Guard::inbound`] with a permit already held, or taken now.
    fn admit(
        self: &Arc<Self>,
        ip: IpAddr,
        held_permit: Option<OwnedSemaphorePermit>,
    ) -> Result<Slot, Closed> {
        let taken = {
            let mut held = self.per_source.entry(ip).or_insert(0);
            if *held >= self.limits.per_source {
                Err(Closed::PerSource)
            } else {
                match held_permit.map_or_else(|| self.inbound.clone().try_acquire_owned(), Ok) {
                    Ok(permit) => {
                        *held += 1;
                        Ok(permit)
                    }
                    Err(_) => Err(Closed::Full),
                }
            }
        };
        match taken {
            Ok(permit) => {
                let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                let last = Arc::new(AtomicU64::new(self.ms()));
                let close = CancellationToken::new();
                self.evictables().insert(
                    id,
                    Evictable {
                        last: Arc::clone(&last),
                        close: close.clone(),
                    },
                );
                Ok(Slot {
                    _permit: permit,
                    source: Some((ip, self.clone())),
                    id,
                    last,
                    close,
                })
            }
            Err(why) => {
                // A source refused outright leaves no entry behind.
                self.per_source.remove_if(&ip, |_, n| *n == 0);
                Err(why)
            }
        }
    }

    /// A place for one of our own connections, if any is free.
    pub fn outbound(&self) -> Option<Slot> {
        let permit = self.outbound.clone().try_acquire_owned().ok()?;
        Some(Slot {
            _permit: permit,
            source: None,
            id: 0,
            last: Arc::default(),
            close: CancellationToken::new(),
        })
    }

    /// Counts `why`, and warns about it at most every ten seconds, with
    /// how many more there were meanwhile.
    pub fn count(&self, why: Closed) {
        if let Some(i) = KINDS.iter().position(|(k, _)| *k == why) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
        if matches!(why, Closed::Idle) {
            return; // routine, not worth a warning
        }
        if let Some(more) = self.warnings.allow() {
            tracing::warn!(reason = ?why, more_since_last_warning = more, "tcp connection refused or closed");
        }
    }

    /// The counters in Prometheus text format.
    pub fn metrics(&self, out: &mut String) {
        let samples: Vec<(String, u64)> = KINDS
            .iter()
            .enumerate()
            .map(|(i, (_, n))| {
                (
                    format!("reason=\"{n}\""),
                    self.counts[i].load(Ordering::Relaxed),
                )
            })
            .collect();
        let refs: Vec<(&str, u64)> = samples.iter().map(|(l, v)| (l.as_str(), *v)).collect();
        crate::metrics::metric(
            out,
            "sipmask_tcp_connections_ended_total",
            "counter",
            "TCP connections refused (full, per_source) or closed (idle, slow, evicted for a newcomer).",
            &refs,
        );
        crate::metrics::metric(
            out,
            "sipmask_tcp_connections",
            "gauge",
            "TCP connections open.",
            &[
                (
                    "direction=\"inbound\"",
                    (self.limits.inbound - self.inbound.available_permits()) as u64,
                ),
                (
                    "direction=\"outbound\"",
                    (self.limits.outbound - self.outbound.available_permits()) as u64,
                ),
            ],
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard() -> Arc<Guard> {
        Guard::new(TcpLimits {
            inbound: 3,
            outbound: 1,
            per_source: 2,
            idle: Duration::from_secs(1),
            message: Duration::from_secs(1),
        })
    }

    #[test]
    fn a_source_gets_its_share_and_gives_it_back() {
        let g = guard();
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let b: IpAddr = "192.0.2.2".parse().expect("ip");
        let s1 = g.inbound(a).expect("first");
        let _s2 = g.inbound(a).expect("second");
        assert_eq!(g.inbound(a).err(), Some(Closed::PerSource));
        let _s3 = g.inbound(b).expect("another source");
        assert_eq!(g.inbound(b).err(), Some(Closed::Full));
        drop(s1);
        assert!(
            g.inbound(a).is_ok(),
            "a closed connection gives its place back"
        );
    }

    #[tokio::test]
    async fn a_full_pool_evicts_the_longest_idle_connection_that_carried_nothing_worth_keeping() {
        let g = guard();
        let a = g.inbound(IpAddr::from([192, 0, 2, 1])).expect("a");
        let b = g.inbound(IpAddr::from([192, 0, 2, 2])).expect("b");
        let c = g.inbound(IpAddr::from([192, 0, 2, 3])).expect("c");
        a.keep(); // a phone's registration flow
        tokio::time::sleep(Duration::from_millis(5)).await;
        b.heard(); // c has been idle longer than b
        assert_eq!(
            g.inbound(IpAddr::from([192, 0, 2, 4])).err(),
            Some(Closed::Full)
        );
        assert!(g.evict_one());
        tokio::time::timeout(Duration::from_secs(1), c.evicted())
            .await
            .expect("c is told to close");
        drop(c);
        let d = g
            .inbound_within(IpAddr::from([192, 0, 2, 4]), Duration::from_secs(1))
            .await
            .expect("the newcomer takes c's place");
        d.keep();
        assert!(g.evict_one(), "b may make way too");
        assert!(!g.evict_one(), "a, which registered, never does");
        drop((a, b, d));
    }

    #[test]
    fn inbound_connections_never_take_the_outbound_pool() {
        let g = guard();
        let _in: Vec<_> = (1..=3u8)
            .map(|i| g.inbound(IpAddr::from([192, 0, 2, i])).expect("in"))
            .collect();
        let out = g.outbound().expect("outbound has its own pool");
        assert!(g.outbound().is_none());
        drop(out);
        assert!(g.outbound().is_some());
        let mut m = String::new();
        g.metrics(&mut m);
        assert!(
            m.contains("sipmask_tcp_connections{direction=\"inbound\"} 3"),
            "{m}"
        );
    }
}
