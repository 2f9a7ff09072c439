//! SQLite: the events area's statements (the neutral types are in
//! `store::events`).

use crate::bindings::TenantId;
use crate::store::events::*;
use crate::store::prelude::*;
use crate::store::{SqliteStore, StoreError};
use rusqlite::params;

/// Stores one event in `tx` and returns its JSON. `pending` says whether a
/// webhook will want it (otherwise it is stored as delivered).
fn insert(tx: &rusqlite::Connection, e: &NewEvent, pending: bool) -> Result<String, StoreError> {
    let seq: i64 = match e.binding {
        // Cached statements: every call stores events, and preparing the
        // SQL each time cost more than running it.
        Some(b) => tx
            .prepare_cached("SELECT COALESCE(MAX(seq), 0) + 1 FROM events WHERE binding_id = ?1")?
            .query_row([b], |r| r.get(0))?,
        None => 0,
    };
    let event_id = crate::ids::secret("evt_");
    let body = e.body(&event_id, seq);
    // Pending when the hub knows of a webhook or the database has one
    // (as in every backend: the database is the truth).
    tx.prepare_cached(
        "INSERT INTO events (tenant_id, event_id, type, binding_id, seq, body, created_at, next_attempt_at, delivered_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7,
         CASE WHEN ?8 OR EXISTS (SELECT 1 FROM webhooks WHERE tenant_id = ?1) THEN NULL ELSE ?7 END)",
    )?
    .execute(params![e.tenant, event_id, e.kind, e.binding, seq, body, e.at, pending])?;
    Ok(body)
}

impl SqliteStore {}

impl EventStore for SqliteStore {
    /// Stores events in one transaction; returns (tenant, JSON) of each.
    fn insert_events(
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

    /// Bindings that already had a `binding.expired` event.
    fn expired_notified(&self) -> Result<Vec<i64>, StoreError> {
        let mut stmt =
            self.conn.prepare("SELECT DISTINCT binding_id FROM events WHERE type = 'binding.expired' AND binding_id IS NOT NULL")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
