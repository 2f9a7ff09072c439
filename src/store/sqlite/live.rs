//! SQLite: the live area's statements (the neutral types are in
//! `store::live`).

use crate::store::live::*;
use crate::store::prelude::*;
use crate::store::{CallRecord, SqliteStore, StoreError};
use rusqlite::params;

/// The calls a dead instance left, as records, with their talk time.
fn dead_calls(
    s: &SqliteStore,
    instance: &str,
    at: i64,
) -> Result<Vec<(CallRecord, i64)>, StoreError> {
    let mut stmt = s.conn.prepare_cached(crate::store::rows::DEAD_CALLS)?;
    let rows = stmt.query_map([instance], |r| {
        crate::store::sqlite::via(crate::store::rows::dead_call(r, at))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

impl LiveStore for SqliteStore {
    /// Applies a checkpoint.
    fn save_checkpoint(&mut self, c: &Checkpoint) -> Result<(), StoreError> {
        let tx = self.conn.savepoint()?;
        tx.prepare_cached(
            "INSERT INTO live_instances (instance, at) VALUES (?1, ?2)
             ON CONFLICT (instance) DO UPDATE SET at = excluded.at",
        )?
        .execute(params![c.instance, c.at])?;
        for row in &c.rows {
            match row {
                LiveRow::New {
                    key,
                    record: r,
                    lease,
                } => {
                    tx.prepare_cached(
                        "INSERT OR REPLACE INTO live_calls (key, instance, tenant_id, binding_id, direction,
                         caller, callee, virtual, invite_at, ringing_at, answer_at, lease_secs)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                    )?
                    .execute(params![
                        key,
                        c.instance,
                        r.tenant,
                        r.binding,
                        r.direction,
                        r.caller,
                        r.callee,
                        r.x,
                        r.invite_at,
                        r.ringing_at,
                        r.answer_at,
                        lease.map(|l| l as i64)
                    ])?;
                }
                LiveRow::Changed {
                    key,
                    answer_at,
                    lease,
                } => {
                    tx.prepare_cached(
                        "UPDATE live_calls SET answer_at = ?2, lease_secs = ?3 WHERE key = ?1",
                    )?
                    .execute(params![
                        key,
                        answer_at,
                        lease.map(|l| l as i64)
                    ])?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Drops the checkpoint rows of calls that ended (booked normally).
    fn end_live(&mut self, keys: &[String]) -> Result<(), StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("DELETE FROM live_calls WHERE key = ?1")?;
        for k in keys {
            stmt.execute([k])?;
        }
        Ok(())
    }

    /// Books the calls of instances that died (`alive` says which still
    /// run, e.g. one draining); returns how many. Run before loading.
    fn recover_live(
        &mut self,
        alive: &dyn Fn(&str) -> bool,
        fresh_since: i64,
    ) -> Result<usize, StoreError> {
        self.atomically(|s| {
            let instances: Vec<(String, i64)> = {
                let mut stmt = s.conn.prepare("SELECT instance, at FROM live_instances")?;
                let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
                rows.collect::<Result<_, _>>()?
            };
            let mut records = Vec::new();
            for (instance, at) in instances.into_iter().filter(|(i, at)| !alive(i) && *at < fresh_since) {
                let calls = dead_calls(s, &instance, at)?;
                for (r, talk) in &calls {
                    if let (Some(b), true) = (r.binding, *talk > 0) {
                        s.conn.execute(
                            "UPDATE bindings SET talk_secs_used = talk_secs_used + ?2 WHERE id = ?1",
                            params![b, talk],
                        )?;
                    }
                }
                records.extend(calls.into_iter().map(|(r, _)| r));
                s.conn
                    .execute("DELETE FROM live_calls WHERE instance = ?1", [&instance])?;
                s.conn
                    .execute("DELETE FROM live_instances WHERE instance = ?1", [&instance])?;
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
        let n = self
            .conn
            .prepare_cached(crate::store::statements::HOLD_NODE)?
            .execute(params![node, instance, now, stale_before, take, sip])?;
        Ok(n == 1)
    }

    fn node_addresses(&self, fresh_since: i64) -> Result<Vec<String>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(crate::store::statements::NODE_ADDRESSES)?
            .query_map([fresh_since], |r| r.get(0))?
            .collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(instance: &str, answer_at: Option<i64>) -> Checkpoint {
        Checkpoint {
            instance: instance.into(),
            at: 10_000,
            rows: vec![LiveRow::New {
                key: format!("{instance}-1"),
                record: Box::new(CallRecord {
                    caller: "+1".into(),
                    x: "+9".into(),
                    invite_at: 1_000,
                    answer_at,
                    ..Default::default()
                }),
                lease: Some(5),
            }],
        }
    }

    #[test]
    fn only_dead_instances_are_booked_and_the_lease_caps_the_talk() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = SqliteStore::open(dir.path()).expect("open");
        s.save_checkpoint(&call("dead", Some(2_000))).expect("save");
        s.save_checkpoint(&call("draining", Some(2_000)))
            .expect("save");
        let n = s
            .recover_live(&|i| i == "draining", i64::MAX)
            .expect("recover");
        assert_eq!(n, 1, "the draining instance's call is its own");
        let (calls, _) = s
            .calls(
                0,
                &crate::store::CallFilter {
                    limit: 10,
                    ..Default::default()
                },
            )
            .expect("records");
        assert_eq!(calls.len(), 1);
        assert_eq!(
            calls[0].duration_secs, 5,
            "8 s up to the heartbeat, leased 5"
        );
        assert_eq!(s.recover_live(&|_| false, i64::MAX).expect("again"), 1);
        assert_eq!(s.recover_live(&|_| false, i64::MAX).expect("empty"), 0);
    }
}
