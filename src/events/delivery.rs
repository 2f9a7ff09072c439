//! Webhook delivery: a dispatcher finds the tenants with events due and
//! gives each its own task, so a slow or dead receiver delays only its own
//! tenant. Within a tenant events go out oldest first. An event is tried
//! at most `max_attempts` times, `backoff` apart, then marked failed (the
//! API lists and redelivers it); a webhook failing without a success for
//! `disable_after` is disabled and a `webhook.disabled` event says so.
//! Delivery is at least once: receivers drop duplicates by event id.

use std::collections::HashSet;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::webhook::Client;
use super::Hub;
use crate::bindings::TenantId;
use crate::store::prelude::*;
use crate::store::webhooks::{Attempt, Due};
use crate::store::Shared;

/// How persistent delivery is.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Attempts per event before it is failed.
    pub max_attempts: u32,
    /// A webhook failing this long without a success is disabled.
    pub disable_after: Duration,
}

/// How often the dispatcher looks for due retries unwoken, at most.
const LOOK: Duration = Duration::from_secs(1);

/// How long the dispatcher sleeps at `now` (unix ms): until the soonest
/// retry a job planned, if that comes before its next look.
fn nap(soonest: i64, now: i64) -> Duration {
    let until = u64::try_from(soonest.saturating_sub(now)).unwrap_or(0);
    Duration::from_millis(until).min(LOOK)
}

/// Seconds to wait after attempt `n` (1-based) failed: 1, 2, 4, ... up to
/// an hour.
pub fn backoff(attempt: u32) -> i64 {
    (1i64 << attempt.saturating_sub(1).min(12)).min(3600)
}

/// Runs `f` on the store off the async threads; `None` if the store is
/// unusable (logged).
async fn db<T: Send + 'static>(
    store: &Shared,
    f: impl FnOnce(&mut dyn Backend) -> Result<T, crate::store::StoreError> + Send + 'static,
) -> Option<T> {
    match crate::store::off_thread(store, f).await {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::error!(error = %e, "webhook store access failed");
            None
        }
    }
}

/// Delivers due events until `cancel`.
pub async fn run(
    store: Box<dyn Backend>,
    client: Client,
    limits: Limits,
    hub: Arc<Hub>,
    clock: crate::time::SharedClock,
    cancel: CancellationToken,
) {
    let store: Shared = Arc::new(Mutex::new(store));
    let busy: Arc<Mutex<HashSet<TenantId>>> = Arc::default();
    let soonest = Arc::new(AtomicI64::new(i64::MAX));
    let mut tasks = JoinSet::new();
    loop {
        // A stored event wakes the dispatcher at once; a retry when it is
        // due (the first a second after the failure, as documented), and
        // a look each second finds anything else without polling the
        // store five times a second, busy or idle.
        let wait = nap(soonest.load(Ordering::Acquire), clock.now().unix_ms);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = hub.delivery_woken() => {}
            _ = cancel.cancelled() => break,
        }
        while tasks.try_join_next().is_some() {}
        let now = clock.now().unix_ms;
        // Retries due by now are found below; jobs note the next ones.
        let _ = soonest.fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
            (s <= now).then_some(i64::MAX)
        });
        let Some(tenants) = db(&store, move |s| s.due_tenants(now)).await else {
            continue;
        };
        for t in tenants {
            let fresh = busy.lock().map(|mut b| b.insert(t)).unwrap_or(false);
            if !fresh {
                continue;
            }
            let job = Job {
                tenant: t,
                store: store.clone(),
                client: client.clone(),
                limits: limits.clone(),
                hub: hub.clone(),
                clock: clock.clone(),
                soonest: soonest.clone(),
            };
            let busy = busy.clone();
            tasks.spawn(async move {
                job.run().await;
                if let Ok(mut b) = busy.lock() {
                    b.remove(&t);
                }
            });
        }
    }
    // An attempt cut off here is not recorded: it is retried after restart.
    tasks.abort_all();
}

/// One round of deliveries for one tenant.
struct Job {
    tenant: TenantId,
    store: Shared,
    client: Client,
    limits: Limits,
    hub: Arc<Hub>,
    clock: crate::time::SharedClock,
    /// The soonest retry any job planned (unix ms).
    soonest: Arc<AtomicI64>,
}

impl Job {
    async fn run(self) {
        let (t, now) = (self.tenant, self.clock.now().unix_ms);
        let Some(due) = db(&self.store, move |s| s.due_events(t, now, 50)).await else {
            return;
        };
        for d in due {
            let ok = self.attempt(d).await;
            // A failing receiver gets one attempt per round, not fifty
            // timeouts in a row; the rest wait for the next round.
            if !ok {
                return;
            }
        }
    }

