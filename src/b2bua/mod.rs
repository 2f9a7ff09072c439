//! The B2BUA: turns an INVITE into a decision (refuse, or bridge to the real
//! party), then keeps the two legs of each call in step. Owns calls and their
//! dialogs; asks `bindings` for decisions and `sip::transaction` to send.
//!
//! The engine is synchronous and socket-free: the transport feeds it parsed
//! messages and clock ticks and sends what it queued. One lock around it is
//! the whole concurrency story; on the call path it never blocks on a disk
//! (usage goes to the store's writer thread).

mod call;
mod checkpoint;
mod decide;
mod dialog;
mod invite;
mod ownership;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::bindings::{BindingTable, Normaliser};
use crate::config::Refusals;
use crate::sip::message::Msg;
use crate::sip::timer::Timers;
use crate::sip::transaction::{TimerConfig, Transactions, TxEvent, TxKey};
use crate::sip::{sdp, Method, Peer, Target};
use crate::store::{UsageUpdate, Writer as StoreWriter};

pub use call::{Call, Leg, Phase, Side};

/// What the engine needs from the config.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Our address per family as peers should see it: (IPv4 host:port, IPv6 host:port).
    pub me_v4: Option<String>,
    /// See `me_v4`.
    pub me_v6: Option<String>,
    /// Outbound trunk for real numbers.
    pub trunk: Option<Target>,
    /// Statuses for refusals.
    pub refusals: Refusals,
    /// Number normalisation.
    pub normaliser: Normaliser,
    /// Ring timeout.
    pub no_answer: Duration,
    /// RFC 3261 timers.
    pub timers: TimerConfig,
    /// This process's instance id: checkpoint keys and the handover lock.
    pub instance: String,
}

#[derive(Clone, Copy, Debug)]
enum CallTimer {
    NoAnswer(u64),
    MaxLength(u64),
    Cleanup(u64),
}

/// A request relayed to the other leg, waiting for its response.
#[derive(Clone)]
struct Relay {
    call: u64,
    server_key: TxKey,
    from: Side,
    method: String,
    their_cseq: u32,
    our_cseq: u32,
}

/// Timer ticks (10 ms) between checkpoints of live calls.
pub const CHECKPOINT_TICKS: u64 = checkpoint::EVERY.as_millis() as u64 / 10;

/// Counters for metrics and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Calls bridged to an answer.
    pub answered: u64,
    /// Calls refused by a condition.
    pub refused: u64,
    /// Calls that failed or were cancelled.
    pub failed: u64,
}

/// The engine.
pub struct Engine {
    cfg: EngineConfig,
    bindings: Arc<BindingTable>,
    store: StoreWriter,
    tx: Transactions,
    calls: HashMap<u64, Call>,
    /// (Call-ID, our tag) of each leg -> call and side.
    dialogs: HashMap<(String, String), (u64, Side)>,
    /// A's INVITE server transaction -> call, for CANCEL.
    by_invite: HashMap<TxKey, u64>,
    relays: HashMap<TxKey, Relay>,
    timers: Timers<CallTimer>,
    next_id: u64,
    accepting: bool,
    /// Counters.
    pub stats: Stats,
    /// Time taken by decisions on INVITEs.
    lookup: crate::api::ops::Histogram,
    /// Who wants call events.
    hub: Arc<crate::events::Hub>,
    /// Calls in the checkpoint, with the answer time and lease it holds.
    checkpointed: HashMap<u64, (Option<i64>, Option<u64>)>,
}

impl Engine {
    /// A new engine over the table; usage changes go to `store`.
    pub fn new(
        cfg: EngineConfig,
        bindings: Arc<BindingTable>,
        store: StoreWriter,
        hub: Arc<crate::events::Hub>,
    ) -> Engine {
        let tx = Transactions::new(cfg.timers);
        Engine {
            cfg,
            bindings,
            store,
            tx,
            calls: HashMap::new(),
            dialogs: HashMap::new(),
            by_invite: HashMap::new(),
            relays: HashMap::new(),
            timers: Timers::default(),
            next_id: 1,
            accepting: true,
            stats: Stats::default(),
            lookup: Default::default(),
            hub,
            checkpointed: HashMap::new(),
        }
    }

