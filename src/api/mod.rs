//! The HTTP control API (axum): tenants' keys, the number pool, AXB
//! bindings, flow-1 identifiers, blocklists, operations endpoints and the
//! OpenAPI document. Handlers read input and shape output; every change goes
//! through the domain services (`service`), so it is durable before the
//! answer and takes effect on the next INVITE.

pub mod accounts;
pub mod auth;
pub mod bindings;
pub mod calls;
pub mod conditions;
pub mod config;
pub mod flow;
pub mod identifiers;
pub mod input;
pub mod keys;
pub mod model;
pub mod numbers;
pub mod ops;
mod png;
pub mod problem;
pub mod serve;
pub mod shares;
pub mod webhooks;

use std::sync::{Arc, Mutex};

use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::routing::{get, post, put};
use axum::Router;
use dashmap::DashMap;
use serde::de::DeserializeOwned;
use utoipa::OpenApi;

use crate::bindings::{Normaliser, TenantId};
use crate::store::prelude::*;
use crate::store::Shared;
use problem::ApiError;

pub use axum::Json;

/// What the API needs from the config.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// Seconds a released (party, X) rests before X can serve that party again.
    pub quarantine_secs: u64,
    /// Host (and port) in identifiers' `sip:` URIs.
    pub sip_host: String,
    /// Requests per second per tenant.
    pub rate_per_sec: u32,
    /// Burst per tenant.
    pub burst: u32,
    /// Largest request body in bytes.
    pub max_body_bytes: usize,
    /// How long a request's body may take to arrive.
    pub body_timeout: std::time::Duration,
    /// Requests of one tenant in progress at once.
    pub max_requests_per_tenant: usize,
    /// Stops live streams when the server shuts down.
    pub shutdown: tokio_util::sync::CancellationToken,
    /// Non-public networks webhooks may reach.
    pub webhook_networks: Arc<Vec<crate::net::Network>>,
    /// Where the relay writes call recordings.
    pub recordings: std::path::PathBuf,
}

/// Shared state of the handlers.
pub struct ApiState {
    /// The domain services every change goes through; their store
    /// connection, live table and event hub serve the reads too.
    pub svc: crate::service::Services,
    /// Number normalisation.
    pub norm: Normaliser,
    /// Key hash -> tenant.
    pub keys: DashMap<String, TenantId>,
    /// A connection of its own for keys missing from the cache (issued on
    /// the command line a moment ago), so unauthenticated requests never
    /// queue behind the API's writes.
    key_lookup: Shared,
    /// Per-tenant rate limits.
    pub limiter: auth::Limiter,
    /// Settings.
    pub cfg: ApiConfig,
    /// API counters.
    pub stats: ops::ApiStats,
    /// The SIP side's metrics, as Prometheus text.
    pub sip_metrics: Arc<dyn Fn() -> String + Send + Sync>,
    /// Whether the node holds its name's lease on a shared database
    /// (always, on a database of its own); `/readyz` says so.
    pub lease: Arc<std::sync::atomic::AtomicBool>,
}

impl ApiState {
    /// Builds the state over the services (and a store connection of its
    /// own for key lookups).
    pub fn new(
        svc: crate::service::Services,
        norm: Normaliser,
        cfg: ApiConfig,
        sip_metrics: Arc<dyn Fn() -> String + Send + Sync>,
    ) -> Result<ApiState, crate::store::StoreError> {
        let (keys, key_lookup) = {
            let s = svc
                .store
                .lock()
                .map_err(|_| crate::store::StoreError::Unavailable("lock poisoned".into()))?;
            (s.keys()?.into_iter().collect(), s.reopen()?)
        };
        Ok(ApiState {
            key_lookup: Arc::new(Mutex::new(key_lookup)),
            svc,
            norm,
            keys,
            limiter: auth::Limiter::new(cfg.rate_per_sec, cfg.burst, cfg.max_requests_per_tenant),
            cfg,
            stats: ops::ApiStats::default(),
            sip_metrics,
            lease: Arc::new(std::sync::atomic::AtomicBool::new(true)),
        })
    }

    /// The tenant of a key hash missing from the cache, from the database.
    pub async fn lookup_key(&self, hash: String) -> Option<TenantId> {
        let h = hash.clone();
        let tenant = crate::store::off_thread(&self.key_lookup, move |s| s.key_tenant(&h))
            .await
            .ok()
            .flatten()?;
        self.keys.insert(hash, tenant);
        Some(tenant)
    }

