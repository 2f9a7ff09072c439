//! What the masking policy does at each milestone of a call: the record
//! filled in, events emitted, the binding's use consumed on confirmation,
//! talk time booked at the end, and leases of talk time renewed.

use std::time::Duration;

use crate::b2bua::policy::{CallId, Ending, Limit};
use crate::b2bua::EndReason;
use crate::bindings::TenantId;
use crate::store::UsageUpdate;
use crate::time::Now;

use super::{CallState, Masking};

impl Masking {
    pub(super) fn offered(&mut self, id: CallId, call: &mut CallState, now: Now) {
        let r = &call.record;
        self.emit(call.tenant, "call.offered", Some(call.binding), now, || {
            serde_json::json!({ "call": id, "direction": r.direction, "caller": r.caller,
                "callee": r.callee, "x": r.x })
        });
    }

    pub(super) fn ringing(&mut self, id: CallId, call: &mut CallState, status: u16, now: Now) {
        if call.record.ringing_at.is_none() {
            call.record.ringing_at = Some(now.unix_ms);
            self.emit(
                call.tenant,
                "call.ringing",
                Some(call.binding),
                now,
                || serde_json::json!({ "call": id, "status": status }),
            );
        }
    }

    pub(super) fn answered(&mut self, id: CallId, call: &mut CallState, now: Now) {
        call.record.answer_at = Some(now.unix_ms);
        call.record.result = 200;
        self.emit(
            call.tenant,
            "call.answered",
            Some(call.binding),
            now,
            || serde_json::json!({ "call": id }),
        );
    }

    /// Settles the binding's reservation once; an answered one consumes a
    /// use.
    pub(super) fn settle(&mut self, call: &mut CallState, answered: bool, now: Now) {
        if call.settled {
            return;
        }
        call.settled = true;
        if let Some(usage) = self.bindings.settle(call.binding, answered, now.unix()) {
            if answered {
                self.store.usage(UsageUpdate {
                    id: call.binding,
                    usage,
                });
            }
        }
    }

    /// Settles an answered call on a binding that counts its calls at the
    /// answer, not at the ACK, and has its use committed at once: the
    /// ticket says when it is durable, and the caller gets the 2xx only
    /// then (so a crash cannot lose a use a caller was answered on). An
    /// answer the caller then never acknowledges gives its use back when
    /// the call ends; a crash before that keeps it: a count errs on the
    /// side of its limit.
    pub(super) fn settle_durably(&mut self, call: &mut CallState, now: Now) -> Option<u64> {
        if call.settled || !self.bindings.counted(call.binding) {
            return None;
        }
        call.settled = true;
        let usage = self.bindings.settle(call.binding, true, now.unix())?;
        call.charged_at_answer = true;
        if self.cfg.shared_store {
            // The use reserved at the INVITE already counts against every
            // limit on every node; the call's end settles it (`shared.rs`).
            return None;
        }
        Some(self.store.usage_now(UsageUpdate {
            id: call.binding,
            usage,
        }))
    }

    /// The store refused to count an answered call: a limit was reached on
    /// another node (or the database is out of reach). The caller gets the
    /// limit's refusal; this node's view of the binding is brought to the
    /// limit so that its next callers are refused before anyone rings.
    pub(super) fn not_counted(&mut self, call: &mut CallState, now: Now) -> (u16, String) {
        call.charged_at_answer = false;
        let why = self.bindings.saturate(call.binding, now.unix());
        self.stats.refused += 1;
        let st = self.cfg.refusals.status(why);
        (st.status, st.reason.clone())
    }

