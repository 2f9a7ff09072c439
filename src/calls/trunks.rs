//! Outbound trunks: which carriers serve a number (prefixes), in what order
//! a call tries them (priority, then weight at random), which are up (an
//! OPTIONS ping answered lately; a call's silence counts as a missed ping),
//! which are degraded (our credentials refused: tried after the others),
//! and who among the sources of requests is a trunk (trusted from any
//! port, with its own caller-id setting).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::b2bua::policy::{Credentials, Probe, Route, TrunkOutcome};
use crate::metrics::metric;
use crate::sip::Target;

/// One trunk as the policy uses it.
#[derive(Clone, Debug)]
pub struct Trunk {
    /// Name, for logs and metrics.
    pub name: String,
    /// Where it is.
    pub target: Target,
    /// E.164 prefixes served, each starting with `+`; empty: all.
    pub prefixes: Vec<String>,
    /// Lower first.
    pub priority: u32,
    /// Share within its priority.
    pub weight: u32,
    /// Credentials for its challenges.
    pub auth: Option<Arc<Credentials>>,
    /// Whether its P-Asserted-Identity names the caller.
    pub asserted_caller: bool,
    /// How often it is pinged; `None`: never (always up).
    pub options: Option<Duration>,
    /// How long a ping waits for its answer; `None`: its transaction's
    /// own timeout (64×T1).
    pub options_timeout: Option<Duration>,
    /// Missed pings in a row (a call it left unanswered counts as one)
    /// that mark it down.
    pub down_after: u32,
    /// How long it may stay silent on a call before the next is tried.
    pub setup: Option<Duration>,
    /// It is a proxy: in-dialog requests to it carry a Route naming it
    /// when the far end did not record-route.
    pub outbound_proxy: bool,
}

impl Trunk {
    fn serves(&self, number: &str) -> bool {
        self.prefixes.is_empty() || self.prefixes.iter().any(|p| number.starts_with(p))
    }

    fn route(&self, index: usize, number: &str) -> Route {
        let transport = match self.target.peer.transport {
            crate::sip::Transport::Tcp => ";transport=tcp",
            crate::sip::Transport::Udp => "",
        };
        Route {
            uri: crate::text::cat(&["sip:", number, "@", &self.target.host]),
            peer: self.target.peer,
            auth: self.auth.clone(),
            setup: self.setup,
            trunk: Some(index),
            proxy: self
                .outbound_proxy
                .then(|| crate::text::cat(&["<sip:", &self.target.host, transport, ";lr>"])),
            preloaded: Vec::new(),
        }
    }
}

/// Challenges in a row to authenticated INVITEs that make a trunk
/// degraded: tried only after every other trunk that serves a number.
const DEGRADED_AFTER: u32 = 3;

/// Health of one trunk.
#[derive(Clone, Copy, Debug, Default)]
struct Health {
    down: bool,
    /// When the next ping is due.
    next: Option<Instant>,
    /// A ping is out.
    waiting: bool,
    /// Pings (or calls) in a row it left unanswered.
    missed: u32,
    /// Authenticated INVITEs in a row it challenged again.
    auth_failures: u32,
    /// Every such challenge since start, for the metric.
    auth_failures_total: u64,
}

impl Health {
    fn degraded(&self) -> bool {
        self.auth_failures >= DEGRADED_AFTER
    }
}

/// The trunks and their health.
pub struct Trunks {
    list: Vec<Trunk>,
    health: Vec<Health>,
}

impl Trunks {
    /// Every trunk starts up; pings start at once.
    pub fn new(list: Vec<Trunk>) -> Trunks {
        let health = vec![Health::default(); list.len()];
        Trunks { list, health }
    }

    /// Whether there is any trunk at all.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The trunk `ip` belongs to, if any.
    pub fn of_source(&self, ip: IpAddr) -> Option<&Trunk> {
        let ip = crate::net::canonical(ip);
        self.list
            .iter()
            .find(|t| crate::net::canonical(t.target.peer.addr.ip()) == ip)
    }

