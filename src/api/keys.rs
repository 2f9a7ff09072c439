//! API keys over HTTP: list, issue and revoke a tenant's own keys (the
//! rules are in `service::tenants`). A key is shown once, when issued; a
//! revoked key stops working at once.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::Tenant;
use super::problem::ApiError;
use super::{ApiState, Json, P};
use crate::service::tenants::hash_key;

/// A key as listed (never the key itself).
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyOut {
    /// Public id, for revoking.
    pub id: String,
    /// When it was issued.
    pub created_at: String,
}

/// A tenant's keys.
#[derive(Debug, Serialize, ToSchema)]
pub struct Keys {
    /// Oldest first.
    pub items: Vec<KeyOut>,
}

/// A new key, shown once.
#[derive(Debug, Serialize, ToSchema)]
pub struct NewKey {
    /// Public id.
    pub id: String,
    /// The key: send it as `Authorization: Bearer <key>`. Not shown again.
    pub key: String,
}

#[utoipa::path(get, path = "/v1/keys", tag = "keys", responses((status = 200, body = Keys)), security(("bearer" = [])))]
/// The tenant's keys.
pub async fn list(State(st): State<Arc<ApiState>>, t: Tenant) -> Result<Json<Keys>, ApiError> {
    let rows = st.svc.keys_of(t.0).await?;
    let items = rows
        .into_iter()
        .map(|(id, at)| KeyOut {
            id,
            created_at: crate::time::format(at),
        })
        .collect();
    Ok(Json(Keys { items }))
}

#[utoipa::path(post, path = "/v1/keys", tag = "keys", responses((status = 201, body = NewKey)), security(("bearer" = [])))]
/// Issues another key (to rotate: issue, deploy, revoke the old one).
pub async fn create(
    State(st): State<Arc<ApiState>>,
    t: Tenant,
) -> Result<(StatusCode, Json<NewKey>), ApiError> {
    let tenant = t.0;
    let (id, key) = st.svc.issue_key(tenant).await?;
    st.keys.insert(hash_key(&key), tenant);
    Ok((StatusCode::CREATED, Json(NewKey { id, key })))
}

#[utoipa::path(delete, path = "/v1/keys/{key_id}", tag = "keys", params(("key_id" = String, Path, description = "key id")),
    responses((status = 204)), security(("bearer" = [])))]
/// Revokes a key at once (the one making the request too, if asked).
pub async fn revoke(
    State(st): State<Arc<ApiState>>,
    t: Tenant,
    P(key_id): P<String>,
) -> Result<StatusCode, ApiError> {
    let keys = st.svc.revoke(t.0, key_id).await?;
    st.reload_keys(keys);
    Ok(StatusCode::NO_CONTENT)
}
