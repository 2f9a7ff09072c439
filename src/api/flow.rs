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
use super::input::{page, phone, JsonInt};
use super::problem::ApiError;
use super::{ApiState, Body, Json, P, Q};
use crate::service::flow::interactions::InteractionIn;
use crate::service::flow::users::looks_soft;
use crate::service::flow::{Settings, SettingsPatch};
use crate::store::flow::{AcquisitionFilter, AcquisitionRecord, Agent, Team, User};

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

/// A new team.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTeam {
    /// Name, unique in the tenant.
    #[schema(pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    pub name: String,
    /// Whether its agents share interactions (default false).
    #[serde(default)]
    pub shares: bool,
}

/// A change of a team.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamPatch {
    /// Whether its agents share interactions.
    pub shares: bool,
}

/// A team.
#[derive(Debug, Serialize, ToSchema)]
pub struct TeamOut {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Whether its agents share interactions.
    pub shares: bool,
}

impl From<Team> for TeamOut {
    fn from(t: Team) -> Self {
        TeamOut {
            id: t.id,
            name: t.name,
            shares: t.shares,
        }
    }
}

/// Teams.
#[derive(Debug, Serialize, ToSchema)]
pub struct Teams {
    /// Oldest first.
    pub items: Vec<TeamOut>,
}

#[utoipa::path(post, path = "/v1/teams", tag = "flow", request_body = NewTeam,
    responses((status = 201, body = TeamOut)), security(("bearer" = [])))]
/// Creates a team.
pub async fn create_team(
    State(st): State<Arc<ApiState>>,
    t: Tenant,
    Body(req): Body<NewTeam>,
) -> Result<(StatusCode, Json<TeamOut>), ApiError> {
    let team = st.svc.add_team(t.0, req.name, req.shares).await?;
    Ok((StatusCode::CREATED, Json(team.into())))
}

#[utoipa::path(get, path = "/v1/teams", tag = "flow", responses((status = 200, body = Teams)), security(("bearer" = [])))]
/// The tenant's teams.
pub async fn list_teams(
    State(st): State<Arc<ApiState>>,
    t: Tenant,
) -> Result<Json<Teams>, ApiError> {
    let items = st
        .svc
        .teams(t.0)
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    Ok(Json(Teams { items }))
}

#[utoipa::path(patch, path = "/v1/teams/{id}", tag = "flow", request_body = TeamPatch,
    params(("id" = i64, Path, description = "team id")),
    responses((status = 200, body = TeamOut)), security(("bearer" = [])))]
/// Sets whether a team shares interactions.
pub async fn patch_team(
    State(st): State<Arc<ApiState>>,
    t: Tenant,
    P(id): P<i64>,
    Body(req): Body<TeamPatch>,
) -> Result<Json<TeamOut>, ApiError> {
    Ok(Json(
        st.svc.set_team_shares(t.0, id, req.shares).await?.into(),
    ))
}

/// A new agent.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAgent {
    /// The agent's real number.
    #[schema(value_type = super::input::Phone)]
    pub number: String,
    /// Its team's id.
    #[schema(value_type = i64)]
    pub team: JsonInt,
    /// A name (1 to 128 characters).
    #[schema(min_length = 1, max_length = 128)]
    pub name: Option<String>,
}

/// A move of an agent.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentPatch {
    /// Its new team's id.
    #[schema(value_type = i64)]
    pub team: JsonInt,
}

/// An agent.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentOut {
    /// Id.
    pub id: i64,
    /// Its real number.
    pub number: String,
    /// Its team's id.
    pub team: i64,
    /// Its name.
    pub name: Option<String>,
}

impl From<Agent> for AgentOut {
    fn from(a: Agent) -> Self {
        AgentOut {
            id: a.id,
            number: a.real.as_str().to_string(),
            team: a.team,
            name: a.name,
        }
    }
}

/// Agents.
#[derive(Debug, Serialize, ToSchema)]
pub struct Agents {
    /// Oldest first.
    pub items: Vec<AgentOut>,
}

/// Which agents to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AgentQuery {
    /// Only this team's.
    pub team: Option<i64>,
}

#[utoipa::path(post, path = "/v1/agents", tag = "flow", request_body = NewAgent,
    responses((status = 201, body = AgentOut)), security(("bearer" = [])))]
/// Registers an agent in a team.
pub async fn create_agent(
    State(st): State<Arc<ApiState>>,
    t: Tenant,
    Body(req): Body<NewAgent>,
) -> Result<(StatusCode, Json<AgentOut>), ApiError> {
    let real = phone(&st.norm, "number", &req.number)?;
    label("name", req.name.as_deref())?;
    let a = st.svc.add_agent(t.0, real, req.team.0, req.name).await?;
    Ok((StatusCode::CREATED, Json(a.into())))
}

#[utoipa::path(get, path = "/v1/agents", tag = "flow", params(AgentQuery),
    responses((status = 200, body = Agents)), security(("bearer" = [])))]
