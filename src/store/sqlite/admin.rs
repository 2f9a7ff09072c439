//! SQLite: the admin area's statements (the neutral types are in
//! `store::admin`).

use crate::bindings::{Binding, BindingId, Claim, Conditions, Number, TenantId};
use crate::store::admin::*;
use crate::store::changes::Change;
use crate::store::prelude::*;
use crate::store::sqlite::{columns, read_row, SELECT};
use crate::store::{NewBinding, UsageUpdate};
use crate::store::{SqliteStore, StoreError};
use rusqlite::{params, OptionalExtension};

/// Logs a change of bindings for every running server (the same
/// statement as `ChangeLog::log_change`, on a transaction in progress).
fn log(conn: &rusqlite::Connection, c: &Change, origin: &str) -> Result<(), StoreError> {
    super::changes::log_on(conn, c, origin)
}

fn owner_in(
    conn: &rusqlite::Connection,
    x: &Number,
) -> Result<Option<(TenantId, Claim)>, StoreError> {
    let row: Option<(TenantId, String)> = conn
        .query_row(
            "SELECT tenant_id, source FROM numbers WHERE number = ?1",
            [x.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    row.map(|(t, source)| match Claim::parse(&source) {
        Some(c) => Ok((t, c)),
        None => Err(StoreError::Corrupt {
            id: t,
            reason: format!("number {} has the unknown source {source:?}", x.as_str()),
        }),
    })
    .transpose()
}

impl SqliteStore {
    /// Runs `f` as one unit: all its writes commit together or not at all.
    /// At the top level it takes the write lock first (`BEGIN IMMEDIATE`):
    /// a unit that reads before it writes must not find, at its first write,
    /// that another connection committed in between (SQLite would refuse it
    /// outright rather than wait). Nested units become savepoints.
    pub fn atomically<T, E: From<StoreError>>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, E>,
    ) -> Result<T, E> {
        let top = self.conn.is_autocommit();
        let (begin, commit, rollback) = if top {
            ("BEGIN IMMEDIATE", "COMMIT", "ROLLBACK")
        } else {
            (
                "SAVEPOINT atomically",
                "RELEASE atomically",
                "ROLLBACK TO atomically; RELEASE atomically",
            )
        };
        // Cached statements: the store writer opens a unit per batch, and
        // parsing BEGIN and COMMIT anew each time was a tenth of its work.
        self.run_cached(begin)?;
        match f(self) {
            Ok(v) => {
                self.run_cached(commit)?;
                Ok(v)
            }
            Err(e) => {
                let _ = self.conn.execute_batch(rollback);
                Err(e)
            }
        }
    }

    /// Runs one statement without parameters from the statement cache.
    fn run_cached(&self, sql: &str) -> Result<(), StoreError> {
        self.conn.prepare_cached(sql)?.execute([])?;
        Ok(())
    }
}

impl TenantStore for SqliteStore {
    /// Creates a tenant; returns its id.
    fn add_tenant(&mut self, name: &str, now: i64) -> Result<TenantId, StoreError> {
        self.conn.execute(
            "INSERT INTO tenants (name, created_at) VALUES (?1, ?2)",
            params![name, now],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Stores the hash of a new API key for a tenant under its public id.
    fn add_key(
        &mut self,
        tenant: TenantId,
        key_id: &str,
        hash: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO api_keys (hash, tenant_id, created_at, key_id) VALUES (?1, ?2, ?3, ?4)",
            params![hash, tenant, now, key_id],
        )?;
        Ok(())
    }

    /// A tenant's keys: (public id, created at), oldest first.
    fn tenant_keys(&self, tenant: TenantId) -> Result<Vec<(String, i64)>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT key_id, created_at FROM api_keys WHERE tenant_id = ?1 ORDER BY rowid",
        )?;
        let rows = stmt.query_map([tenant], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Revokes a tenant's key; `false` if the tenant has no such key.
    fn revoke_key(&mut self, tenant: TenantId, key_id: &str) -> Result<bool, StoreError> {
        Ok(self.conn.execute(
            "DELETE FROM api_keys WHERE tenant_id = ?1 AND key_id = ?2",
            params![tenant, key_id],
        )? > 0)
    }

    /// Every tenant: (id, name), by name.
    fn tenants(&self) -> Result<Vec<(TenantId, String)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, name FROM tenants ORDER BY name")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The tenant of one key hash.
    fn key_tenant(&self, hash: &str) -> Result<Option<TenantId>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT tenant_id FROM api_keys WHERE hash = ?1",
                [hash],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Every (key hash, tenant), for the API's key cache.
    fn keys(&self) -> Result<Vec<(String, TenantId)>, StoreError> {
        let mut stmt = self.conn.prepare("SELECT hash, tenant_id FROM api_keys")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Tenant id by name.
    fn tenant_by_name(&self, name: &str) -> Result<Option<TenantId>, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT id FROM tenants WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()?)
    }
}

impl NumberStore for SqliteStore {
    /// Adds numbers to a tenant's pool; all or nothing. A number that
    /// anyone already holds (in a pool, as an identifier, as the operator's)
    /// is the error, with whether it is the tenant's own.
    fn add_numbers(
        &mut self,
        tenant: TenantId,
        numbers: &[Number],
        now: i64,
    ) -> Result<Result<(), (Number, bool)>, StoreError> {
        let tx = self.conn.savepoint()?;
        for n in numbers {
            if let Some(owner) = owner_in(&tx, n)? {
                return Ok(Err((n.clone(), owner.0 == tenant)));
            }
            tx.execute(
                "INSERT INTO numbers (number, tenant_id, created_at, source) VALUES (?1, ?2, ?3, 'pool')",
                params![n.as_str(), tenant, now],
            )?;
        }
        tx.commit()?;
        Ok(Ok(()))
    }

    /// Who holds X (tenant, and how: `pool`, `token` or `cli`), if anyone.
    fn owner(&self, x: &Number) -> Result<Option<(TenantId, Claim)>, StoreError> {
        owner_in(&self.conn, x)
    }

    /// Claims X for `tenant` as `source` (`token` or `cli`). Claiming what
    /// the same tenant already holds is fine; `false` if someone else does.
    fn claim(
        &mut self,
        tenant: TenantId,
        x: &Number,
        source: Claim,
        now: i64,
    ) -> Result<bool, StoreError> {
        if let Some((owner, _)) = owner_in(&self.conn, x)? {
            return Ok(owner == tenant);
        }
        self.conn.execute(
            "INSERT INTO numbers (number, tenant_id, created_at, source) VALUES (?1, ?2, ?3, ?4)",
            params![x.as_str(), tenant, now, source.as_str()],
        )?;
        Ok(true)
    }

    /// Lets go of the operator's claim on X once no binding uses it.
    fn release_cli_claim(&mut self, x: &Number) -> Result<(), StoreError> {
        self.conn.execute(
            "DELETE FROM numbers WHERE number = ?1 AND source = 'cli'
             AND NOT EXISTS (SELECT 1 FROM bindings WHERE virtual = ?1)",
            [x.as_str()],
        )?;
        Ok(())
    }

    /// A tenant's pool, in number order.
    fn numbers(&self, tenant: TenantId) -> Result<Vec<Number>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT number FROM numbers WHERE tenant_id = ?1 AND source = 'pool' ORDER BY number",
        )?;
        let rows = stmt.query_map([tenant], |r| r.get::<_, String>(0))?;
        Ok(rows
            .map(|r| r.map(Number::from_normalised))
            .collect::<Result<_, _>>()?)
    }

    /// Removes a number from a tenant's pool; `false` if it was not there.
    fn remove_number(&mut self, tenant: TenantId, n: &Number) -> Result<bool, StoreError> {
        Ok(self.conn.execute(
            "DELETE FROM numbers WHERE tenant_id = ?1 AND number = ?2 AND source = 'pool'",
            params![tenant, n.as_str()],
        )? > 0)
    }

    /// X values quarantined now for any of `parties` (or for anyone, if
    /// `parties` is empty), each with its end.
    fn quarantined(&self, parties: &[&Number], now: i64) -> Result<Vec<(Number, i64)>, StoreError> {
        let mut out = Vec::new();
        if parties.is_empty() {
            let mut stmt = self.conn.prepare_cached(
                "SELECT virtual, MAX(until) FROM quarantine WHERE until > ?1 GROUP BY virtual",
            )?;
            let rows = stmt.query_map([now], |r| Ok((r.get::<_, String>(0)?, r.get(1)?)))?;
            for r in rows {
                let (x, until) = r?;
                out.push((Number::from_normalised(x), until));
            }
            return Ok(out);
        }
        let mut stmt = self.conn.prepare_cached(
            "SELECT virtual, until FROM quarantine WHERE party = ?1 AND until > ?2",
        )?;
        for p in parties {
            let rows = stmt.query_map(params![p.as_str(), now], |r| {
                Ok((r.get::<_, String>(0)?, r.get(1)?))
            })?;
            for r in rows {
                let (x, until) = r?;
                out.push((Number::from_normalised(x), until));
            }
        }
        Ok(out)
    }
}

