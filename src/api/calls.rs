//! Call records over HTTP: every call attempt of the tenant, refused ones
//! included, filtered by binding, number, time range and result. Lists show
//! parties masked; one record by id shows them in full.

use std::sync::Arc;

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::Tenant;
use super::model::filter as number_filter;
use super::problem::ApiError;
use super::{ApiState, Json, P, Q};
use crate::mask::Masked;
use crate::store::{CallFilter, CallRecord};

/// A call attempt.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallOut {
    /// Record id.
    pub id: i64,
    /// Binding that admitted the call, if any.
    pub binding_id: Option<i64>,
    /// `a_to_b`, `b_to_a`, `ax`, or null when refused before a binding was found.
    pub direction: Option<String>,
    /// Caller (masked in lists).
    pub caller: String,
    /// Real callee (masked in lists), if bridged.
    pub callee: Option<String>,
    /// Dialled virtual number or identifier.
    pub x: String,
    /// INVITE time.
    pub invite_at: String,
    /// First ringing.
    pub ringing_at: Option<String>,
    /// Answer.
    pub answer_at: Option<String>,
    /// End.
    pub end_at: Option<String>,
    /// Talk time, seconds.
    pub duration_secs: u64,
    /// Final SIP status the caller got (200 when answered).
    pub result: u16,
    /// Who hung up an answered call: `caller`, `callee` or `system`.
    pub ended_by: Option<String>,
    /// Why it ended or was refused.
    pub reason: String,
    /// Where to download the call's recording (stereo WAV: the caller
    /// left, the callee right); null when it was not recorded.
    pub recording: Option<String>,
    /// Whether a prompt told the parties the call was recorded.
    pub announced: bool,
}

impl CallOut {
    fn from(r: CallRecord, masked: bool) -> CallOut {
        let show = |n: &str| {
            if masked {
                Masked(n).to_string()
            } else {
                n.to_string()
            }
        };
        CallOut {
            id: r.id,
            binding_id: r.binding,
            direction: r.direction,
            caller: show(&r.caller),
            callee: r.callee.as_deref().map(show),
            x: r.x,
            invite_at: crate::time::format_ms(r.invite_at),
            ringing_at: r.ringing_at.map(crate::time::format_ms),
            answer_at: r.answer_at.map(crate::time::format_ms),
            end_at: r.end_at.map(crate::time::format_ms),
            duration_secs: r.duration_secs,
            result: r.result,
            ended_by: r.ended_by,
            reason: r.reason,
            recording: r
                .recording
                .as_ref()
                .filter(|_| r.answer_at.is_some())
                .map(|_| format!("/v1/calls/{}/recording", r.id)),
            announced: r.announced,
        }
    }
}

/// A page of call records.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallPage {
    /// This page.
    pub items: Vec<CallOut>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// Call record filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CallQuery {
    /// `next_cursor` of the previous page.
    #[param(value_type = Option<super::input::Cursor>)]
    pub cursor: Option<String>,
    /// Page size, 1 to 1,000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// Only calls of this binding.
    pub binding_id: Option<i64>,
    /// Only calls where this number is caller, callee or X.
    #[param(value_type = Option<super::input::Filter>)]
    pub number: Option<String>,
    /// Only calls placed at or after this RFC 3339 time.
    #[param(format = DateTime)]
    pub from: Option<String>,
    /// Only calls placed before this RFC 3339 time.
    #[param(format = DateTime)]
    pub to: Option<String>,
    /// Only calls with this final SIP status the caller got: 200 answered,
    /// 4xx-6xx refused or failed (see the SIP statuses in the README).
    #[param(minimum = 100, maximum = 699)]
    pub result: Option<u16>,
}

fn time_ms(field: &str, v: &Option<String>) -> Result<Option<i64>, ApiError> {
    v.as_deref()
        .map(|s| {
            crate::time::parse_rfc3339(s)
                .map(|t| t * 1000)
                .ok_or_else(|| {
                    ApiError::invalid(field, "not an RFC 3339 time between years 1 and 9999")
                })
        })
        .transpose()
}

#[utoipa::path(get, path = "/v1/calls", tag = "calls", params(CallQuery), responses((status = 200, body = CallPage)),
    security(("bearer" = [])))]
/// Call records, oldest first, parties masked.
pub async fn list(
    State(st): State<Arc<ApiState>>,
    t: Tenant,
    Q(q): Q<CallQuery>,
) -> Result<Json<CallPage>, ApiError> {
    let (after, limit) = super::model::page(&q.cursor, q.limit)?;
    let filter = CallFilter {
        after,
        limit,
        binding: q.binding_id,
        number: q
            .number
            .as_deref()
            .map(|n| number_filter(&st.norm, "number", n))
            .transpose()?
            .map(|n| n.as_str().to_string()),
        from: time_ms("from", &q.from)?,
        to: time_ms("to", &q.to)?,
        result: match q.result {
            Some(r) if !(100..=699).contains(&r) => {
                return Err(ApiError::invalid(
                    "result",
                    "must be a SIP status, 100 to 699",
                ))
            }
            r => r,
        },
    };
    let tenant = t.0;
    let (items, next) = st.db(move |s| Ok(s.calls(tenant, &filter)?)).await?;
    Ok(Json(CallPage {
        items: items.into_iter().map(|r| CallOut::from(r, true)).collect(),
        next_cursor: next.map(|n| n.to_string()),
    }))
}

/// The record `id` of the tenant.
async fn record(
    st: &ApiState,
    tenant: crate::bindings::TenantId,
    id: i64,
) -> Result<CallRecord, ApiError> {
    let filter = CallFilter {
        after: id.saturating_sub(1),
        limit: 1,
        ..Default::default()
    };
    let (items, _) = st.db(move |s| Ok(s.calls(tenant, &filter)?)).await?;
    items
        .into_iter()
        .find(|r| r.id == id)
        .ok_or(ApiError::NotFound("call record"))
}

#[utoipa::path(get, path = "/v1/calls/{id}/recording", tag = "calls", params(("id" = i64, Path, description = "record id")),
    responses((status = 200, content_type = "audio/wav", body = Vec<u8>)),
    security(("bearer" = [])))]
/// The call's recording: a stereo WAV, 8 kHz 16-bit, the caller on the
/// left channel and the callee on the right. 404 when there is no such
/// record of the tenant's, the call was not recorded, or the recording is
/// past its retention.
pub async fn recording(
    State(st): State<Arc<ApiState>>,
    t: Tenant,
    P(id): P<i64>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let r = record(&st, t.0, id).await?;
    let name = r
        .recording
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        .ok_or(ApiError::NotFound("recording"))?;
    let path = st.cfg.recordings.join(format!("{name}.wav"));
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|_| ApiError::NotFound("recording"))?;
    let len = file
        .metadata()
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .len();
    let body = axum::body::Body::from_stream(tokio_util::io::ReaderStream::new(file));
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, "audio/wav".to_string()),
            (axum::http::header::CONTENT_LENGTH, len.to_string()),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"call-{id}.wav\""),
            ),
        ],
        body,
    )
        .into_response())
}

#[utoipa::path(get, path = "/v1/calls/{id}", tag = "calls", params(("id" = i64, Path, description = "record id")),
    responses((status = 200, body = CallOut)), security(("bearer" = [])))]
/// One call record, parties in full.
pub async fn get(
    State(st): State<Arc<ApiState>>,
    t: Tenant,
    P(id): P<i64>,
) -> Result<Json<CallOut>, ApiError> {
    Ok(Json(CallOut::from(record(&st, t.0, id).await?, false)))
}
