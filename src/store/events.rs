//! The event outbox: events are stored with their per-binding sequence
//! number before anyone is told, and webhook deliveries are tracked here so
//! an undelivered event survives a restart.

use rusqlite::{params, OptionalExtension};

use super::{SqliteStore, StoreError};
use crate::bindings::TenantId;

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

/// An event due for webhook delivery.
#[derive(Clone, Debug)]
pub struct Due {
    /// Outbox row.
    pub id: i64,
    /// The JSON body.
    pub body: String,
    /// Unique event id.
    pub event_id: String,
    /// Attempts so far.
    pub attempts: u32,
    /// Webhook URL.
    pub url: String,
    /// Webhook secret.
    pub secret: String,
}

/// Stores one event in `tx` and returns its JSON. `pending` says whether a
/// webhook will want it (otherwise it is stored as delivered).
pub fn insert(
    tx: &rusqlite::Connection,
    e: &NewEvent,
    pending: bool,
) -> Result<String, StoreError> {
    let seq: i64 = match e.binding {
        Some(b) => tx.query_row(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM events WHERE binding_id = ?1",
            [b],
            |r| r.get(0),
        )?,
        None => 0,
    };
    let event_id = format!("evt_{}{}", crate::sip::token(), crate::sip::token());
    let body = serde_json::json!({
        "id": event_id,
        "type": e.kind,
        "created_at": crate::time::format_ms(e.at),
        "binding_id": e.binding,
        "seq": seq,
        "data": e.data,
    })
    .to_string();
    let delivered = (!pending).then_some(e.at);
    tx.execute(
        "INSERT INTO events (tenant_id, event_id, type, binding_id, seq, body, created_at, next_attempt_at, delivered_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8)",
        params![e.tenant, event_id, e.kind, e.binding, seq, body, e.at, delivered],
    )?;
    Ok(body)
}

impl SqliteStore {
    /// Stores events in one transaction; returns (tenant, JSON) of each.
    pub fn insert_events(
        &mut self,
        events: &[NewEvent],
        hooked: &dyn Fn(TenantId) -> bool,
    ) -> Result<Vec<(TenantId, String)>, StoreError> {
        let tx = self.conn.savepoint()?;
        let mut out = Vec::with_capacity(events.len());
        for e in events {
            out.push((e.tenant, insert(&tx, e, hooked(e.tenant))?));
        }
        tx.commit()?;
        Ok(out)
    }

    /// Sets a tenant's webhook.
    pub fn set_webhook(
        &mut self,
        tenant: TenantId,
        url: &str,
        secret: &str,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO webhooks (tenant_id, url, secret, created_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (tenant_id) DO UPDATE SET url = excluded.url, secret = excluded.secret",
            params![tenant, url, secret, crate::time::now()],
        )?;
        Ok(())
    }

    /// A tenant's webhook (URL, secret).
    pub fn webhook(&self, tenant: TenantId) -> Result<Option<(String, String)>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT url, secret FROM webhooks WHERE tenant_id = ?1",
                [tenant],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    /// Removes a tenant's webhook and drops its undelivered events.
    pub fn delete_webhook(&mut self, tenant: TenantId) -> Result<bool, StoreError> {
        let tx = self.conn.savepoint()?;
        let n = tx.execute("DELETE FROM webhooks WHERE tenant_id = ?1", [tenant])?;
        tx.execute(
            "UPDATE events SET delivered_at = 0 WHERE tenant_id = ?1 AND delivered_at IS NULL",
            [tenant],
        )?;
        tx.commit()?;
        Ok(n > 0)
    }

    /// Bindings that already had a `binding.expired` event.
    pub fn expired_notified(&self) -> Result<Vec<i64>, StoreError> {
        let mut stmt =
            self.conn.prepare("SELECT DISTINCT binding_id FROM events WHERE type = 'binding.expired' AND binding_id IS NOT NULL")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Tenants that have a webhook.
    pub fn webhook_tenants(&self) -> Result<Vec<TenantId>, StoreError> {
        let mut stmt = self.conn.prepare("SELECT tenant_id FROM webhooks")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Undelivered events whose next attempt is due, oldest first.
    pub fn due_events(&self, now: i64, limit: u32) -> Result<Vec<Due>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT e.id, e.body, e.event_id, e.attempts, w.url, w.secret FROM events e
             JOIN webhooks w ON w.tenant_id = e.tenant_id
             WHERE e.delivered_at IS NULL AND e.next_attempt_at <= ?1 ORDER BY e.id LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![now, limit], |r| {
            Ok(Due {
                id: r.get(0)?,
                body: r.get(1)?,
                event_id: r.get(2)?,
                attempts: r.get(3)?,
                url: r.get(4)?,
                secret: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Records delivery attempts: `Ok` delivered, `Err(next_at)` retry then.
    pub fn delivered(
        &mut self,
        results: &[(i64, Result<(), i64>)],
        now: i64,
    ) -> Result<(), StoreError> {
        let tx = self.conn.savepoint()?;
        for (id, r) in results {
            match r {
                Ok(()) => tx.execute(
                    "UPDATE events SET delivered_at = ?2, attempts = attempts + 1 WHERE id = ?1",
                    params![id, now],
                )?,
                Err(next) => tx.execute(
                    "UPDATE events SET attempts = attempts + 1, next_attempt_at = ?2 WHERE id = ?1",
                    params![id, next],
                )?,
            };
        }
        tx.commit()?;
        Ok(())
    }
}