/// The tenant's agents.
pub async fn list_agents(
    State(st): State<Arc<ApiState>>,
    t: Tenant,
    Q(q): Q<AgentQuery>,
) -> Result<Json<Agents>, ApiError> {
    let items = st
        .svc
        .agents(t.0, q.team)
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    Ok(Json(Agents { items }))
}

#[utoipa::path(get, path = "/v1/agents/{id}", tag = "flow", params(("id" = i64, Path, description = "agent id")),
    responses((status = 200, body = AgentOut)), security(("bearer" = [])))]
/// One agent.
pub async fn get_agent(
    State(st): State<Arc<ApiState>>,
    t: Tenant,
    P(id): P<i64>,
) -> Result<Json<AgentOut>, ApiError> {
    Ok(Json(st.svc.agent(t.0, id).await?.into()))
}

#[utoipa::path(patch, path = "/v1/agents/{id}", tag = "flow", request_body = AgentPatch,
    params(("id" = i64, Path, description = "agent id")),
    responses((status = 200, body = AgentOut)), security(("bearer" = [])))]
/// Moves an agent to another team.
pub async fn patch_agent(
    State(st): State<Arc<ApiState>>,
    t: Tenant,
    P(id): P<i64>,
    Body(req): Body<AgentPatch>,
) -> Result<Json<AgentOut>, ApiError> {
    Ok(Json(st.svc.move_agent(t.0, id, req.team.0).await?.into()))
}

#[utoipa::path(delete, path = "/v1/agents/{id}", tag = "flow", params(("id" = i64, Path, description = "agent id")),
    responses((status = 204)), security(("bearer" = [])))]
/// Removes an agent: its number is no agent any more.
pub async fn delete_agent(
    State(st): State<Arc<ApiState>>,
    t: Tenant,
    P(id): P<i64>,
) -> Result<StatusCode, ApiError> {
    st.svc.remove_agent(t.0, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An interaction between a user and an agent.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewInteraction {
    /// The user's soft number (or give `user_id`).
    #[schema(pattern = "^[0-9]{11}$")]
    pub soft_number: Option<String>,
    /// The tenant's own id of the user.
    pub user_id: Option<String>,
    /// The agent's real number.
    #[schema(value_type = super::input::Phone)]
    pub agent: String,
    /// browse, favourite, chat, call, or the tenant's own kind (1 to 32 of
    /// a-z, 0-9, `_`, `-`). browse, favourite and chat push the user's soft
    /// number to the agent.
    #[schema(pattern = "^[a-z0-9_-]{1,32}$")]
    pub kind: String,
    /// When, unix seconds (default: now).
    #[schema(value_type = Option<i64>)]
    pub at: Option<JsonInt>,
}

/// Interactions in bulk.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InteractionBatch {
    /// 1 to 10,000, recorded all or none.
    #[serde(deserialize_with = "super::input::objects")]
    pub items: Vec<NewInteraction>,
}

/// What was recorded.
#[derive(Debug, Serialize, ToSchema)]
pub struct Recorded {
    /// Interactions recorded.
    pub recorded: usize,
    /// Soft numbers pushed to agents (`soft_number.pushed`).
    pub pushed: usize,
}

/// Checks the items; bad ones are all named, with their place.
fn interactions_in(
    st: &ApiState,
    items: Vec<NewInteraction>,
    bulk: bool,
) -> Result<Vec<InteractionIn>, ApiError> {
    let mut problems = Vec::new();
    let mut out = Vec::with_capacity(items.len());
    for (i, it) in items.into_iter().enumerate() {
        let f = |n: &str| {
            if bulk {
                format!("items[{i}].{n}")
            } else {
                n.to_string()
            }
        };
        if let Some(s) = &it.soft_number {
            if !looks_soft(s) {
                problems.push((f("soft_number"), "a soft number is 11 digits".into()));
            }
        }
        let agent = match phone(&st.norm, &f("agent"), &it.agent) {
            Ok(a) => a,
            Err(e) => {
                problems.push((f("agent"), e.to_string()));
                continue;
            }
        };
        out.push(InteractionIn {
            soft_number: it.soft_number,
            user_id: it.user_id,
            agent,
            kind: it.kind,
            at: it.at.map(|a| a.0),
        });
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(ApiError::Items(problems))
    }
}

#[utoipa::path(post, path = "/v1/interactions", tag = "flow", request_body = NewInteraction,
    responses((status = 201, body = Recorded)), security(("bearer" = [])))]
/// Records one interaction.
pub async fn create_interaction(
    State(st): State<Arc<ApiState>>,
    t: Tenant,
    Body(req): Body<NewInteraction>,
) -> Result<(StatusCode, Json<Recorded>), ApiError> {
    let items = interactions_in(&st, vec![req], false)?;
    let (recorded, pushed) = st
        .svc
        .record_interactions(t.0, items, "interaction")
        .await?;
    Ok((StatusCode::CREATED, Json(Recorded { recorded, pushed })))
}

#[utoipa::path(post, path = "/v1/interactions/bulk", tag = "flow", request_body = InteractionBatch,
    responses((status = 201, body = Recorded)), security(("bearer" = [])))]
