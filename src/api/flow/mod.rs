//! Flow 2 over HTTP: soft numbers of users, teams and agents, interactions
//! (one or thousands at once), acquisitions and their records, and the
//! tenant's own flow settings. The rules are in `service::flow`; nothing
//! here ever returns a user's real number.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::Tenant;
use super::input::{phone, JsonInt};
use super::problem::ApiError;
use super::{ApiState, Body, Json, P, Q};
use crate::service::flow::users::looks_soft;
use crate::service::flow::{Settings, SettingsPatch};
use crate::store::flow::User;

mod interactions;
mod teams;

pub use interactions::*;
pub use teams::*;

fn soft(field: &str, v: &str) -> Result<String, ApiError> {
    if looks_soft(v) {
        Ok(v.to_string())
    } else {
        Err(ApiError::invalid(field, "a soft number is 11 digits"))
    }
}

/// A user to give a soft number.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// The user's real number.
    #[schema(value_type = super::input::Phone)]
    pub number: String,
    /// The tenant's own id of the user (1 to 128 characters).
    #[schema(min_length = 1, max_length = 128)]
    pub user_id: Option<String>,
}

/// A user as the API shows it: never its real number.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserOut {
    /// The soft number.
    pub soft_number: String,
    /// The tenant's own id.
    pub user_id: Option<String>,
    /// When the soft number was issued.
    pub created_at: String,
    /// Last interaction.
    pub active_at: String,
}

impl From<User> for UserOut {
    fn from(u: User) -> Self {
        UserOut {
            soft_number: u.soft,
            user_id: u.ext_id,
            created_at: crate::time::format(u.created_at),
            active_at: crate::time::format(u.active_at),
        }
    }
}

/// Checks a tenant's own label (a user id, an agent's name), when given:
/// 1 to 128 characters, none of them a control character.
fn label(field: &str, v: Option<&str>) -> Result<(), ApiError> {
    let Some(v) = v else { return Ok(()) };
    if v.is_empty() || v.chars().count() > 128 {
        return Err(ApiError::invalid(field, "1 to 128 characters"));
    }
    if v.chars().any(char::is_control) {
        return Err(ApiError::invalid(field, "no control characters"));
    }
    Ok(())
}

#[utoipa::path(post, path = "/v1/users", tag = "flow", request_body = NewUser,
    responses((status = 201, body = UserOut), (status = 200, body = UserOut)), security(("bearer" = [])))]
/// The user's soft number, issued if it has none (201), else the same one
/// (200).
pub async fn create_user(
    State(st): State<Arc<ApiState>>,
    t: Tenant,
    Body(req): Body<NewUser>,
) -> Result<(StatusCode, Json<UserOut>), ApiError> {
    let real = phone(&st.norm, "number", &req.number)?;
    label("user_id", req.user_id.as_deref())?;
    let (u, made) = st.svc.soft_number(t.0, real, req.user_id).await?;
    let code = if made {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((code, Json(u.into())))
}

/// Finding a user by the tenant's own id.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UserQuery {
    /// The tenant's own id of the user.
    pub user_id: String,
}

#[utoipa::path(get, path = "/v1/users", tag = "flow", params(UserQuery),
    responses((status = 200, body = UserOut)), security(("bearer" = [])))]
/// A live user by the tenant's own id.
pub async fn find_user(
    State(st): State<Arc<ApiState>>,
    t: Tenant,
    Q(q): Q<UserQuery>,
) -> Result<Json<UserOut>, ApiError> {
    Ok(Json(st.svc.user(t.0, None, Some(q.user_id)).await?.into()))
}

#[utoipa::path(get, path = "/v1/users/{soft_number}", tag = "flow",
    params(("soft_number" = String, Path, description = "soft number", pattern = "^[0-9]{11}$")),
    responses((status = 200, body = UserOut)), security(("bearer" = [])))]
/// A live user by soft number.
pub async fn get_user(
    State(st): State<Arc<ApiState>>,
    t: Tenant,
    P(s): P<String>,
) -> Result<Json<UserOut>, ApiError> {
    let s = soft("soft_number", &s)?;
    Ok(Json(st.svc.user(t.0, Some(s), None).await?.into()))
}

#[utoipa::path(delete, path = "/v1/users/{soft_number}", tag = "flow",
    params(("soft_number" = String, Path, description = "soft number", pattern = "^[0-9]{11}$")),
    responses((status = 204)), security(("bearer" = [])))]
