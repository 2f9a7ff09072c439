//! PostgreSQL: checkpoints of live calls, and settling the calls of an
//! instance that died.

use crate::store::live::*;
use crate::store::postgres::PgStore;
use crate::store::prelude::*;
use crate::store::{CallRecord, StoreError};

/// The calls a dead instance left, as records, with their talk time.
fn dead_calls(s: &PgStore, instance: &str, at: i64) -> Result<Vec<(CallRecord, i64)>, StoreError> {
    s.rows(crate::store::rows::DEAD_CALLS, &[&instance])?
        .iter()
        .map(|r| crate::store::rows::dead_call(r, at))
        .collect()
}

fn lease_of(lease: &Option<u64>) -> Option<i64> {
    lease.map(|l| i64::try_from(l).unwrap_or(i64::MAX))
}

impl LiveStore for PgStore {
    fn save_checkpoint(&mut self, c: &Checkpoint) -> Result<(), StoreError> {
        self.atomically(|s| {
            s.exec(
                "INSERT INTO live_instances (instance, at) VALUES (?1, ?2)
                 ON CONFLICT (instance) DO UPDATE SET at = excluded.at",
                &[&c.instance, &c.at],
            )?;
            for row in &c.rows {
                match row {
                    LiveRow::New {
                        key,
                        record: r,
                        lease,
                    } => {
                        s.exec(
                            "INSERT INTO live_calls (key, instance, tenant_id, binding_id,
                             direction, caller, callee, virtual, invite_at, ringing_at, answer_at,
                             lease_secs)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
                             ON CONFLICT (key) DO UPDATE SET instance = excluded.instance,
                             tenant_id = excluded.tenant_id, binding_id = excluded.binding_id,
                             direction = excluded.direction, caller = excluded.caller,
                             callee = excluded.callee, virtual = excluded.virtual,
                             invite_at = excluded.invite_at, ringing_at = excluded.ringing_at,
                             answer_at = excluded.answer_at, lease_secs = excluded.lease_secs",
                            &[
                                key,
                                &c.instance,
                                &r.tenant,
                                &r.binding,
                                &r.direction,
                                &r.caller,
                                &r.callee,
                                &r.x,
                                &r.invite_at,
                                &r.ringing_at,
                                &r.answer_at,
                                &lease_of(lease),
                            ],
                        )?;
                    }
                    LiveRow::Changed {
                        key,
                        answer_at,
                        lease,
                    } => {
                        s.exec(
                            "UPDATE live_calls SET answer_at = ?2, lease_secs = ?3 WHERE key = ?1",
                            &[key, answer_at, &lease_of(lease)],
                        )?;
                    }
                }
            }
            Ok(())
        })
    }

    fn end_live(&mut self, keys: &[String]) -> Result<(), StoreError> {
        for k in keys {
            self.exec("DELETE FROM live_calls WHERE key = ?1", &[k])?;
        }
        Ok(())
    }

    fn recover_live(
        &mut self,
        alive: &dyn Fn(&str) -> bool,
        fresh_since: i64,
    ) -> Result<usize, StoreError> {
        self.atomically(|s| {
            let mut instances = Vec::new();
            for r in s.rows("SELECT instance, at FROM live_instances FOR UPDATE", &[])? {
                instances.push((r.try_get::<_, String>(0)?, r.try_get::<_, i64>(1)?));
            }
            let mut records = Vec::new();
            for (instance, at) in instances.into_iter().filter(|(i, at)| !alive(i) && *at < fresh_since) {
                let calls = dead_calls(s, &instance, at)?;
                for (r, talk) in &calls {
                    if let (Some(b), true) = (r.binding, *talk > 0) {
                        s.exec(
                            "UPDATE bindings SET talk_secs_used = talk_secs_used + ?2 WHERE id = ?1",
                            &[&b, talk],
                        )?;
                    }
                }
                records.extend(calls.into_iter().map(|(r, _)| r));
                s.exec("DELETE FROM live_calls WHERE instance = ?1", &[&instance])?;
                s.exec(
                    "DELETE FROM live_instances WHERE instance = ?1",
                    &[&instance],
                )?;
            }
            s.insert_calls(&records)?;
            Ok(records.len())
        })
    }

    fn hold_node(
        &mut self,
        (node, sip): (&str, &str),
        instance: &str,
        now: i64,
        stale_before: i64,
        take: bool,
    ) -> Result<bool, StoreError> {
        let n = self.exec(
            crate::store::statements::HOLD_NODE,
            &[&node, &instance, &now, &stale_before, &take, &sip],
        )?;
        Ok(n == 1)
    }

    fn node_addresses(&self, fresh_since: i64) -> Result<Vec<String>, StoreError> {
        self.rows(crate::store::statements::NODE_ADDRESSES, &[&fresh_since])?
            .iter()
            .map(|r| Ok(r.try_get(0)?))
            .collect()
    }
}
