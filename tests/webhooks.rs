//! Webhooks as a hostile tenant and a flaky receiver would meet them:
//! smuggled requests and inside addresses refused, https verified, one
//! tenant's slow receiver never delaying another's, bounded retries with
//! failed events listed and redelivered, a dead receiver disabled, and
//! masked numbers on request.

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use common::api::*;
use common::hooks::*;
use common::*;
use serde_json::json;

const A: &str = "13800000000";
const B: &str = "13900000000";

async fn listener() -> tokio::net::TcpListener {
    tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind")
}

async fn hook(api: &Api, key: &str, url: &str, extra: serde_json::Value) -> Http {
    let mut body = json!({ "url": url });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    api.req_as(key, "PUT", "/v1/webhook", Some(body)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smuggling_and_inside_addresses_are_refused() {
    let api = api_with(|c| c.webhooks.allow_networks.clear()).await;
    for url in [
        "http://127.0.0.1:9/x",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/",
        "http://10.0.0.1/",
        "http://0/",
        "http://2130706433/",
        "http://0x7f000001/",
        "http://localhost/",
        "http://example.com/a\r\n\r\nDELETE /admin/everything HTTP/1.1\r\nHost: x\r\n\r\n",
        "http://u:p@example.com/",
    ] {
        let r = hook(&api, &api.key, url, json!({})).await;
        assert_eq!(r.status, 422, "{url:?}: {}", r.body);
        assert_eq!(r.json()["field"], "url", "{url:?}");
    }
    let r = api.req("GET", "/v1/webhook", None).await;
    assert_eq!(r.status, 404, "nothing was stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_receiver_delays_only_its_own_tenant() {
    let (api, keys) = api_with_tenants(&["other"], |c| c.webhooks.timeout_secs = 120).await;
    let other = &keys[0];
    let mut slow = serve(listener().await, None, Style { hold: true }).await;
    let mut fast = receiver_on(listener().await).await;
    let r = hook(&api, &api.key, &format!("http://{}/", slow.addr), json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = hook(&api, other, &format!("http://{}/", fast.addr), json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    api.pool(&["17000000001"]).await;
    let body = json!({ "numbers": ["17000000002"] });
    assert_eq!(
        api.req_as(other, "POST", "/v1/numbers", Some(body))
            .await
            .status,
        201
    );
    api.req("POST", "/v1/bindings", Some(json!({ "a": A, "b": B })))
        .await;
    // acme's receiver has the event and is holding the connection open.
    slow.any_within(Duration::from_secs(10))
        .await
        .expect("the slow receiver got its event");
    let body = json!({ "a": "13100000000", "b": "13200000000" });
    api.req_as(other, "POST", "/v1/bindings", Some(body)).await;
    let (e, _) = fast.next("binding.created").await;
    assert_eq!(e["data"]["a"], "+8613100000000");
    slow.release.notify_waiters();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_events_are_listed_and_redelivered() {
    let api = api_with(|c| c.webhooks.max_attempts = 2).await;
    let mut rx = receiver_on(listener().await).await;
    rx.status.store(500, Ordering::SeqCst);
    let r = hook(&api, &api.key, &format!("http://{}/", rx.addr), json!({})).await;
    let secret = r.json()["secret"].as_str().expect("secret").to_string();
    api.pool(&["17000000001"]).await;
    api.req("POST", "/v1/bindings", Some(json!({ "a": A, "b": B })))
        .await;
    // Two attempts (one second apart on the server's clock, run ten times
    // faster), then the event is failed.
    let ff = api.sut.fast_forward(10);
    let mut failed = serde_json::Value::Null;
    for _ in 0..50 {
        let r = api
            .req("GET", "/v1/webhook/deliveries?state=failed", None)
            .await;
        failed = r.json()["items"][0].clone();
        if !failed.is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(failed["type"], "binding.created", "{failed}");
    assert_eq!(failed["attempts"], 2);
    assert!(failed["last_error"]
        .as_str()
        .expect("error")
        .contains("500"));
    let mut tries = 0;
    while rx.any_within(Duration::from_millis(500)).await.is_some() {
        tries += 1;
    }
    assert_eq!(tries, 2, "no attempt after the last");
    drop(ff);

    rx.status.store(200, Ordering::SeqCst);
    let id = failed["event_id"].as_str().expect("id");
    let r = api
        .req(
            "POST",
            &format!("/v1/webhook/deliveries/{id}/redeliver"),
            None,
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let (e, sig) = rx.next("binding.created").await;
    assert_eq!(e["id"], id);
    check_signature(&secret, &sig);
    let r = api
        .req(
            "POST",
            &format!("/v1/webhook/deliveries/{id}/redeliver"),
            None,
        )
        .await;
    assert_eq!(r.status, 404, "delivered now");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_failing_too_long_is_disabled() {
    let api = api_with(|c| c.webhooks.disable_after_secs = 1).await;
    let mut rx = receiver_on(listener().await).await;
    rx.status.store(503, Ordering::SeqCst);
    hook(&api, &api.key, &format!("http://{}/", rx.addr), json!({})).await;
    api.pool(&["17000000001"]).await;
    api.req("POST", "/v1/bindings", Some(json!({ "a": A, "b": B })))
        .await;
    // A second of failing, on the server's clock run ten times faster.
    let ff = api.sut.fast_forward(10);
    let mut w = serde_json::Value::Null;
    for _ in 0..50 {
        w = api.req("GET", "/v1/webhook", None).await.json();
        if !w["disabled_at"].is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(ff);
    assert!(w["disabled_at"].is_string(), "{w}");
    assert!(w["failing_since"].is_string(), "{w}");
    // The operator sees it in the metrics.
    let m = http(api.api, "GET", "/metrics", None, None).await;
    assert!(m.body.contains("sipmask_webhooks_disabled 1"), "{}", m.body);
    // Events go on being kept while it is disabled.
    api.pool(&["17000000002"]).await;
    api.req(
        "POST",
        "/v1/bindings",
        Some(json!({ "a": "13700000000", "b": B })),
    )
    .await;
    // Setting it again enables it, and the kept events go out.
    rx.status.store(200, Ordering::SeqCst);
    let r = hook(&api, &api.key, &format!("http://{}/", rx.addr), json!({})).await;
    assert!(r.json()["disabled_at"].is_null(), "{}", r.body);
    // (Failed attempts reached the receiver too: count distinct events.)
    let mut ids = std::collections::HashSet::new();
    while ids.len() < 2 {
        let (e, _) = rx.next("binding.created").await;
        ids.insert(e["id"].to_string());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn masked_webhooks_carry_no_party_in_clear() {
    let api = api_with(|_| {}).await;
    let mut rx = receiver_on(listener().await).await;
    let r = hook(
        &api,
        &api.key,
        &format!("http://{}/", rx.addr),
        json!({ "numbers": "masked" }),
    )
    .await;
    assert_eq!(r.json()["numbers"], "masked", "{}", r.body);
    api.pool(&["17000000001"]).await;
    api.req("POST", "/v1/bindings", Some(json!({ "a": A, "b": B })))
        .await;
    let (e, _) = rx.next("binding.created").await;
    let text = e.to_string();
    assert!(
        !text.contains("13800000000") && !text.contains("13900000000"),
        "{text}"
    );
    assert_eq!(e["data"]["a"], "+86138****0000");
    assert_eq!(e["data"]["x"], "+8617000000001");
}

/// A CA, and a server certificate for 127.0.0.1 signed by it.
fn pki() -> (String, tokio_rustls::TlsAcceptor, tokio_rustls::TlsAcceptor) {
    use rcgen::{CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().expect("key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).expect("ca");
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let acceptor = |signed_by_ca: bool| {
        let key = KeyPair::generate().expect("key");
        let params = CertificateParams::new(vec!["127.0.0.1".to_string()]).expect("params");
        let cert = if signed_by_ca {
            params.signed_by(&key, &issuer).expect("sign")
        } else {
            params.self_signed(&key).expect("self")
        };
        let der = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).expect("key der");
        let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], der)
        .expect("server config");
        tokio_rustls::TlsAcceptor::from(Arc::new(cfg))
    };
    (ca_cert.pem(), acceptor(true), acceptor(false))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_receivers_are_verified() {
    let (ca_pem, good, bad) = pki();
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, ca_pem).expect("write ca");
    let ca_path = ca.display().to_string();
    let (api, keys) = api_with_tenants(&["other"], move |c| c.webhooks.ca_file = ca_path).await;
    let mut ok = serve(listener().await, Some(good), Style::default()).await;
    let mut untrusted = serve(listener().await, Some(bad), Style::default()).await;
    hook(&api, &api.key, &format!("https://{}/", ok.addr), json!({})).await;
    let r = hook(
        &api,
        &keys[0],
        &format!("https://{}/", untrusted.addr),
        json!({}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    api.pool(&["17000000001"]).await;
    api.req("POST", "/v1/bindings", Some(json!({ "a": A, "b": B })))
        .await;
    let body = json!({ "numbers": ["17000000002"] });
    api.req_as(&keys[0], "POST", "/v1/numbers", Some(body))
        .await;
    let body = json!({ "a": "13100000000", "b": "13200000000" });
    api.req_as(&keys[0], "POST", "/v1/bindings", Some(body))
        .await;
    ok.next("binding.created").await;
    // The self-signed receiver never gets a request: the handshake fails,
    // at every retry over three seconds of the server's clock.
    let ff = api.sut.fast_forward(10);
    assert!(untrusted
        .any_within(Duration::from_millis(300))
        .await
        .is_none());
    drop(ff);
    let r = api
        .req_as(
            &keys[0],
            "GET",
            "/v1/webhook/deliveries?state=pending",
            None,
        )
        .await;
    let err = r.json()["items"][0]["last_error"].to_string();
    assert!(err.to_lowercase().contains("certificate"), "{}", r.body);
}
