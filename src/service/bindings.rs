//! Bindings: AXB pairs with X chosen, preferred or allocated from the
//! tenant's pool (never one serving either party, never one resting in
//! quarantine for them), identifiers that reach their owner, condition
//! changes, deletions (X then rests for the pair), and what a pair could
//! still get.

use std::collections::{HashMap, HashSet};

use super::{Error, Services};
use crate::bindings::alloc::{allocate, availability, Availability, Picker, Shortage};
use crate::bindings::{Binding, BindingTable, Conditions, Kind, Number, TenantId};
use crate::store::prelude::*;
use crate::store::NewBinding;

/// An AXB pair to create, checked, before X is chosen.
#[derive(Clone, Debug)]
pub struct PairRequest {
    /// Party A.
    pub a: Number,
    /// Party B (not A).
    pub b: Number,
    /// Exactly this X.
    pub x: Option<Number>,
    /// This X if it can serve the pair.
    pub prefer: Option<Number>,
    /// Conditions.
    pub conditions: Conditions,
    /// Prefix of the request's field names in errors (`bindings[3]`), or
    /// empty.
    pub field: String,
}

impl PairRequest {
    fn field(&self, n: &str) -> String {
        if self.field.is_empty() {
            n.to_string()
        } else {
            format!("{}.{n}", self.field)
        }
    }
}

/// How an identifier's X is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdentifierKind {
    /// A free number of the pool.
    Digits,
    /// A random token, the tenant's for good.
    Token,
}

/// A binding of the tenant's, of one of `kinds`, from the live table.
pub fn owned(
    table: &BindingTable,
    tenant: TenantId,
    id: i64,
    kinds: &[Kind],
    what: &'static str,
) -> Result<Binding, Error> {
    table
        .get(id)
        .filter(|b| b.tenant == tenant && kinds.contains(&b.kind))
        .ok_or(Error::NotFound(what))
}

impl Services {
    /// Creates AXB bindings, all or none, in request order.
    pub async fn create_pairs(
        &self,
        tenant: TenantId,
        reqs: Vec<PairRequest>,
    ) -> Result<Vec<Binding>, Error> {
        let me = self.clone();
        self.unit(move |s, out| {
            let created = me.pairs_in(s, tenant, reqs)?;
            out.store(s, me.binding_events("binding.created", &created))?;
            me.go_live(&created)?;
            Ok(created)
        })
        .await
    }

    /// Puts bindings already stored into the live table: the last step of
    /// a unit of work (nothing after it may fail).
    pub(crate) fn go_live(&self, created: &[Binding]) -> Result<(), Error> {
        for b in created {
            self.table
                .insert(b.clone())
                .map_err(|e| Error::Internal(e.to_string()))?;
        }
        Ok(())
    }

