//! PostgreSQL: webhooks and their deliveries.

use crate::bindings::TenantId;
use crate::store::postgres::PgStore;
use crate::store::prelude::*;
use crate::store::rows;
use crate::store::webhooks::*;
use crate::store::StoreError;

/// Where the delivery locks of tenants start (tenant ids are added), apart
/// from the migration's lock.
const DELIVERY_LOCKS: i64 = 1 << 48;

impl WebhookStore for PgStore {
    fn set_webhook(
        &mut self,
        tenant: TenantId,
        url: &str,
        secret: &str,
        masked: bool,
    ) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO webhooks (tenant_id, url, secret, created_at, masked)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (tenant_id) DO UPDATE SET url = excluded.url, secret = excluded.secret,
               masked = excluded.masked, failing_since = NULL, disabled_at = NULL",
            &[&tenant, &url, &secret, &crate::time::now(), &masked],
        )?;
        Ok(())
    }

    fn webhook(&self, tenant: TenantId) -> Result<Option<Webhook>, StoreError> {
        self.row(
            "SELECT url, secret, masked, failing_since, disabled_at FROM webhooks
             WHERE tenant_id = ?1",
            &[&tenant],
        )?
        .map(|r| rows::webhook(&r))
        .transpose()
    }

    fn delete_webhook(&mut self, tenant: TenantId) -> Result<bool, StoreError> {
        self.atomically(|s| {
            let n = s.exec("DELETE FROM webhooks WHERE tenant_id = ?1", &[&tenant])?;
            s.exec(
                "UPDATE events SET delivered_at = 0 WHERE tenant_id = ?1 AND delivered_at IS NULL",
                &[&tenant],
            )?;
            Ok(n > 0)
        })
    }

    fn webhook_tenants(&self) -> Result<Vec<TenantId>, StoreError> {
        self.rows("SELECT tenant_id FROM webhooks", &[])?
            .iter()
            .map(|r| Ok(r.try_get(0)?))
            .collect()
    }

    fn webhook_health(&self) -> Result<(i64, i64), StoreError> {
        let r = self.one(
            "SELECT (SELECT COUNT(*) FROM webhooks WHERE disabled_at IS NOT NULL),
                    (SELECT COUNT(*) FROM events WHERE failed_at IS NOT NULL
                     AND delivered_at IS NULL)",
            &[],
        )?;
        Ok((r.try_get(0)?, r.try_get(1)?))
    }

    /// Tenants with events due whose deliveries this connection holds: a
    /// tenant's deliveries are one node's at a time (a session advisory
    /// lock, taken by the first node to find it due and kept while its
    /// connection lives, so a node that dies hands them over), so each
    /// event goes out once however many nodes run.
    fn due_tenants(&self, now: i64) -> Result<Vec<TenantId>, StoreError> {
        self.rows(
            "SELECT tenant_id FROM (
               SELECT w.tenant_id FROM webhooks w WHERE w.disabled_at IS NULL AND EXISTS (
                 SELECT 1 FROM events e WHERE e.tenant_id = w.tenant_id
                 AND e.delivered_at IS NULL AND e.failed_at IS NULL AND e.next_attempt_at <= ?1)
               ORDER BY w.tenant_id) due
             WHERE pg_try_advisory_lock(?2 + tenant_id)",
            &[&now, &DELIVERY_LOCKS],
        )?
        .iter()
        .map(|r| Ok(r.try_get(0)?))
        .collect()
    }

    fn due_events(&self, tenant: TenantId, now: i64, limit: u32) -> Result<Vec<Due>, StoreError> {
        self.rows(
            "SELECT e.id, e.body, e.event_id, e.attempts, w.url, w.secret, w.masked FROM events e
             JOIN webhooks w ON w.tenant_id = e.tenant_id
             WHERE e.tenant_id = ?1 AND w.disabled_at IS NULL AND e.delivered_at IS NULL
             AND e.failed_at IS NULL AND e.next_attempt_at <= ?2 ORDER BY e.id LIMIT ?3",
            &[&tenant, &now, &i64::from(limit)],
        )?
        .iter()
        .map(rows::due)
        .collect()
    }

    fn record_attempt(
        &mut self,
        tenant: TenantId,
        id: i64,
        outcome: &Attempt,
        now: i64,
        disable_after_ms: i64,
    ) -> Result<bool, StoreError> {
        self.atomically(|s| match outcome {
            Attempt::Delivered => {
                s.exec(
                    "UPDATE events SET delivered_at = ?2, attempts = attempts + 1,
                     last_error = NULL WHERE id = ?1",
                    &[&id, &now],
                )?;
                s.exec(
                    "UPDATE webhooks SET failing_since = NULL WHERE tenant_id = ?1",
                    &[&tenant],
                )?;
                Ok(false)
            }
            Attempt::Retry(_, why) | Attempt::Failed(why) => {
                let (next, failed) = match outcome {
                    Attempt::Retry(next, _) => (Some(*next), None),
                    _ => (None, Some(now)),
                };
                s.exec(
                    "UPDATE events SET attempts = attempts + 1, last_error = ?2,
                       next_attempt_at = COALESCE(?3, next_attempt_at), failed_at = ?4
                     WHERE id = ?1",
                    &[&id, why, &next, &failed],
                )?;
                s.exec(
                    "UPDATE webhooks SET failing_since = COALESCE(failing_since, ?2)
                     WHERE tenant_id = ?1",
                    &[&tenant, &now],
                )?;
                Ok(s.exec(
                    "UPDATE webhooks SET disabled_at = ?2 WHERE tenant_id = ?1
                     AND disabled_at IS NULL AND failing_since <= ?3",
                    &[&tenant, &now, &(now - disable_after_ms)],
                )? > 0)
            }
        })
    }

    fn deliveries(
        &self,
        tenant: TenantId,
        failed: bool,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError> {
        self.rows(
            "SELECT event_id, type, attempts, created_at, next_attempt_at, failed_at, last_error
             FROM events WHERE tenant_id = ?1 AND delivered_at IS NULL
             AND (failed_at IS NOT NULL) = ?2 ORDER BY id LIMIT ?3",
            &[&tenant, &failed, &i64::from(limit)],
        )?
        .iter()
        .map(rows::delivery)
        .collect()
    }

    fn redeliver(
        &mut self,
        tenant: TenantId,
        event_id: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        Ok(self.exec(
            "UPDATE events SET failed_at = NULL, attempts = 0, next_attempt_at = ?3
             WHERE tenant_id = ?1 AND event_id = ?2 AND failed_at IS NOT NULL
             AND delivered_at IS NULL",
            &[&tenant, &event_id, &now],
        )? > 0)
    }
}
