//! Operations endpoints: liveness, readiness, Prometheus metrics, and the
//! OpenAPI document. None needs a key.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::metrics::Histogram;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiState;

/// Counters of the API itself.
#[derive(Default)]
pub struct ApiStats {
    /// Requests by status class (1xx..5xx).
    pub by_class: [AtomicU64; 6],
    /// Handling time.
    pub latency: Histogram,
    /// Connections closed at once because `api.max_connections` were open.
    pub refused: Arc<AtomicU64>,
}

/// Middleware: counts requests and their latency.
pub async fn track(State(st): State<Arc<ApiState>>, req: Request, next: Next) -> Response {
    let t0 = Instant::now();
    let resp = next.run(req).await;
    st.stats.latency.observe(t0.elapsed().as_secs_f64());
    let class = (resp.status().as_u16() / 100) as usize;
    if let Some(c) = st.stats.by_class.get(class) {
        c.fetch_add(1, Ordering::Relaxed);
    }
    resp
}

/// Liveness: the process answers.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// Readiness: the node holds its name (on a shared database) and the
/// store answers.
pub async fn readyz(State(st): State<Arc<ApiState>>) -> Response {
    if !st.lease.load(Ordering::Relaxed) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "node name held by another instance, or its lease lapsed\n",
        )
            .into_response();
    }
    match st.db(|s| Ok(s.numbers(-1)?)).await {
        Ok(_) => "ready\n".into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n").into_response(),
    }
}

/// Prometheus text format.
pub async fn metrics(State(st): State<Arc<ApiState>>) -> Response {
    let mut out = (st.sip_metrics)();
    // What the operator watches for tenants' webhooks: disabled ones and
    // events given up on.
    if let Ok((disabled, failed)) = st.db(|s| Ok(s.webhook_health()?)).await {
        out.push_str(&format!(
            "# HELP sipmask_webhooks_disabled Webhooks disabled for failing too long.\n# TYPE sipmask_webhooks_disabled gauge\nsipmask_webhooks_disabled {disabled}\n\
             # HELP sipmask_webhook_events_failed Events given up after their last attempt (kept until purged or redelivered).\n# TYPE sipmask_webhook_events_failed gauge\nsipmask_webhook_events_failed {failed}\n"
        ));
    }
    out.push_str(&format!("# HELP sipmask_bindings Bindings in the live table.\n# TYPE sipmask_bindings gauge\nsipmask_bindings {}\n", st.svc.table.len()));
    out.push_str(&format!("# HELP sipmask_binding_table_bytes Bytes the live table's rows and indexes hold (not its per-X and blocklist maps).\n# TYPE sipmask_binding_table_bytes gauge\nsipmask_binding_table_bytes {}\n", st.svc.table.bytes()));
    out.push_str(&format!(
        "# HELP sipmask_node_lease Whether this node holds its name (always 1 on a database of its own).\n# TYPE sipmask_node_lease gauge\nsipmask_node_lease {}\n\
         # HELP sipmask_sweeper Whether this node runs the cluster's sweeps (expiry notices, recycling).\n# TYPE sipmask_sweeper gauge\nsipmask_sweeper {}\n",
        u8::from(st.lease.load(Ordering::Relaxed)),
        u8::from(st.svc.sweeper.load(Ordering::Relaxed)),
    ));
    out.push_str("# HELP sipmask_api_requests_total API requests by status class.\n# TYPE sipmask_api_requests_total counter\n");
    for (i, c) in st.stats.by_class.iter().enumerate().skip(1) {
        out.push_str(&format!(
            "sipmask_api_requests_total{{class=\"{i}xx\"}} {}\n",
            c.load(Ordering::Relaxed)
        ));
    }
    out.push_str(&format!(
        "# HELP sipmask_api_connections_refused_total Connections closed at once: api.max_connections were open.\n# TYPE sipmask_api_connections_refused_total counter\nsipmask_api_connections_refused_total {}\n",
        st.stats.refused.load(Ordering::Relaxed)
    ));
    st.stats.latency.render(
        "sipmask_api_request_seconds",
        "API request handling time.",
        &mut out,
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

/// The OpenAPI 3.1 document, generated from the handlers and types.
pub async fn openapi() -> Response {
    use utoipa::OpenApi;
    match super::ApiDoc::openapi().to_json() {
        Ok(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}
