//! Per-source limits on requests from outside a call, like Kamailio's pike:
//! a token bucket per IP address; a source that runs it dry is banned for a
//! while and answered nothing, so a flood (spoofed or not) costs sipmask a
//! map lookup per datagram and the flooded address nothing. Only sources
//! that are neither the trunk nor trusted are counted: they get refusals,
//! and the limit keeps those few.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Most sources remembered; past it, idle ones are forgotten first.
const MAX_SOURCES: usize = 100_000;

/// The limits.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PikeConfig {
    /// Requests per second a source may send on average (0: no limit).
    pub per_sec: f64,
    /// Requests a source may send at once.
    pub burst: f64,
    /// How long a source that went over stays banned.
    pub ban: Duration,
}

struct Bucket {
    tokens: f64,
    at: Instant,
    banned_until: Option<Instant>,
}

/// What to do with a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Within its limit.
    Pass,
    /// Over it: drop. `newly` on the request that caused the ban.
    Banned {
        /// The ban starts with this request.
        newly: bool,
    },
}

/// The buckets.
pub struct Pike {
    cfg: PikeConfig,
    sources: HashMap<IpAddr, Bucket>,
    /// Requests dropped so far.
    pub dropped: u64,
    /// Bans so far.
    pub bans: u64,
}

impl Pike {
    /// No source seen yet.
    pub fn new(cfg: PikeConfig) -> Pike {
        Pike {
            cfg,
            sources: HashMap::new(),
            dropped: 0,
            bans: 0,
        }
    }

    /// Counts one request of `ip` at `now`.
    pub fn check(&mut self, ip: IpAddr, now: Instant) -> Verdict {
        if self.cfg.per_sec <= 0.0 {
            return Verdict::Pass;
        }
        if self.sources.len() >= MAX_SOURCES && !self.sources.contains_key(&ip) {
            self.forget_idle(now);
        }
        let cfg = self.cfg;
        let b = self.sources.entry(ip).or_insert(Bucket {
            tokens: cfg.burst,
            at: now,
            banned_until: None,
        });
        if let Some(until) = b.banned_until {
            if now < until {
                self.dropped += 1;
                return Verdict::Banned { newly: false };
            }
            b.banned_until = None;
            b.tokens = cfg.burst;
            b.at = now;
        }
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * cfg.per_sec).min(cfg.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            return Verdict::Pass;
        }
        b.banned_until = Some(now + cfg.ban);
        self.dropped += 1;
        self.bans += 1;
        Verdict::Banned { newly: true }
    }

    /// Sources banned now.
    pub fn banned(&self, now: Instant) -> usize {
        self.sources
            .values()
            .filter(|b| b.banned_until.is_some_and(|u| now < u))
            .count()
    }

    /// Forgets sources whose bucket is full again and that are not banned:
    /// they are as if never seen.
    pub fn forget_idle(&mut self, now: Instant) {
        let cfg = self.cfg;
        self.sources.retain(|_, b| {
            let full = b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * cfg.per_sec
                >= cfg.burst;
            b.banned_until.is_some_and(|u| now < u) || !full
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pike() -> Pike {
        Pike::new(PikeConfig {
            per_sec: 10.0,
            burst: 5.0,
            ban: Duration::from_secs(60),
        })
    }

    #[test]
    fn a_burst_passes_then_the_source_is_banned_until_the_ban_ends() {
        let mut p = pike();
        let ip: IpAddr = "192.0.2.1".parse().expect("ip");
        let t0 = Instant::now();
        for _ in 0..5 {
            assert_eq!(p.check(ip, t0), Verdict::Pass);
        }
        assert_eq!(p.check(ip, t0), Verdict::Banned { newly: true });
        // Even a polite pace stays unanswered while banned.
        let later = t0 + Duration::from_secs(30);
        assert_eq!(p.check(ip, later), Verdict::Banned { newly: false });
        assert_eq!(p.banned(later), 1);
        let after = t0 + Duration::from_secs(61);
        assert_eq!(p.check(ip, after), Verdict::Pass);
        assert_eq!((p.bans, p.dropped), (1, 2));
    }

    #[test]
    fn sources_are_limited_apart_and_the_rate_refills() {
        let mut p = pike();
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let b: IpAddr = "192.0.2.2".parse().expect("ip");
        let t0 = Instant::now();
        for i in 0..50 {
            // 10 per second is the rate: one every 100 ms always passes.
            let t = t0 + Duration::from_millis(100 * i);
            assert_eq!(p.check(a, t), Verdict::Pass, "request {i}");
        }
        for _ in 0..5 {
            assert_eq!(p.check(b, t0), Verdict::Pass);
        }
        assert!(matches!(p.check(b, t0), Verdict::Banned { .. }));
        assert_eq!(p.check(a, t0 + Duration::from_secs(5)), Verdict::Pass);
    }

    #[test]
    fn idle_sources_are_forgotten_and_no_limit_means_none() {
        let mut p = pike();
        let t0 = Instant::now();
        for i in 0..100u8 {
            p.check(IpAddr::from([192, 0, 2, i]), t0);
        }
        p.forget_idle(t0 + Duration::from_secs(1));
        assert_eq!(p.sources.len(), 0);
        let mut off = Pike::new(PikeConfig {
            per_sec: 0.0,
            burst: 0.0,
            ban: Duration::ZERO,
        });
        let ip: IpAddr = "192.0.2.9".parse().expect("ip");
        for _ in 0..1000 {
            assert_eq!(off.check(ip, t0), Verdict::Pass);
        }
    }
}
