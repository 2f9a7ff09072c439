//! The call policy of a number-masking service: the [`Policy`] the call
//! engine asks. It screens requests by where they come from (the trunk, a
//! trusted network) or by digest authentication (an app account, through
//! the [`Registrar`], which also answers REGISTER), decides each INVITE
//! against the binding table and plans the outgoing leg (the trunk, or an
//! account's registered contacts; X shown as the caller), and turns the
//! call's milestones into what the product promises: uses and talk time
//! counted, call records and events written (through the store's writer
//! thread, never waiting on a disk), live calls checkpointed, and the
//! call counters of the metrics.
//!
//! Imports downwards only: `b2bua` (the interface), `bindings`, `store`,
//! `events`, `registrar`.

mod checkpoint;
pub mod config;
mod decide;
mod hooks;
pub mod pike;
mod shared;
#[cfg(test)]
mod tests;
pub mod trunks;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::b2bua::policy::{
    Answer, CallId, Decision, Limit, Milestone, Offer, Policy, Screen, TrunkOutcome,
};
use crate::bindings::config::Refusals;
use crate::bindings::{BindingId, BindingTable, Normaliser, Number, TenantId};
use crate::events::Hub;
use crate::metrics::{metric, Histogram, Throttle};
use crate::net::Network;
use crate::registrar::{Directory, Registrar};
use crate::sip::{Method, Msg, Peer};
use crate::store::{CallRecord, Writer};
use crate::time::Now;

/// What the policy needs from the config.
#[derive(Clone, Debug)]
pub struct MaskingConfig {
    /// Trunks calls to phone numbers go out through.
    pub trunks: Vec<trunks::Trunk>,
    /// Statuses for refusals.
    pub refusals: Refusals,
    /// Number normalisation.
    pub normaliser: Normaliser,
    /// Ring timeout.
    pub no_answer: Duration,
    /// This process's instance id: checkpoint keys.
    pub instance: String,
    /// Networks whose requests are taken besides the trunk's address.
    pub trusted: Vec<Network>,
    /// Whether a P-Asserted-Identity from a trusted source names the
    /// caller (else From does).
    pub asserted_caller: bool,
    /// Per-source limits on requests from outside a call.
    pub pike: pike::PikeConfig,
    /// How calls' media crosses: relayed, or the parties' addresses pass.
    pub media: crate::b2bua::Media,
    /// Prompts play unless a binding says otherwise.
    pub announce: bool,
    /// An announcement is configured.
    pub announcement: bool,
    /// A warning is configured, to start this long before the maximum
    /// call length.
    pub warning: Option<Duration>,
    /// The store is shared with other nodes: counted calls hold their use
    /// in the database from the INVITE, and lease talk time from it
    /// (`calls/shared.rs`), rather than this table's counts.
    pub shared_store: bool,
    /// Whether the shared store answers (the node's heartbeat says so
    /// every second); while it does not, counted bindings are refused.
    pub store_up: Arc<std::sync::atomic::AtomicBool>,
    /// While the shared store is away, uncounted bindings are refused too.
    pub offline_refuse: bool,
    /// The nodes sharing the store: the relay to this node's phones takes
    /// requests from them only.
    pub nodes: crate::sip::relay::Nodes,
}

/// Counters for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Calls bridged to an answer.
    pub answered: u64,
    /// Calls refused.
    pub refused: u64,
    /// Calls that failed or were cancelled.
    pub failed: u64,
    /// Requests refused because of where they came from.
    pub untrusted: u64,
    /// Calls to a soft number (refused).
    pub soft_number: u64,
}

/// How often expired registrations and nonces are swept.
const SWEEP: Duration = Duration::from_secs(1);

