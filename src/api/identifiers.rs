//! Flow 1 identifiers over HTTP: a number from the pool (`digits`) or a
//! random SIP user part (`token`) that reaches its owner, with its `sip:`
//! and `tel:` URIs and a QR code (SVG and PNG).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Tenant;
use super::bindings::{change, list_kinds, remove, ListQuery};
use super::model::{number, BindingOut, BindingPage, ConditionsIn};
use super::problem::ApiError;
use super::{ApiState, Body, Json, P, Q};
use crate::bindings::{Conditions, Kind};
use crate::service::bindings::owned;

const KINDS: &[Kind] = &[Kind::Digits, Kind::Token];

/// Kind of identifier.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum IdentifierKind {
    /// A callable number from the pool.
    Digits,
    /// A random SIP user part, e.g. `t-8f3k2q9x1m`.
    Token,
}

/// A new identifier.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateIdentifier {
    /// Whom it reaches: a number or an app account.
    #[schema(value_type = super::input::Party)]
    pub owner: String,
    /// `digits` or `token`.
    pub kind: IdentifierKind,
    /// Conditions; absent fields take the configured defaults.
    #[serde(default, deserialize_with = "super::model::object")]
    pub conditions: Option<ConditionsIn>,
}

/// An identifier.
#[derive(Debug, Serialize, ToSchema)]
pub struct IdentifierOut {
    /// The binding behind it.
    #[serde(flatten)]
    pub binding: BindingOut,
    /// What to dial.
    pub identifier: String,
    /// SIP URI.
    pub sip_uri: String,
    /// tel URI (digits only).
    pub tel_uri: Option<String>,
    /// QR code as SVG.
    pub qr_svg: String,
    /// QR code as PNG.
    pub qr_png: String,
}

fn out(st: &ApiState, b: BindingOut) -> IdentifierOut {
    let id = b.id;
    let x = b.x.clone();
    IdentifierOut {
        identifier: x.clone(),
        sip_uri: format!("sip:{x}@{}", st.cfg.sip_host),
        tel_uri: (b.kind == "digits").then(|| format!("tel:{x}")),
        qr_svg: format!("/v1/identifiers/{id}/qr.svg"),
        qr_png: format!("/v1/identifiers/{id}/qr.png"),
        binding: b,
    }
}

#[utoipa::path(post, path = "/v1/identifiers", tag = "identifiers", request_body = CreateIdentifier,
    responses((status = 201, body = IdentifierOut)), security(("bearer" = [])))]
/// Creates an identifier that reaches its owner.
pub async fn create(
    State(st): State<Arc<ApiState>>,
    t: Tenant,
    Body(req): Body<CreateIdentifier>,
) -> Result<(StatusCode, Json<IdentifierOut>), ApiError> {
    let owner = number(&st.norm, "owner", &req.owner)?;
    let conditions = match &req.conditions {
        Some(c) => c.apply(&Conditions::default(), &st.norm, "conditions.")?,
        None => Conditions::default(),
    };
    if conditions.direction.is_some() {
        return Err(ApiError::invalid(
            "conditions.direction",
            "applies to AXB bindings only",
        ));
    }
    let kind = match req.kind {
        IdentifierKind::Token => crate::service::bindings::IdentifierKind::Token,
        IdentifierKind::Digits => crate::service::bindings::IdentifierKind::Digits,
    };
    let b = st
        .svc
        .create_identifier(t.0, kind, owner, conditions)
        .await?;
    let b = BindingOut::from(&st.svc.table.display(&b), st.svc.table.defaults());
    Ok((StatusCode::CREATED, Json(out(&st, b))))
}

#[utoipa::path(get, path = "/v1/identifiers/{id}", tag = "identifiers", params(("id" = i64, Path, description = "identifier id")),
    responses((status = 200, body = IdentifierOut)), security(("bearer" = [])))]
/// One identifier.
pub async fn get(
    State(st): State<Arc<ApiState>>,
    t: Tenant,
    P(id): P<i64>,
) -> Result<Json<IdentifierOut>, ApiError> {
    let b = owned(&st.svc.table, t.0, id, KINDS, "identifier")?;
    Ok(Json(out(
        &st,
        BindingOut::from(&st.svc.table.display(&b), st.svc.table.defaults()),
    )))
}

