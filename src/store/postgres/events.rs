//! PostgreSQL: the event outbox.

use crate::bindings::TenantId;
use crate::store::events::*;
use crate::store::postgres::PgStore;
use crate::store::prelude::*;
use crate::store::StoreError;

fn insert(s: &PgStore, e: &NewEvent, pending: bool) -> Result<String, StoreError> {
    let seq: i64 = match e.binding {
        Some(b) => s
            .one(
                "SELECT COALESCE(MAX(seq), 0) + 1 FROM events WHERE binding_id = ?1",
                &[&b],
            )?
            .try_get(0)?,
        None => 0,
    };
    let event_id = crate::ids::secret("evt_");
    let body = e.body(&event_id, seq);
    // Pending when this node's hub knows of a webhook, or when the
    // database does: a webhook set through another node a moment ago
    // counts before its change reaches this one.
    s.exec(
        "INSERT INTO events (tenant_id, event_id, type, binding_id, seq, body, created_at,
         next_attempt_at, delivered_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7,
         CASE WHEN ?8::BOOLEAN OR EXISTS (SELECT 1 FROM webhooks WHERE tenant_id = ?1)
              THEN NULL ELSE ?7::BIGINT END)",
        &[
            &e.tenant, &event_id, &e.kind, &e.binding, &seq, &body, &e.at, &pending,
        ],
    )?;
    Ok(body)
}

impl EventStore for PgStore {
    fn insert_events(
        &mut self,
        events: &[NewEvent],
        hooked: &dyn Fn(TenantId) -> bool,
    ) -> Result<Vec<(TenantId, String)>, StoreError> {
        self.atomically(|s| {
            let mut out = Vec::with_capacity(events.len());
            for e in events {
                out.push((e.tenant, insert(s, e, hooked(e.tenant))?));
            }
            Ok(out)
        })
    }

    fn expired_notified(&self) -> Result<Vec<i64>, StoreError> {
        self.rows(
            "SELECT DISTINCT binding_id FROM events
             WHERE type = 'binding.expired' AND binding_id IS NOT NULL",
            &[],
        )?
        .iter()
        .map(|r| Ok(r.try_get(0)?))
        .collect()
    }
}
