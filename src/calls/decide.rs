//! The call decision, readable top to bottom: an INVITE becomes either a
//! refusal with its SIP status (and a record of it) or a plan to bridge to
//! the real party through the trunk, showing X.

use std::time::Duration;

use crate::b2bua::policy::{Decision, Media, Offer, Plan, Route};
use crate::bindings::{Admission, Number, Refusal};
use crate::sip::message::{uri_of, uri_user, Msg, Start};
use crate::store::CallRecord;
use crate::time::Now;

use super::{CallState, Masking};

impl Masking {
    pub(super) fn decide_offer(&self, offer: &Offer<'_>, now: Now) -> Decision<CallState> {
        let m = offer.request;
        let Some(trunk) = &self.cfg.trunk else {
            let no_route = &self.cfg.refusals.no_route;
            let why = "no trunk configured";
            self.record_refusal(m, no_route.status, why, now);
            return Decision::Refuse {
                status: no_route.status,
                reason: no_route.reason.clone(),
                why,
            };
        };
        let norm = &self.cfg.normaliser;
        let caller = self.caller_of(m);
        let dialled = match &m.start {
            Start::Request { user: Some(u), .. } => Some(u.as_str()),
            _ => uri_user(uri_of(&m.to)),
        };
        let Some(dialled) = dialled.and_then(|d| norm.normalise(d).ok()) else {
            return self.refuse(m, Refusal::UnknownNumber, now);
        };
        match self.bindings.admit(&caller, &dialled, now.unix()) {
            Ok(a) => {
                tracing::debug!(call = offer.id, caller = %caller, callee = %a.callee, binding = a.binding, "bridging call");
                let plan = Plan {
                    target: Route {
                        uri: format!("sip:{}@{}", a.callee.as_str(), trunk.host),
                        peer: trunk.peer,
                    },
                    from_user: a.virtual_number.as_str().to_string(),
                    media: Media::Mask,
                    no_answer: self.cfg.no_answer,
                    // The first limit: the lease of talk time, or the cap.
                    limit: a
                        .lease
                        .or((a.max_secs > 0).then_some(a.max_secs))
                        .map(Duration::from_secs),
                };
                Decision::Bridge(plan, state_of(a, caller, now))
            }
            Err(r) => {
                if let Some(more) = self.refusal_log.allow() {
                    tracing::info!(caller = %caller, dialled = %dialled, refusal = r.name(),
                        more_refused_since = more, "call refused");
                }
                self.refuse(m, r, now)
            }
        }
    }

    /// The caller's normalised number: the P-Asserted-Identity a trusted
    /// source sent (where the config says so), else From. One without a
    /// usable user part is anonymous: it can still reach an AX binding that
    /// lets anyone call.
    pub(super) fn caller_of(&self, m: &Msg) -> Number {
        let asserted = self
            .cfg
            .asserted_caller
            .then(|| m.asserted_user())
            .flatten();
        asserted
            .or_else(|| m.from_user())
            .and_then(|u| self.cfg.normaliser.normalise(u).ok())
            .unwrap_or_else(|| Number::from_normalised("anonymous".into()))
    }

    fn refuse(&self, m: &Msg, r: Refusal, now: Now) -> Decision<CallState> {
        let st = self.cfg.refusals.status(r);
        self.record_refusal(m, st.status, r.name(), now);
        Decision::Refuse {
            status: st.status,
            reason: st.reason.clone(),
            why: r.name(),
        }
    }

    /// Writes the record of a refused INVITE to a number a tenant owns.
    pub(super) fn record_refusal(&self, m: &Msg, status: u16, why: &str, now: Now) {
        let dialled = match &m.start {
            Start::Request { user: Some(u), .. } => self.cfg.normaliser.normalise(u).ok(),
            _ => None,
        };
        let Some(x) = dialled else { return };
        // Refusals of numbers nobody owns belong to no tenant's records.
        let Some(tenant) = self.bindings.tenant_of(&x) else {
            return;
        };
        let caller = self.caller_of(m);
        self.emit(tenant, "call.refused", None, now, || {
            serde_json::json!({ "caller": caller.as_str(), "x": x.as_str(), "status": status, "reason": why })
        });
        self.store.call(CallRecord {
            tenant,
            caller: caller.as_str().to_string(),
            x: x.as_str().to_string(),
            invite_at: now.unix_ms,
            end_at: Some(now.unix_ms),
            result: status,
            reason: why.to_string(),
            ..Default::default()
        });
    }
}

/// The policy's state of an admitted call.
fn state_of(a: Admission, caller: Number, now: Now) -> CallState {
    CallState {
        binding: a.binding,
        tenant: a.tenant,
        caller,
        max_secs: a.max_secs,
        lease: a.lease,
        settled: false,
        confirmed: false,
        record: CallRecord {
            tenant: a.tenant,
            binding: Some(a.binding),
            direction: Some(a.direction.as_str().to_string()),
            callee: Some(a.callee.as_str().to_string()),
            x: a.virtual_number.as_str().to_string(),
            invite_at: now.unix_ms,
            ..Default::default()
        },
        callee: a.callee,
    }
}
