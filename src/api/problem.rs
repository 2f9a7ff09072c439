//! RFC 9457 problem documents: the one place API errors become HTTP.
//! Every error has a stable `type`; internals never reach the client.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::bindings::alloc::Availability;

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// Stable identifier of the kind of problem, `urn:sipmask:problem:<name>`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the kind.
    pub title: String,
    /// HTTP status.
    pub status: u16,
    /// What happened this time.
    pub detail: String,
    /// The request field at fault, for validation problems.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// For `pool-exhausted`: what the pool holds for the pair.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub availability: Option<AvailabilityOut>,
    /// Every bad item of a bulk request (`invalid-items`), each with its
    /// field (`items[3].agent`) and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problems: Option<Vec<ItemProblem>>,
}

/// One bad item of a bulk request.
#[derive(Debug, Serialize, ToSchema)]
pub struct ItemProblem {
    /// JSON path of the field.
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

/// What the pool can still give a pair.
#[derive(Debug, Serialize, ToSchema)]
pub struct AvailabilityOut {
    /// Numbers in the tenant's pool.
    pub pool: usize,
    /// Numbers already serving A or B.
    pub serving_pair: usize,
    /// Numbers resting in quarantine for A or B.
    pub quarantined: usize,
    /// Numbers the pair could still get.
    pub available: usize,
    /// The X the next allocation for this pair would pick.
    pub next: Option<String>,
}

impl From<&Availability> for AvailabilityOut {
    fn from(a: &Availability) -> Self {
        AvailabilityOut {
            pool: a.pool,
            serving_pair: a.serving_pair,
            quarantined: a.quarantined,
            available: a.available,
            next: a.next.as_ref().map(|n| n.as_str().to_string()),
        }
    }
}

/// Errors of the API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// No or unknown bearer key.
    #[error("a valid API key is required")]
    Unauthorized,
    /// Nothing of this tenant by that id.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The body is not the JSON this endpoint takes.
    #[error("{detail}")]
    Malformed {
        /// Parser message (names the field when it can).
        detail: String,
        /// The field, if known.
        field: Option<String>,
    },
    /// A field has a value we cannot use.
    #[error("{field}: {reason}")]
    Invalid {
        /// JSON path of the field.
        field: String,
        /// Why.
        reason: String,
    },
    /// The body is too large.
    #[error("request body too large")]
    TooLarge,
    /// The body did not arrive in time.
    #[error("the request body did not arrive within api.body_timeout_secs")]
    BodyTimeout,
    /// The tenant has as many requests in progress as it may.
    #[error("too many requests of this tenant in progress (api.max_requests_per_tenant)")]
    Busy,
    /// The body is not declared as JSON.
    #[error("send the body as Content-Type: application/json")]
    MediaType,
    /// The path exists, the method does not.
    #[error("method not allowed on this path")]
    MethodNotAllowed,
    /// The database is out of reach (a node cut from a shared one): try
    /// again.
    #[error("the database is out of reach; try again")]
    StoreUnavailable,
    /// A party already has a binding on that X, or the number is taken.
    #[error("{0}")]
    Conflict(String),
    /// No X left for a pair.
    #[error("{detail}")]
    PoolExhausted {
        /// Why, in words.
        detail: String,
        /// The counts.
        availability: Availability,
    },
    /// Over the tenant's request rate.
    #[error("too many requests; retry in {retry_after} s")]
    RateLimited {
        /// Seconds to wait.
        retry_after: u64,
    },
    /// The store failed; details go to the log only.
    #[error("{} item(s) refused; nothing was recorded", .0.len())]
    Items(Vec<(String, String)>),
    #[error("{detail}")]
    Denied { kind: &'static str, detail: String },
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// A validation error on `field`.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> ApiError {
        ApiError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized"),
            ApiError::StoreUnavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "store-unavailable",
                "Storage unavailable",
            ),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            ApiError::Malformed { .. } => (
                StatusCode::BAD_REQUEST,
                "malformed-body",
                "Malformed request body",
            ),
            ApiError::Invalid { .. } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-field",
                "Invalid field",
            ),
            ApiError::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "body-too-large",
                "Request body too large",
            ),
            ApiError::BodyTimeout => (
                StatusCode::REQUEST_TIMEOUT,
                "body-timeout",
                "Request body too slow",
            ),
            ApiError::Busy => (
                StatusCode::TOO_MANY_REQUESTS,
                "too-many-in-progress",
                "Too many requests in progress",
            ),
            ApiError::MediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
            ),
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
            ),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict", "Conflict"),
            ApiError::PoolExhausted { .. } => (
                StatusCode::CONFLICT,
                "pool-exhausted",
                "No virtual number available",
            ),
            ApiError::RateLimited { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                "Too many requests",
            ),
            ApiError::Items(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-items",
                "Invalid items",
            ),
            ApiError::Denied { kind, .. } => match *kind {
                "identity-check-failed" => (
                    StatusCode::FORBIDDEN,
                    "identity-check-failed",
                    "Identity check failed",
                ),
                "unknown-soft-number" => (
                    StatusCode::NOT_FOUND,
                    "unknown-soft-number",
                    "Unknown soft number",
                ),
                _ => (StatusCode::FORBIDDEN, "no-permission", "No permission"),
            },
            ApiError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
            ),
        }
    }
}

impl From<crate::service::Error> for ApiError {
    fn from(e: crate::service::Error) -> Self {
        use crate::service::Error as E;
        match e {
            E::Invalid { field, reason } => ApiError::invalid(field, reason),
            E::NotFound(what) => ApiError::NotFound(what),
            E::Conflict(c) => ApiError::Conflict(c),
            E::Exhausted {
                detail,
                availability,
            } => ApiError::PoolExhausted {
                detail,
                availability,
            },
            E::Items(list) => ApiError::Items(list),
            E::Denied { kind, detail } => ApiError::Denied { kind, detail },
            E::Internal(e) => ApiError::Internal(e),
            E::Store(e) => e.into(),
        }
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        match e {
            crate::store::StoreError::Unavailable(why) => {
                tracing::warn!(error = %why, "API request: the database is out of reach");
                ApiError::StoreUnavailable
            }
            e => ApiError::Internal(e.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, name, title) = self.parts();
        if let ApiError::Internal(why) = &self {
            tracing::error!(error = %why, "API request failed");
        }
        let field = match &self {
            ApiError::Invalid { field, .. } => Some(field.clone()),
            ApiError::Malformed { field, .. } => field.clone(),
            _ => None,
        };
        let availability = match &self {
            ApiError::PoolExhausted { availability, .. } => Some(availability.into()),
            _ => None,
        };
        let problems = match &self {
            ApiError::Items(list) => Some(
                list.iter()
                    .map(|(field, reason)| ItemProblem {
                        field: field.clone(),
                        reason: reason.clone(),
                    })
                    .collect(),
            ),
            _ => None,
        };
        let body = Problem {
            kind: format!("urn:sipmask:problem:{name}"),
            title: title.to_string(),
            status: status.as_u16(),
            detail: self.to_string(),
            field,
            availability,
            problems,
        };
        let mut resp = (status, axum::Json(body)).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if matches!(self, ApiError::Unauthorized) {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"sipmask\""),
            );
        }
        if let ApiError::RateLimited { retry_after } = self {
            if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        resp
    }
}
