//! Flow 2 over HTTP: interactions (one or thousands at once), and the
//! acquisitions they make possible, with their records.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::soft;
use crate::api::auth::Tenant;
use crate::api::input::{page, phone, JsonInt};
use crate::api::problem::ApiError;
use crate::api::{ApiState, Body, Json, Q};
use crate::service::flow::interactions::InteractionIn;
use crate::service::flow::users::looks_soft;
use crate::store::flow::{AcquisitionFilter, AcquisitionRecord};

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
    #[schema(value_type = crate::api::input::Phone)]
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
    #[serde(deserialize_with = "crate::api::input::objects")]
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
    #[schema(value_type = crate::api::input::Phone)]
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
        (status = 403, description = "identity-check-failed or no-permission", body = crate::api::problem::Problem,
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
    #[param(value_type = Option<crate::api::input::Cursor>)]
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