    /// Takes what must be sent.
    pub fn drain(&mut self, into: &mut Vec<(Peer, Bytes)>) {
        into.append(&mut self.tx.out);
    }

    /// Calls not yet ended.
    pub fn live_calls(&self) -> usize {
        self.calls
            .values()
            .filter(|c| c.phase != Phase::Ended)
            .count()
    }

    /// Requests we sent (BYE, CANCEL, ...) still waiting for their final
    /// response: shutdown waits for them so lost ones are retransmitted.
    pub fn pending_requests(&self) -> usize {
        self.tx.awaiting_final()
    }

    /// Sizes of the engine's tables, for logs and leak hunting.
    pub fn sizes(&self) -> String {
        let (st, ct) = self.tx.counts();
        format!(
            "calls={} dialogs={} by_invite={} relays={} call_timers={} server_tx={st} client_tx={ct} tx_timers={}",
            self.calls.len(),
            self.dialogs.len(),
            self.by_invite.len(),
            self.relays.len(),
            self.timers.len(),
            self.tx.timer_count(),
        )
    }

    /// The SIP side's metrics in Prometheus text format.
    pub fn metrics(&self) -> String {
        let (st, ct) = self.tx.counts();
        let s = &self.stats;
        let mut out = String::with_capacity(1024);
        out.push_str(
            "# HELP sipmask_calls_total Calls by result.\n# TYPE sipmask_calls_total counter\n",
        );
        out.push_str(&format!(
            "sipmask_calls_total{{result=\"answered\"}} {}\n",
            s.answered
        ));
        out.push_str(&format!(
            "sipmask_calls_total{{result=\"refused\"}} {}\n",
            s.refused
        ));
        out.push_str(&format!(
            "sipmask_calls_total{{result=\"failed\"}} {}\n",
            s.failed
        ));
        out.push_str(&format!("# HELP sipmask_active_calls Calls not yet ended.\n# TYPE sipmask_active_calls gauge\nsipmask_active_calls {}\n", self.live_calls()));
        out.push_str(&format!("# HELP sipmask_transactions Live SIP transactions.\n# TYPE sipmask_transactions gauge\nsipmask_transactions{{side=\"server\"}} {st}\nsipmask_transactions{{side=\"client\"}} {ct}\n"));
        out.push_str(&format!("# HELP sipmask_retransmissions_total SIP retransmissions sent.\n# TYPE sipmask_retransmissions_total counter\nsipmask_retransmissions_total {}\n", self.tx.retransmissions));
        self.lookup.render(
            "sipmask_binding_lookup_seconds",
            "Time to decide on an INVITE (lookup and conditions).",
            &mut out,
        );
        out
    }

    /// Handles one message from `src`.
    pub fn on_message(&mut self, m: Msg, src: Peer, now: Instant) {
        match m.method().cloned() {
            None => self.on_response(m, now),
            Some(Method::Cancel) => self.on_cancel(m, src, now),
            Some(method) if m.to_tag.is_some() => self.on_in_dialog(method, m, src, now),
            Some(Method::Invite) => self.on_invite(m, src, now),
            Some(Method::Ack) => {} // ACK outside any dialog: nothing to do.
            Some(Method::Other(ref o)) if o == "OPTIONS" => self.reply_stateless(&m, src, 200, now),
            Some(_) => self.reply_stateless(&m, src, 405, now),
        }
    }

    /// Fires due timers.
    pub fn on_timer(&mut self, now: Instant) {
        for ev in self.tx.on_timer(now) {
            match ev {
                TxEvent::ClientTimeout { owner, key } => self.on_client_timeout(owner, key, now),
                TxEvent::NoAck { owner, key } => self.on_no_ack(owner, key, now),
            }
        }
        while let Some(t) = self.timers.pop_due(now) {
            match t {
                CallTimer::NoAnswer(id) => self.on_no_answer(id, now),
                CallTimer::MaxLength(id) => self.on_max_length(id, now),
                CallTimer::Cleanup(id) => self.forget(id),
            }
        }
    }