    /// Replaces the key cache with `keys` (hash, tenant): a revoked key is
    /// gone from it at once.
    pub fn reload_keys(&self, keys: Vec<(String, TenantId)>) {
        let fresh: std::collections::HashMap<_, _> = keys.into_iter().collect();
        self.keys.retain(|k, _| fresh.contains_key(k));
        for (k, t) in fresh {
            self.keys.insert(k, t);
        }
    }

    /// Runs `f` (a read, or a change that is the API's alone: webhook
    /// settings) on the services' store connection off the async threads.
    pub async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut dyn Backend) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        crate::store::off_thread(&self.svc.store, f).await
    }
}

/// A JSON request body whose errors become problem documents naming the field.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned> FromRequest<Arc<ApiState>> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &Arc<ApiState>) -> Result<Self, Self::Rejection> {
        let json = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                let m = v
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
            });
        if !json {
            return Err(ApiError::MediaType);
        }
        // A body that never comes (or a byte a second) must not hold the
        // connection and the tenant's share for long.
        let read = axum::body::Bytes::from_request(req, state);
        let Ok(read) = tokio::time::timeout(state.cfg.body_timeout, read).await else {
            return Err(ApiError::BodyTimeout);
        };
        let bytes = match read {
            Ok(b) => b,
            Err(e) if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(ApiError::TooLarge)
            }
            Err(e) => {
                return Err(ApiError::Malformed {
                    detail: e.body_text(),
                    field: None,
                })
            }
        };
        // serde would read a struct from an array too; every body is an object.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(ApiError::Malformed {
                detail: "the body must be a JSON object".into(),
                field: None,
            });
        }
        match axum::Json::<T>::from_bytes(&bytes) {
            Ok(axum::Json(v)) => Ok(Body(v)),
            Err(e) => {
                let detail = e.body_text();
                // serde_path_to_error puts "path: message" after this prefix.
                let field = detail
                    .split_once("target type: ")
                    .and_then(|(_, rest)| rest.split_once(": "))
                    .map(|(path, _)| path.to_string())
                    .filter(|p| p != ".");
                Err(ApiError::Malformed { detail, field })
            }
        }
    }
}

/// A path parameter whose errors become problem documents.
pub struct P<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for P<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(P(v)),
            Err(e) => Err(ApiError::Malformed {
                detail: e.body_text(),
                field: Some("path".into()),
            }),
        }
    }
}

/// A query string whose errors become problem documents.
pub struct Q<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Q<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Q(v)),
            Err(e) => Err(ApiError::Malformed {
                detail: e.body_text(),
                field: Some("query".into()),
            }),
        }
    }
}

/// The OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(title = "sipmask control API", description = "Virtual numbers, bindings and identifiers of a sipmask B2BUA."),
    paths(
        bindings::create, bindings::bulk_create, bindings::get, bindings::list, bindings::patch,
        bindings::delete, bindings::bulk_delete, bindings::pair_availability,
        identifiers::create, identifiers::get, identifiers::list, identifiers::patch, identifiers::delete,
        identifiers::qr_svg, identifiers::qr_png,
        numbers::add, numbers::list, numbers::remove, numbers::blocklist, numbers::block, numbers::unblock,
        calls::list, calls::get, calls::recording, webhooks::set, webhooks::get, webhooks::delete, webhooks::stream,
        webhooks::deliveries, webhooks::redeliver, keys::list, keys::create, keys::revoke,
        accounts::create, accounts::list, accounts::get, accounts::password, accounts::delete,
        accounts::registrations,
        flow::create_user, flow::find_user, flow::get_user, flow::recycle_user,
        flow::create_team, flow::list_teams, flow::patch_team,
        flow::create_agent, flow::list_agents, flow::get_agent, flow::patch_agent, flow::delete_agent,
        flow::create_interaction, flow::bulk_interactions, flow::acquire, flow::list_acquisitions,
        flow::get_settings, flow::set_settings,
    ),
    components(schemas(
        problem::Problem, problem::ItemProblem, webhooks::DeliveryState, input::Party, input::Phone, input::Filter, input::Cursor
    )),
    modifiers(&Security)
)]
pub struct ApiDoc;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        if let Some(c) = doc.components.as_mut() {
            let bearer = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build();
            c.add_security_scheme("bearer", SecurityScheme::Http(bearer));
        }
        // Every operation can answer with these problems; declaring them in
        // one place keeps the document true for all of them.
        let problems = [
            ("400", "malformed body or query"),
            ("401", "no valid API key"),
            ("404", "no such resource for this tenant"),
            ("405", "method not allowed on this path"),
            ("409", "conflict, or no virtual number left"),
            ("413", "body too large"),
            ("415", "body is not JSON"),
            ("422", "a field has an unusable value"),
            ("429", "over the tenant's request rate; see Retry-After"),
            ("500", "internal error"),
        ];
        for item in doc.paths.paths.values_mut() {
            let ops = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ];
            for op in ops.into_iter().flatten() {
                for (code, why) in problems {
                    let schema = Ref::from_schema_name("Problem");
                    let content = ContentBuilder::new().schema(Some(schema)).build();
                    let resp = ResponseBuilder::new()
                        .description(why)
                        .content("application/problem+json", content)
                        .build();
                    op.responses
                        .responses
                        .entry(code.to_string())
                        .or_insert(resp.into());
                }
            }
        }
    }
}

