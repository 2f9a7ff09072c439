//! Event delivery settings over HTTP: the tenant's webhook (URL and signing
//! secret) and a live server-sent-events stream of the same events.

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
use super::{ApiState, Body, Json};
use crate::events::webhook::parse_url;

/// Where to send events.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetWebhook {
    /// `http://host[:port]/path`.
    pub url: String,
}

/// The tenant's webhook.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookOut {
    /// Where events go.
    pub url: String,
    /// Key of the `Sipmask-Signature` header: `t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
    pub secret: String,
}

#[utoipa::path(put, path = "/v1/webhook", tag = "events", request_body = SetWebhook,
    responses((status = 200, body = WebhookOut)), security(("bearer" = [])))]
/// Sets the webhook; a new signing secret is made each time.
pub async fn set(
    State(st): State<Arc<ApiState>>,
    t: Tenant,
    Body(req): Body<SetWebhook>,
) -> Result<Json<WebhookOut>, ApiError> {
    parse_url(&req.url).map_err(|e| ApiError::invalid("url", e.to_string()))?;
    let secret = format!("whsec_{}{}", crate::sip::token(), crate::sip::token());
    let (tenant, url, sec) = (t.0, req.url.clone(), secret.clone());
    st.db(move |s| Ok(s.set_webhook(tenant, &url, &sec)?))
        .await?;
    st.hub.set_hooked(tenant, true);
    Ok(Json(WebhookOut {
        url: req.url,
        secret,
    }))
}

#[utoipa::path(get, path = "/v1/webhook", tag = "events", responses((status = 200, body = WebhookOut)), security(("bearer" = [])))]
/// The webhook.
pub async fn get(State(st): State<Arc<ApiState>>, t: Tenant) -> Result<Json<WebhookOut>, ApiError> {
    let tenant = t.0;
    let (url, secret) = st
        .db(move |s| Ok(s.webhook(tenant)?))
        .await?
        .ok_or(ApiError::NotFound("webhook"))?;
    Ok(Json(WebhookOut { url, secret }))
}

#[utoipa::path(delete, path = "/v1/webhook", tag = "events", responses((status = 204)), security(("bearer" = [])))]
/// Removes the webhook; undelivered events are dropped.
pub async fn delete(State(st): State<Arc<ApiState>>, t: Tenant) -> Result<StatusCode, ApiError> {
    let tenant = t.0;
    if !st.db(move |s| Ok(s.delete_webhook(tenant)?)).await? {
        return Err(ApiError::NotFound("webhook"));
    }
    st.hub.set_hooked(tenant, false);
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
    let rx = st.hub.subscribe();
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
    Sse::new(events).keep_alive(KeepAlive::default())
}