/// What the policy keeps of each bridged call.
pub struct CallState {
    /// The binding that admitted it.
    pub binding: BindingId,
    /// Its owner.
    pub tenant: TenantId,
    /// Caller, for masked logs and the record.
    pub caller: Number,
    /// Callee, for masked logs.
    pub callee: Number,
    /// Longest the call may last (0 = no limit), in seconds.
    pub max_secs: u64,
    /// Talk time leased from the binding's budget so far (`None`: no
    /// budget).
    pub lease: Option<u64>,
    /// Whether the binding's reservation was settled.
    pub settled: bool,
    /// Whether the use was charged (durably) at the answer, before the
    /// caller's ACK; it goes back if the ACK never comes.
    pub charged_at_answer: bool,
    /// Whether the caller confirmed the answer.
    pub confirmed: bool,
    /// Its hold on the binding in a database that nodes share (its key).
    pub hold: Option<String>,
    /// The ticket of what it asked that database and has no answer to
    /// yet (its hold, or more talk time).
    pub asked: Option<u64>,
    /// Trunks that refused our credentials on this call (indexes), named
    /// in the record when that is why it failed.
    pub refused_by: Vec<usize>,
    /// The call record so far.
    pub record: CallRecord,
}

/// The masking policy.
pub struct Masking {
    cfg: MaskingConfig,
    bindings: Arc<BindingTable>,
    store: Writer,
    hub: Arc<Hub>,
    stats: Stats,
    /// Time taken by decisions on INVITEs.
    lookup: Histogram,
    /// What the live-call checkpoint remembers between its runs.
    marks: checkpoint::Marks,
    /// Per-source request limits and bans.
    gate: Gate,
    /// Refusals are logged at most once a second.
    refusal_log: Throttle,
    /// Accounts: REGISTER and digest checks of calls.
    registrar: Registrar,
    /// The registrar's directory, read when deciding calls.
    accounts: Arc<Directory>,
    /// When registrations were last swept.
    last_sweep: Option<Instant>,
    /// The trunks and whether they are up.
    trunks: trunks::Trunks,
}

/// Who may send requests, by source: rate limits and bans, when idle
/// sources were last forgotten, and the throttle of the ban log.
struct Gate {
    pike: pike::Pike,
    last_prune: Option<Instant>,
    ban_log: Throttle,
}

impl Masking {
    /// A policy over the table; records, usage and events go to `store`,
    /// and `hub` says who wants events.
    pub fn new(
        cfg: MaskingConfig,
        bindings: Arc<BindingTable>,
        store: Writer,
        hub: Arc<Hub>,
        registrar: Registrar,
    ) -> Masking {
        Masking {
            accounts: registrar.directory().clone(),
            trunks: trunks::Trunks::new(cfg.trunks.clone()),
            registrar,
            last_sweep: None,
            bindings,
            store,
            hub,
            stats: Stats::default(),
            lookup: Histogram::default(),
            marks: checkpoint::Marks::default(),
            gate: Gate {
                pike: pike::Pike::new(cfg.pike),
                last_prune: None,
                ban_log: Throttle::new(Duration::from_secs(1)),
            },
            refusal_log: Throttle::new(Duration::from_secs(1)),
            cfg,
        }
    }

    /// Refusal and ban lines held back since the last one logged (taken):
    /// the shutdown's last word on them.
    pub fn log_held_back(&self) -> (u64, u64) {
        (self.refusal_log.take_held(), self.gate.ban_log.take_held())
    }

    /// Whether the shared store answers: the node's upkeep says so.
    pub fn store_up(&self) -> Arc<std::sync::atomic::AtomicBool> {
        self.cfg.store_up.clone()
    }

    /// The nodes the upkeep keeps up to date.
    pub fn nodes(&self) -> crate::sip::relay::Nodes {
        self.cfg.nodes.clone()
    }

    /// Counters so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// What a request's source alone decides: a trusted one is taken, one
    /// over its request rate is dropped (a flood, often from a spoofed
    /// address, draws a few answers, then silence); `None`: everyone else
    /// must authenticate or is refused, as the request's kind says.
    fn by_source(&mut self, source: Peer, now: Now) -> Option<Screen> {
        if self.trusts(source) {
            return Some(Screen::Accept);
        }
        let gate = &mut self.gate;
        if let pike::Verdict::Banned { newly } = gate.pike.check(source.addr.ip(), now.mono) {
            if let Some(more) = newly.then(|| gate.ban_log.allow()).flatten() {
                tracing::warn!(source = %source.addr.ip(), more_banned_since = more, "source over its request rate: banned, answered nothing");
            }
            return Some(Screen::Drop);
        }
        None
    }