/// The router, testable without a socket.
pub fn router(state: Arc<ApiState>) -> Router {
    let limit = state.cfg.max_body_bytes;
    Router::new()
        .merge(numbers_and_bindings())
        .merge(flow_routes())
        .merge(operations())
        .fallback(|| async { ApiError::NotFound("resource") })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            ops::track,
        ))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// Bindings, identifiers, the number pool, the blocklist.
fn numbers_and_bindings() -> Router<Arc<ApiState>> {
    Router::new()
        .route("/v1/bindings", post(bindings::create).get(bindings::list))
        .route("/v1/bindings/bulk", post(bindings::bulk_create))
        .route("/v1/bindings/delete", post(bindings::bulk_delete))
        .route(
            "/v1/bindings/{id}",
            get(bindings::get)
                .patch(bindings::patch)
                .delete(bindings::delete),
        )
        .route("/v1/availability", get(bindings::pair_availability))
        .route(
            "/v1/identifiers",
            post(identifiers::create).get(identifiers::list),
        )
        .route(
            "/v1/identifiers/{id}",
            get(identifiers::get)
                .patch(identifiers::patch)
                .delete(identifiers::delete),
        )
        .route("/v1/identifiers/{id}/qr.svg", get(identifiers::qr_svg))
        .route("/v1/identifiers/{id}/qr.png", get(identifiers::qr_png))
        .route("/v1/numbers", post(numbers::add).get(numbers::list))
        .route(
            "/v1/numbers/{number}",
            axum::routing::delete(numbers::remove),
        )
        .route("/v1/blocklist", get(numbers::blocklist))
        .route(
            "/v1/blocklist/{number}",
            put(numbers::block).delete(numbers::unblock),
        )
}

/// Flow 2: users, teams, agents, interactions, acquisitions, settings.
fn flow_routes() -> Router<Arc<ApiState>> {
    Router::new()
        .route("/v1/users", post(flow::create_user).get(flow::find_user))
        .route(
            "/v1/users/{soft_number}",
            get(flow::get_user).delete(flow::recycle_user),
        )
        .route("/v1/teams", post(flow::create_team).get(flow::list_teams))
        .route("/v1/teams/{id}", axum::routing::patch(flow::patch_team))
        .route(
            "/v1/agents",
            post(flow::create_agent).get(flow::list_agents),
        )
        .route(
            "/v1/agents/{id}",
            get(flow::get_agent)
                .patch(flow::patch_agent)
                .delete(flow::delete_agent),
        )
        .route("/v1/interactions", post(flow::create_interaction))
        .route("/v1/interactions/bulk", post(flow::bulk_interactions))
        .route(
            "/v1/acquisitions",
            post(flow::acquire).get(flow::list_acquisitions),
        )
        .route(
            "/v1/flow/settings",
            get(flow::get_settings).put(flow::set_settings),
        )
}

/// Webhooks and events, keys, accounts, call records, health, metrics.
fn operations() -> Router<Arc<ApiState>> {
    Router::new()
        .route(
            "/v1/webhook",
            put(webhooks::set)
                .get(webhooks::get)
                .delete(webhooks::delete),
        )
        .route("/v1/webhook/deliveries", get(webhooks::deliveries))
        .route(
            "/v1/webhook/deliveries/{event_id}/redeliver",
            post(webhooks::redeliver),
        )
        .route("/v1/events", get(webhooks::stream))
        .route("/v1/keys", get(keys::list).post(keys::create))
        .route("/v1/accounts", get(accounts::list).post(accounts::create))
        .route(
            "/v1/accounts/{name}",
            get(accounts::get).delete(accounts::delete),
        )
        .route(
            "/v1/accounts/{name}/password",
            axum::routing::put(accounts::password),
        )
        .route("/v1/registrations", get(accounts::registrations))
        .route("/v1/keys/{key_id}", axum::routing::delete(keys::revoke))
        .route("/v1/calls", get(calls::list))
        .route("/v1/calls/{id}", get(calls::get))
        .route("/v1/calls/{id}/recording", get(calls::recording))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(ops::openapi))
}
