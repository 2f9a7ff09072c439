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
    let delivered = (!pending).then_some(e.at);
    s.exec(
        "INSERT INTO events (tenant_id, event_id, type, binding_id, seq, body, created_at,
         next_attempt_at, delivered_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8)",
        &[
            &e.tenant, &event_id, &e.kind, &e.binding, &seq, &body, &e.at, &delivered,
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
