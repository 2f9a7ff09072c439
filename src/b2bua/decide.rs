//! The call decision, readable top to bottom: an INVITE becomes either a
//! refusal with its SIP status or an admission to bridge to the real party.

use crate::bindings::{Admission, Number, Refusal};
use crate::sip::message::{uri_of, uri_user, Msg, Start};

use super::Engine;

/// What to do with a new INVITE.
#[derive(Debug)]
pub(super) enum Decision {
    /// Answer with this final status; the callee is never called.
    Refuse {
        /// SIP status.
        status: u16,
        /// Reason phrase.
        reason: String,
        /// Why, for the log.
        why: &'static str,
    },
    /// Call the real party; a use of the binding is reserved. Carries the
    /// caller as normalised for the decision, so it is not worked out again.
    Bridge(Admission, Number),
}

impl Engine {
    pub(super) fn decide(&self, m: &Msg, now_unix: i64) -> Decision {
        let no_route = |why| Decision::Refuse {
            status: self.cfg.refusals.no_route.status,
            reason: self.cfg.refusals.no_route.reason.clone(),
            why,
        };
        if !self.accepting {
            return no_route("shutting down");
        }
        if m.max_forwards == Some(0) {
            return Decision::Refuse {
                status: 483,
                reason: "Too Many Hops".into(),
                why: "max-forwards",
            };
        }
        if self.cfg.trunk.is_none() {
            return no_route("no trunk configured");
        }
        let norm = &self.cfg.normaliser;
        let caller = self.caller_of(m);
        let dialled = match &m.start {
            Start::Request { user: Some(u), .. } => Some(u.as_str()),
            _ => uri_user(uri_of(&m.to)),
        };
        let Some(dialled) = dialled.and_then(|d| norm.normalise(d).ok()) else {
            return self.refuse(Refusal::UnknownNumber);
        };
        match self.bindings.admit(&caller, &dialled, now_unix) {
            Ok(a) => Decision::Bridge(a, caller),
            Err(r) => {
                tracing::info!(caller = %caller, dialled = %dialled, refusal = r.name(), "call refused");
                self.refuse(r)
            }
        }
    }

    /// The caller's normalised number. One without a usable user part is
    /// anonymous: it can still reach an AX binding that lets anyone call.
    pub(super) fn caller_of(&self, m: &Msg) -> Number {
        m.from_user()
            .and_then(|u| self.cfg.normaliser.normalise(u).ok())
            .unwrap_or_else(|| Number::from_normalised("anonymous".into()))
    }

    fn refuse(&self, r: Refusal) -> Decision {
        let st = self.cfg.refusals.status(r);
        Decision::Refuse {
            status: st.status,
            reason: st.reason.clone(),
            why: r.name(),
        }
    }
}
