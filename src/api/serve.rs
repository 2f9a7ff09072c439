//! The API's HTTP server: an accept loop with a cap on open connections
//! (a permit per connection; past the cap, or past one source address's
//! share, a new connection is closed at once), a deadline for reading each
//! request's headers (idle and slow clients are dropped; the body's
//! deadline is the `Body` extractor's), and a shutdown that ends streams and connections
//! within a second of being asked.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Limits of the HTTP server.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Most connections open at once.
    pub max_connections: usize,
    /// Most connections open at once from one IP address.
    pub max_per_source: usize,
    /// Longest wait for a request's headers, idle keep-alive included.
    pub header_timeout: Duration,
}

/// Grace given to requests in flight when shutting down.
const GRACE: Duration = Duration::from_secs(1);

/// Serves `app` on `listener` until `cancel`, then closes every connection
/// within [`GRACE`].
pub async fn run(
    listener: TcpListener,
    app: axum::Router,
    limits: Limits,
    refused: Arc<std::sync::atomic::AtomicU64>,
    cancel: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let sources = super::shares::Shares::<IpAddr>::new(limits.max_per_source);
    let mut conns = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = cancel.cancelled() => break,
        };
        while conns.try_join_next().is_some() {}
        let (stream, from) = match accepted {
            Ok((s, from)) => (s, from.ip()),
            Err(e) => {
                // Out of descriptors and the like: back off, do not spin.
                tracing::warn!(error = %e, "API accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            drop(stream);
            continue;
        };
        let Some(source) = sources.take(from) else {
            refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            drop(stream);
            continue;
        };
        let svc = TowerToHyperService::new(app.clone());
        let cancel = cancel.clone();
        conns.spawn(async move {
            let _permit = (permit, source);
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout);
            let conn = http.serve_connection(TokioIo::new(stream), svc);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = cancel.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(GRACE, conn).await;
                }
            }
        });
    }
    // Connections end by themselves within GRACE; anything left is cut.
    let _ = tokio::time::timeout(GRACE * 2, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    conns.abort_all();
}
