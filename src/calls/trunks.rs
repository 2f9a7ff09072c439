//! Outbound trunks: which carriers serve a number (prefixes), in what order
//! a call tries them (priority, then weight at random), which are up (an
//! OPTIONS ping answered lately), and who among the sources of requests is
//! a trunk (trusted from any port, with its own caller-id setting).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::b2bua::policy::{Credentials, Probe, Route};
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
    /// How long it may stay silent on a call before the next is tried.
    pub setup: Option<Duration>,
}

impl Trunk {
    fn serves(&self, number: &str) -> bool {
        self.prefixes.is_empty() || self.prefixes.iter().any(|p| number.starts_with(p))
    }

    fn route(&self, number: &str) -> Route {
        Route {
            uri: crate::text::cat(&["sip:", number, "@", &self.target.host]),
            peer: self.target.peer,
            auth: self.auth.clone(),
            setup: self.setup,
        }
    }
}

/// Health of one trunk.
#[derive(Clone, Copy, Debug, Default)]
struct Health {
    down: bool,
    /// When the next ping is due.
    next: Option<Instant>,
    /// A ping is out.
    waiting: bool,
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
    /// priority, weighted at random within one priority. Empty when none
    /// serves it or all that do are down.
    pub fn routes(&self, number: &str) -> Vec<Route> {
        let mut up: Vec<(u32, f64, usize)> = self
            .list
            .iter()
            .enumerate()
            .filter(|(i, t)| t.serves(number) && !self.health[*i].down)
            // Weighted order without replacement: sort by u^(1/w) descending
            // (Efraimidis-Spirakis), so weight 200 goes first twice as often.
            .map(|(i, t)| {
                let u: f64 = rand::random::<f64>().max(f64::MIN_POSITIVE);
                (t.priority, u.powf(1.0 / f64::from(t.weight.max(1))), i)
            })
            .collect();
        up.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.total_cmp(&a.1)));
        up.into_iter()
            .map(|(_, _, i)| self.list[i].route(number))
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
            });
        }
        out
    }

    /// A ping's outcome: any answer means up, none means down.
    pub fn probed(&mut self, id: u64, status: Option<u16>) {
        let i = usize::try_from(id).unwrap_or(usize::MAX);
        let (Some(t), Some(h)) = (self.list.get(i), self.health.get_mut(i)) else {
            return;
        };
        h.waiting = false;
        let down = status.is_none();
        if down != h.down {
            if down {
                tracing::warn!(trunk = %t.name, "trunk does not answer OPTIONS: skipped until it does");
            } else {
                tracing::info!(trunk = %t.name, status, "trunk answers OPTIONS again");
            }
        }
        h.down = down;
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
            setup: None,
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
}