/// Records up to 10,000 interactions, all or none; every bad item is named
/// in the problem's `problems`.
pub async fn bulk_interactions(
    State(st): State<Arc<ApiState>>,
    t: Tenant,
    Body(req): Body<InteractionBatch>,
) -> Result<(StatusCode, Json<Recorded>), ApiError> {
    let items = interactions_in(&st, req.items, true)?;
    let (recorded, pushed) = st.svc.record_interactions(t.0, items, "items").await?;
    Ok((StatusCode::CREATED, Json(Recorded { recorded, pushed })))
}

/// An agent's request for a number to call a user.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAcquisition {
    /// The agent's real number.
    #[schema(value_type = super::input::Phone)]
    pub agent: String,
    /// The user's soft number.
    #[schema(pattern = "^[0-9]{11}$")]
    pub soft_number: String,
}

/// A granted acquisition.
#[derive(Debug, Serialize, ToSchema)]
pub struct AcquiredOut {
    /// The number to call: it reaches the user from the agent's number
    /// only.
    pub x: String,
    /// Until when it works unless renewed.
    pub expires_at: String,
    /// Whether the pair already had it.
    pub renewed: bool,
}

#[utoipa::path(post, path = "/v1/acquisitions", tag = "flow", request_body = NewAcquisition,
    responses((status = 201, body = AcquiredOut), (status = 200, body = AcquiredOut),
        (status = 403, description = "identity-check-failed or no-permission", body = super::problem::Problem,
            content_type = "application/problem+json")),
    security(("bearer" = [])))]
/// An X for (agent, user): 201 when new, 200 when renewed; or the problem
/// `identity-check-failed` (403), `no-permission` (403) or
/// `unknown-soft-number` (404).
pub async fn acquire(
    State(st): State<Arc<ApiState>>,
    t: Tenant,
    Body(req): Body<NewAcquisition>,
) -> Result<(StatusCode, Json<AcquiredOut>), ApiError> {
    let agent = phone(&st.norm, "agent", &req.agent)?;
    let s = soft("soft_number", &req.soft_number)?;
    let a = st.svc.acquire(t.0, agent, s).await?;
    let code = if a.renewed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((
        code,
        Json(AcquiredOut {
            x: a.x.as_str().to_string(),
            expires_at: crate::time::format(a.expires_at),
            renewed: a.renewed,
        }),
    ))
}

/// A recorded decision.
#[derive(Debug, Serialize, ToSchema)]
pub struct AcquisitionOut {
    /// Id.
    pub id: i64,
    /// The agent's number as sent.
    pub agent_number: String,
    /// The agent, if registered (absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<i64>,
    /// Its team (absent when the number is no agent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team_id: Option<i64>,
    /// The soft number as sent.
    pub soft_number: String,
    /// granted, renewed, identity-check-failed, no-permission,
    /// unknown-soft-number.
    pub result: String,
    /// Why.
    pub reason: String,
    /// X, when granted (absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    /// When.
    pub at: String,
}

impl From<AcquisitionRecord> for AcquisitionOut {
    fn from(r: AcquisitionRecord) -> Self {
        AcquisitionOut {
            id: r.id,
            agent_number: r.agent_number,
            agent_id: r.agent,
            team_id: r.team,
            soft_number: r.soft,
            result: r.result,
            reason: r.reason,
            x: r.x,
            at: crate::time::format_ms(r.at),
        }
    }
}

/// A page of decisions.
#[derive(Debug, Serialize, ToSchema)]
pub struct AcquisitionPage {
    /// Oldest first.
    pub items: Vec<AcquisitionOut>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// Which decisions to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AcquisitionQuery {
    /// `next_cursor` of the previous page.
    #[param(value_type = Option<super::input::Cursor>)]
    pub cursor: Option<String>,
    /// Page size, 1 to 1,000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// Only this agent's.
    pub agent_id: Option<i64>,
    /// Only this team's.
    pub team_id: Option<i64>,
    /// Only about this user (by soft number, live or recycled).
    #[param(pattern = "^[0-9]{11}$")]
    pub soft_number: Option<String>,
}

#[utoipa::path(get, path = "/v1/acquisitions", tag = "flow", params(AcquisitionQuery),
    responses((status = 200, body = AcquisitionPage)), security(("bearer" = [])))]
/// Acquisition decisions, granted or not, per agent, team or user.
pub async fn list_acquisitions(
    State(st): State<Arc<ApiState>>,
    t: Tenant,
    Q(q): Q<AcquisitionQuery>,
) -> Result<Json<AcquisitionPage>, ApiError> {
    let (after, limit) = page(&q.cursor, q.limit)?;
    let s = q
        .soft_number
        .as_deref()
        .map(|s| soft("soft_number", s))
        .transpose()?;
    let f = AcquisitionFilter {
        after,
        limit,
        agent: q.agent_id,
        user: None,
        soft: None,
        team: q.team_id,
    };
    let (items, next) = st.svc.acquisitions(t.0, f, s).await?;
    Ok(Json(AcquisitionPage {
        items: items.into_iter().map(Into::into).collect(),
        next_cursor: next.map(|n| n.to_string()),
    }))
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
