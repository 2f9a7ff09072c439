//! AXB bindings over HTTP: create (X given, preferred or allocated from the
//! pool), bulk create, get, list, change conditions, delete, bulk delete, and
//! how many X a pair could still get. Every change is committed to the store
//! and then applied to the live table before the answer goes out.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::auth::Tenant;
use super::model::{filter, number, phone, BindingOut, BindingPage, ConditionsIn};
use super::problem::{ApiError, AvailabilityOut};
use super::{ApiState, Body, Json, P, Q};
use crate::bindings::alloc::{allocate, availability, Availability, Shortage};
use crate::bindings::{Binding, BindingTable, Conditions, Kind, Number, TenantId};
use crate::store::prelude::*;
use crate::store::{Filter, NewBinding};

/// A new AXB binding.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBinding {
    /// Party A (number or account).
    #[schema(value_type = super::input::Party)]
    pub a: String,
    /// Party B (not A).
    #[schema(value_type = super::input::Party)]
    pub b: String,
    /// Use exactly this X from your pool (409 if it cannot serve the pair).
    #[schema(value_type = Option<super::input::Phone>)]
    pub x: Option<String>,
    /// Use this X if it can serve the pair, else allocate as usual.
    #[schema(value_type = Option<super::input::Phone>)]
    pub prefer_x: Option<String>,
    /// Call conditions; absent fields take the configured defaults.
    #[serde(default, deserialize_with = "super::model::object")]
    pub conditions: Option<ConditionsIn>,
}

/// Up to 1,000 new bindings, created all or none.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkCreate {
    /// The bindings.
    #[schema(min_items = 1, max_items = 1000)]
    #[serde(deserialize_with = "super::model::objects")]
    pub bindings: Vec<CreateBinding>,
}

/// Up to 1,000 ids, deleted all or none.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkDelete {
    /// Binding ids.
    #[schema(value_type = Vec<i64>, min_items = 1, max_items = 1000)]
    pub ids: Vec<super::model::JsonInt>,
}

/// Result of a bulk create.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct BulkCreated {
    /// The bindings, in request order.
    pub bindings: Vec<BindingOut>,
}

/// List filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// `next_cursor` of the previous page.
    #[param(value_type = Option<super::input::Cursor>)]
    pub cursor: Option<String>,
    /// Page size, 1 to 1,000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// Only bindings where A or B is this party.
    #[param(value_type = Option<super::input::Filter>)]
    pub party: Option<String>,
    /// Only bindings on this X.
    #[param(value_type = Option<super::input::Filter>)]
    pub x: Option<String>,
}

/// A pair to ask about.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PairQuery {
    /// Party A.
    #[param(value_type = super::input::Party)]
    pub a: String,
    /// Party B.
    #[param(value_type = super::input::Party)]
    pub b: String,
}

/// Most items in one bulk request.
pub const BULK_MAX: usize = 1000;

#[utoipa::path(post, path = "/v1/bindings", tag = "bindings", request_body = CreateBinding,
    responses((status = 201, body = BindingOut)),
    security(("bearer" = [])))]
/// Creates an AXB binding.
pub async fn create(
    State(st): State<Arc<ApiState>>,
    t: Tenant,
    Body(req): Body<CreateBinding>,
) -> Result<(StatusCode, Json<BindingOut>), ApiError> {
    let mut out = create_many(&st, t.0, vec![req], "").await?;
    let b = out
        .pop()
        .ok_or_else(|| ApiError::Internal("nothing created".into()))?;
    Ok((StatusCode::CREATED, Json(b)))
}

#[utoipa::path(post, path = "/v1/bindings/bulk", tag = "bindings", request_body = BulkCreate,
    responses((status = 201, body = BulkCreated)),
    security(("bearer" = [])))]
/// Creates up to 1,000 AXB bindings, all or none.
pub async fn bulk_create(
    State(st): State<Arc<ApiState>>,
    t: Tenant,
    Body(req): Body<BulkCreate>,
) -> Result<(StatusCode, Json<BulkCreated>), ApiError> {
    if req.bindings.is_empty() || req.bindings.len() > BULK_MAX {
        return Err(ApiError::invalid(
            "bindings",
            format!("must hold 1 to {BULK_MAX} items"),
        ));
    }
    let bindings = create_many(&st, t.0, req.bindings, "bindings").await?;
    Ok((StatusCode::CREATED, Json(BulkCreated { bindings })))
}

/// A validated request, before X is chosen.
struct Plan {
    a: Number,
    b: Number,
    x: Option<Number>,
    prefer: Option<Number>,
    conditions: Conditions,
    field: String,
}

