//! The number pool and the blocklist over HTTP.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Tenant;
use super::model::{number, phone};
use super::problem::ApiError;
use super::{ApiState, Body, Json, P};

/// Numbers to add to the pool.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddNumbers {
    /// Virtual numbers (1 to 1,000), added all or none.
    #[schema(value_type = Vec<super::model::Phone>, min_items = 1, max_items = 1000)]
    pub numbers: Vec<String>,
}

/// A pool number and its state.
#[derive(Debug, Serialize, ToSchema)]
pub struct PoolNumber {
    /// The number.
    pub number: String,
    /// `in_use` (serves at least one binding), `quarantined` (released and
    /// resting) or `free`.
    pub status: String,
    /// Live bindings on it.
    pub bindings: u32,
    /// End of the latest quarantine on it, if resting.
    pub quarantined_until: Option<String>,
}

/// The pool.
#[derive(Debug, Serialize, ToSchema)]
pub struct Pool {
    /// Every number, in order.
    pub numbers: Vec<PoolNumber>,
}

/// A tenant's blocked callers.
#[derive(Debug, Serialize, ToSchema)]
pub struct Blocklist {
    /// Blocked numbers.
    pub numbers: Vec<String>,
}

#[utoipa::path(post, path = "/v1/numbers", tag = "pool", request_body = AddNumbers,
    responses((status = 201, body = Pool)), security(("bearer" = [])))]
/// Adds numbers to the pool.
pub async fn add(
    State(st): State<Arc<ApiState>>,
    t: Tenant,
    Body(req): Body<AddNumbers>,
) -> Result<(StatusCode, Json<Pool>), ApiError> {
    if req.numbers.is_empty() || req.numbers.len() > 1000 {
        return Err(ApiError::invalid("numbers", "must hold 1 to 1000 numbers"));
    }
    let nums = req
        .numbers
        .iter()
        .enumerate()
        .map(|(i, n)| phone(&st.norm, &format!("numbers[{i}]"), n))
        .collect::<Result<Vec<_>, _>>()?;
    let tenant = t.0;
    st.svc.add_numbers(tenant, nums).await?;
    Ok((StatusCode::CREATED, pool(&st, tenant).await?))
}

#[utoipa::path(get, path = "/v1/numbers", tag = "pool", responses((status = 200, body = Pool)), security(("bearer" = [])))]
/// The pool with each number's status.
pub async fn list(State(st): State<Arc<ApiState>>, t: Tenant) -> Result<Json<Pool>, ApiError> {
    pool(&st, t.0).await
}

async fn pool(st: &Arc<ApiState>, tenant: i64) -> Result<Json<Pool>, ApiError> {
    let numbers = st
        .svc
        .pool(tenant)
        .await?
        .into_iter()
        .map(|p| {
            let status = match (p.bindings, p.quarantined_until) {
                (1.., _) => "in_use",
                (0, Some(_)) => "quarantined",
                _ => "free",
            };
            PoolNumber {
                number: p.number.as_str().to_string(),
                status: status.into(),
                bindings: p.bindings,
                quarantined_until: p.quarantined_until.map(crate::time::format),
            }
        })
        .collect();
    Ok(Json(Pool { numbers }))
}

#[utoipa::path(delete, path = "/v1/numbers/{number}", tag = "pool", params(("number" = super::input::Phone, Path, description = "the number")),
    responses((status = 204)), security(("bearer" = [])))]
/// Removes a number that serves no binding.
pub async fn remove(
    State(st): State<Arc<ApiState>>,
    t: Tenant,
    P(n): P<String>,
) -> Result<StatusCode, ApiError> {
    let n = phone(&st.norm, "number", &n)?;
    st.svc.remove_number(t.0, n).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/blocklist", tag = "blocklist", responses((status = 200, body = Blocklist)), security(("bearer" = [])))]
/// Callers refused on every binding of the tenant.
pub async fn blocklist(
    State(st): State<Arc<ApiState>>,
    t: Tenant,
) -> Result<Json<Blocklist>, ApiError> {
    let numbers = st
        .svc
        .blocklist(t.0)
        .await?
        .into_iter()
        .map(|n| n.as_str().to_string())
        .collect();
    Ok(Json(Blocklist { numbers }))
}

#[utoipa::path(put, path = "/v1/blocklist/{number}", tag = "blocklist", params(("number" = super::input::Party, Path, description = "caller to block")),
    responses((status = 204)), security(("bearer" = [])))]
/// Blocks a caller on every binding of the tenant.
pub async fn block(
    State(st): State<Arc<ApiState>>,
    t: Tenant,
    P(n): P<String>,
) -> Result<StatusCode, ApiError> {
    set_blocked(st, t.0, n, true).await
}

#[utoipa::path(delete, path = "/v1/blocklist/{number}", tag = "blocklist", params(("number" = super::input::Party, Path, description = "caller to unblock")),
    responses((status = 204)), security(("bearer" = [])))]
/// Unblocks a caller.
pub async fn unblock(
    State(st): State<Arc<ApiState>>,
    t: Tenant,
    P(n): P<String>,
) -> Result<StatusCode, ApiError> {
    set_blocked(st, t.0, n, false).await
}

async fn set_blocked(
    st: Arc<ApiState>,
    tenant: i64,
    n: String,
    blocked: bool,
) -> Result<StatusCode, ApiError> {
    let n = number(&st.norm, "number", &n)?;
    st.svc.set_blocked(tenant, n, blocked).await?;
    Ok(StatusCode::NO_CONTENT)
}
