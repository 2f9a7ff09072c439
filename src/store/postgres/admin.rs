//! PostgreSQL: tenants and keys, numbers and claims, bindings.

use crate::bindings::{Binding, BindingId, Claim, Conditions, Number, TenantId};
use crate::store::admin::*;
use crate::store::changes::Change;
use crate::store::postgres::{columns, read_row, PgStore, SELECT};
use crate::store::prelude::*;
use crate::store::{NewBinding, StoreError, UsageUpdate};

fn owner_in(s: &PgStore, x: &Number) -> Result<Option<(TenantId, Claim)>, StoreError> {
    let Some(r) = s.row(
        "SELECT tenant_id, source FROM numbers WHERE number = ?1",
        &[&x.as_str()],
    )?
    else {
        return Ok(None);
    };
    let (t, source): (TenantId, String) = (r.try_get(0)?, r.try_get(1)?);
    match Claim::parse(&source) {
        Some(c) => Ok(Some((t, c))),
        None => Err(StoreError::Corrupt {
            id: t,
            reason: format!("number {} has the unknown source {source:?}", x.as_str()),
        }),
    }
}

impl TenantStore for PgStore {
    fn add_tenant(&mut self, name: &str, now: i64) -> Result<TenantId, StoreError> {
        Ok(self
            .one(
                "INSERT INTO tenants (name, created_at) VALUES (?1, ?2) RETURNING id",
                &[&name, &now],
            )?
            .try_get(0)?)
    }