fn plan(st: &ApiState, req: CreateBinding, field: String) -> Result<Plan, ApiError> {
    let f = |n: &str| {
        if field.is_empty() {
            n.to_string()
        } else {
            format!("{field}.{n}")
        }
    };
    let a = number(&st.norm, &f("a"), &req.a)?;
    let b = number(&st.norm, &f("b"), &req.b)?;
    if a == b {
        return Err(ApiError::invalid(f("b"), "must differ from a"));
    }
    let x = req
        .x
        .as_deref()
        .map(|x| phone(&st.norm, &f("x"), x))
        .transpose()?;
    let prefer = req
        .prefer_x
        .as_deref()
        .map(|x| phone(&st.norm, &f("prefer_x"), x))
        .transpose()?;
    let conditions = match &req.conditions {
        Some(c) => c.apply(&Conditions::default(), &st.norm, &f("conditions."))?,
        None => Conditions::default(),
    };
    Ok(Plan {
        a,
        b,
        x,
        prefer,
        conditions,
        field,
    })
}

async fn create_many(
    st: &Arc<ApiState>,
    tenant: TenantId,
    reqs: Vec<CreateBinding>,
    field: &str,
) -> Result<Vec<BindingOut>, ApiError> {
    let many = !field.is_empty();
    let plans = reqs
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            plan(
                st,
                r,
                if many {
                    format!("{field}[{i}]")
                } else {
                    String::new()
                },
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let table = st.table.clone();
    let defaults = st.table.defaults().clone();
    let hub = st.hub.clone();
    let created = st
        .db(move |s| {
            let now = crate::time::now();
            let pool = pair_pool(s, &table, tenant)?;
            let pool_set: HashSet<&Number> = pool.iter().collect();
            // X chosen earlier in this batch, per party.
            let mut batch: HashMap<Number, HashSet<Number>> = HashMap::new();
            let mut rows = Vec::with_capacity(plans.len());
            for p in plans {
                let mut taken: HashSet<Number> = table
                    .xs_of(&p.a)
                    .into_iter()
                    .chain(table.xs_of(&p.b))
                    .collect();
                for party in [&p.a, &p.b] {
                    taken.extend(batch.get(party).into_iter().flatten().cloned());
                }
                let resting: HashSet<Number> = s
                    .quarantined(&[&p.a, &p.b], now)?
                    .into_iter()
                    .map(|(x, _)| x)
                    .collect();
                let avail = availability(
                    &pool,
                    &taken,
                    &resting,
                    |x| table.uses_of(x),
                    p.prefer.as_ref(),
                );
                let f = |n: &str| {
                    if p.field.is_empty() {
                        n.to_string()
                    } else {
                        format!("{}.{n}", p.field)
                    }
                };
                let x = match &p.x {
                    Some(x) if table.is_identifier(x) && table.tenant_of(x) == Some(tenant) => {
                        return Err(ApiError::Conflict(format!(
                            "{}: serves an identifier",
                            f("x")
                        )))
                    }
                    Some(x) if !pool_set.contains(x) => {
                        return Err(ApiError::invalid(f("x"), "not a number of your pool"))
                    }
                    Some(x) if taken.contains(x) => {
                        return Err(ApiError::Conflict(format!(
                            "{}: already serves a or b",
                            f("x")
                        )))
                    }
                    Some(x) if resting.contains(x) => {
                        return Err(ApiError::Conflict(format!(
                            "{}: quarantined for a or b",
                            f("x")
                        )))
                    }
                    Some(x) => x.clone(),
                    None => allocate(avail).map_err(shortage)?,
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
            let created = s.create(&rows)?;
            let out: Vec<BindingOut> = created
                .iter()
                .map(|b| BindingOut::from(b, &defaults))
                .collect();
            let events = out
                .iter()
                .map(|b| binding_event(tenant, "binding.created", b))
                .collect();
            let told = store_events(s, &hub, events)?;
            // The live table changes last: nothing above can fail after it.
            for b in &created {
                table
                    .insert(b.clone())
                    .map_err(|e| ApiError::Internal(e.to_string()))?;
            }
            Ok((out, told))
        })
        .await?;
    st.publish(created.1);
    Ok(created.0)
}

/// The pool numbers a pair may get: an identifier's X reaches its owner
/// alone and is never a pair's.
fn pair_pool(
    s: &dyn Backend,
    table: &BindingTable,
    tenant: TenantId,
) -> Result<Vec<Number>, ApiError> {
    let mut pool = s.numbers(tenant)?;
    pool.retain(|x| !table.is_identifier(x));
    Ok(pool)
}

/// Stores the events someone wants, in the caller's unit of work; returns
/// what to publish once it commits.
pub(super) fn store_events(
    s: &mut dyn Backend,
    hub: &crate::events::Hub,
    events: Vec<crate::store::events::NewEvent>,
) -> Result<Vec<(TenantId, String)>, ApiError> {
    let wanted: Vec<_> = events.into_iter().filter(|e| hub.wants(e.tenant)).collect();
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    Ok(s.insert_events(&wanted, &|t| hub.hooked(t))?)
}

/// An event about a binding, carrying the binding as shown by the API.
pub(super) fn binding_event(
    tenant: TenantId,
    kind: &'static str,
    b: &BindingOut,
) -> crate::store::events::NewEvent {
    crate::store::events::NewEvent {
        tenant,
        kind,
        binding: Some(b.id),
        data: serde_json::to_value(b).unwrap_or_default(),
        at: crate::time::now_ms(),
    }
}

fn shortage(s: Shortage) -> ApiError {
    match s {
        Shortage::EmptyPool => ApiError::PoolExhausted {
            detail: "your number pool is empty: add numbers with POST /v1/numbers".into(),
            availability: Availability { pool: 0, serving_pair: 0, quarantined: 0, available: 0, next: None },
        },
        Shortage::Exhausted(a) => ApiError::PoolExhausted {
            detail: format!(
                "no X left for this pair: {} of {} numbers already serve a or b and {} rest in quarantine for them",
                a.serving_pair, a.pool, a.quarantined
            ),
            availability: a,
        },
    }
}

/// A binding of this tenant of one of `kinds`, or 404.
pub(super) fn owned(
    table: &BindingTable,
    tenant: TenantId,
    id: i64,
    kinds: &[Kind],
    what: &'static str,
) -> Result<Binding, ApiError> {
    table
        .get(id)
        .filter(|b| b.tenant == tenant && kinds.contains(&b.kind))
        .ok_or(ApiError::NotFound(what))
}

#[utoipa::path(get, path = "/v1/bindings/{id}", tag = "bindings", params(("id" = i64, Path, description = "binding id")),
    responses((status = 200, body = BindingOut)), security(("bearer" = [])))]
/// One binding.
pub async fn get(
    State(st): State<Arc<ApiState>>,
    t: Tenant,
    P(id): P<i64>,
) -> Result<Json<BindingOut>, ApiError> {
    let b = owned(&st.table, t.0, id, &[Kind::Axb], "binding")?;
    Ok(Json(BindingOut::from(&b, st.table.defaults())))
}

#[utoipa::path(get, path = "/v1/bindings", tag = "bindings", params(ListQuery),
    responses((status = 200, body = BindingPage)), security(("bearer" = [])))]