    /// Where a call to `number` goes: the trunks up that serve it, by
    /// priority, weighted at random within one priority, degraded ones
    /// last. Empty when none serves it or all that do are down.
    pub fn routes(&self, number: &str) -> Vec<Route> {
        let mut up: Vec<((bool, u32), f64, usize)> = self
            .list
            .iter()
            .enumerate()
            .filter(|(i, t)| t.serves(number) && !self.health[*i].down)
            // Weighted order without replacement: sort by u^(1/w) descending
            // (Efraimidis-Spirakis), so weight 200 goes first twice as often.
            .map(|(i, t)| {
                let u: f64 = rand::random::<f64>().max(f64::MIN_POSITIVE);
                let rank = (self.health[i].degraded(), t.priority);
                (rank, u.powf(1.0 / f64::from(t.weight.max(1))), i)
            })
            .collect();
        up.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.total_cmp(&a.1)));
        up.into_iter()
            .map(|(_, _, i)| self.list[i].route(i, number))
            .collect()
    }

    /// Pings due now.
    pub fn probes(&mut self, now: Instant) -> Vec<Probe> {
        let mut out = Vec::new();
        for (i, t) in self.list.iter().enumerate() {
            let Some(every) = t.options else { continue };
            let h = &mut self.health[i];
            if h.waiting || h.next.is_some_and(|n| now < n) {
                continue;
            }
            h.waiting = true;
            h.next = Some(now + every);
            out.push(Probe {
                id: i as u64,
                route: Route::to(format!("sip:{}", t.target.host), t.target.peer),
                timeout: t.options_timeout,
            });
        }
        out
    }

    /// A ping's outcome: any answer means up; `down_after` missed in a
    /// row mean down.
    pub fn probed(&mut self, id: u64, status: Option<u16>) {
        let i = usize::try_from(id).unwrap_or(usize::MAX);
        if let Some(h) = self.health.get_mut(i) {
            h.waiting = false;
        }
        self.heard(i, status);
    }

    /// Whether trunk `i` answered (`Some`) a ping, or missed one.
    fn heard(&mut self, i: usize, status: Option<u16>) {
        let (Some(t), Some(h)) = (self.list.get(i), self.health.get_mut(i)) else {
            return;
        };
        h.missed = match status {
            Some(_) => 0,
            None => h.missed.saturating_add(1),
        };
        let down = h.missed >= t.down_after.max(1);
        if h.missed > 0 && !down {
            // Missed but not yet down: ask again now rather than a whole
            // interval later, so it is down within one interval plus
            // `down_after` timeouts.
            h.next = None;
        }
        if down != h.down {
            if down {
                tracing::warn!(trunk = %t.name, missed = h.missed, "trunk does not answer: skipped until it answers OPTIONS");
            } else {
                tracing::info!(trunk = %t.name, status, "trunk answers OPTIONS again");
            }
        }
        h.down = down;
    }

    /// How trunk `i` did on a call's INVITE.
    pub fn outcome(&mut self, i: usize, outcome: TrunkOutcome) {
        let (Some(t), Some(h)) = (self.list.get(i), self.health.get_mut(i)) else {
            return;
        };
        match outcome {
            // Only a pinged trunk is marked down: pings bring it back.
            TrunkOutcome::Silent if t.options.is_some() => self.heard(i, None),
            TrunkOutcome::Silent => {}
            TrunkOutcome::Accepted => {
                if h.degraded() {
                    tracing::info!(trunk = %t.name, "trunk takes our credentials again");
                }
                h.auth_failures = 0;
            }
            TrunkOutcome::AuthRejected => {
                h.auth_failures = h.auth_failures.saturating_add(1);
                h.auth_failures_total += 1;
                // The first of a run, the one that degrades the trunk, then
                // one in a thousand: a wrong password fails every call.
                let n = h.auth_failures;
                if n == 1 || n == DEGRADED_AFTER || n % 1000 == 0 {
                    tracing::warn!(
                        trunk = %t.name,
                        in_a_row = n,
                        degraded = h.degraded(),
                        "trunk refused our credentials (check its username and password): failing over"
                    );
                }
            }
        }
    }

    /// The name of trunk `i`.
    pub fn name(&self, i: usize) -> Option<&str> {
        self.list.get(i).map(|t| t.name.as_str())
    }

    /// `sipmask_trunk_up{trunk="..."}`.
    pub fn metrics(&self, out: &mut String) {
        if self.list.is_empty() {
            return;
        }
        let labels: Vec<(String, u64)> = self
            .list
            .iter()
            .zip(&self.health)
            .map(|(t, h)| (format!("trunk=\"{}\"", t.name), u64::from(!h.down)))
            .collect();
        let rows: Vec<(&str, u64)> = labels.iter().map(|(l, v)| (l.as_str(), *v)).collect();
        metric(
            out,
            "sipmask_trunk_up",
            "gauge",
            "Whether a trunk is up (answers OPTIONS, or is never pinged).",
            &rows,
        );
        let per = |f: fn(&Health) -> u64| -> Vec<(&str, u64)> {
            labels
                .iter()
                .zip(&self.health)
                .map(|((l, _), h)| (l.as_str(), f(h)))
                .collect()
        };
        metric(
            out,
            "sipmask_trunk_degraded",
            "gauge",
            "Whether a trunk refused our credentials lately (tried after the others).",
            &per(|h| u64::from(h.degraded())),
        );
        metric(
            out,
            "sipmask_trunk_auth_failures_total",
            "counter",
            "Authenticated INVITEs a trunk challenged again (wrong credentials).",
            &per(|h| h.auth_failures_total),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trunk(name: &str, addr: &str, prefixes: &[&str], priority: u32, weight: u32) -> Trunk {
        Trunk {
            name: name.into(),
            target: Target::parse(addr).expect("target"),
            prefixes: prefixes.iter().map(|p| p.to_string()).collect(),
            priority,
            weight,
            auth: None,
            asserted_caller: true,
            options: Some(Duration::from_secs(30)),
            options_timeout: None,
            down_after: 1,
            setup: None,
            outbound_proxy: true,
        }
    }

    fn hosts(r: &[Route]) -> Vec<String> {
        r.iter().map(|r| r.peer.addr.to_string()).collect()
    }

    #[test]
    fn prefixes_and_priorities_order_the_routes() {
        let t = Trunks::new(vec![
            trunk("cn-backup", "10.0.0.2:5060", &["+86"], 2, 100),
            trunk("cn", "10.0.0.1:5060", &["+86"], 1, 100),
            trunk("us", "10.0.0.3:5060", &["+1"], 1, 100),
        ]);
        assert_eq!(
            hosts(&t.routes("+8613900000000")),
            ["10.0.0.1:5060", "10.0.0.2:5060"]
        );
        assert_eq!(hosts(&t.routes("+12025550100")), ["10.0.0.3:5060"]);
        assert!(t.routes("+4420").is_empty());
        assert_eq!(
            t.routes("+8613900000000")[0].uri,
            "sip:+8613900000000@10.0.0.1:5060"
        );
        assert_eq!(
            t.of_source("10.0.0.2".parse().expect("ip"))
                .map(|t| t.name.as_str()),
            Some("cn-backup")
        );
    }

    #[test]
    fn weights_share_calls_within_a_priority() {
        let t = Trunks::new(vec![
            trunk("a", "10.0.0.1:5060", &[], 1, 300),
            trunk("b", "10.0.0.2:5060", &[], 1, 100),
        ]);
        let first_a = (0..4000)
            .filter(|_| t.routes("+86139")[0].peer.addr.to_string() == "10.0.0.1:5060")
            .count();
        // Expected 3000 of 4000; far outside chance if weights were ignored.
        assert!((2700..3300).contains(&first_a), "{first_a}");
    }

    #[test]
    fn a_trunk_that_misses_a_ping_is_skipped_until_it_answers() {
        let mut t = Trunks::new(vec![
            trunk("a", "10.0.0.1:5060", &[], 1, 100),
            trunk("b", "10.0.0.2:5060", &[], 2, 100),
        ]);
        let now = Instant::now();
        let pings = t.probes(now);
        assert_eq!(pings.len(), 2);
        assert!(t.probes(now).is_empty(), "one ping out at a time");
        t.probed(0, None);
        t.probed(1, Some(200));
        assert_eq!(hosts(&t.routes("+86")), ["10.0.0.2:5060"]);
        assert!(t.probes(now + Duration::from_secs(29)).is_empty());
        assert_eq!(t.probes(now + Duration::from_secs(30)).len(), 2);
        // Any answer, even a 404, means it is there.
        t.probed(0, Some(404));
        assert_eq!(hosts(&t.routes("+86")), ["10.0.0.1:5060", "10.0.0.2:5060"]);
        let mut m = String::new();
        t.metrics(&mut m);
        assert!(m.contains("sipmask_trunk_up{trunk=\"a\"} 1"), "{m}");
    }

    #[test]
    fn missed_pings_and_silent_calls_count_toward_down_after() {
        let mut a = trunk("a", "10.0.0.1:5060", &[], 1, 100);
        a.down_after = 2;
        let mut t = Trunks::new(vec![a, trunk("b", "10.0.0.2:5060", &[], 2, 100)]);
        let now = Instant::now();
        assert_eq!(t.probes(now).len(), 2);
        t.probed(0, None);
        assert_eq!(hosts(&t.routes("+86")), ["10.0.0.1:5060", "10.0.0.2:5060"]);
        // One miss: asked again at once, not an interval later.
        assert_eq!(t.probes(now).len(), 1);
        // A call it left silent is the second miss: down.
        t.outcome(0, TrunkOutcome::Silent);
        assert_eq!(hosts(&t.routes("+86")), ["10.0.0.2:5060"]);
        t.probed(0, Some(200));
        assert_eq!(hosts(&t.routes("+86")), ["10.0.0.1:5060", "10.0.0.2:5060"]);
    }

    #[test]
    fn refused_credentials_degrade_a_trunk_until_it_takes_them() {
        let mut t = Trunks::new(vec![
            trunk("a", "10.0.0.1:5060", &[], 1, 100),
            trunk("b", "10.0.0.2:5060", &[], 2, 100),
        ]);
        for _ in 0..DEGRADED_AFTER - 1 {
            t.outcome(0, TrunkOutcome::AuthRejected);
        }
        assert_eq!(hosts(&t.routes("+86"))[0], "10.0.0.1:5060");
        t.outcome(0, TrunkOutcome::AuthRejected);
        // Degraded: still tried, after the others.
        assert_eq!(hosts(&t.routes("+86")), ["10.0.0.2:5060", "10.0.0.1:5060"]);
        let mut m = String::new();
        t.metrics(&mut m);
        assert!(
            m.contains("sipmask_trunk_auth_failures_total{trunk=\"a\"} 3"),
            "{m}"
        );
        assert!(m.contains("sipmask_trunk_degraded{trunk=\"a\"} 1"), "{m}");
        t.outcome(0, TrunkOutcome::Accepted);
        assert_eq!(hosts(&t.routes("+86"))[0], "10.0.0.1:5060");
    }
}
