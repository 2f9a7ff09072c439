//! Checkpoints of live calls, so a crash loses seconds, not calls: the
//! writer replaces the table with the live calls every few seconds and
//! deletes a call's row in the same transaction that books its end. At
//! start, rows left by a crash are booked (talk time so far, a call record
//! saying sipmask stopped) and cleared.

use rusqlite::params;

use super::{CallRecord, SqliteStore, StoreError};

/// A live call as checkpointed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LiveCall {
    /// Unique over restarts: the engine's instance and call id.
    pub key: String,
    /// The call record so far (`end_at` = the checkpoint's time).
    pub record: CallRecord,
    /// Talk time so far, seconds (0 until the answer is confirmed).
    pub talk_secs: u64,
}

impl SqliteStore {
    /// Replaces `instance`'s checkpoint with `calls` (keys are
    /// `<instance>-<call>`; a draining sibling's rows are not touched).
    pub fn replace_live(&mut self, instance: &str, calls: &[LiveCall]) -> Result<(), StoreError> {
        let tx = self.conn.savepoint()?;
        tx.execute(
            "DELETE FROM live_calls WHERE key LIKE ?1",
            [format!("{instance}-%")],
        )?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO live_calls (key, tenant_id, binding_id, direction, caller, callee, virtual,
                 invite_at, ringing_at, answer_at, at, talk_secs)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )?;
            for c in calls {
                let r = &c.record;
                stmt.execute(params![
                    c.key,
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
                    c.talk_secs as i64
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Drops the checkpoint rows of calls that ended (booked normally).
    pub fn end_live(&mut self, keys: &[String]) -> Result<(), StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("DELETE FROM live_calls WHERE key = ?1")?;
        for k in keys {
            stmt.execute([k])?;
        }
        Ok(())
    }

    /// Books calls that were live when their instance died (`alive` says
    /// which instances still run, e.g. one draining): their talk time so
    /// far and a call record; returns how many. Run before loading.
    pub fn recover_live(&mut self, alive: &dyn Fn(&str) -> bool) -> Result<usize, StoreError> {
        self.atomically(|s| {
            let calls = {
                let mut stmt = s.conn.prepare(
                    "SELECT tenant_id, binding_id, direction, caller, callee, virtual, invite_at,
                     ringing_at, answer_at, at, talk_secs, key FROM live_calls",
                )?;
                let rows = stmt.query_map([], |r| {
                    let talk: i64 = r.get(10)?;
                    let answered: Option<i64> = r.get(8)?;
                    Ok((
                        r.get::<_, String>(11)?,
                        CallRecord {
                            tenant: r.get(0)?,
                            binding: r.get(1)?,
                            direction: r.get(2)?,
                            caller: r.get(3)?,
                            callee: r.get(4)?,
                            x: r.get(5)?,
                            invite_at: r.get(6)?,
                            ringing_at: r.get(7)?,
                            answer_at: answered,
                            end_at: r.get(9)?,
                            duration_secs: talk.max(0) as u64,
                            result: if answered.is_some() { 200 } else { 503 },
                            ended_by: answered.map(|_| "system".to_string()),
                            reason: "sipmask stopped during the call".into(),
                            ..Default::default()
                        },
                        talk.max(0),
                    ))
                })?;
                rows.collect::<Result<Vec<_>, _>>()?
            };
            let calls: Vec<_> = calls
                .into_iter()
                .filter(|(key, _, _)| !alive(key.split('-').next().unwrap_or("")))
                .collect();
            for (key, _, _) in &calls {
                s.conn
                    .execute("DELETE FROM live_calls WHERE key = ?1", [key])?;
            }
            for (_, r, talk) in &calls {
                if let Some(b) = r.binding {
                    s.conn.execute(
                        "UPDATE bindings SET talk_secs_used = talk_secs_used + ?2 WHERE id = ?1",
                        params![b, talk],
                    )?;
                }
            }
            let records: Vec<CallRecord> = calls.into_iter().map(|(_, r, _)| r).collect();
            s.insert_calls(&records)?;
            Ok(records.len())
        })
    }
}