/// Lists bindings in creation order.
pub async fn list(
    State(st): State<Arc<ApiState>>,
    t: Tenant,
    Q(q): Q<ListQuery>,
) -> Result<Json<BindingPage>, ApiError> {
    list_kinds(&st, t.0, q, vec!["axb"]).await.map(Json)
}

/// Lists a tenant's bindings of `kinds`, with live usage.
pub(super) async fn list_kinds(
    st: &Arc<ApiState>,
    tenant: TenantId,
    q: ListQuery,
    kinds: Vec<&'static str>,
) -> Result<BindingPage, ApiError> {
    let (after, limit) = super::model::page(&q.cursor, q.limit)?;
    let party = q
        .party
        .as_deref()
        .map(|p| filter(&st.norm, "party", p))
        .transpose()?;
    let x =
        q.x.as_deref()
            .map(|x| filter(&st.norm, "x", x))
            .transpose()?;
    let filter = Filter {
        after,
        limit,
        party: party.map(|p| p.as_str().to_string()),
        x: x.map(|x| x.as_str().to_string()),
        kinds,
    };
    let page = st.db(move |s| Ok(s.list(tenant, &filter)?)).await?;
    let defaults = st.table.defaults();
    let items = page
        .items
        .iter()
        .map(|b| BindingOut::from(&st.table.get(b.id).unwrap_or_else(|| b.clone()), defaults))
        .collect();
    Ok(BindingPage {
        items,
        next_cursor: page.next.map(|n| n.to_string()),
    })
}

#[utoipa::path(patch, path = "/v1/bindings/{id}", tag = "bindings", params(("id" = i64, Path, description = "binding id")),
    request_body = ConditionsIn, responses((status = 200, body = BindingOut)),
    security(("bearer" = [])))]
/// Changes conditions; fields left out stay, `null` clears. No clock restarts.
pub async fn patch(
    State(st): State<Arc<ApiState>>,
    t: Tenant,
    P(id): P<i64>,
    Body(req): Body<ConditionsIn>,
) -> Result<Json<BindingOut>, ApiError> {
    change(&st, t.0, id, &[Kind::Axb], "binding", req)
        .await
        .map(Json)
}

