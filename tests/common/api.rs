//! A running sipmask with its HTTP API, a tenant `acme`, a caller UA on
//! 127.0.0.2 and a callee UA (the trunk) on 127.0.0.3.

use std::time::Duration;

use serde_json::{json, Value};

use super::*;

/// The API of a running server, as tenant `acme`.
pub struct Api {
    pub sut: Sut,
    pub api: std::net::SocketAddr,
    pub key: String,
    pub caller: Ua,
    pub callee: Ua,
}

/// A server with tenant `acme` and `tweak`ed config.
pub async fn api_with(tweak: impl FnOnce(&mut sipmask::config::Config)) -> Api {
    api_with_tenants(&[], tweak).await.0
}

/// A server with tenant `acme` and the `others` (their keys returned).
pub async fn api_with_tenants(
    others: &[&str],
    tweak: impl FnOnce(&mut sipmask::config::Config),
) -> (Api, Vec<String>) {
    let caller = Ua::bind("127.0.0.2").await;
    let callee = Ua::bind("127.0.0.3").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let key = tenant(dir.path(), "acme");
    let keys = others.iter().map(|n| tenant(dir.path(), n)).collect();
    let mut cfg = config(dir.path(), callee.addr);
    tweak(&mut cfg);
    let sut = start(cfg, dir).await;
    let api = sut.server.api_addr.expect("API is on");
    let api = Api {
        sut,
        api,
        key,
        caller,
        callee,
    };
    (api, keys)
}

impl Api {
    /// A request as tenant `acme`.
    pub async fn req(&self, method: &str, path: &str, body: Option<Value>) -> Http {
        let b = body.map(|v| v.to_string());
        http(self.api, method, path, Some(&self.key), b.as_deref()).await
    }

    /// `GET /v1/events` as acme, past the response head.
    pub async fn event_stream(&self) -> tokio::net::TcpStream {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(self.api)
            .await
            .expect("connect");
        let req = format!(
            "GET /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\r\n",
            self.key
        );
        s.write_all(req.as_bytes()).await.expect("write");
        let mut buf = vec![0u8; 4096];
        let n = s.read(&mut buf).await.expect("head");
        assert!(String::from_utf8_lossy(&buf[..n]).contains("text/event-stream"));
        s
    }

    /// A request with another key.
    pub async fn req_as(&self, key: &str, method: &str, path: &str, body: Option<Value>) -> Http {
        let b = body.map(|v| v.to_string());
        http(self.api, method, path, Some(key), b.as_deref()).await
    }

    /// Adds numbers to acme's pool.
    pub async fn pool(&self, numbers: &[&str]) {
        let r = self
            .req("POST", "/v1/numbers", Some(json!({ "numbers": numbers })))
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
    }

    /// Places a call from `user` to `x`; returns the final status the caller got.
    pub async fn call(&mut self, user: &str, x: &str) -> u16 {
        let mut d = Dialog::new(self.caller.addr, self.sut.addr, user, x);
        self.caller.send(self.sut.addr, &d.invite()).await;
        // A refused call never reaches the callee.
        let Some(inv) = self.callee.recv_within(Duration::from_millis(500)).await else {
            let refusal = self.caller.recv().await;
            self.caller
                .send(self.sut.addr, &d.ack_failure(&refusal))
                .await;
            // Drop retransmissions sent before our ACK arrived.
            while self
                .caller
                .recv_within(Duration::from_millis(200))
                .await
                .is_some()
            {}
            return refusal.code();
        };
        assert_eq!(inv.method(), "INVITE");
        let contact = format!("Contact: <sip:bob@{}>\r\n", self.callee.addr);
        self.callee
            .send(inv.from, &inv.reply(180, "t", &contact, ""))
            .await;
        self.callee
            .send(
                inv.from,
                &inv.reply(200, "t", &contact, &sdp("bob", "127.0.0.3")),
            )
            .await;
        let ok = self.caller.expect_response(200).await;
        d.confirm(&ok);
        self.caller.send(self.sut.addr, &d.ack(1)).await;
        self.callee.expect_request("ACK").await;
        self.caller.send(self.sut.addr, &d.request("BYE", "")).await;
        self.caller.expect_response(200).await;
        let bye = self.callee.expect_request("BYE").await;
        self.callee
            .send(bye.from, &bye.reply(200, "", "", ""))
            .await;
        200
    }
}
