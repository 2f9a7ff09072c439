//! The call decision, readable top to bottom: an INVITE becomes either a
//! refusal with its SIP status (and a record of it) or a plan to bridge to
//! the real party (a phone number through the trunk, an account at its
//! registered contacts), showing X.

use std::time::Duration;

use crate::b2bua::policy::{Decision, Offer, Plan, Route};
use crate::bindings::config::Status;
use crate::bindings::{Admission, BindingTable, Number, Refusal};
use crate::sip::message::{uri_of, uri_user, Msg, Start};
use crate::sip::Peer;
use crate::store::CallRecord;
use crate::time::Now;

use super::{CallState, Masking};

impl Masking {
    pub(super) fn decide_offer(&self, offer: &Offer<'_>, now: Now) -> Decision<CallState> {
        let m = offer.request;
        let norm = &self.cfg.normaliser;
        // An authenticated account calls as itself, whatever From says.
        let caller = match &offer.account {
            Some(a) => Number::from_normalised(a.clone()),
            None => self.caller_of(m, offer.source),
        };
        let dialled = match &m.start {
            Start::Request { user: Some(u), .. } => Some(u.as_str()),
            _ => uri_user(uri_of(&m.to)),
        };
        let Some(dialled) = dialled.and_then(|d| norm.normalise(d).ok()) else {
            return self.refuse(m, &caller, Refusal::UnknownNumber, now);
        };
        // A user's soft number stands in for a real one: never callable.
        if self.bindings.is_soft(&dialled) {
            return self.refuse(m, &caller, Refusal::SoftNumber, now);
        }
        let a = match self.bindings.admit(&caller, &dialled, now.unix()) {
            Ok(a) => a,
            Err(r) => return self.refuse(m, &caller, r, now),
        };
        // A shared store out of reach: never a free call.
        if self.cfg.shared_store
            && !self.cfg.store_up.load(std::sync::atomic::Ordering::Relaxed)
            && (self.cfg.offline_refuse || self.bindings.shared_count(a.binding))
        {
            self.bindings.settle(a.binding, false, now.unix());
            return self.refuse(m, &caller, Refusal::StoreUnavailable, now);
        }
        // An account reaches its own tenant's bindings only.
        if offer.account.is_some() && self.accounts.tenant_of(caller.as_str()) != Some(a.tenant) {
            self.bindings.settle(a.binding, false, now.unix());
            return self.refuse(m, &caller, Refusal::CallerNotAllowed, now);
        }
        let (targets, failover) = match self.targets(&a, now) {
            Ok(t) => t,
            Err((st, why)) => {
                self.bindings.settle(a.binding, false, now.unix());
                self.record_refusal(m, &caller, st.status, why, now);
                return Decision::Refuse {
                    status: st.status,
                    reason: st.reason.clone(),
                    why,
                };
            }
        };
        tracing::debug!(call = offer.id, caller = %caller, callee = %a.callee, binding = a.binding,
            forks = targets.len(), "bridging call");
        let relayed = self.cfg.media == crate::b2bua::Media::Relay;
        let prompts = relayed && a.announce.unwrap_or(self.cfg.announce);
        // Only relayed media can be recorded.
        let recording = (a.record && self.cfg.media == crate::b2bua::Media::Relay)
            .then(|| format!("{}-{}", now.unix_ms, crate::ids::token()));
        let plan = Plan {
            targets,
            failover,
            from_user: a.virtual_number.as_str().to_string(),
            media: self.cfg.media,
            record: recording.clone(),
            announce: prompts && self.cfg.announcement,
            warn_at: self
                .cfg
                .warning
                .filter(|_| prompts)
                .and_then(|lead| Duration::from_secs(a.max_secs).checked_sub(lead))
                .filter(|at| !at.is_zero() && a.max_secs > 0),
            no_answer: self.cfg.no_answer,
            // The first limit: the lease of talk time, or the cap.
            limit: a
                .lease
                .or((a.max_secs > 0).then_some(a.max_secs))
                .map(Duration::from_secs),
            hold: None,
        };
        let mut state = state_of(a, caller, now, &self.bindings);
        state.record.recording = recording;
        Decision::Bridge(plan, state)
    }

    /// Where the callee is reached, as (targets called at once, targets
    /// to fail over to): a phone number through the best trunk up that
    /// serves it, then the others in order; an account (of the binding's
    /// own tenant) at every contact it has registered, all at once.
    #[allow(clippy::type_complexity)]
    fn targets(
        &self,
        a: &Admission,
        now: Now,
    ) -> Result<(Vec<Route>, Vec<Route>), (&Status, &'static str)> {
        let r = &self.cfg.refusals;
        if a.callee.is_phone() {
            if self.trunks.is_empty() {
                return Err((&r.no_route, "no trunk configured"));
            }
            let mut routes = self.trunks.routes(a.callee.as_str());
            if routes.is_empty() {
                return Err((&r.no_route, "no trunk up serves the number"));
            }
            let first = routes.remove(0);
            return Ok((vec![first], routes));
        }
        let name = a.callee.as_str();
        let contacts = if self.accounts.tenant_of(name) == Some(a.tenant) {
            self.accounts.contacts(name, now.unix_ms)
        } else {
            Vec::new()
        };
        if contacts.is_empty() {
            return Err((&r.not_registered, "callee not registered"));
        }
        let forks = contacts
            .into_iter()
            .map(|c| Route {
                preloaded: c.path,
                ..Route::to(c.uri, c.peer)
            })
            .collect();
        Ok((forks, Vec::new()))
    }

