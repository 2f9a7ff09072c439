//! Event delivery settings over HTTP: the tenant's webhook (URL, signing
//! secret, number style, state), its undelivered events with redelivery,
//! and a live server-sent-events stream of the same events.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Tenant;
use super::problem::ApiError;
use super::P;
use super::{ApiState, Body, Json};
use crate::events::webhook::check_url;

/// How numbers appear in webhook bodies.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum NumberStyle {
    /// Parties in full (`+8613800000000`).
    #[default]
    Full,
    /// Parties masked (`+86138****0000`); X stays in full.
    Masked,
}

/// Where to send events.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetWebhook {
    /// `http://` or `https://` URL of a public address (or of a network
    /// the operator allows).
    #[schema(max_length = 2048, pattern = "^https?://")]
    pub url: String,
    /// `full` (default) or `masked` numbers in bodies.
    #[serde(default)]
    pub numbers: NumberStyle,
}

/// The tenant's webhook.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookOut {
    /// Where events go.
    pub url: String,
    /// Key of the `Sipmask-Signature` header: `t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
    pub secret: String,
    /// How numbers appear in bodies.
    pub numbers: NumberStyle,
    /// First failure since the last success, if failing.
    pub failing_since: Option<String>,
    /// When it was disabled for failing too long (PUT enables it again).
    pub disabled_at: Option<String>,
}

impl WebhookOut {
    fn from(w: crate::store::webhooks::Webhook) -> WebhookOut {
        WebhookOut {
            url: w.url,
            secret: w.secret,
            numbers: if w.masked {
                NumberStyle::Masked
            } else {
                NumberStyle::Full
            },
            failing_since: w.failing_since.map(crate::time::format_ms),
            disabled_at: w.disabled_at.map(crate::time::format_ms),
        }
    }
}

#[utoipa::path(put, path = "/v1/webhook", tag = "events", request_body = SetWebhook,
    responses((status = 200, body = WebhookOut)), security(("bearer" = [])))]
/// Sets the webhook; a new signing secret is made each time.
pub async fn set(
    State(st): State<Arc<ApiState>>,
    t: Tenant,
    Body(req): Body<SetWebhook>,
) -> Result<Json<WebhookOut>, ApiError> {
    let url = check_url(&req.url, &st.cfg.webhook_networks)
        .await
        .map_err(|e| ApiError::invalid("url", e.to_string()))?
        .to_string();
    let masked = req.numbers == NumberStyle::Masked;
    let hook = st.svc.set_webhook(t.0, url, masked).await?;
    Ok(Json(WebhookOut::from(hook)))
}

#[utoipa::path(get, path = "/v1/webhook", tag = "events", responses((status = 200, body = WebhookOut)), security(("bearer" = [])))]
/// The webhook.
pub async fn get(State(st): State<Arc<ApiState>>, t: Tenant) -> Result<Json<WebhookOut>, ApiError> {
    let tenant = t.0;
    let hook = st
        .db(move |s| Ok(s.webhook(tenant)?))
        .await?
        .ok_or(ApiError::NotFound("webhook"))?;
    Ok(Json(WebhookOut::from(hook)))
}

/// Which undelivered events to list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveryQuery {
    /// `failed` (default: given up after the last attempt) or `pending`.
    pub state: Option<DeliveryState>,
    /// Most items, 1 to 1,000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// State of an undelivered event.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Given up after the last attempt.
    Failed,
    /// Still being tried.
    Pending,
}

/// An undelivered event.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryOut {
    /// Event id.
    pub event_id: String,
    /// Event type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Attempts so far.
    pub attempts: u32,
    /// When the event happened.
    pub created_at: String,
    /// Next attempt (pending).
    pub next_attempt_at: Option<String>,
    /// When it was given up (failed).
    pub failed_at: Option<String>,
    /// What the last attempt met.
    pub last_error: Option<String>,
}

/// Undelivered events.
#[derive(Debug, Serialize, ToSchema)]
pub struct Deliveries {
    /// Oldest first.
    pub items: Vec<DeliveryOut>,
}

#[utoipa::path(get, path = "/v1/webhook/deliveries", tag = "events", params(DeliveryQuery),
    responses((status = 200, body = Deliveries)), security(("bearer" = [])))]
/// Events not delivered: failed for good, or still pending.
pub async fn deliveries(
    State(st): State<Arc<ApiState>>,
    t: Tenant,
    super::Q(q): super::Q<DeliveryQuery>,
) -> Result<Json<Deliveries>, ApiError> {
    let (_, limit) = super::model::page(&None, q.limit)?;
    let failed = q.state.unwrap_or(DeliveryState::Failed) == DeliveryState::Failed;
    let tenant = t.0;
    let rows = st
        .db(move |s| Ok(s.deliveries(tenant, failed, limit)?))
        .await?;
    let items = rows
        .into_iter()
        .map(|d| DeliveryOut {
            event_id: d.event_id,
            kind: d.kind,
            attempts: d.attempts,
            created_at: crate::time::format_ms(d.created_at),
            next_attempt_at: d.next_attempt_at.map(crate::time::format_ms),
            failed_at: d.failed_at.map(crate::time::format_ms),
            last_error: d.last_error,
        })
        .collect();
    Ok(Json(Deliveries { items }))
}

#[utoipa::path(post, path = "/v1/webhook/deliveries/{event_id}/redeliver", tag = "events",
    params(("event_id" = String, Path, description = "a failed event's id")),
    responses((status = 202)), security(("bearer" = [])))]
/// Puts a failed event back in line with a fresh set of attempts.
pub async fn redeliver(
    State(st): State<Arc<ApiState>>,
    t: Tenant,
    P(event_id): P<String>,
) -> Result<StatusCode, ApiError> {
    st.svc.redeliver(t.0, event_id).await?;
    Ok(StatusCode::ACCEPTED)
}

#[utoipa::path(delete, path = "/v1/webhook", tag = "events", responses((status = 204)), security(("bearer" = [])))]
/// Removes the webhook; undelivered events are dropped.
pub async fn delete(State(st): State<Arc<ApiState>>, t: Tenant) -> Result<StatusCode, ApiError> {
    st.svc.delete_webhook(t.0).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/events", tag = "events",
    responses((status = 200, description = "server-sent events, one JSON event each", content_type = "text/event-stream", body = String)),
    security(("bearer" = [])))]
/// The tenant's events as they happen (server-sent events).
pub async fn stream(
    State(st): State<Arc<ApiState>>,
    t: Tenant,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = st.svc.hub.subscribe();
    let tenant = t.0;
    let events = futures_util::stream::unfold(rx, move |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(e) if e.0 == tenant => {
                    return Some((Ok(Event::default().data(e.1.clone())), rx))
                }
                Ok(_) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    let note = Event::default().event("lagged").data(n.to_string());
                    return Some((Ok(note), rx));
                }
                Err(_) => return None,
            }
        }
    });
    // The stream ends when the server shuts down, so shutdown never waits
    // on a client that keeps it open.
    let events =
        futures_util::StreamExt::take_until(events, st.cfg.shutdown.clone().cancelled_owned());
    Sse::new(events).keep_alive(KeepAlive::default())
}
