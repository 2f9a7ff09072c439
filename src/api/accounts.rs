//! App accounts over HTTP: a tenant creates, lists, removes and re-keys its
//! accounts, and sees where each is registered (the rules are in
//! `service::accounts`; REGISTER is the registrar's). Passwords go in and
//! never come out.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Tenant;
use super::problem::ApiError;
use super::{ApiState, Body, Json, P};
use crate::registrar::{Account, Contact};

/// A new account.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAccount {
    /// Its name, the user part of the address phones register with: a
    /// letter, then letters, digits, `.`, `_`, `-`. Unique on the server.
    #[schema(pattern = "^[A-Za-z][A-Za-z0-9._-]{0,63}$")]
    pub name: String,
    /// 8 to 128 characters. Stored as digest hashes only.
    #[schema(min_length = 8, max_length = 128)]
    pub password: String,
}

/// A new password.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPassword {
    /// 8 to 128 characters.
    #[schema(min_length = 8, max_length = 128)]
    pub password: String,
}

/// One registered contact of an account.
#[derive(Debug, Serialize, ToSchema)]
pub struct RegistrationOut {
    /// The account.
    pub account: String,
    /// Contact URI the phone registered.
    pub contact: String,
    /// `UDP` or `TCP`.
    pub transport: String,
    /// Address the registration came from, where calls are sent.
    pub source: String,
    /// When it was first registered.
    pub registered_at: String,
    /// When it expires unless refreshed.
    pub expires_at: String,
}

/// An account.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountOut {
    /// Name.
    pub name: String,
    /// Address-of-record phones register with; bindings name the account
    /// as a party with any `sip:NAME@host` (the host is not compared).
    pub aor: String,
    /// Where it is registered now.
    pub registrations: Vec<RegistrationOut>,
}

/// A list of accounts.
#[derive(Debug, Serialize, ToSchema)]
pub struct Accounts {
    /// By name.
    pub items: Vec<AccountOut>,
}

/// A list of registrations.
#[derive(Debug, Serialize, ToSchema)]
pub struct Registrations {
    /// By account.
    pub items: Vec<RegistrationOut>,
}

fn registration(account: &str, c: &Contact) -> RegistrationOut {
    RegistrationOut {
        account: account.to_string(),
        contact: c.uri.clone(),
        transport: c.peer.transport.as_str().to_string(),
        source: c.peer.addr.to_string(),
        registered_at: crate::time::format_ms(c.since_ms),
        expires_at: crate::time::format_ms(c.expires_ms),
    }
}

fn out(st: &ApiState, a: &Account, contacts: &[Contact]) -> AccountOut {
    AccountOut {
        name: a.name.clone(),
        aor: format!("sip:{}@{}", a.name, st.cfg.sip_host),
        registrations: contacts.iter().map(|c| registration(&a.name, c)).collect(),
    }
}

#[utoipa::path(post, path = "/v1/accounts", tag = "accounts", request_body = NewAccount,
    responses((status = 201, body = AccountOut)), security(("bearer" = [])))]
/// Creates an account; 409 if the name is taken (by anyone).
pub async fn create(
    State(st): State<Arc<ApiState>>,
    t: Tenant,
    Body(req): Body<NewAccount>,
) -> Result<(StatusCode, Json<AccountOut>), ApiError> {
    let a = st.svc.add_account(t.0, req.name, req.password).await?;
    Ok((StatusCode::CREATED, Json(out(&st, &a, &[]))))
}

#[utoipa::path(get, path = "/v1/accounts", tag = "accounts", responses((status = 200, body = Accounts)), security(("bearer" = [])))]
/// The tenant's accounts with their registrations.
pub async fn list(State(st): State<Arc<ApiState>>, t: Tenant) -> Result<Json<Accounts>, ApiError> {
    let items = st
        .svc
        .accounts_of(t.0)
        .iter()
        .map(|(a, cs)| out(&st, a, cs))
        .collect();
    Ok(Json(Accounts { items }))
}

#[utoipa::path(get, path = "/v1/accounts/{name}", tag = "accounts", params(("name" = String, Path, description = "account name")),
    responses((status = 200, body = AccountOut)), security(("bearer" = [])))]
/// One account with its registrations.
pub async fn get(
    State(st): State<Arc<ApiState>>,
    t: Tenant,
    P(name): P<String>,
) -> Result<Json<AccountOut>, ApiError> {
    st.svc
        .accounts_of(t.0)
        .iter()
        .find(|(a, _)| a.name == name)
        .map(|(a, cs)| Json(out(&st, a, cs)))
        .ok_or_else(|| crate::service::Error::NotFound("account").into())
}

#[utoipa::path(put, path = "/v1/accounts/{name}/password", tag = "accounts", request_body = NewPassword,
    params(("name" = String, Path, description = "account name")),
    responses((status = 204)), security(("bearer" = [])))]
/// Sets a new password; registrations stay until they expire or are renewed.
pub async fn password(
    State(st): State<Arc<ApiState>>,
    t: Tenant,
    P(name): P<String>,
    Body(req): Body<NewPassword>,
) -> Result<StatusCode, ApiError> {
    st.svc.set_password(t.0, name, req.password).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/v1/accounts/{name}", tag = "accounts", params(("name" = String, Path, description = "account name")),
    responses((status = 204)), security(("bearer" = [])))]
/// Removes an account; its phones are unregistered at once.
pub async fn delete(
    State(st): State<Arc<ApiState>>,
    t: Tenant,
    P(name): P<String>,
) -> Result<StatusCode, ApiError> {
    st.svc.remove_account(t.0, name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/registrations", tag = "accounts", responses((status = 200, body = Registrations)), security(("bearer" = [])))]
/// Every registration of the tenant's accounts.
pub async fn registrations(
    State(st): State<Arc<ApiState>>,
    t: Tenant,
) -> Result<Json<Registrations>, ApiError> {
    let items = st
        .svc
        .accounts_of(t.0)
        .iter()
        .flat_map(|(a, cs)| cs.iter().map(|c| registration(&a.name, c)))
        .collect();
    Ok(Json(Registrations { items }))
}