    pub(super) fn ended(&mut self, id: CallId, call: &mut CallState, e: Ending, now: Now) {
        if let Some(ticket) = call.asked.take() {
            // A reservation or lease still asked: nobody takes its answer.
            self.store.durable().forget(ticket);
        }
        let mut record = std::mem::take(&mut call.record);
        record.result = e.status;
        if !call.confirmed {
            // An answer the caller never acknowledged is no call.
            record.answer_at = None;
        }
        record.end_at = Some(now.unix_ms);
        record.reason = e.reason.as_str().to_string();
        if e.reason == EndReason::TrunkAuthFailed {
            // Which trunks: the operator's fix is in their entries.
            let names: Vec<&str> = call
                .refused_by
                .iter()
                .filter_map(|i| self.trunks.name(*i))
                .collect();
            record.reason = crate::text::cat(&[&record.reason, ": ", &names.join(", ")]);
        }
        let answered = e.talk.is_some();
        if answered {
            record.ended_by = Some(e.reason.ended_by().to_string());
        }
        let lease = call.lease;
        let talk = e.talk.map(|t| {
            let secs = t.as_secs_f64().round() as u64;
            // A leased call is cut when its lease ends: never book more.
            lease.map_or(secs, |l| secs.min(l))
        });
        tracing::info!(call = id, caller = %call.caller, callee = %call.callee,
            talk_secs = talk.unwrap_or(0), why = e.reason.as_str(), "call ended");
        if answered {
            self.stats.answered += 1;
        } else {
            self.stats.failed += 1;
        }
        self.settle(call, false, now);
        let refund = (call.charged_at_answer && !call.confirmed)
            .then(|| self.bindings.refund(call.binding, now.unix()))
            .flatten()
            .map(|usage| UsageUpdate {
                id: call.binding,
                usage,
            });
        record.duration_secs = talk.unwrap_or(0);
        self.emit(record.tenant, "call.ended", record.binding, now, || {
            call_json(id, &record)
        });
        let secs = talk.unwrap_or(0);
        let binding = call.binding;
        let usage = if secs > 0 || lease.is_some() {
            self.bindings
                .book_talk(binding, lease.unwrap_or(0), secs)
                .filter(|_| secs > 0)
                .map(|usage| UsageUpdate { id: binding, usage })
        } else {
            None
        };
        let usage = usage.or(refund);
        // On a shared database the hold is settled there, by deltas.
        let (usage, settle) = if self.cfg.shared_store {
            (None, self.settle_shared(call, secs, record.answer_at))
        } else {
            (usage, None)
        };
        // Record, talk time and the end of its checkpoint in one commit.
        let live_key = self
            .marks
            .checkpointed
            .remove(&id)
            .map(|_| self.live_key(id));
        self.store.call_end(crate::store::CallEnd {
            record,
            usage,
            settle,
            live_key,
        });
    }

    /// The call's lease of talk time ran out, or its length cap: renew the
    /// lease from the budget, or end the call.
    pub(super) fn extend(&mut self, id: CallId, call: &mut CallState) -> Limit {
        let max = call.max_secs;
        let Some(held) = call.lease else {
            return Limit::End(EndReason::MaxLength);
        };
        if max > 0 && held >= max {
            return Limit::End(EndReason::MaxLength);
        }
        if let Some(l) = self.extend_shared(call, held) {
            return l;
        }
        let more = self.bindings.extend_lease(call.binding, held, max);
        if more == 0 {
            tracing::info!(call = id, "talk-time budget spent");
            return Limit::End(EndReason::TalkTimeUsedUp);
        }
        call.lease = Some(held + more);
        Limit::Until(Duration::from_secs(held + more))
    }

    /// Queues a call event if anyone wants it.
    pub(super) fn emit(
        &self,
        tenant: TenantId,
        kind: &'static str,
        binding: Option<i64>,
        now: Now,
        data: impl FnOnce() -> serde_json::Value,
    ) {
        if self.hub.wants(tenant) {
            let at = now.unix_ms;
            self.store.event(crate::store::events::NewEvent {
                tenant,
                kind,
                binding,
                data: data(),
                at,
            });
        }
    }
}

/// What call events say about a call.
fn call_json(id: CallId, r: &crate::store::CallRecord) -> serde_json::Value {
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
