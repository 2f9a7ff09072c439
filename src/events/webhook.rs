//! Webhook delivery: a task takes due events from the outbox, POSTs each to
//! its tenant's URL signed with HMAC-SHA256, and records success or the
//! time of the next attempt (exponential backoff up to an hour). Delivery is
//! at least once: receivers drop duplicates by event id or (binding, seq).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::store::SqliteStore;

/// Why a webhook URL cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum UrlError {
    /// Not `http://host:port/path`.
    #[error("must be http://host[:port]/path (https is not supported yet)")]
    Scheme,
    /// Host or port unusable.
    #[error("host or port is not valid")]
    Host,
}

/// A parsed `http://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// `host:port` to connect to.
    pub authority: String,
    /// Host header value.
    pub host: String,
    /// Path and query.
    pub path: String,
}

/// Parses a webhook URL.
pub fn parse_url(u: &str) -> Result<Url, UrlError> {
    let rest = u.strip_prefix("http://").ok_or(UrlError::Scheme)?;
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if hostport.is_empty() || hostport.contains(['@', ' ']) {
        return Err(UrlError::Host);
    }
    let authority = if hostport
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        hostport.to_string()
    } else if hostport.contains(':') && !hostport.ends_with(']') {
        return Err(UrlError::Host);
    } else {
        format!("{hostport}:80")
    };
    Ok(Url {
        authority,
        host: hostport.to_string(),
        path: path.to_string(),
    })
}

/// POSTs `body`; `Ok` on a 2xx answer within the timeout.
pub async fn post(url: &str, body: &str, secret: &str, event_id: &str) -> Result<(), String> {
    let u = parse_url(url).map_err(|e| e.to_string())?;
    let t = crate::time::now();
    let req = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Sipmask-Event-Id: {event_id}\r\nSipmask-Signature: {}\r\nConnection: close\r\n\r\n{body}",
        u.path,
        u.host,
        body.len(),
        super::hmac::signature(secret, t, body),
    );
    let attempt = async {
        let mut s = TcpStream::connect(&u.authority)
            .await
            .map_err(|e| e.to_string())?;
        s.write_all(req.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut head = [0u8; 64];
        let n = s.read(&mut head).await.map_err(|e| e.to_string())?;
        let status = std::str::from_utf8(&head[..n])
            .ok()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|c| c.parse::<u16>().ok())
            .ok_or("no HTTP status")?;
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(format!("status {status}"))
        }
    };
    tokio::time::timeout(Duration::from_secs(5), attempt)
        .await
        .map_err(|_| "timed out".to_string())?
}

/// Seconds before attempt `n + 1`.
pub fn backoff(attempts: u32) -> i64 {
    1i64 << attempts.min(12)
}

/// Delivers due events until `cancel`.
pub async fn run(store: SqliteStore, cancel: CancellationToken) {
    let store = Arc::new(Mutex::new(store));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = cancel.cancelled() => return,
        }
        let s = store.clone();
        let due = tokio::task::spawn_blocking(move || {
            s.lock()
                .map_err(|_| ())
                .and_then(|s| s.due_events(crate::time::now_ms(), 100).map_err(|_| ()))
        })
        .await;
        let Ok(Ok(due)) = due else { continue };
        if due.is_empty() {
            continue;
        }
        let mut results = Vec::with_capacity(due.len());
        for d in due {
            let r = post(&d.url, &d.body, &d.secret, &d.event_id).await;
            if let Err(e) = &r {
                tracing::warn!(event = %d.event_id, attempts = d.attempts + 1, error = %e, "webhook delivery failed");
            }
            let next = crate::time::now_ms() + (backoff(d.attempts).min(3600) * 1000);
            results.push((d.id, r.map_err(|_| next)));
        }
        let s = store.clone();
        let _ = tokio::task::spawn_blocking(move || {
            if let Ok(mut s) = s.lock() {
                if let Err(e) = s.delivered(&results, crate::time::now_ms()) {
                    tracing::error!(error = %e, "recording webhook deliveries failed");
                }
            }
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_parsed_and_https_refused() {
        let u = parse_url("http://127.0.0.1:9000/hooks?x=1").expect("ok");
        assert_eq!(u.authority, "127.0.0.1:9000");
        assert_eq!(u.path, "/hooks?x=1");
        assert_eq!(
            parse_url("http://example.com").expect("ok").authority,
            "example.com:80"
        );
        assert_eq!(parse_url("https://example.com/"), Err(UrlError::Scheme));
        assert_eq!(parse_url("http:///x"), Err(UrlError::Host));
    }

    #[test]
    fn backoff_doubles() {
        assert_eq!((backoff(0), backoff(1), backoff(5)), (1, 2, 32));
    }
}