impl BindingStore for SqliteStore {
    fn load_all(&mut self) -> Result<Vec<Binding>, StoreError> {
        self.bindings_where("", [])
    }

    /// One binding by id.
    fn get(&self, id: BindingId) -> Result<Option<Binding>, StoreError> {
        self.conn
            .prepare_cached(&format!("{SELECT} WHERE id = ?1"))?
            .query_row([id], read_row)
            .optional()?
            .transpose()
    }

    /// [`BindingStore::insert`], calling `progress` with the count done so far.
    fn insert_with_progress(
        &mut self,
        rows: &[NewBinding],
        progress: &mut dyn FnMut(usize),
    ) -> Result<Vec<BindingId>, StoreError> {
        let tx = self.conn.savepoint()?;
        let mut ids = Vec::with_capacity(rows.len());
        {
            let mut stmt = tx.prepare_cached(crate::store::binding_sql::INSERT)?;
            for b in rows {
                columns::insert(&mut stmt, b)?;
                ids.push(tx.last_insert_rowid());
                progress(ids.len());
            }
        }
        if let (Some(first), Some(last)) = (ids.first(), ids.last()) {
            log(&tx, &Change::BindingsAdded(*first, *last), &self.origin)?;
        }
        tx.commit()?;
        Ok(ids)
    }

