//! PostgreSQL: call records.

use crate::bindings::TenantId;
use crate::store::postgres::PgStore;
use crate::store::prelude::*;
use crate::store::records::*;
use crate::store::rows;
use crate::store::StoreError;

impl RecordStore for PgStore {
    fn insert_calls(&mut self, records: &[CallRecord]) -> Result<(), StoreError> {
        self.atomically(|s| {
            for r in records {
                s.exec(
                    "INSERT INTO calls (tenant_id, binding_id, direction, caller, callee, virtual,
                     invite_at, ringing_at, answer_at, end_at, duration_secs, result, ended_by,
                     reason, recording, announced)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
                    &[
                        &r.tenant,
                        &r.binding,
                        &r.direction,
                        &r.caller,
                        &r.callee,
                        &r.x,
                        &r.invite_at,
                        &r.ringing_at,
                        &r.answer_at,
                        &r.end_at,
                        &(r.duration_secs as i64),
                        &i64::from(r.result),
                        &r.ended_by,
                        &r.reason,
                        &r.recording,
                        &r.announced,
                    ],
                )?;
            }
            Ok(())
        })
    }

    fn calls(
        &self,
        tenant: TenantId,
        f: &CallFilter,
    ) -> Result<(Vec<CallRecord>, Option<i64>), StoreError> {
        let found = self.rows(
            "SELECT id, tenant_id, binding_id, direction, caller, callee, virtual, invite_at,
             ringing_at, answer_at, end_at, duration_secs, result, ended_by, reason, recording,
             announced FROM calls
             WHERE tenant_id = ?1 AND id > ?2 AND (?3::BIGINT IS NULL OR binding_id = ?3)
             AND (?4::TEXT IS NULL OR caller = ?4 OR callee = ?4 OR virtual = ?4)
             AND (?5::BIGINT IS NULL OR invite_at >= ?5) AND (?6::BIGINT IS NULL OR invite_at < ?6)
             AND (?7::BIGINT IS NULL OR result = ?7) ORDER BY id LIMIT ?8",
            &[
                &tenant,
                &f.after,
                &f.binding,
                &f.number,
                &f.from,
                &f.to,
                &f.result.map(i64::from),
                &(i64::from(f.limit) + 1),
            ],
        )?;
        let items = found
            .iter()
            .map(rows::call)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(crate::store::paginate(items, f.limit, |c| c.id))
    }

    fn purge_calls(&mut self, before: i64) -> Result<usize, StoreError> {
        let n = self.exec("DELETE FROM calls WHERE invite_at < ?1", &[&before])?;
        // Events go with the records of the same age, delivered or not.
        let m = self.exec("DELETE FROM events WHERE created_at < ?1", &[&before])?;
        Ok(usize::try_from(n + m).unwrap_or(usize::MAX))
    }
}
