//! SQLite: the records area's statements (the neutral types are in
//! `store::records`).

use crate::bindings::TenantId;
use crate::store::prelude::*;
use crate::store::records::*;
use crate::store::rows;
use crate::store::sqlite::via;
use crate::store::{SqliteStore, StoreError};
use rusqlite::params;

impl SqliteStore {
    /// Deletes records of calls placed before `before` (unix ms).
    fn purge_call_rows(&mut self, before: i64) -> Result<usize, StoreError> {
        Ok(self
            .conn
            .execute("DELETE FROM calls WHERE invite_at < ?1", [before])?)
    }
}

impl RecordStore for SqliteStore {
    /// Writes records in one transaction.
    fn insert_calls(&mut self, records: &[CallRecord]) -> Result<(), StoreError> {
        self.atomically(|s| {
            let mut stmt = s.conn.prepare_cached(
                "INSERT INTO calls (tenant_id, binding_id, direction, caller, callee, virtual, invite_at,
                 ringing_at, answer_at, end_at, duration_secs, result, ended_by, reason, recording,
                 announced)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
            )?;
            for r in records {
                stmt.execute(params![
                    r.tenant,
                    r.binding,
                    r.direction,
                    r.caller,
                    r.callee,
                    r.x,
                    r.invite_at,
                    r.ringing_at,
                    r.answer_at,
                    r.end_at,
                    r.duration_secs as i64,
                    r.result,
                    r.ended_by,
                    r.reason,
                    r.recording,
                    r.announced
                ])?;
            }
            Ok(())
        })
    }

    /// A page of a tenant's call records, in order.
    fn calls(
        &self,
        tenant: TenantId,
        f: &CallFilter,
    ) -> Result<(Vec<CallRecord>, Option<i64>), StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, tenant_id, binding_id, direction, caller, callee, virtual, invite_at, ringing_at,
             answer_at, end_at, duration_secs, result, ended_by, reason, recording, announced FROM calls
             WHERE tenant_id = ?1 AND id > ?2 AND (?3 IS NULL OR binding_id = ?3)
             AND (?4 IS NULL OR caller = ?4 OR callee = ?4 OR virtual = ?4)
             AND (?5 IS NULL OR invite_at >= ?5) AND (?6 IS NULL OR invite_at < ?6)
             AND (?7 IS NULL OR result = ?7) ORDER BY id LIMIT ?8",
        )?;
        let rows = stmt.query_map(
            params![
                tenant,
                f.after,
                f.binding,
                f.number,
                f.from,
                f.to,
                f.result,
                f.limit + 1
            ],
            |r| via(rows::call(r)),
        )?;
        let items = rows.collect::<Result<Vec<_>, _>>()?;
        Ok(crate::store::paginate(items, f.limit, |c| c.id))
    }

    fn purge_calls(&mut self, before: i64) -> Result<usize, StoreError> {
        let n = self.purge_call_rows(before)?;
        // Events go with the records of the same age, delivered or not:
        // a receiver that never came back does not keep them forever.
        let m = self
            .conn
            .execute("DELETE FROM events WHERE created_at < ?1", [before])?;
        Ok(n + m)
    }
}
