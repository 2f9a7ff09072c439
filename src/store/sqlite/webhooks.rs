//! SQLite: the webhooks area's statements (the neutral types are in
//! `store::webhooks`).

use crate::bindings::TenantId;
use crate::store::prelude::*;
use crate::store::rows;
use crate::store::sqlite::via;
use crate::store::webhooks::*;
use crate::store::{SqliteStore, StoreError};
use rusqlite::{params, OptionalExtension};

impl SqliteStore {}

impl WebhookStore for SqliteStore {
    /// Sets (or replaces) a tenant's webhook; a replaced one starts afresh,
    /// enabled.
    fn set_webhook(
        &mut self,
        tenant: TenantId,
        url: &str,
        secret: &str,
        masked: bool,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO webhooks (tenant_id, url, secret, created_at, masked) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (tenant_id) DO UPDATE SET url = excluded.url, secret = excluded.secret,
               masked = excluded.masked, failing_since = NULL, disabled_at = NULL",
            params![tenant, url, secret, crate::time::now(), masked],
        )?;
        Ok(())
    }

    /// A tenant's webhook.
    fn webhook(&self, tenant: TenantId) -> Result<Option<Webhook>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT url, secret, masked, failing_since, disabled_at FROM webhooks WHERE tenant_id = ?1",
                [tenant],
|r| via(rows::webhook(r)),
            )
            .optional()?)
    }

    /// Removes a tenant's webhook and drops its undelivered events.
    fn delete_webhook(&mut self, tenant: TenantId) -> Result<bool, StoreError> {
        let tx = self.conn.savepoint()?;
        let n = tx.execute("DELETE FROM webhooks WHERE tenant_id = ?1", [tenant])?;
        tx.execute(
            "UPDATE events SET delivered_at = 0 WHERE tenant_id = ?1 AND delivered_at IS NULL",
            [tenant],
        )?;
        tx.commit()?;
        Ok(n > 0)
    }

    /// Tenants that have a webhook (disabled ones too: their events are
    /// kept for when it is enabled again).
    fn webhook_tenants(&self) -> Result<Vec<TenantId>, StoreError> {
        let mut stmt = self.conn.prepare("SELECT tenant_id FROM webhooks")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// (Webhooks disabled, events failed for good), for metrics.
    fn webhook_health(&self) -> Result<(i64, i64), StoreError> {
        Ok(self.conn.query_row(
            "SELECT (SELECT COUNT(*) FROM webhooks WHERE disabled_at IS NOT NULL),
                    (SELECT COUNT(*) FROM events WHERE failed_at IS NOT NULL AND delivered_at IS NULL)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?)
    }

    /// Tenants with an enabled webhook and at least one event due now.
    fn due_tenants(&self, now: i64) -> Result<Vec<TenantId>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT w.tenant_id FROM webhooks w WHERE w.disabled_at IS NULL AND EXISTS (
               SELECT 1 FROM events e WHERE e.tenant_id = w.tenant_id AND e.delivered_at IS NULL
               AND e.failed_at IS NULL AND e.next_attempt_at <= ?1)",
        )?;
        let rows = stmt.query_map([now], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// A tenant's events due now, oldest first.
    fn due_events(&self, tenant: TenantId, now: i64, limit: u32) -> Result<Vec<Due>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT e.id, e.body, e.event_id, e.attempts, w.url, w.secret, w.masked FROM events e
             JOIN webhooks w ON w.tenant_id = e.tenant_id
             WHERE e.tenant_id = ?1 AND w.disabled_at IS NULL AND e.delivered_at IS NULL
             AND e.failed_at IS NULL AND e.next_attempt_at <= ?2 ORDER BY e.id LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![tenant, now, limit], |r| via(rows::due(r)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Records one attempt for `tenant`'s event `id`. Returns `true` when
    /// this failure disabled the webhook (it has been failing since at
    /// least `disable_after_ms` ago).
    fn record_attempt(
        &mut self,
        tenant: TenantId,
        id: i64,
        outcome: &Attempt,
        now: i64,
        disable_after_ms: i64,
    ) -> Result<bool, StoreError> {
        let tx = self.conn.savepoint()?;
        let disabled = match outcome {
            Attempt::Delivered => {
                tx.execute(
                    "UPDATE events SET delivered_at = ?2, attempts = attempts + 1, last_error = NULL WHERE id = ?1",
                    params![id, now],
                )?;
                tx.execute(
                    "UPDATE webhooks SET failing_since = NULL WHERE tenant_id = ?1",
                    [tenant],
                )?;
                false
            }
            Attempt::Retry(_, why) | Attempt::Failed(why) => {
                let (next, failed) = match outcome {
                    Attempt::Retry(next, _) => (Some(*next), None),
                    _ => (None, Some(now)),
                };
                tx.execute(
                    "UPDATE events SET attempts = attempts + 1, last_error = ?2,
                       next_attempt_at = COALESCE(?3, next_attempt_at), failed_at = ?4 WHERE id = ?1",
                    params![id, why, next, failed],
                )?;
                tx.execute(
                    "UPDATE webhooks SET failing_since = COALESCE(failing_since, ?2) WHERE tenant_id = ?1",
                    params![tenant, now],
                )?;
                tx.execute(
                    "UPDATE webhooks SET disabled_at = ?2 WHERE tenant_id = ?1
                     AND disabled_at IS NULL AND failing_since <= ?3",
                    params![tenant, now, now - disable_after_ms],
                )? > 0
            }
        };
        tx.commit()?;
        Ok(disabled)
    }

    /// A tenant's undelivered events: `failed` ones, or those still
    /// `pending`, oldest first.
    fn deliveries(
        &self,
        tenant: TenantId,
        failed: bool,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT event_id, type, attempts, created_at, next_attempt_at, failed_at, last_error
             FROM events WHERE tenant_id = ?1 AND delivered_at IS NULL
             AND (failed_at IS NOT NULL) = ?2 ORDER BY id LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![tenant, failed, limit], |r| via(rows::delivery(r)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Puts a failed event of `tenant` back in line with a fresh set of
    /// attempts; `false` if the tenant has no such failed event.
    fn redeliver(
        &mut self,
        tenant: TenantId,
        event_id: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        Ok(self.conn.execute(
            "UPDATE events SET failed_at = NULL, attempts = 0, next_attempt_at = ?3
             WHERE tenant_id = ?1 AND event_id = ?2 AND failed_at IS NOT NULL AND delivered_at IS NULL",
            params![tenant, event_id, now],
        )? > 0)
    }
}
