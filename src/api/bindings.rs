//! AXB bindings over HTTP: create (X given, preferred or allocated from the
//! pool), bulk create, get, list, change conditions, delete, bulk delete, and
//! how many X a pair could still get. Every change is committed to the store
//! and then applied to the live table before the answer goes out.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::auth::Tenant;
use super::model::{filter, number, phone, BindingOut, BindingPage, ConditionsIn};
use super::problem::{ApiError, AvailabilityOut};
use super::{ApiState, Body, Json, P, Q};
use crate::bindings::{Conditions, Kind, TenantId};
use crate::service::bindings::{owned, PairRequest};
use crate::store::Filter;

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

fn plan(st: &ApiState, req: CreateBinding, field: String) -> Result<PairRequest, ApiError> {
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
    Ok(PairRequest {
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
    let mut plans = Vec::with_capacity(reqs.len());
    // Every bad item of a bulk request is named at once, not the first.
    let mut problems = Vec::new();
    for (i, r) in reqs.into_iter().enumerate() {
        let at = if many {
            format!("{field}[{i}]")
        } else {
            String::new()
        };
        match plan(st, r, at) {
            Ok(p) => plans.push(p),
            Err(ApiError::Invalid { field, reason }) if many => problems.push((field, reason)),
            Err(e) => return Err(e),
        }
    }
    if !problems.is_empty() {
        return Err(ApiError::Items(problems));
    }
    let created = st.svc.create_pairs(tenant, plans).await?;
    let defaults = st.svc.table.defaults();
    Ok(created
        .iter()
        .map(|b| BindingOut::from(b, defaults))
        .collect())
}

#[utoipa::path(get, path = "/v1/bindings/{id}", tag = "bindings", params(("id" = i64, Path, description = "binding id")),
    responses((status = 200, body = BindingOut)), security(("bearer" = [])))]
/// One binding.
pub async fn get(
    State(st): State<Arc<ApiState>>,
    t: Tenant,
    P(id): P<i64>,
) -> Result<Json<BindingOut>, ApiError> {
    let b = owned(&st.svc.table, t.0, id, &[Kind::Axb], "binding")?;
    Ok(Json(BindingOut::from(
        &st.svc.table.display(&b),
        st.svc.table.defaults(),
    )))
}

#[utoipa::path(get, path = "/v1/bindings", tag = "bindings", params(ListQuery),
    responses((status = 200, body = BindingPage)), security(("bearer" = [])))]
/// Lists bindings in creation order.
pub async fn list(
    State(st): State<Arc<ApiState>>,
    t: Tenant,
    Q(q): Q<ListQuery>,
) -> Result<Json<BindingPage>, ApiError> {
    list_kinds(&st, t.0, q, vec![Kind::Axb]).await.map(Json)
}

/// Lists a tenant's bindings of `kinds`, with live usage.
pub(super) async fn list_kinds(
    st: &Arc<ApiState>,
    tenant: TenantId,
    q: ListQuery,
    kinds: Vec<Kind>,
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
    let defaults = st.svc.table.defaults();
    let items = page
        .items
        .iter()
        .map(|b| {
            let live = st.svc.table.get(b.id).unwrap_or_else(|| b.clone());
            BindingOut::from(&st.svc.table.display(&live), defaults)
        })
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
    let norm = st.norm.clone();
    let b = st
        .svc
        .change(tenant, id, kinds, what, move |c| req.apply(c, &norm, ""))
        .await?;
    Ok(BindingOut::from(
        &st.svc.table.display(&b),
        st.svc.table.defaults(),
    ))
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
    st.svc.remove(tenant, ids, kinds, what).await?;
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
    let avail = st.svc.availability(t.0, a, b).await?;
    Ok(Json((&avail).into()))
}
