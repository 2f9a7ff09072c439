//! Limits on TCP connections, so no client can shut out the others:
//! separate pools for inbound connections and for our own outbound ones (to
//! trunks: inbound ones can never starve them), a cap per source address,
//! counters for the metrics, and warnings at most once per interval.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

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
}

const KINDS: [(Closed, &str); 4] = [
    (Closed::Full, "full"),
    (Closed::PerSource, "per_source"),
    (Closed::Idle, "idle"),
    (Closed::Slow, "slow"),
];

/// The pools and counters.
pub struct Guard {
    limits: TcpLimits,
    inbound: Arc<Semaphore>,
    outbound: Arc<Semaphore>,
    per_source: DashMap<IpAddr, usize>,
    counts: [AtomicU64; 4],
    warnings: crate::metrics::Throttle,
}

/// A connection's place in its pool, given back when dropped.
pub struct Slot {
    _permit: OwnedSemaphorePermit,
    source: Option<(IpAddr, Arc<Guard>)>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some((ip, g)) = self.source.take() {
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
            limits,
        })
    }

    /// The limits.
    pub fn limits(&self) -> TcpLimits {
        self.limits
    }

    /// A place for an inbound connection from `ip`, or why not.
    pub fn inbound(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, Closed> {
        let taken = {
            let mut held = self.per_source.entry(ip).or_insert(0);
            if *held >= self.limits.per_source {
                Err(Closed::PerSource)
            } else {
                match self.inbound.clone().try_acquire_owned() {
                    Ok(permit) => {
                        *held += 1;
                        Ok(permit)
                    }
                    Err(_) => Err(Closed::Full),
                }
            }
        };
        match taken {
            Ok(permit) => Ok(Slot {
                _permit: permit,
                source: Some((ip, self.clone())),
            }),
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
            "TCP connections refused (full, per_source) or closed (idle, slow).",
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