    /// Stops taking new calls (SIGTERM).
    pub fn stop_accepting(&mut self) {
        self.accepting = false;
    }

    /// Ends every live call: BYE to both legs of answered ones, CANCEL and
    /// 503 for unanswered ones.
    pub fn end_all(&mut self, now: Instant) {
        let ids: Vec<u64> = self.calls.keys().copied().collect();
        for id in ids {
            match self.calls.get(&id).map(|c| c.phase) {
                Some(Phase::Answered) => self.hang_up_both(id, "shutdown", now),
                Some(Phase::Calling) => self.abandon(id, 503, now),
                _ => {}
            }
        }
    }

    /// Answers a request outside any dialog with `code`.
    fn reply_stateless(&mut self, m: &Msg, src: Peer, code: u16, now: Instant) {
        if let crate::sip::transaction::Incoming::New(key) = self.tx.on_request(m, src, 0, now) {
            self.respond_simple(&key, code, None, now);
        }
    }

    /// Responds on a server transaction with a standard reason phrase.
    fn respond_simple(&mut self, key: &TxKey, code: u16, to_tag: Option<&str>, now: Instant) {
        let reason = crate::sip::writer::reason(code);
        self.respond_with(key, code, reason, to_tag, now);
    }

    fn respond_with(
        &mut self,
        key: &TxKey,
        code: u16,
        reason: &str,
        to_tag: Option<&str>,
        now: Instant,
    ) {
        if let Some(mut w) = self.tx.response(key, code, reason, to_tag) {
            if code == 405 || (key.method == "OPTIONS" && code == 200) {
                w.header("Allow", ALLOW);
            }
            self.tx.respond(key, code, w.finish(None, b""), now);
        }
    }

    /// Our address as `peer` should see it.
    fn me_for(&self, peer: &Peer) -> String {
        let v = if peer.addr.is_ipv6() {
            &self.cfg.me_v6
        } else {
            &self.cfg.me_v4
        };
        v.clone()
            .or_else(|| self.cfg.me_v4.clone())
            .or_else(|| self.cfg.me_v6.clone())
            .unwrap_or_default()
    }

    /// Masks an SDP body (other bodies pass unchanged).
    fn mask_body(&self, m: &Msg, me: &str) -> Vec<u8> {
        let is_sdp = m
            .content_type
            .as_deref()
            .is_some_and(|c| c.to_ascii_lowercase().starts_with("application/sdp"));
        if is_sdp {
            let host = me.rsplit_once(':').map_or(me, |(h, _)| h);
            sdp::mask(&m.body, host)
        } else {
            m.body.clone()
        }
    }

    /// Settles the binding's reservation once.
    fn settle(&mut self, id: u64, answered: bool) {
        let Some(c) = self.calls.get_mut(&id) else {
            return;
        };
        if c.settled {
            return;
        }
        c.settled = true;
        if let Some(usage) = self
            .bindings
            .settle(c.binding, answered, crate::time::now())
        {
            if answered {
                self.store.usage(UsageUpdate {
                    id: c.binding,
                    usage,
                });
            }
        }
    }