    /// Chooses X for each pair and stores the bindings, in the unit of work
    /// `s` (they are not live yet: see [`Services::go_live`]).
    pub(crate) fn pairs_in(
        &self,
        s: &mut dyn Backend,
        tenant: TenantId,
        reqs: Vec<PairRequest>,
    ) -> Result<Vec<Binding>, Error> {
        let now = self.clock.now().unix();
        let table = &self.table;
        for p in &reqs {
            for (n, f) in [(&p.a, "a"), (&p.b, "b")] {
                super::flow::refuse_soft(self, n, &p.field(f))?;
            }
        }
        let pool = self.pair_pool(s, tenant)?;
        let pool_set: HashSet<&Number> = pool.iter().collect();
        // X chosen earlier in this batch, per party.
        let mut batch: HashMap<Number, HashSet<Number>> = HashMap::new();
        let mut picker = Picker::new(&pool, |x| table.uses_of(x));
        let mut rows = Vec::with_capacity(reqs.len());
        for p in reqs {
            // X serving A or B, in the table or earlier in this batch.
            let taken = |x: &Number| {
                [&p.a, &p.b].into_iter().any(|party| {
                    table.serves(party, x) || batch.get(party).is_some_and(|xs| xs.contains(x))
                })
            };
            let resting: HashSet<Number> = s
                .quarantined(&[&p.a, &p.b], now)?
                .into_iter()
                .map(|(x, _)| x)
                .collect();
            let x = match &p.x {
                Some(x) if table.is_identifier(x) && table.tenant_of(x) == Some(tenant) => {
                    return Err(Error::Conflict(format!(
                        "{}: serves an identifier",
                        p.field("x")
                    )))
                }
                Some(x) if !pool_set.contains(x) => {
                    return Err(Error::invalid(p.field("x"), "not a number of your pool"))
                }
                Some(x) if taken(x) => {
                    return Err(Error::Conflict(format!(
                        "{}: already serves a or b",
                        p.field("x")
                    )))
                }
                Some(x) if resting.contains(x) => {
                    return Err(Error::Conflict(format!(
                        "{}: quarantined for a or b",
                        p.field("x")
                    )))
                }
                Some(x) => {
                    picker.count(x);
                    x.clone()
                }
                None => match picker.pick(taken, &resting, p.prefer.as_ref()) {
                    Some(x) => x,
                    // Why not, counted in full.
                    None => {
                        let uses = |x: &Number| table.uses_of(x);
                        let avail = availability(&pool, taken, &resting, uses, p.prefer.as_ref());
                        allocate(avail).map_err(shortage)?
                    }
                },
            };
            for party in [&p.a, &p.b] {
                batch.entry(party.clone()).or_default().insert(x.clone());
            }
            rows.push(NewBinding {
                tenant,
                kind: Kind::Axb,
                a: Some(p.a),
                x,
                b: p.b,
                conditions: p.conditions,
                created_at: now,
            });
        }
        Ok(s.create(&rows)?)
    }

    /// Creates an identifier: an X (a free pool number, or a token) that
    /// reaches `owner`.
    pub async fn create_identifier(
        &self,
        tenant: TenantId,
        kind: IdentifierKind,
        owner: Number,
        conditions: Conditions,
    ) -> Result<Binding, Error> {
        super::flow::refuse_soft(self, &owner, "owner")?;
        let me = self.clone();
        self.unit(move |s, out| {
            let now = me.clock.now().unix();
            let (x, kind) = match kind {
                IdentifierKind::Token => {
                    let x = Number::from_normalised(crate::ids::short("t-", 10));
                    // The token is the tenant's for good: a revoked one is
                    // never handed to anyone else.
                    if !s.claim(tenant, &x, crate::bindings::Claim::Token, now)? {
                        return Err(Error::Internal("token collision".into()));
                    }
                    (x, Kind::Token)
                }
                IdentifierKind::Digits => {
                    let pool = s.numbers(tenant)?;
                    // An identifier needs an X of its own, at rest for everyone.
                    let taken = |x: &Number| me.table.uses_of(x) > 0;
                    let resting: HashSet<Number> = s
                        .quarantined(&[], now)?
                        .into_iter()
                        .map(|(x, _)| x)
                        .collect();
                    let a = availability(&pool, taken, &resting, |_| 0, None);
                    let x = allocate(a.clone()).map_err(|_| Error::Exhausted {
                        detail: "no free number in your pool for an identifier".into(),
                        availability: a,
                    })?;
                    (x, Kind::Digits)
                }
            };
            let row = NewBinding {
                tenant,
                kind,
                a: None,
                x,
                b: owner,
                conditions,
                created_at: now,
            };
            let b = s
                .create(&[row])?
                .into_iter()
                .next()
                .ok_or_else(|| Error::Internal("nothing created".into()))?;
            out.store(s, vec![me.binding_event("binding.created", &b)])?;
            me.table
                .insert(b.clone())
                .map_err(|e| Error::Internal(e.to_string()))?;
            Ok(b)
        })
        .await
    }

