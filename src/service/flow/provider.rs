//! Where an acquired X comes from. [`OwnPool`], the default, allocates
//! from the tenant's pool like any AXB binding; a hosted provider (an AXB
//! binding bought from a carrier's API) implements [`Provider`] instead.
//!
//! The contract: `bind` runs inside the acquisition's unit of work, on a
//! blocking thread, so it may call out and wait; it must store the binding
//! through `s` (so it is in the tenant's bindings, routed by sipmask like
//! any other) and return it, or fail, in which case nothing of the
//! acquisition is kept. It never announces the binding: the user's real
//! number must not reach events. It must not put the binding in the live
//! table; the service does, once everything else succeeded.

use super::{Error, Services};
use crate::bindings::{Binding, Conditions, Number, TenantId};
use crate::service::bindings::PairRequest;
use crate::store::prelude::*;

/// Binds an X to (agent, user) for an acquisition.
pub trait Provider: Send + Sync {
    /// Stores an AXB binding (agent's real number as A, user's as B) with
    /// `conditions`, and returns it.
    fn bind(
        &self,
        svc: &Services,
        s: &mut dyn Backend,
        tenant: TenantId,
        agent: &Number,
        user: &Number,
        conditions: Conditions,
    ) -> Result<Binding, Error>;
}

/// The tenant's own pool.
pub struct OwnPool;

impl Provider for OwnPool {
    fn bind(
        &self,
        svc: &Services,
        s: &mut dyn Backend,
        tenant: TenantId,
        agent: &Number,
        user: &Number,
        conditions: Conditions,
    ) -> Result<Binding, Error> {
        let req = PairRequest {
            a: agent.clone(),
            b: user.clone(),
            x: None,
            prefer: None,
            conditions,
            field: String::new(),
        };
        svc.pairs_in(s, tenant, vec![req])?
            .pop()
            .ok_or_else(|| Error::Internal("no binding stored".into()))
    }
}