    async fn attempt(&self, d: Due) -> bool {
        let body = if d.masked {
            mask_body(&d.body)
        } else {
            d.body.clone()
        };
        let r = self.client.post(&d.url, body, &d.secret, &d.event_id).await;
        let now = self.clock.now().unix_ms;
        let n = d.attempts + 1;
        let outcome = match &r {
            Ok(()) => Attempt::Delivered,
            Err(e) if n >= self.limits.max_attempts => Attempt::Failed(e.clone()),
            Err(e) => Attempt::Retry(now + backoff(n) * 1000, e.clone()),
        };
        if let Attempt::Retry(at, _) = &outcome {
            self.soonest.fetch_min(*at, Ordering::AcqRel);
        }
        match &outcome {
            Attempt::Failed(e) => {
                tracing::warn!(tenant = self.tenant, event = %d.event_id, attempts = n, error = %e, "webhook event failed for good")
            }
            Attempt::Retry(_, e) => {
                tracing::info!(tenant = self.tenant, event = %d.event_id, attempts = n, error = %e, "webhook delivery failed; will retry")
            }
            Attempt::Delivered => {}
        }
        let (t, id) = (self.tenant, d.id);
        let after = i64::try_from(self.limits.disable_after.as_millis()).unwrap_or(i64::MAX);
        let disabled = db(&self.store, move |s| {
            s.record_attempt(t, id, &outcome, now, after)
        })
        .await;
        let ok = r.is_ok();
        if disabled == Some(true) {
            self.disabled(r.err().unwrap_or_default()).await;
        }
        ok
    }

    /// Tells the tenant (live stream, event list) and the operator (log).
    async fn disabled(&self, why: String) {
        tracing::warn!(tenant = self.tenant, error = %why, "webhook disabled after failing too long");
        let ev = crate::store::events::NewEvent {
            tenant: self.tenant,
            kind: "webhook.disabled",
            binding: None,
            data: serde_json::json!({ "last_error": why }),
            at: self.clock.now().unix_ms,
        };
        if let Some(told) = db(&self.store, move |s| s.insert_events(&[ev], &|_| false)).await {
            for (t, body) in told {
                self.hub.publish(t, body);
            }
        }
        // Events keep being stored for the webhook: they go out once it is
        // enabled again (or are purged with the records).
    }
}

/// Keys whose values are parties (numbers or accounts).
const PARTY_KEYS: &[&str] = &[
    "a",
    "b",
    "caller",
    "callee",
    "owner",
    "party",
    "allowed_callers",
];

/// An event body with every party masked (`+86138****0000`). X stays: it
/// is the tenant's own number.
pub fn mask_body(body: &str) -> String {
    let Ok(mut v) = serde_json::from_str::<serde_json::Value>(body) else {
        // Bodies are ours and always JSON; an unreadable one is not sent
        // in clear.
        return "{}".into();
    };
    mask_value(&mut v, false);
    v.to_string()
}

fn mask_value(v: &mut serde_json::Value, party: bool) {
    use serde_json::Value;
    match v {
        Value::String(s) if party => *s = crate::mask::Masked(s).to_string(),
        Value::Array(items) => items.iter_mut().for_each(|i| mask_value(i, party)),
        Value::Object(map) => {
            for (k, val) in map.iter_mut() {
                mask_value(val, PARTY_KEYS.contains(&k.as_str()));
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dispatcher_wakes_for_the_soonest_retry_within_its_look() {
        assert_eq!(nap(i64::MAX, 5_000), LOOK, "no retry planned");
        assert_eq!(nap(5_400, 5_000), Duration::from_millis(400));
        assert_eq!(nap(4_000, 5_000), Duration::ZERO, "overdue");
        assert_eq!(nap(9_000, 5_000), LOOK);
    }

    #[test]
    fn backoff_doubles_to_an_hour() {
        assert_eq!(
            (backoff(1), backoff(2), backoff(6), backoff(40)),
            (1, 2, 32, 3600)
        );
    }

    #[test]
    fn masked_bodies_hide_parties_and_keep_x() {
        let body = r#"{"data":{"a":"+8613800000000","b":"alice","x":"+8617000000001",
            "conditions":{"allowed_callers":["+8613600000000"]},"caller":"+8613900000000"}}"#;
        let m = mask_body(body);
        for clear in [
            "+8613800000000",
            "+8613600000000",
            "+8613900000000",
            "alice",
        ] {
            assert!(!m.contains(clear), "{clear} in {m}");
        }
        assert!(m.contains("+86138****0000"), "{m}");
        assert!(m.contains("+8617000000001"), "{m}");
    }
}