    /// Changes the conditions of a binding of `kinds` with `edit`, which
    /// sees the current ones (so concurrent changes never lose each
    /// other's fields).
    pub async fn change<E>(
        &self,
        tenant: TenantId,
        id: i64,
        kinds: &'static [Kind],
        what: &'static str,
        edit: impl FnOnce(&Conditions) -> Result<Conditions, E> + Send + 'static,
    ) -> Result<Binding, E>
    where
        E: From<Error> + From<crate::store::StoreError> + Send + 'static,
    {
        let me = self.clone();
        self.unit(move |s, out| {
            let mut b = owned(&me.table, tenant, id, kinds, what)?;
            let c = edit(&b.conditions)?;
            s.set_conditions(id, &c, me.clock.now().unix())?;
            b.conditions = c.clone();
            out.store(s, vec![me.binding_event("binding.changed", &b)])?;
            me.table
                .set_conditions(id, c)
                .ok_or(Error::NotFound(what))?;
            Ok(b)
        })
        .await
    }

    /// Deletes bindings of `kinds`, all or none; calls in progress go on.
    /// Each X rests in quarantine for its parties.
    pub async fn remove(
        &self,
        tenant: TenantId,
        ids: Vec<i64>,
        kinds: &'static [Kind],
        what: &'static str,
    ) -> Result<(), Error> {
        let me = self.clone();
        self.unit(move |s, out| {
            let unique: HashSet<i64> = ids.iter().copied().collect();
            let found = unique
                .iter()
                .map(|id| owned(&me.table, tenant, *id, kinds, what))
                .collect::<Result<Vec<_>, _>>()?;
            s.delete(&found, me.clock.now().unix() + me.quarantine_secs as i64)?;
            out.store(s, me.binding_events("binding.deleted", &found))?;
            for b in &found {
                me.table.remove(b.id);
            }
            Ok(())
        })
        .await
    }

    /// How many X the pair (a, b) could still get, and which comes next.
    pub async fn availability(
        &self,
        tenant: TenantId,
        a: Number,
        b: Number,
    ) -> Result<Availability, Error> {
        let me = self.clone();
        self.unit(move |s, _| {
            let table = &me.table;
            let pool = me.pair_pool(s, tenant)?;
            let taken = |x: &Number| table.serves(&a, x) || table.serves(&b, x);
            let resting = s
                .quarantined(&[&a, &b], me.clock.now().unix())?
                .into_iter()
                .map(|(x, _)| x)
                .collect();
            Ok(availability(
                &pool,
                taken,
                &resting,
                |x| table.uses_of(x),
                None,
            ))
        })
        .await
    }
}

/// The pool numbers a pair may get: an identifier's X reaches its owner
/// alone and is never a pair's.
impl Services {
    /// The tenant's pool, from memory when it was read before: it changes
    /// only through `add_numbers` and `remove_number`, which forget it.
    pub(crate) fn pool_of(
        &self,
        s: &dyn Backend,
        tenant: TenantId,
    ) -> Result<std::sync::Arc<Vec<Number>>, Error> {
        if let Some(p) = self.pools.get(&tenant) {
            return Ok(p.clone());
        }
        let p = std::sync::Arc::new(s.numbers(tenant)?);
        self.pools.insert(tenant, p.clone());
        Ok(p)
    }

    /// The numbers of the pool a pair may get: all but identifiers' X.
    fn pair_pool(&self, s: &dyn Backend, tenant: TenantId) -> Result<Vec<Number>, Error> {
        Ok(self
            .pool_of(s, tenant)?
            .iter()
            .filter(|x| !self.table.is_identifier(x))
            .cloned()
            .collect())
    }
}

fn shortage(s: Shortage) -> Error {
    match s {
        Shortage::EmptyPool => Error::Exhausted {
            detail: "your number pool is empty: add numbers with POST /v1/numbers".into(),
            availability: Availability {
                pool: 0,
                serving_pair: 0,
                quarantined: 0,
                available: 0,
                next: None,
            },
        },
        Shortage::Exhausted(a) => Error::Exhausted {
            detail: format!(
                "no X left for this pair: {} of {} numbers already serve a or b and {} rest in quarantine for them",
                a.serving_pair, a.pool, a.quarantined
            ),
            availability: a,
        },
    }
}
