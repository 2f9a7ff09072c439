//! Events: what happened to bindings and calls, told to tenants. Owns the
//! fan-out (a broadcast channel for server-sent events) and webhook
//! delivery from the store's outbox; producers (the B2BUA, the API) hand
//! events to the store, which numbers and keeps them before they go out.

pub mod config;
pub mod delivery;
pub mod hmac;
pub mod policy;
pub mod webhook;

use std::sync::Arc;

use dashmap::DashMap;
use tokio::sync::broadcast;

use crate::bindings::TenantId;

/// A stored event: its tenant and JSON body.
pub type Published = Arc<(TenantId, String)>;

/// Who wants events, and the live stream.
pub struct Hub {
    tx: broadcast::Sender<Published>,
    hooked: DashMap<TenantId, ()>,
    /// Wakes webhook delivery: an event of a tenant with a webhook was
    /// stored, or one is due again.
    due: tokio::sync::Notify,
}

impl Hub {
    /// A hub knowing which tenants have webhooks.
    pub fn new(webhook_tenants: impl IntoIterator<Item = TenantId>) -> Arc<Hub> {
        let (tx, _) = broadcast::channel(4096);
        Arc::new(Hub {
            tx,
            hooked: webhook_tenants.into_iter().map(|t| (t, ())).collect(),
            due: tokio::sync::Notify::new(),
        })
    }

    /// Whether anyone would see an event of `tenant`; producers skip the
    /// work otherwise.
    pub fn wants(&self, tenant: TenantId) -> bool {
        self.hooked(tenant) || self.tx.receiver_count() > 0
    }

    /// Whether any tenant has a webhook or a live stream is open.
    pub fn anyone(&self) -> bool {
        !self.hooked.is_empty() || self.tx.receiver_count() > 0
    }

    /// Whether `tenant` has a webhook.
    pub fn hooked(&self, tenant: TenantId) -> bool {
        self.hooked.contains_key(&tenant)
    }

    /// Notes a webhook set or removed.
    pub fn set_hooked(&self, tenant: TenantId, on: bool) {
        if on {
            self.hooked.insert(tenant, ());
        } else {
            self.hooked.remove(&tenant);
        }
    }

    /// Sends a stored event to live streams.
    pub fn publish(&self, tenant: TenantId, body: String) {
        if self.hooked(tenant) {
            self.wake_delivery();
        }
        let _ = self.tx.send(Arc::new((tenant, body)));
    }

    /// Tells webhook delivery that an event is due now.
    pub fn wake_delivery(&self) {
        self.due.notify_one();
    }

    /// Until an event may be due for a webhook (see
    /// [`Hub::wake_delivery`]).
    pub async fn delivery_woken(&self) {
        self.due.notified().await
    }

    /// A live stream of every tenant's events (filter by tenant).
    pub fn subscribe(&self) -> broadcast::Receiver<Published> {
        self.tx.subscribe()
    }
}

impl crate::store::events::Listeners for Hub {
    fn hooked(&self, tenant: TenantId) -> bool {
        Hub::hooked(self, tenant)
    }

    fn publish(&self, tenant: TenantId, body: String) {
        Hub::publish(self, tenant, body)
    }
}
