//! Webhook receivers for tests: plain or TLS, answering a chosen status,
//! or holding each request until released; every request is recorded
//! before it is answered, so the order seen is the order sent.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, Notify};

/// One request: lower-case headers and body.
pub type Got = (Vec<(String, String)>, String);

/// A webhook receiver.
pub struct Receiver {
    pub addr: std::net::SocketAddr,
    got: mpsc::UnboundedReceiver<Got>,
    /// Requests taken from the channel but not yet asked for.
    kept: Vec<Got>,
    /// Status to answer (200 unless changed).
    pub status: Arc<AtomicU16>,
    /// When `hold` is set, answers wait for this.
    pub release: Arc<Notify>,
}

/// Behaviour of a receiver.
#[derive(Clone, Copy, Default)]
pub struct Style {
    /// Hold every request until `release` is notified.
    pub hold: bool,
}

/// A plain-HTTP receiver on `listener`.
pub async fn receiver_on(listener: tokio::net::TcpListener) -> Receiver {
    serve(listener, None, Style::default()).await
}

/// A receiver with TLS (`acceptor`) and/or a `style`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    style: Style,
) -> Receiver {
    let addr = listener.local_addr().expect("addr");
    let (tx, got) = mpsc::unbounded_channel();
    let status = Arc::new(AtomicU16::new(200));
    let release = Arc::new(Notify::new());
    let (st, rel) = (status.clone(), release.clone());
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            let (tx, st, rel, acc) = (tx.clone(), st.clone(), rel.clone(), acceptor.clone());
            tokio::spawn(async move {
                match acc {
                    Some(acc) => {
                        if let Ok(tls) = acc.accept(s).await {
                            one(tls, tx, st, rel, style).await;
                        }
                    }
                    None => one(s, tx, st, rel, style).await,
                }
            });
        }
    });
    Receiver {
        addr,
        got,
        kept: Vec::new(),
        status,
        release,
    }
}

async fn one<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    tx: mpsc::UnboundedSender<Got>,
    status: Arc<AtomicU16>,
    release: Arc<Notify>,
    style: Style,
) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let Ok(n) = s.read(&mut chunk).await else {
            return;
        };
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            continue;
        };
        let headers: Vec<(String, String)> = head
            .split("\r\n")
            .skip(1)
            .filter_map(|l| {
                l.split_once(':')
                    .map(|(n, v)| (n.trim().to_lowercase(), v.trim().to_string()))
            })
            .collect();
        let len = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        if body.len() < len {
            continue;
        }
        // Recorded before the answer: the sender moves on only after it.
        let _ = tx.send((headers, body.to_string()));
        if style.hold {
            release.notified().await;
        }
        let code = status.load(Ordering::SeqCst);
        let resp = format!("HTTP/1.1 {code} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        let _ = s.write_all(resp.as_bytes()).await;
        let _ = s.shutdown().await;
        return;
    }
}

impl Receiver {
    /// Next request within `wait`, in arrival order.
    pub async fn any_within(&mut self, wait: Duration) -> Option<Got> {
        if !self.kept.is_empty() {
            return Some(self.kept.remove(0));
        }
        tokio::time::timeout(wait, self.got.recv()).await.ok()?
    }

    /// The first event of `kind`, with its signature; events of other
    /// kinds stay for later calls, so nothing is lost by asking in another
    /// order than they came.
    pub async fn next(&mut self, kind: &str) -> (Value, String) {
        let mut i = 0;
        loop {
            if i == self.kept.len() {
                let g = tokio::time::timeout(Duration::from_secs(10), self.got.recv())
                    .await
                    .unwrap_or_else(|_| panic!("a {kind} event in time"))
                    .expect("receiver alive");
                self.kept.push(g);
            }
            let v: Value = serde_json::from_str(&self.kept[i].1).expect("JSON event");
            if v["type"] == kind {
                let (headers, body) = self.kept.remove(i);
                let h = |name: &str| {
                    headers
                        .iter()
                        .find(|(n, _)| n == name)
                        .map(|(_, v)| v.clone())
                };
                let sig = h("sipmask-signature").expect("signed");
                assert_eq!(h("sipmask-event-id").as_deref(), v["id"].as_str());
                return (v, format!("{sig}|{body}"));
            }
            i += 1;
        }
    }
}

/// Checks `t=..,v1=..|body` against the secret.
pub fn check_signature(secret: &str, sig_and_body: &str) {
    let (sig, body) = sig_and_body.split_once('|').expect("sig|body");
    let t: i64 = sig
        .split(',')
        .next()
        .and_then(|p| p.strip_prefix("t="))
        .and_then(|t| t.parse().ok())
        .expect("t=");
    assert_eq!(
        sig,
        sipmask::events::hmac::signature(secret, t, body),
        "HMAC over t.body with the secret"
    );
}
