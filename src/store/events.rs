//! The event outbox: events are stored with their per-binding sequence
//! number before anyone is told, and webhook deliveries are tracked here so
//! an undelivered event survives a restart.

use crate::bindings::TenantId;
/// Who hears of events once they are committed: which tenants deliver
/// webhooks (their events are kept for delivery), and the live streams to
/// publish to. The event hub ([`crate::events::Hub`]) is one; the store
/// knows only this.
pub trait Listeners: Send + Sync {
    /// Whether `tenant` has a webhook.
    fn hooked(&self, tenant: TenantId) -> bool;
    /// Sends a committed event (its JSON body) to live streams.
    fn publish(&self, tenant: TenantId, body: String);
}

/// An event to store.
#[derive(Clone, Debug)]
pub struct NewEvent {
    /// Owner.
    pub tenant: TenantId,
    /// `binding.created`, `call.answered`, ...
    pub kind: &'static str,
    /// The binding it is about, if any.
    pub binding: Option<i64>,
    /// Event-specific fields.
    pub data: serde_json::Value,
    /// Unix milliseconds.
    pub at: i64,
}

impl NewEvent {
    /// The event as delivered and streamed: its JSON body, with the id it
    /// is stored under and its place among its binding's events.
    pub(crate) fn body(&self, event_id: &str, seq: i64) -> String {
        serde_json::json!({
            "id": event_id,
            "type": self.kind,
            "created_at": crate::time::format_ms(self.at),
            "binding_id": self.binding,
            "seq": seq,
            "data": self.data,
        })
        .to_string()
    }
}