/// Applies a conditions change to a binding of `kinds`.
pub(super) async fn change(
    st: &Arc<ApiState>,
    tenant: TenantId,
    id: i64,
    kinds: &'static [Kind],
    what: &'static str,
    req: ConditionsIn,
) -> Result<BindingOut, ApiError> {
    let table = st.table.clone();
    let norm = st.norm.clone();
    let hub = st.hub.clone();
    let defaults = st.table.defaults().clone();
    let (out, told) = st
        .db(move |s| {
            let mut b = owned(&table, tenant, id, kinds, what)?;
            let c = req.apply(&b.conditions, &norm, "")?;
            s.set_conditions(id, &c, crate::time::now())?;
            b.conditions = c.clone();
            let out = BindingOut::from(&b, &defaults);
            let told = store_events(
                s,
                &hub,
                vec![binding_event(tenant, "binding.changed", &out)],
            )?;
            table
                .set_conditions(id, c)
                .ok_or(ApiError::NotFound(what))?;
            Ok((out, told))
        })
        .await?;
    st.publish(told);
    Ok(out)
}

#[utoipa::path(delete, path = "/v1/bindings/{id}", tag = "bindings", params(("id" = i64, Path, description = "binding id")),
    responses((status = 204)), security(("bearer" = [])))]
/// Deletes a binding; calls in progress go on. Its X rests in quarantine for A and B.
pub async fn delete(
    State(st): State<Arc<ApiState>>,
    t: Tenant,
    P(id): P<i64>,
) -> Result<StatusCode, ApiError> {
    remove(&st, t.0, vec![id], &[Kind::Axb], "binding").await
}

#[utoipa::path(post, path = "/v1/bindings/delete", tag = "bindings", request_body = BulkDelete,
    responses((status = 204)), security(("bearer" = [])))]
/// Deletes up to 1,000 bindings, all or none.
pub async fn bulk_delete(
    State(st): State<Arc<ApiState>>,
    t: Tenant,
    Body(req): Body<BulkDelete>,
) -> Result<StatusCode, ApiError> {
    if req.ids.is_empty() || req.ids.len() > BULK_MAX {
        return Err(ApiError::invalid(
            "ids",
            format!("must hold 1 to {BULK_MAX} items"),
        ));
    }
    let ids = req.ids.into_iter().map(|i| i.0).collect();
    remove(&st, t.0, ids, &[Kind::Axb], "binding").await
}

/// Deletes bindings of `kinds`, all or none.
pub(super) async fn remove(
    st: &Arc<ApiState>,
    tenant: TenantId,
    ids: Vec<i64>,
    kinds: &'static [Kind],
    what: &'static str,
) -> Result<StatusCode, ApiError> {
    let table = st.table.clone();
    let quarantine = st.cfg.quarantine_secs;
    let hub = st.hub.clone();
    let defaults = st.table.defaults().clone();
    let told = st
        .db(move |s: &mut dyn Backend| {
            let unique: HashSet<i64> = ids.iter().copied().collect();
            let found = unique
                .iter()
                .map(|id| owned(&table, tenant, *id, kinds, what))
                .collect::<Result<Vec<_>, _>>()?;
            s.delete(&found, crate::time::now() + quarantine as i64)?;
            let events = found
                .iter()
                .map(|b| binding_event(tenant, "binding.deleted", &BindingOut::from(b, &defaults)))
                .collect();
            let told = store_events(s, &hub, events)?;
            for b in &found {
                table.remove(b.id);
            }
            Ok(told)
        })
        .await?;
    st.publish(told);
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/availability", tag = "bindings", params(PairQuery),
    responses((status = 200, body = AvailabilityOut)), security(("bearer" = [])))]
/// How many X the pair (a, b) could still get, and which one comes next.
pub async fn pair_availability(
    State(st): State<Arc<ApiState>>,
    t: Tenant,
    Q(q): Q<PairQuery>,
) -> Result<Json<AvailabilityOut>, ApiError> {
    let a = number(&st.norm, "a", &q.a)?;
    let b = number(&st.norm, "b", &q.b)?;
    let table = st.table.clone();
    let tenant = t.0;
    let avail = st
        .db(move |s| {
            let pool = pair_pool(s, &table, tenant)?;
            let taken: HashSet<Number> =
                table.xs_of(&a).into_iter().chain(table.xs_of(&b)).collect();
            let resting = s
                .quarantined(&[&a, &b], crate::time::now())?
                .into_iter()
                .map(|(x, _)| x)
                .collect();
            Ok(availability(
                &pool,
                &taken,
                &resting,
                |x| table.uses_of(x),
                None,
            ))
        })
        .await?;
    Ok(Json((&avail).into()))
}