    /// Whether requests from `source` are taken: a trunk's IP address
    /// (from any port) or a trusted network. Never what a header claims.
    fn trusts(&self, source: Peer) -> bool {
        let ip = crate::net::canonical(source.addr.ip());
        self.trunks.of_source(ip).is_some() || self.cfg.trusted.iter().any(|n| n.contains(ip))
    }
}

/// Whether a job run every `every` is due at `now`; if so, notes it ran.
fn due(last: &mut Option<Instant>, every: Duration, now: Instant) -> bool {
    if last.is_some_and(|t| now.saturating_duration_since(t) < every) {
        return false;
    }
    *last = Some(now);
    true
}

impl Policy for Masking {
    type Call = CallState;

    fn screen(&mut self, request: &Msg, source: Peer, now: Now) -> Screen {
        if let Some(s) = self.by_source(source, now) {
            return s;
        }
        match request.method() {
            // Authenticated by the registrar itself (401).
            Some(Method::Register) => Screen::Accept,
            _ => match self.registrar.authenticate_call(request, now) {
                Ok(account) => Screen::Account(account.name),
                Err(answer) => Screen::Refuse(answer),
            },
        }
    }

    fn out_of_dialog(&mut self, _request: &Msg, source: Peer, now: Now) -> Screen {
        if let Some(s) = self.by_source(source, now) {
            return s;
        }
        self.stats.untrusted += 1;
        // Debug only: a flood of these must not flood the log.
        tracing::debug!(%source, "request from an untrusted source refused");
        Screen::Refuse(Answer::status(403))
    }

    fn request(&mut self, request: &Msg, source: Peer, now: Now) -> Option<Answer> {
        (request.method() == Some(&Method::Register)).then(|| {
            let edge = self.trusts(source);
            self.registrar.register(request, source, edge, now)
        })
    }

    fn closed(&mut self, peer: Peer, _now: Now) {
        self.registrar.connection_closed(peer);
    }

    fn is_node(&self, ip: std::net::IpAddr) -> bool {
        self.cfg.nodes.read().is_ok_and(|nodes| nodes.contains(&ip))
    }

    fn holds_flow(&self, account: &str, flow: Peer) -> bool {
        self.accounts.holds(account, flow)
    }

    fn decide(&mut self, offer: &Offer<'_>, now: Now) -> Decision<CallState> {
        // A measurement, not a decision input: the histogram's own clock.
        let t0 = Instant::now();
        let mut d = self.decide_offer(offer, now);
        if let Decision::Bridge(plan, call) = &mut d {
            self.reserve(offer.id, plan, call, now);
        }
        self.lookup.observe(t0.elapsed().as_secs_f64());
        if let Decision::Refuse { why, .. } = &d {
            self.stats.refused += 1;
            if *why == crate::bindings::Refusal::SoftNumber.name() {
                self.stats.soft_number += 1;
            }
        }
        d
    }

    fn refused(&mut self, offer: &Offer<'_>, status: u16, why: &'static str, now: Now) {
        self.stats.refused += 1;
        let caller = match &offer.account {
            Some(a) => Number::from_normalised(a.clone()),
            None => self.caller_of(offer.request, offer.source),
        };
        self.record_refusal(offer.request, &caller, status, why, now);
    }

