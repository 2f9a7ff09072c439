//! PostgreSQL: call records.

use crate::bindings::TenantId;
use crate::store::postgres::PgStore;
use crate::store::prelude::*;
use crate::store::records::*;
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
        let rows = self.rows(
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
        let mut items = Vec::with_capacity(rows.len());
        for r in rows {
            items.push(CallRecord {
                id: r.try_get(0)?,
                tenant: r.try_get(1)?,
                binding: r.try_get(2)?,
                direction: r.try_get(3)?,
                caller: r.try_get(4)?,
                callee: r.try_get(5)?,
                x: r.try_get(6)?,
                invite_at: r.try_get(7)?,
                ringing_at: r.try_get(8)?,
                answer_at: r.try_get(9)?,
                end_at: r.try_get(10)?,
                duration_secs: r.try_get::<_, i64>(11)?.max(0) as u64,
                result: u16::try_from(r.try_get::<_, i64>(12)?).unwrap_or(0),
                ended_by: r.try_get(13)?,
                reason: r.try_get(14)?,
                recording: r.try_get(15)?,
                announced: r.try_get(16)?,
            });
        }
        Ok(crate::store::paginate(items, f.limit, |c| c.id))
    }

    fn purge_calls(&mut self, before: i64) -> Result<usize, StoreError> {
        let n = self.exec("DELETE FROM calls WHERE invite_at < ?1", &[&before])?;
        // Events go with the records of the same age, delivered or not.
        let m = self.exec("DELETE FROM events WHERE created_at < ?1", &[&before])?;
        Ok(usize::try_from(n + m).unwrap_or(usize::MAX))
    }
}