/// Recycles the user's soft number: it stops resolving at once and rests
/// before it is issued again.
pub async fn recycle_user(
    State(st): State<Arc<ApiState>>,
    t: Tenant,
    P(s): P<String>,
) -> Result<StatusCode, ApiError> {
    let s = soft("soft_number", &s)?;
    st.svc.recycle(t.0, s).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/flow/settings", tag = "flow", responses((status = 200, body = Settings)), security(("bearer" = [])))]
/// The tenant's flow settings as they apply.
pub async fn get_settings(
    State(st): State<Arc<ApiState>>,
    t: Tenant,
) -> Result<Json<Settings>, ApiError> {
    Ok(Json(st.svc.flow_settings(t.0).await?))
}

/// The tenant's own flow settings; absent fields keep theirs, `null`
/// returns a field to the server's default.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsIn {
    /// First digit of new soft numbers, 1 to 9.
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 9)]
    #[serde(default, deserialize_with = "super::model::some")]
    pub soft_flag: Option<Option<JsonInt>>,
    /// Second digit of new soft numbers, 0 to 9.
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 9)]
    #[serde(default, deserialize_with = "super::model::some")]
    pub soft_reserved: Option<Option<JsonInt>>,
    /// Seconds without an interaction before a soft number is recycled (0: never).
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 3155760000_i64)]
    #[serde(default, deserialize_with = "super::model::some")]
    pub idle_recycle_secs: Option<Option<JsonInt>>,
    /// Seconds a recycled soft number rests.
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 3155760000_i64)]
    #[serde(default, deserialize_with = "super::model::some")]
    pub soft_quarantine_secs: Option<Option<JsonInt>>,
    /// Seconds between pushes of a soft number to one agent.
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 3155760000_i64)]
    #[serde(default, deserialize_with = "super::model::some")]
    pub push_window_secs: Option<Option<JsonInt>>,
    /// Seconds of interactions that permit an acquisition.
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 3155760000_i64)]
    #[serde(default, deserialize_with = "super::model::some")]
    pub lookback_secs: Option<Option<JsonInt>>,
    /// Seconds an acquired X lives after the last request or interaction.
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 3155760000_i64)]
    #[serde(default, deserialize_with = "super::model::some")]
    pub x_lifetime_secs: Option<Option<JsonInt>>,
    /// Longest call through an acquired X, seconds (0: the server's defaults).
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 3155760000_i64)]
    #[serde(default, deserialize_with = "super::model::some")]
    pub x_max_call_secs: Option<Option<JsonInt>>,
    /// Answered calls an acquired X allows (0: the server's defaults).
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 4294967295_i64)]
    #[serde(default, deserialize_with = "super::model::some")]
    pub x_max_calls: Option<Option<JsonInt>>,
}

fn count(field: &str, v: Option<Option<JsonInt>>) -> Result<Option<u32>, ApiError> {
    v.flatten()
        .map(|v| u32::try_from(v.0).map_err(|_| ApiError::invalid(field, "0 to 4294967295")))
        .transpose()
}

fn secs(field: &str, v: Option<Option<JsonInt>>) -> Result<Option<u64>, ApiError> {
    v.flatten()
        .map(|v| u64::try_from(v.0).map_err(|_| ApiError::invalid(field, "0 or more")))
        .transpose()
}

fn digit(field: &str, v: Option<Option<JsonInt>>) -> Result<Option<u8>, ApiError> {
    v.flatten()
        .map(|v| u8::try_from(v.0).map_err(|_| ApiError::invalid(field, "a digit")))
        .transpose()
}

#[utoipa::path(put, path = "/v1/flow/settings", tag = "flow", request_body = SettingsIn,
    responses((status = 200, body = Settings)), security(("bearer" = [])))]
/// Sets the tenant's own flow settings (absent fields keep theirs).
pub async fn set_settings(
    State(st): State<Arc<ApiState>>,
    t: Tenant,
    Body(req): Body<SettingsIn>,
) -> Result<Json<Settings>, ApiError> {
    // Fields sent as null go back to the server's default.
    macro_rules! nulls {
        ($($f:ident),*) => {
            [$((stringify!($f), req.$f.is_some_and(|v| v.is_none()))),*]
        };
    }
    let reset: Vec<&'static str> = nulls!(
        soft_flag,
        soft_reserved,
        idle_recycle_secs,
        soft_quarantine_secs,
        push_window_secs,
        lookback_secs,
        x_lifetime_secs,
        x_max_call_secs,
        x_max_calls
    )
    .into_iter()
    .filter_map(|(name, null)| null.then_some(name))
    .collect();
    let patch = SettingsPatch {
        soft_flag: digit("soft_flag", req.soft_flag)?,
        soft_reserved: digit("soft_reserved", req.soft_reserved)?,
        idle_recycle_secs: secs("idle_recycle_secs", req.idle_recycle_secs)?,
        soft_quarantine_secs: secs("soft_quarantine_secs", req.soft_quarantine_secs)?,
        push_window_secs: secs("push_window_secs", req.push_window_secs)?,
        lookback_secs: secs("lookback_secs", req.lookback_secs)?,
        x_lifetime_secs: secs("x_lifetime_secs", req.x_lifetime_secs)?,
        x_max_call_secs: count("x_max_call_secs", req.x_max_call_secs)?,
        x_max_calls: count("x_max_calls", req.x_max_calls)?,
    };
    Ok(Json(st.svc.set_flow_settings(t.0, patch, reset).await?))
}

#[cfg(test)]
mod tests {
    #[test]
    fn soft_numbers_are_eleven_digits() {
        assert!(super::soft("s", "58123456789").is_ok());
        assert!(super::soft("s", "5812345678").is_err());
        assert!(super::soft("s", "5812345678a").is_err());
    }
}
