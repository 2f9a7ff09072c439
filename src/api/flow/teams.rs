//! Flow 2 over HTTP: teams, and the agents registered in them.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::label;
use crate::api::auth::Tenant;
use crate::api::input::{phone, JsonInt};
use crate::api::problem::ApiError;
use crate::api::{ApiState, Body, Json, P, Q};
use crate::store::flow::{Agent, Team};

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
    #[schema(value_type = crate::api::input::Phone)]
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
