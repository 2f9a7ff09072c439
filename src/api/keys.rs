//! API keys: issue, list and revoke a tenant's keys (over HTTP, and for the
//! command line), and tenant names. A key is shown once, when issued; the
//! store keeps its SHA-256 hash and a public id (`key_...`) to list and
//! revoke it by. A revoked key stops working at once.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::{hash_key, new_key, Tenant};
use super::problem::ApiError;
use super::{ApiState, Json, P};
use crate::bindings::TenantId;
use crate::store::prelude::*;
use crate::store::StoreError;

/// Why a tenant or key operation was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Empty or unusable tenant name.
    #[error("tenant name {0:?} is not 1 to 64 letters, digits, '.', '_' or '-' starting with a letter or digit")]
    BadName(String),
    /// A tenant of that name exists.
    #[error("tenant {0:?} exists already")]
    TenantExists(String),
    /// No tenant of that name.
    #[error("no tenant {0:?}")]
    NoTenant(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks a tenant name.
pub fn tenant_name(name: &str) -> Result<(), KeyError> {
    let ok = (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(KeyError::BadName(name.to_string()))
    }
}

/// Issues a new key for `tenant`: (public id, key).
pub fn issue(s: &mut dyn Backend, tenant: TenantId) -> Result<(String, String), StoreError> {
    let key = new_key();
    let id = crate::ids::short("key_", 12);
    s.add_key(tenant, &id, &hash_key(&key), crate::time::now())?;
    Ok((id, key))
}

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
    let tenant = t.0;
    let rows = st.db(move |s| Ok(s.tenant_keys(tenant)?)).await?;
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
    let (id, key) = st.db(move |s| Ok(issue(s, tenant)?)).await?;
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
    let tenant = t.0;
    let keys = st
        .db(move |s| {
            if !s.revoke_key(tenant, &key_id)? {
                return Err(ApiError::NotFound("key"));
            }
            Ok(s.keys()?)
        })
        .await?;
    st.reload_keys(keys);
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    #[test]
    fn tenant_names_are_checked() {
        for bad in ["", " ", "-x", "a b", "ä", &"x".repeat(65)] {
            assert!(super::tenant_name(bad).is_err(), "{bad:?}");
        }
        for good in ["acme", "acme-2.eu_west", "7eleven"] {
            assert!(super::tenant_name(good).is_ok(), "{good}");
        }
    }
}