    fn remove(&mut self, id: BindingId) -> Result<bool, StoreError> {
        self.atomically(|s| {
            let n = s.conn.execute("DELETE FROM bindings WHERE id = ?1", [id])?;
            log(&s.conn, &Change::BindingRemoved(id), &s.origin)?;
            Ok(n > 0)
        })
    }

    /// Replaces the conditions of a binding.
    fn set_conditions(
        &mut self,
        id: BindingId,
        c: &Conditions,
        now: i64,
    ) -> Result<(), StoreError> {
        self.atomically(|s| {
            columns::update(&s.conn, id, c, now)?;
            log(&s.conn, &Change::BindingChanged(id), &s.origin)
        })
    }

    /// Deletes bindings and quarantines each (party, X) until `until`; all or nothing.
    fn delete(&mut self, bindings: &[Binding], until: i64) -> Result<(), StoreError> {
        let tx = self.conn.savepoint()?;
        for b in bindings {
            tx.execute("DELETE FROM bindings WHERE id = ?1", [b.id])?;
            log(&tx, &Change::BindingRemoved(b.id), &self.origin)?;
            for p in b.a.iter().chain([&b.b]) {
                tx.execute(
                    "INSERT INTO quarantine (party, virtual, until) VALUES (?1, ?2, ?3)
                     ON CONFLICT (party, virtual) DO UPDATE SET until = MAX(until, excluded.until)",
                    params![p.as_str(), b.x.as_str(), until],
                )?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// A page of a tenant's bindings.
    fn list(&self, tenant: TenantId, f: &Filter) -> Result<Page, StoreError> {
        let sql = format!(
            "{SELECT}{}",
            crate::store::binding_sql::list_where(tenant, f)
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let limit = i64::from(f.limit) + 1;
        let mut args: Vec<&dyn rusqlite::ToSql> = vec![&tenant, &f.after, &limit];
        args.extend(f.party.iter().map(|p| p as &dyn rusqlite::ToSql));
        args.extend(f.x.iter().map(|x| x as &dyn rusqlite::ToSql));
        let rows = stmt.query_map(args.as_slice(), read_row)?;
        let mut items = Vec::new();
        for r in rows {
            items.push(r??);
        }
        let (items, next) = crate::store::paginate(items, f.limit, |b| b.id);
        Ok(Page { items, next })
    }

    /// Puts a number on (or off) a tenant's blocklist.
    fn set_blocked(
        &mut self,
        tenant: TenantId,
        n: &Number,
        blocked: bool,
        now: i64,
    ) -> Result<bool, StoreError> {
        let changed = if blocked {
            self.conn.execute(
                "INSERT OR IGNORE INTO blocklist (tenant_id, number, created_at) VALUES (?1, ?2, ?3)",
                params![tenant, n.as_str(), now],
            )?
        } else {
            self.conn.execute(
                "DELETE FROM blocklist WHERE tenant_id = ?1 AND number = ?2",
                params![tenant, n.as_str()],
            )?
        };
        Ok(changed > 0)
    }

    /// Every blocked (tenant, number).
    fn blocklist(&self) -> Result<Vec<(TenantId, Number)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT tenant_id, number FROM blocklist ORDER BY tenant_id, number")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, Number::from_normalised(r.get(1)?))))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn save_usage(&mut self, updates: &[UsageUpdate]) -> Result<(), StoreError> {
        self.atomically(|s| {
            let mut stmt = s.conn.prepare_cached(
                "UPDATE bindings SET calls_used = ?2, talk_secs_used = ?3, last_call_at = ?4,
                 day = ?5, day_calls = ?6 WHERE id = ?1",
            )?;
            for u in updates {
                let us = &u.usage;
                stmt.execute(params![
                    u.id,
                    us.calls_used,
                    us.talk_secs_used as i64,
                    us.last_call_at,
                    us.day,
                    us.day_calls
                ])?;
            }
            Ok(())
        })
    }

    /// Bindings with ids in `first..=last`.
    fn bindings_between(
        &self,
        first: BindingId,
        last: BindingId,
    ) -> Result<Vec<crate::bindings::Binding>, StoreError> {
        self.bindings_where("id BETWEEN ?1 AND ?2", params![first, last])
    }

    fn bindings_after(
        &self,
        after: BindingId,
        limit: usize,
    ) -> Result<Vec<crate::bindings::Binding>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.bindings_where("id > ?1 ORDER BY id LIMIT ?2", params![after, limit])
    }

    fn binding_count(&self) -> Result<usize, StoreError> {
        let n: i64 = self
            .conn
            .query_row("SELECT count(*) FROM bindings", [], |r| r.get(0))?;
        Ok(usize::try_from(n).unwrap_or(0))
    }
}