    /// The caller's normalised number: the P-Asserted-Identity a trusted
    /// source sent (where the config says so), else From. One without a
    /// usable user part is anonymous: it can still reach an AX binding that
    /// lets anyone call.
    /// A header can name a phone number, never an account: only digest
    /// authentication makes a caller an account. A trunk says for itself
    /// whether its assertion counts.
    pub(super) fn caller_of(&self, m: &Msg, source: Peer) -> Number {
        let asserted = self
            .trunks
            .of_source(source.addr.ip())
            .map_or(self.cfg.asserted_caller, |t| t.asserted_caller);
        let asserted = asserted.then(|| m.asserted_user()).flatten();
        asserted
            .or_else(|| m.from_user())
            .and_then(|u| self.cfg.normaliser.phone(u).ok())
            .unwrap_or_else(|| Number::from_normalised("anonymous".into()))
    }

    fn refuse(&self, m: &Msg, caller: &Number, r: Refusal, now: Now) -> Decision<CallState> {
        // Every refusal through one limiter: a flood of them costs one
        // line a second, with how many were held back.
        self.log_refusal(
            caller,
            || {
                let dialled = match &m.start {
                    Start::Request { user: Some(u), .. } => self.cfg.normaliser.normalise(u).ok(),
                    _ => None,
                };
                dialled
                    .as_ref()
                    .map_or("-".to_string(), ToString::to_string)
            },
            r,
        );
        let st = self.cfg.refusals.status(r);
        self.record_refusal(m, caller, st.status, r.name(), now);
        Decision::Refuse {
            status: st.status,
            reason: st.reason.clone(),
            why: r.name(),
        }
    }

    /// Writes the record of a refused INVITE to a number a tenant owns.
    pub(super) fn record_refusal(
        &self,
        m: &Msg,
        caller: &Number,
        status: u16,
        why: &str,
        now: Now,
    ) {
        let dialled = match &m.start {
            Start::Request { user: Some(u), .. } => self.cfg.normaliser.normalise(u).ok(),
            _ => None,
        };
        let Some(x) = dialled else { return };
        // Refusals of numbers nobody owns belong to no tenant's records.
        let Some(tenant) = self.bindings.tenant_of(&x) else {
            return;
        };
        let record = CallRecord {
            tenant,
            caller: caller.as_str().to_string(),
            x: x.as_str().to_string(),
            invite_at: now.unix_ms,
            ..Default::default()
        };
        self.store_refusal(record, status, why, now);
    }

    /// Logs a refusal through the one limiter of them all: a flood costs
    /// one line a second, with how many were held back.
    pub(super) fn log_refusal(
        &self,
        caller: &Number,
        dialled: impl FnOnce() -> String,
        r: Refusal,
    ) {
        if let Some(more) = self.refusal_log.allow() {
            tracing::info!(caller = %caller, dialled = %dialled(), refusal = r.name(),
                more_refused_since = more, "call refused");
        }
    }

    /// Ends a refused call's record with its status and reason, emits
    /// `call.refused` and stores it.
    pub(super) fn store_refusal(&self, mut record: CallRecord, status: u16, why: &str, now: Now) {
        record.result = status;
        record.reason = why.to_string();
        record.end_at = Some(now.unix_ms);
        self.emit(record.tenant, "call.refused", None, now, || {
            serde_json::json!({ "caller": record.caller, "x": record.x, "status": status, "reason": why })
        });
        self.store.call(record);
    }
}

/// The policy's state of an admitted call. Its record shows the parties
/// as the tenant sees them (an acquired binding's user by its soft number).
fn state_of(a: Admission, caller: Number, now: Now, table: &BindingTable) -> CallState {
    let shown_caller = table.display_party(a.binding, caller.as_str());
    CallState {
        binding: a.binding,
        tenant: a.tenant,
        caller,
        max_secs: a.max_secs,
        lease: a.lease,
        settled: false,
        charged_at_answer: false,
        hold: None,
        asked: None,
        refused_by: Vec::new(),
        confirmed: false,
        record: CallRecord {
            tenant: a.tenant,
            binding: Some(a.binding),
            direction: Some(a.direction.as_str().to_string()),
            caller: shown_caller,
            callee: Some(table.display_party(a.binding, a.callee.as_str())),
            x: a.virtual_number.as_str().to_string(),
            invite_at: now.unix_ms,
            ..Default::default()
        },
        callee: a.callee,
    }
}
