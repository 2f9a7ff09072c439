//! SQLite: calls' holds on their bindings (the statements are in
//! `store::holds`). A single node never needs them; they are here so
//! that both backends answer the same conformance tests.

use rusqlite::{params, OptionalExtension};

use crate::bindings::{BindingId, Refusal};
use crate::store::holds::*;
use crate::store::{SqliteStore, StoreError};

fn secs(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// [`GIVE_BACK`] on binding `id` with the parameters `p`.
fn give(c: &rusqlite::Connection, id: BindingId, p: [i64; 6]) -> Result<(), StoreError> {
    c.prepare_cached(GIVE_BACK)?
        .execute(params![id, p[0], p[1], p[2], p[3], p[4], p[5]])?;
    Ok(())
}

impl HoldStore for SqliteStore {
    fn reserve(&mut self, r: &Reserve) -> Result<Result<u64, Refusal>, StoreError> {
        let c = &r.limits;
        let tx = self.conn.savepoint()?;
        let granted: Option<i64> = tx
            .prepare_cached(RESERVE)?
            .query_row(
                params![
                    r.id,
                    c.max_calls,
                    c.today,
                    r.at,
                    c.max_per_day,
                    secs(c.budget),
                    secs(r.want)
                ],
                |row| row.get(1),
            )
            .optional()?;
        let Some(granted) = granted else {
            let counts = tx
                .prepare_cached(COUNTS)?
                .query_row([r.id], |r| {
                    Ok([
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                    ])
                })
                .optional()?;
            return Ok(Err(refusal_of(r, counts)));
        };
        if let Some(key) = &r.hold {
            tx.prepare_cached(INSERT_HOLD)?
                .execute(params![key, r.instance, r.id, r.at, granted])?;
        }
        tx.commit()?;
        Ok(Ok(granted.max(0) as u64))
    }

    fn lease(
        &mut self,
        id: BindingId,
        hold: &str,
        budget: u64,
        want: u64,
    ) -> Result<u64, StoreError> {
        let tx = self.conn.savepoint()?;
        let granted: Option<i64> = tx
            .prepare_cached(LEASE)?
            .query_row(params![id, secs(budget), secs(want)], |r| r.get(0))
            .optional()?;
        let granted = granted.unwrap_or(0).max(0);
        if granted > 0 {
            tx.prepare_cached(LEASE_HOLD)?
                .execute(params![hold, granted])?;
        }
        tx.commit()?;
        Ok(granted as u64)
    }

    fn settle_holds(&mut self, settled: &[Settle]) -> Result<(), StoreError> {
        let tx = self.conn.savepoint()?;
        for s in settled {
            let held: Option<i64> = match &s.hold {
                Some(key) => match tx
                    .prepare_cached(END_HOLD)?
                    .query_row([key], |r| r.get(0))
                    .optional()?
                {
                    Some(leased) => Some(leased),
                    // Settled by the node that recovered its instance
                    // (cut off past its lease): counted there.
                    None => continue,
                },
                None => None,
            };
            give(&tx, s.id, give_back(s, held))?;
        }
        tx.commit()?;
        Ok(())
    }

    fn release_dead_holds(
        &mut self,
        alive: &dyn Fn(&str) -> bool,
        fresh_since: i64,
    ) -> Result<usize, StoreError> {
        let tx = self.conn.savepoint()?;
        let instances: Vec<String> = tx
            .prepare_cached(HOLDING)?
            .query_map([fresh_since], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let mut released = 0;
        for i in instances.iter().filter(|i| !alive(i)) {
            let per: Vec<(i64, i64, i64)> = tx
                .prepare_cached(DEAD_HOLDS)?
                .query_map([i], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<Result<_, _>>()?;
            for &(binding, n, leased) in &per {
                give(&tx, binding, dead_give_back(n, leased))?;
            }
            released += tx.prepare_cached(FORGET_HOLDS)?.execute([i])?;
        }
        tx.commit()?;
        Ok(released)
    }
}
