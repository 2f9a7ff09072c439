//! Who is asking: bearer API keys (stored as SHA-256 hashes) map to a
//! tenant, and each tenant has a token bucket of requests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::problem::ApiError;
use super::shares::{Share, Shares};
use super::ApiState;
use crate::bindings::TenantId;

/// The authenticated tenant of a request, holding one of the tenant's
/// requests in progress until it is dropped (with the handler).
pub struct Tenant(
    pub TenantId,
    #[expect(dead_code, reason = "held for its Drop: the request is in progress")] Share<TenantId>,
);

pub use crate::service::tenants::{hash_key, new_key};

impl FromRequestParts<Arc<ApiState>> for Tenant {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<ApiState>,
    ) -> Result<Self, Self::Rejection> {
        let key = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer)
            .ok_or(ApiError::Unauthorized)?;
        // The API and the operator-change watcher keep the cache current
        // (revocations included); a miss may still be a key issued on the
        // command line since the watcher last looked.
        let hash = hash_key(key);
        let cached = state.keys.get(&hash).map(|t| *t);
        let tenant = match cached {
            Some(t) => t,
            None => state.lookup_key(hash).await.ok_or(ApiError::Unauthorized)?,
        };
        let held = state.limiter.begin(tenant)?;
        state.limiter.take(tenant)?;
        Ok(Tenant(tenant, held))
    }
}

/// The credentials of `Bearer <key>`; the scheme is case-insensitive
/// (RFC 9110 section 11.1).
fn bearer(v: &str) -> Option<&str> {
    let (scheme, key) = v.trim().split_once(' ')?;
    let key = key.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !key.is_empty()).then_some(key)
}

/// Per-tenant token buckets, and requests in progress.
pub struct Limiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<TenantId, (f64, Instant)>>,
    /// Requests in progress per tenant.
    in_progress: Shares<TenantId>,
}

impl Limiter {
    /// `rate` requests per second on average, bursts of `burst`, at most
    /// `in_progress` at once.
    pub fn new(rate: u32, burst: u32, in_progress: usize) -> Limiter {
        Limiter {
            rate: f64::from(rate.max(1)),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
            in_progress: Shares::new(in_progress),
        }
    }

    /// Starts one of `tenant`'s requests, unless it has as many in
    /// progress as it may: a tenant's slow requests take its own share of
    /// the server, never the others'.
    pub fn begin(&self, tenant: TenantId) -> Result<Share<TenantId>, ApiError> {
        self.in_progress.take(tenant).ok_or(ApiError::Busy)
    }

    /// Takes one request's token, or says how long to wait.
    pub fn take(&self, tenant: TenantId) -> Result<(), ApiError> {
        let now = Instant::now();
        let Ok(mut b) = self.buckets.lock() else {
            return Ok(());
        };
        let (tokens, last) = b.entry(tenant).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * self.rate).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            let wait = ((1.0 - *tokens) / self.rate).ceil().max(1.0) as u64;
            Err(ApiError::RateLimited { retry_after: wait })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_refuses_past_the_burst_with_a_wait() {
        let l = Limiter::new(1, 2, 8);
        assert!(l.take(1).is_ok());
        assert!(l.take(1).is_ok());
        assert!(matches!(
            l.take(1),
            Err(ApiError::RateLimited { retry_after: 1 })
        ));
        assert!(l.take(2).is_ok(), "tenants have their own buckets");
    }

    #[test]
    fn a_tenant_has_its_own_share_of_requests_in_progress() {
        let l = Limiter::new(1, 2, 2);
        let a = l.begin(1).expect("first");
        let _b = l.begin(1).expect("second");
        assert!(matches!(l.begin(1), Err(ApiError::Busy)));
        assert!(l.begin(2).is_ok(), "another tenant is served");
        drop(a);
        assert!(l.begin(1).is_ok(), "one done, one more may start");
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        assert_eq!(bearer("Bearer k1"), Some("k1"));
        assert_eq!(bearer("bearer k1"), Some("k1"));
        assert_eq!(bearer("BEARER  k1 "), Some("k1"));
        assert_eq!(bearer("Basic k1"), None);
        assert_eq!(bearer("Bearer "), None);
    }

    #[test]
    fn keys_hash_to_hex_sha256() {
        assert_eq!(
            hash_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(new_key().starts_with("smk_"));
    }
}