#[utoipa::path(get, path = "/v1/identifiers", tag = "identifiers", params(ListQuery),
    responses((status = 200, body = BindingPage)), security(("bearer" = [])))]
/// Lists identifiers.
pub async fn list(
    State(st): State<Arc<ApiState>>,
    t: Tenant,
    Q(q): Q<ListQuery>,
) -> Result<Json<BindingPage>, ApiError> {
    list_kinds(&st, t.0, q, vec![Kind::Digits, Kind::Token])
        .await
        .map(Json)
}

#[utoipa::path(patch, path = "/v1/identifiers/{id}", tag = "identifiers", params(("id" = i64, Path, description = "identifier id")),
    request_body = ConditionsIn, responses((status = 200, body = BindingOut)),
    security(("bearer" = [])))]
/// Changes an identifier's conditions (longer, more calls, fewer callers).
pub async fn patch(
    State(st): State<Arc<ApiState>>,
    t: Tenant,
    P(id): P<i64>,
    Body(req): Body<ConditionsIn>,
) -> Result<Json<BindingOut>, ApiError> {
    if matches!(req.direction, Some(Some(_))) {
        return Err(ApiError::invalid(
            "direction",
            "applies to AXB bindings only",
        ));
    }
    change(&st, t.0, id, KINDS, "identifier", req)
        .await
        .map(Json)
}

#[utoipa::path(delete, path = "/v1/identifiers/{id}", tag = "identifiers", params(("id" = i64, Path, description = "identifier id")),
    responses((status = 204)), security(("bearer" = [])))]
/// Revokes an identifier.
pub async fn delete(
    State(st): State<Arc<ApiState>>,
    t: Tenant,
    P(id): P<i64>,
) -> Result<StatusCode, ApiError> {
    remove(&st, t.0, vec![id], KINDS, "identifier").await
}

fn qr(st: &ApiState, tenant: i64, id: i64) -> Result<qrcode::QrCode, ApiError> {
    let b = owned(&st.svc.table, tenant, id, KINDS, "identifier")?;
    let uri = format!("sip:{}@{}", b.x.as_str(), st.cfg.sip_host);
    qrcode::QrCode::new(uri.as_bytes()).map_err(|e| ApiError::Internal(e.to_string()))
}

#[utoipa::path(get, path = "/v1/identifiers/{id}/qr.svg", tag = "identifiers", params(("id" = i64, Path, description = "identifier id")),
    responses((status = 200, content_type = "image/svg+xml", body = String)), security(("bearer" = [])))]
/// The identifier's SIP URI as a QR code, SVG.
pub async fn qr_svg(
    State(st): State<Arc<ApiState>>,
    t: Tenant,
    P(id): P<i64>,
) -> Result<Response, ApiError> {
    let code = qr(&st, t.0, id)?;
    let svg = code
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(256, 256)
        .build();
    Ok(([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response())
}

#[utoipa::path(get, path = "/v1/identifiers/{id}/qr.png", tag = "identifiers", params(("id" = i64, Path, description = "identifier id")),
    responses((status = 200, content_type = "image/png", body = Vec<u8>)), security(("bearer" = [])))]
/// The identifier's SIP URI as a QR code, PNG.
pub async fn qr_png(
    State(st): State<Arc<ApiState>>,
    t: Tenant,
    P(id): P<i64>,
) -> Result<Response, ApiError> {
    let code = qr(&st, t.0, id)?;
    const SCALE: usize = 8;
    const QUIET: usize = 4;
    let w = code.width();
    let colors = code.to_colors();
    let side = (w + 2 * QUIET) * SCALE;
    let mut px = vec![255u8; side * side];
    for (i, c) in colors.iter().enumerate() {
        if *c == qrcode::Color::Dark {
            let (mx, my) = (i % w + QUIET, i / w + QUIET);
            for dy in 0..SCALE {
                let row = (my * SCALE + dy) * side;
                px[row + mx * SCALE..row + mx * SCALE + SCALE].fill(0);
            }
        }
    }
    let png = super::png::grey(side as u32, side as u32, &px)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, "image/png")], png).into_response())
}