    fn add_key(
        &mut self,
        tenant: TenantId,
        key_id: &str,
        hash: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO api_keys (hash, tenant_id, created_at, key_id) VALUES (?1, ?2, ?3, ?4)",
            &[&hash, &tenant, &now, &key_id],
        )?;
        Ok(())
    }

    fn tenant_keys(&self, tenant: TenantId) -> Result<Vec<(String, i64)>, StoreError> {
        self.rows(
            "SELECT key_id, created_at FROM api_keys WHERE tenant_id = ?1 ORDER BY seq",
            &[&tenant],
        )?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
    }

    fn revoke_key(&mut self, tenant: TenantId, key_id: &str) -> Result<bool, StoreError> {
        Ok(self.exec(
            "DELETE FROM api_keys WHERE tenant_id = ?1 AND key_id = ?2",
            &[&tenant, &key_id],
        )? > 0)
    }

    fn tenants(&self) -> Result<Vec<(TenantId, String)>, StoreError> {
        self.rows("SELECT id, name FROM tenants ORDER BY name", &[])?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    fn key_tenant(&self, hash: &str) -> Result<Option<TenantId>, StoreError> {
        self.row("SELECT tenant_id FROM api_keys WHERE hash = ?1", &[&hash])?
            .map(|r| Ok(r.try_get(0)?))
            .transpose()
    }

    fn keys(&self) -> Result<Vec<(String, TenantId)>, StoreError> {
        self.rows("SELECT hash, tenant_id FROM api_keys", &[])?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    fn tenant_by_name(&self, name: &str) -> Result<Option<TenantId>, StoreError> {
        self.row("SELECT id FROM tenants WHERE name = ?1", &[&name])?
            .map(|r| Ok(r.try_get(0)?))
            .transpose()
    }
}

impl NumberStore for PgStore {
    fn add_numbers(
        &mut self,
        tenant: TenantId,
        numbers: &[Number],
        now: i64,
    ) -> Result<Result<(), (Number, bool)>, StoreError> {
        self.atomically(|s| {
            for n in numbers {
                if let Some(owner) = owner_in(s, n)? {
                    // Rolls back what went in before it.
                    return Err(Clash(n.clone(), owner.0 == tenant).into());
                }
                s.exec(
                    "INSERT INTO numbers (number, tenant_id, created_at, source)
                     VALUES (?1, ?2, ?3, 'pool')",
                    &[&n.as_str(), &tenant, &now],
                )?;
            }
            Ok(())
        })
        .map(Ok)
        .or_else(|e: ClashOr| match e {
            ClashOr::Clash(Clash(n, own)) => Ok(Err((n, own))),
            ClashOr::Store(e) => Err(e),
        })
    }

    fn owner(&self, x: &Number) -> Result<Option<(TenantId, Claim)>, StoreError> {
        owner_in(self, x)
    }

    fn claim(
        &mut self,
        tenant: TenantId,
        x: &Number,
        source: Claim,
        now: i64,
    ) -> Result<bool, StoreError> {
        if let Some((owner, _)) = owner_in(self, x)? {
            return Ok(owner == tenant);
        }
        let n = self.exec(
            "INSERT INTO numbers (number, tenant_id, created_at, source) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (number) DO NOTHING",
            &[&x.as_str(), &tenant, &now, &source.as_str()],
        )?;
        // Another node claimed it between the look and the insert.
        Ok(n == 1 || owner_in(self, x)?.is_some_and(|(o, _)| o == tenant))
    }

    fn release_cli_claim(&mut self, x: &Number) -> Result<(), StoreError> {
        self.exec(
            "DELETE FROM numbers WHERE number = ?1 AND source = 'cli'
             AND NOT EXISTS (SELECT 1 FROM bindings WHERE virtual = ?1)",
            &[&x.as_str()],
        )?;
        Ok(())
    }

    fn numbers(&self, tenant: TenantId) -> Result<Vec<Number>, StoreError> {
        self.rows(
            "SELECT number FROM numbers WHERE tenant_id = ?1 AND source = 'pool' ORDER BY number",
            &[&tenant],
        )?
        .iter()
        .map(|r| Ok(Number::from_normalised(r.try_get(0)?)))
        .collect()
    }

    fn remove_number(&mut self, tenant: TenantId, n: &Number) -> Result<bool, StoreError> {
        Ok(self.exec(
            "DELETE FROM numbers WHERE tenant_id = ?1 AND number = ?2 AND source = 'pool'",
            &[&tenant, &n.as_str()],
        )? > 0)
    }

    fn quarantined(&self, parties: &[&Number], now: i64) -> Result<Vec<(Number, i64)>, StoreError> {
        let pair = |r: &postgres::Row| -> Result<(Number, i64), StoreError> {
            Ok((Number::from_normalised(r.try_get(0)?), r.try_get(1)?))
        };
        if parties.is_empty() {
            return self
                .rows(
                    "SELECT virtual, MAX(until) FROM quarantine WHERE until > ?1 GROUP BY virtual",
                    &[&now],
                )?
                .iter()
                .map(pair)
                .collect();
        }
        let mut out = Vec::new();
        for p in parties {
            for r in self.rows(
                "SELECT virtual, until FROM quarantine WHERE party = ?1 AND until > ?2",
                &[&p.as_str(), &now],
            )? {
                out.push(pair(&r)?);
            }
        }
        Ok(out)
    }
}

/// A number someone already holds, found inside a unit of work.
struct Clash(Number, bool);

enum ClashOr {
    Clash(Clash),
    Store(StoreError),
}

impl From<Clash> for ClashOr {
    fn from(c: Clash) -> Self {
        ClashOr::Clash(c)
    }
}

impl From<StoreError> for ClashOr {
    fn from(e: StoreError) -> Self {
        ClashOr::Store(e)
    }
}

impl BindingStore for PgStore {
    fn load_all(&mut self) -> Result<Vec<Binding>, StoreError> {
        self.bindings_where("", &[])
    }

    fn get(&self, id: BindingId) -> Result<Option<Binding>, StoreError> {
        self.row(&format!("{SELECT} WHERE id = ?1"), &[&id])?
            .map(|r| read_row(&r))
            .transpose()
    }

    fn insert_with_progress(
        &mut self,
        rows: &[NewBinding],
        progress: &mut dyn FnMut(usize),
    ) -> Result<Vec<BindingId>, StoreError> {
        self.atomically(|s| {
            let mut ids = Vec::with_capacity(rows.len());
            for chunk in rows.chunks(10_000) {
                ids.extend(columns::insert_many(s, chunk)?);
                progress(ids.len());
            }
            if let (Some(first), Some(last)) = (ids.first(), ids.last()) {
                s.log_change(&Change::BindingsAdded(*first, *last))?;
            }
            Ok(ids)
        })
    }

    fn remove(&mut self, id: BindingId) -> Result<bool, StoreError> {
        self.atomically(|s| {
            let n = s.exec("DELETE FROM bindings WHERE id = ?1", &[&id])?;
            s.log_change(&Change::BindingRemoved(id))?;
            Ok(n > 0)
        })
    }

    fn set_conditions(
        &mut self,
        id: BindingId,
        c: &Conditions,
        now: i64,
    ) -> Result<(), StoreError> {
        self.atomically(|s| {
            columns::update(s, id, c, now)?;
            s.log_change(&Change::BindingChanged(id))
        })
    }

    fn delete(&mut self, bindings: &[Binding], until: i64) -> Result<(), StoreError> {
        self.atomically(|s| {
            for b in bindings {
                s.exec("DELETE FROM bindings WHERE id = ?1", &[&b.id])?;
                s.log_change(&Change::BindingRemoved(b.id))?;
                for p in b.a.iter().chain([&b.b]) {
                    s.exec(
                        "INSERT INTO quarantine (party, virtual, until) VALUES (?1, ?2, ?3)
                         ON CONFLICT (party, virtual)
                         DO UPDATE SET until = GREATEST(quarantine.until, excluded.until)",
                        &[&p.as_str(), &b.x.as_str(), &until],
                    )?;
                }
            }
            Ok(())
        })
    }

    fn list(&self, tenant: TenantId, f: &Filter) -> Result<Page, StoreError> {
        let sql = format!(
            "{SELECT}{}",
            crate::store::binding_sql::list_where(tenant, f)
        );
        let limit = i64::from(f.limit) + 1;
        let mut args: Vec<&(dyn postgres::types::ToSql + Sync)> = vec![&tenant, &f.after, &limit];
        args.extend(
            f.party
                .iter()
                .map(|p| p as &(dyn postgres::types::ToSql + Sync)),
        );
        args.extend(
            f.x.iter()
                .map(|x| x as &(dyn postgres::types::ToSql + Sync)),
        );
        let mut items = Vec::new();
        for r in self.rows(&sql, &args)? {
            items.push(read_row(&r)?);
        }
        let (items, next) = crate::store::paginate(items, f.limit, |b| b.id);
        Ok(Page { items, next })
    }

    fn set_blocked(
        &mut self,
        tenant: TenantId,
        n: &Number,
        blocked: bool,
        now: i64,
    ) -> Result<bool, StoreError> {
        let changed = if blocked {
            self.exec(
                "INSERT INTO blocklist (tenant_id, number, created_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT DO NOTHING",
                &[&tenant, &n.as_str(), &now],
            )?
        } else {
            self.exec(
                "DELETE FROM blocklist WHERE tenant_id = ?1 AND number = ?2",
                &[&tenant, &n.as_str()],
            )?
        };
        Ok(changed > 0)
    }

    fn blocklist(&self) -> Result<Vec<(TenantId, Number)>, StoreError> {
        self.rows(
            "SELECT tenant_id, number FROM blocklist ORDER BY tenant_id, number",
            &[],
        )?
        .iter()
        .map(|r| Ok((r.try_get(0)?, Number::from_normalised(r.try_get(1)?))))
        .collect()
    }

    fn save_usage(&mut self, updates: &[UsageUpdate]) -> Result<(), StoreError> {
        self.atomically(|s| {
            for u in updates {
                let us = &u.usage;
                s.exec(
                    // Nodes share these rows: a node's view never lowers
                    // what another counted (a refund is not given back
                    // here; a count errs on the side of its limit).
                    "UPDATE bindings SET calls_used = GREATEST(calls_used, ?2),
                     talk_secs_used = GREATEST(talk_secs_used, ?3),
                     last_call_at = GREATEST(last_call_at, ?4),
                     day_calls = CASE WHEN ?5 > day THEN ?6 WHEN ?5 = day
                       THEN GREATEST(day_calls, ?6) ELSE day_calls END,
                     day = GREATEST(day, ?5) WHERE id = ?1",
                    &[
                        &u.id,
                        &i64::from(us.calls_used),
                        &(us.talk_secs_used as i64),
                        &us.last_call_at,
                        &us.day,
                        &i64::from(us.day_calls),
                    ],
                )?;
            }
            Ok(())
        })
    }

    fn bindings_between(
        &self,
        first: BindingId,
        last: BindingId,
    ) -> Result<Vec<Binding>, StoreError> {
        self.bindings_where("id BETWEEN ?1 AND ?2", &[&first, &last])
    }

    fn bindings_after(&self, after: BindingId, limit: usize) -> Result<Vec<Binding>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.bindings_where("id > ?1 ORDER BY id LIMIT ?2", &[&after, &limit])
    }

    fn binding_count(&self) -> Result<usize, StoreError> {
        let n: i64 = self.one("SELECT count(*) FROM bindings", &[])?.get(0);
        Ok(usize::try_from(n).unwrap_or(0))
    }
}
