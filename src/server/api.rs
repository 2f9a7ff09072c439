//! Starts the HTTP API and what runs beside it: webhook delivery and the
//! expiry sweep, all stopped when a drain begins.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::bind::{bind_tcp, check_free};
use super::core::Core;
use super::ServerError;
use crate::bindings::{BindingTable, Normaliser};
use crate::config::Config;

/// The running parts the API works on.
pub(super) struct ApiDeps {
    pub(super) table: Arc<BindingTable>,
    pub(super) core: Arc<Core>,
    pub(super) hub: Arc<crate::events::Hub>,
    pub(super) clock: crate::time::SharedClock,
    /// TCP connection pools, for the metrics.
    pub(super) tcp: Arc<crate::sip::guard::Guard>,
    /// The registrar's accounts.
    pub(super) accounts: Arc<crate::registrar::Directory>,
    pub(super) sip_host: String,
    /// A draining sibling shares the ports (else they must be free).
    pub(super) overlap: bool,
}

/// Binds the HTTP API and serves it until `cancel`.
/// The API's settings from the config.
fn api_config(cfg: &Config, sip_host: String, cancel: &CancellationToken) -> crate::api::ApiConfig {
    crate::api::ApiConfig {
        quarantine_secs: cfg.api.quarantine_secs,
        sip_host,
        rate_per_sec: cfg.api.rate_per_sec,
        burst: cfg.api.burst,
        max_body_bytes: cfg.api.max_body_bytes,
        body_timeout: Duration::from_secs(cfg.api.body_timeout_secs),
        max_requests_per_tenant: cfg.api.max_requests_per_tenant,
        webhook_networks: Arc::new(cfg.webhooks.networks()),
        recordings: cfg.storage.data_dir.join("recordings"),
        shutdown: cancel.clone(),
    }
}

/// The API's listener on `addr` (checked free first unless a sibling
/// instance shares it), and the address it got.
fn listen(addr: &str, overlap: bool) -> Result<(tokio::net::TcpListener, SocketAddr), ServerError> {
    let bind_err = |source| ServerError::Bind {
        addr: addr.to_string(),
        source,
    };
    let sock: SocketAddr = addr
        .parse()
        .map_err(|_| ServerError::Config(format!("bad API address {addr}")))?;
    if !overlap {
        check_free(sock).map_err(bind_err)?;
    }
    let listener = bind_tcp(sock).map_err(bind_err)?;
    let local = listener.local_addr().map_err(bind_err)?;
    Ok((listener, local))
}

/// The webhook deliveries' task, on a store connection of its own.
fn deliveries(
    cfg: &Config,
    at: &crate::store::Location,
    hub: Arc<crate::events::Hub>,
    clock: &crate::time::SharedClock,
    cancel: &CancellationToken,
) -> Result<impl std::future::Future<Output = ()> + Send + 'static, ServerError> {
    let w = &cfg.webhooks;
    let ca = (!w.ca_file.is_empty()).then(|| std::path::Path::new(&w.ca_file));
    let client =
        crate::events::webhook::Client::new(w.networks(), Duration::from_secs(w.timeout_secs), ca)
            .map_err(|e| ServerError::Config(e.to_string()))?;
    let limits = crate::events::delivery::Limits {
        max_attempts: w.max_attempts,
        disable_after: Duration::from_secs(w.disable_after_secs),
    };
    Ok(crate::events::delivery::run(
        at.open()?,
        client,
        limits,
        hub,
        clock.clone(),
        cancel.clone(),
    ))
}

pub(super) async fn start_api(
    cfg: &Config,
    at: &crate::store::Location,
    deps: ApiDeps,
    cancel: &CancellationToken,
    tasks: &mut JoinSet<()>,
) -> Result<(SocketAddr, Arc<crate::api::ApiState>), ServerError> {
    let ApiDeps {
        table,
        core,
        hub,
        clock,
        tcp,
        accounts,
        sip_host,
        overlap: deps_overlap,
    } = deps;
    let (listener, local) = listen(&cfg.api.listen, deps_overlap)?;
    let api_cfg = api_config(cfg, sip_host, cancel);
    let norm = Normaliser {
        default_country_code: cfg.numbers.default_country_code.clone(),
    };
    let metrics = Arc::new(move || {
        let mut out = core.engine.lock().map(|e| e.metrics()).unwrap_or_default();
        tcp.metrics(&mut out);
        out
    });
    let svc = crate::service::Services {
        store: Arc::new(std::sync::Mutex::new(at.open()?)),
        table,
        hub: hub.clone(),
        clock: clock.clone(),
        quarantine_secs: cfg.api.quarantine_secs,
        view: crate::api::model::view,
        accounts,
        realm: cfg.registrar.realm.clone(),
        normaliser: norm.clone(),
        flow: cfg.flow.clone(),
        provider: Arc::new(crate::service::flow::provider::OwnPool),
        pools: Arc::default(),
        sweeper: Arc::new(std::sync::atomic::AtomicBool::new(!at.shared())),
    };
    let state = crate::api::ApiState::new(svc.clone(), norm, api_cfg, metrics)?;
    tasks.spawn(deliveries(cfg, at, hub, &clock, cancel)?);
    let state = Arc::new(state);
    tasks.spawn(crate::service::flow::users::recycle_idle_every(
        svc.clone(),
        Duration::from_secs(60),
        cancel.clone(),
    ));
    tasks.spawn(crate::service::expiry::run(
        svc,
        Duration::from_secs(1),
        cancel.clone(),
    ));
    let app = crate::api::router(state.clone());
    let limits = crate::api::serve::Limits {
        max_connections: cfg.api.max_connections,
        max_per_source: cfg.api.max_connections_per_source,
        header_timeout: Duration::from_secs(cfg.api.header_timeout_secs),
    };
    tasks.spawn(crate::api::serve::run(
        listener,
        app,
        limits,
        state.stats.refused.clone(),
        cancel.clone(),
    ));
    tracing::info!(%local, "sipmask serving the HTTP API");
    Ok((local, state))
}