    fn milestone(&mut self, id: CallId, call: &mut CallState, m: Milestone, now: Now) {
        match m {
            Milestone::Offered => self.offered(id, call, now),
            Milestone::Ringing { status } => self.ringing(id, call, status, now),
            Milestone::Answered => self.answered(id, call, now),
            Milestone::Confirmed => {
                call.confirmed = true;
                self.settle(call, true, now);
                // If the binding was acquired (flow 2), the call is an
                // interaction of its agent and user, and renews X.
                self.store.call_interaction(call.binding, now.unix());
                if let Some(c) = self.bindings.renew_acquired(call.binding, now.unix()) {
                    self.store.conditions(call.binding, c, now.unix());
                }
            }
            Milestone::Announced => call.record.announced = true,
            Milestone::Ended(e) => self.ended(id, call, e, now),
        }
    }

    fn hold_answer(&mut self, _id: CallId, call: &mut CallState, now: Now) -> Option<u64> {
        self.settle_durably(call, now)
    }

    fn offer_released(
        &mut self,
        _id: CallId,
        call: &mut CallState,
        now: Now,
    ) -> Result<Option<Duration>, (u16, String)> {
        self.reserved(call, now)
    }

    fn answer_refused(&mut self, _id: CallId, call: &mut CallState, now: Now) -> (u16, String) {
        // (See `decide` for a store out of reach before anyone rings.)
        self.not_counted(call, now)
    }

    fn limit(&mut self, id: CallId, call: &mut CallState, _held: Duration, _now: Now) -> Limit {
        // The lease held is the policy's own record of what was granted.
        self.extend(id, call)
    }

    fn tick(&mut self, live: &mut dyn Iterator<Item = (CallId, &CallState)>, now: Now) {
        if due(&mut self.last_sweep, SWEEP, now.mono) {
            self.registrar.tick(now);
        }
        if due(&mut self.gate.last_prune, Duration::from_secs(10), now.mono) {
            self.gate.pike.forget_idle(now.mono);
        }
        if due(&mut self.marks.last, checkpoint::EVERY, now.mono) {
            self.checkpoint(live, now);
        }
    }

    fn probes(&mut self, now: Now) -> Vec<crate::b2bua::policy::Probe> {
        self.trunks.probes(now.mono)
    }

    fn probed(&mut self, id: u64, status: Option<u16>, _now: Now) {
        self.trunks.probed(id, status);
    }

    fn trunk(&mut self, call: &mut CallState, trunk: usize, outcome: TrunkOutcome, _now: Now) {
        if outcome == TrunkOutcome::AuthRejected && !call.refused_by.contains(&trunk) {
            call.refused_by.push(trunk);
        }
        self.trunks.outcome(trunk, outcome);
    }

    fn metrics(&self, out: &mut String) {
        self.trunks.metrics(out);
        if self.cfg.shared_store {
            let nodes = self.cfg.nodes.read().map_or(0, |n| n.len());
            metric(
                out,
                "sipmask_cluster_nodes",
                "gauge",
                "Nodes whose leases are fresh, as this node last read them.",
                &[("", nodes as u64)],
            );
        }
        let s = &self.stats;
        metric(
            out,
            "sipmask_calls_total",
            "counter",
            "Calls by result.",
            &[
                ("result=\"answered\"", s.answered),
                ("result=\"refused\"", s.refused),
                ("result=\"failed\"", s.failed),
            ],
        );
        metric(
            out,
            "sipmask_requests_refused_total",
            "counter",
            "Requests refused before any decision, by why.",
            &[
                ("reason=\"untrusted_source\"", s.untrusted),
                ("reason=\"rate\"", self.gate.pike.dropped),
            ],
        );
        metric(
            out,
            "sipmask_soft_number_calls_total",
            "counter",
            "Calls to a user's soft number, refused (never callable).",
            &[("", s.soft_number)],
        );
        metric(
            out,
            "sipmask_source_bans_total",
            "counter",
            "Sources banned for going over their request rate.",
            &[("", self.gate.pike.bans)],
        );
        self.registrar.metrics(out, crate::time::now_ms());
        self.lookup.render(
            "sipmask_binding_lookup_seconds",
            "Time to decide on an INVITE (lookup and conditions).",
            out,
        );
    }
}
