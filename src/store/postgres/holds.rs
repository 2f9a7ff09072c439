//! PostgreSQL: calls' holds on their bindings (the statements are in
//! `store::holds`). The reservation is one statement, so one round trip,
//! on the call path; nothing else a call does waits on the database.

use crate::bindings::{BindingId, Refusal};
use crate::store::holds::*;
use crate::store::postgres::PgStore;
use crate::store::StoreError;

fn secs(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// [`GIVE_BACK`] on binding `id` with the parameters `p`.
fn give(s: &PgStore, id: BindingId, p: [i64; 6]) -> Result<(), StoreError> {
    s.exec(GIVE_BACK, &[&id, &p[0], &p[1], &p[2], &p[3], &p[4], &p[5]])?;
    Ok(())
}

impl HoldStore for PgStore {
    fn reserve(&mut self, r: &Reserve) -> Result<Result<u64, Refusal>, StoreError> {
        let c = &r.limits;
        // The hold is recorded by the same statement: one round trip.
        let sql = crate::text::cat(&[
            "WITH r AS (",
            RESERVE,
            "), h AS (INSERT INTO holds (key, instance, binding, at, answered, leased)
             SELECT CAST(?8 AS TEXT), CAST(?9 AS TEXT), id, CAST(?4 AS BIGINT), 0, talk_granted
             FROM r WHERE CAST(?8 AS TEXT) <> '')
             SELECT (SELECT talk_granted FROM r), b.calls_used, b.calls_live, b.day, b.day_calls,
             b.talk_secs_used, b.talk_leased FROM bindings b WHERE b.id = ?1",
        ]);
        let key = r.hold.clone().unwrap_or_default();
        let row = self.row(
            &sql,
            &[
                &r.id,
                &i64::from(c.max_calls),
                &c.today,
                &r.at,
                &i64::from(c.max_per_day),
                &secs(c.budget),
                &secs(r.want),
                &key,
                &r.instance,
            ],
        )?;
        // The counts are as the statement began: they say which limit
        // refused it.
        let Some(row) = row else {
            return Ok(Err(refusal_of(r, None)));
        };
        if let Some(g) = row.try_get::<_, Option<i64>>(0)? {
            return Ok(Ok(g.max(0) as u64));
        }
        let mut counts = [0i64; 6];
        for (i, v) in counts.iter_mut().enumerate() {
            *v = row.try_get(i + 1)?;
        }
        Ok(Err(refusal_of(r, Some(counts))))
    }

    fn lease(
        &mut self,
        id: BindingId,
        hold: &str,
        budget: u64,
        want: u64,
    ) -> Result<u64, StoreError> {
        let sql = crate::text::cat(&[
            "WITH l AS (",
            LEASE,
            "), h AS (UPDATE holds SET leased = leased + (SELECT talk_granted FROM l)
             WHERE key = ?4 AND EXISTS (SELECT 1 FROM l)) SELECT talk_granted FROM l",
        ]);
        let row = self.row(&sql, &[&id, &secs(budget), &secs(want), &hold])?;
        Ok(row
            .map(|r| r.try_get::<_, i64>(0))
            .transpose()?
            .unwrap_or(0)
            .max(0) as u64)
    }

    fn settle_holds(&mut self, settled: &[Settle]) -> Result<(), StoreError> {
        self.atomically(|s| {
            for x in settled {
                let held = match &x.hold {
                    Some(key) => match s.row(END_HOLD, &[key])? {
                        Some(r) => Some(r.try_get::<_, i64>(0)?),
                        // Settled by the node that recovered its instance
                        // (cut off past its lease): counted there.
                        None => continue,
                    },
                    None => None,
                };
                give(s, x.id, give_back(x, held))?;
            }
            Ok(())
        })
    }

    fn release_dead_holds(
        &mut self,
        alive: &dyn Fn(&str) -> bool,
        fresh_since: i64,
    ) -> Result<usize, StoreError> {
        self.atomically(|s| {
            let mut instances = Vec::new();
            for r in s.rows(HOLDING, &[&fresh_since])? {
                instances.push(r.try_get::<_, String>(0)?);
            }
            let mut released = 0;
            for i in instances.iter().filter(|i| !alive(i)) {
                for r in s.rows(DEAD_HOLDS, &[i])? {
                    let (b, n, leased) = (
                        r.try_get::<_, i64>(0)?,
                        r.try_get::<_, i64>(1)?,
                        r.try_get::<_, i64>(2)?,
                    );
                    give(s, b, dead_give_back(n, leased))?;
                }
                released += s.exec(FORGET_HOLDS, &[i])? as usize;
            }
            Ok(released)
        })
    }
}