    /// Marks a call over, books its talk time and schedules its removal.
    fn finish(&mut self, id: u64, why: &str, now: Instant) {
        let Some(c) = self.calls.get_mut(&id) else {
            return;
        };
        if c.phase == Phase::Ended {
            return;
        }
        // An answer A never acknowledged is no call: no use, no talk time.
        let answered = c.answered.filter(|_| c.confirmed);
        if c.answered.is_some() && !c.confirmed {
            c.record.result = 408;
            c.record.answer_at = None;
        }
        c.phase = Phase::Ended;
        let pending = std::mem::take(&mut c.timers);
        let mut record = std::mem::take(&mut c.record);
        record.caller = c.caller.as_str().to_string();
        record.end_at = Some(crate::time::now_ms());
        record.reason = why.to_string();
        if answered.is_some() {
            record.ended_by = Some(
                match why {
                    "caller hung up" => "caller",
                    "callee hung up" => "callee",
                    _ => "system",
                }
                .to_string(),
            );
        }
        let lease = c.lease;
        let talk = answered.map(|t| {
            let secs = now.saturating_duration_since(t).as_secs_f64().round() as u64;
            // A leased call is cut when its lease ends: never book more.
            lease.map_or(secs, |l| secs.min(l))
        });
        tracing::info!(call = id, caller = %c.caller, callee = %c.callee, talk_secs = talk.unwrap_or(0), why, "call ended");
        let binding = c.binding;
        if answered.is_some() {
            self.stats.answered += 1;
        } else {
            self.stats.failed += 1;
        }
        self.settle(id, false);
        record.duration_secs = talk.unwrap_or(0);
        self.emit(record.tenant, "call.ended", record.binding, || {
            call_json(id, &record)
        });
        let secs = talk.unwrap_or(0);
        let usage = if secs > 0 || lease.is_some() {
            self.bindings
                .book_talk(binding, lease.unwrap_or(0), secs)
                .filter(|_| secs > 0)
                .map(|usage| UsageUpdate { id: binding, usage })
        } else {
            None
        };
        // Record, talk time and the end of its checkpoint in one commit.
        let live = self.checkpointed.remove(&id).map(|_| self.live_key(id));
        self.store.call_end(record, usage, live);
        for k in pending {
            self.timers.cancel(k);
        }
        // A crossing BYE still finds the call for a while; retransmissions
        // are answered by the transaction layer, which keeps its own state.
        self.timers
            .add(now + self.cfg.timers.t4, CallTimer::Cleanup(id));
    }

    /// Queues a call event if anyone wants it.
    fn emit(
        &self,
        tenant: crate::bindings::TenantId,
        kind: &'static str,
        binding: Option<i64>,
        data: impl FnOnce() -> serde_json::Value,
    ) {
        if self.hub.wants(tenant) {
            let at = crate::time::now_ms();
            self.store.event(crate::store::events::NewEvent {
                tenant,
                kind,
                binding,
                data: data(),
                at,
            });
        }
    }

    /// Writes the record of a refused INVITE.
    fn record_refusal(&self, m: &Msg, status: u16, why: &str) {
        let dialled = match &m.start {
            crate::sip::Start::Request { user: Some(u), .. } => {
                self.cfg.normaliser.normalise(u).ok()
            }
            _ => None,
        };
        let Some(x) = dialled else { return };
        // Refusals of numbers nobody owns belong to no tenant's records.
        let Some(tenant) = self.bindings.tenant_of(&x) else {
            return;
        };
        let now = crate::time::now_ms();
        let caller = self.caller_of(m);
        self.emit(tenant, "call.refused", None, || {
            serde_json::json!({ "caller": caller.as_str(), "x": x.as_str(), "status": status, "reason": why })
        });
        self.store.call(crate::store::CallRecord {
            tenant,
            caller: caller.as_str().to_string(),
            x: x.as_str().to_string(),
            invite_at: now,
            end_at: Some(now),
            result: status,
            reason: why.to_string(),
            ..Default::default()
        });
    }

    fn forget(&mut self, id: u64) {
        if let Some(c) = self.calls.remove(&id) {
            self.dialogs.remove(&(c.a.call_id, c.a.local_tag));
            self.dialogs.remove(&(c.b.call_id, c.b.local_tag));
            self.by_invite.remove(&c.a_invite);
            self.relays.retain(|_, r| r.call != id);
        }
    }
}

/// What call events say about a call.
fn call_json(id: u64, r: &crate::store::CallRecord) -> serde_json::Value {
    serde_json::json!({
        "call": id,
        "direction": r.direction,
        "caller": r.caller,
        "callee": r.callee,
        "x": r.x,
        "result": r.result,
        "duration_secs": r.duration_secs,
        "ended_by": r.ended_by,
        "reason": r.reason,
    })
}

/// Methods we take, for Allow headers.
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO, PRACK, NOTIFY, MESSAGE";
