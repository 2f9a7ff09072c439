//! What the API accepts and how it says no, over real HTTP: times and
//! counts from outside are range-checked (422, never wrapped), RFC 3339 is
//! read strictly, and auth and method errors are problem documents.

mod common;

use common::api::*;
use common::*;
use serde_json::json;

const A: &str = "13800000000";
const B: &str = "13900000000";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_range_times_and_counts_are_refused_by_field() {
    let api = api_with(|_| {}).await;
    api.pool(&["17000000001"]).await;
    for (field, cond) in [
        (
            "conditions.idle_secs",
            json!({ "idle_secs": 9223372036854775807i64 }),
        ),
        (
            "conditions.talk_budget_secs",
            json!({ "talk_budget_secs": 9223372036854775807i64 }),
        ),
        (
            "conditions.max_calls_per_day",
            json!({ "max_calls_per_day": 0 }),
        ),
        (
            "conditions.max_calls_per_day",
            json!({ "max_calls_per_day": 4294967296i64 }),
        ),
        (
            "conditions.time_zone",
            json!({ "time_zone": "Mars/Olympus_Mons" }),
        ),
        (
            "conditions.not_after",
            json!({ "not_after": "2027-02-31T00:00:00Z" }),
        ),
        (
            "conditions.not_after",
            json!({ "not_after": "2026-12-31T23:59:60Z" }),
        ),
        ("conditions.not_after", json!({ "not_after": "-1" })),
        ("conditions.not_after", json!({ "not_after": "1795430252" })),
        (
            "conditions.not_before",
            json!({ "not_before": "10000-01-01T00:00:00Z" }),
        ),
    ] {
        let r = api
            .req(
                "POST",
                "/v1/bindings",
                Some(json!({ "a": A, "b": B, "conditions": cond })),
            )
            .await;
        assert_eq!(r.status, 422, "{cond}: {}", r.body);
        assert_eq!(r.json()["field"], field, "{cond}");
    }
    for q in [
        "from=9223372036854775807",
        "to=-1",
        "from=2026-02-30T00:00:00Z",
    ] {
        let r = api.req("GET", &format!("/v1/calls?{q}"), None).await;
        assert_eq!(r.status, 422, "{q}: {}", r.body);
    }
    // Offsets other than Z are read, and shown in UTC.
    let r = api
        .req(
            "POST",
            "/v1/bindings",
            Some(json!({ "a": A, "b": B,
                "conditions": { "not_after": "2030-01-01T08:00:00+08:00" } })),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["conditions"]["not_after"], "2030-01-01T00:00:00Z");
    // A daily limit and its zone are kept and shown; the daily count is
    // none before a first answered call.
    let r = api
        .req(
            "POST",
            "/v1/bindings",
            Some(json!({ "a": "13800000009", "b": "13900000009",
                "conditions": { "max_calls_per_day": 3, "time_zone": "Asia/Kolkata" } })),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let b = r.json();
    assert_eq!(b["conditions"]["max_calls_per_day"], 3);
    assert_eq!(b["conditions"]["time_zone"], "Asia/Kolkata");
    assert_eq!(b["usage"]["day_calls"], 0);
    assert!(b["usage"]["day"].is_null());
    let id = b["id"].as_i64().unwrap_or_default();
    let r = api
        .req(
            "PATCH",
            &format!("/v1/bindings/{id}"),
            Some(json!({ "time_zone": null })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.json()["conditions"]["time_zone"].is_null());
    assert_eq!(r.json()["conditions"]["max_calls_per_day"], 3);
}

/// Status line and whole text of a raw HTTP/1.1 exchange.
async fn raw(api: &Api, head: &str, body: &str) -> (u16, String) {
    let req = format!(
        "{head}\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    // Read to the end (Connection: close): /metrics is longer than one read.
    let text = {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(api.api)
            .await
            .expect("connect");
        s.write_all(req.as_bytes()).await.expect("write");
        let mut raw = Vec::new();
        let _ = tokio::time::timeout(WAIT, s.read_to_end(&mut raw)).await;
        String::from_utf8_lossy(&raw).to_string()
    };
    let code = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_method_and_media_type_errors_are_problems() {
    let api = api_with(|_| {}).await;
    // The scheme is case-insensitive (RFC 9110).
    let (code, text) = raw(
        &api,
        &format!(
            "GET /v1/numbers HTTP/1.1\r\nAuthorization: bearer {}",
            api.key
        ),
        "",
    )
    .await;
    assert_eq!(code, 200, "{text}");
    let (code, text) = raw(
        &api,
        "GET /v1/numbers HTTP/1.1\r\nAuthorization: Basic eDp5",
        "",
    )
    .await;
    assert_eq!(code, 401, "{text}");
    let lower = text.to_lowercase();
    assert!(lower.contains("www-authenticate: bearer"), "{text}");
    assert!(lower.contains("application/problem+json"), "{text}");
    let auth = format!("Authorization: Bearer {}", api.key);
    let (code, text) = raw(&api, &format!("PATCH /v1/numbers HTTP/1.1\r\n{auth}"), "").await;
    assert_eq!(code, 405, "{text}");
    assert!(text.contains("method-not-allowed"), "{text}");
    let body = r#"{"numbers":["17000000001"]}"#;
    for ct in ["", "\r\nContent-Type: text/plain"] {
        let (code, text) = raw(
            &api,
            &format!("POST /v1/numbers HTTP/1.1\r\n{auth}{ct}"),
            body,
        )
        .await;
        assert_eq!(code, 415, "{ct:?}: {text}");
        assert!(text.contains("unsupported-media-type"), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_capped_and_timed_out() {
    let api = api_with(|c| {
        c.api.max_connections = 20;
        c.api.header_timeout_secs = 1;
    })
    .await;
    let mut idle = Vec::new();
    for _ in 0..20 {
        idle.push(
            tokio::net::TcpStream::connect(api.api)
                .await
                .expect("connect"),
        );
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    // Past the cap a connection is closed at once, without an answer.
    let (code, text) = raw(&api, "GET /healthz HTTP/1.1", "").await;
    assert_eq!(code, 0, "{text}");
    // The idle ones never sent headers: dropped after the header timeout,
    // and the server answers again.
    tokio::time::sleep(std::time::Duration::from_millis(1800)).await;
    let (code, text) = raw(&api, "GET /metrics HTTP/1.1", "").await;
    assert_eq!(code, 200, "{text}");
    assert!(
        text.contains("sipmask_api_connections_refused_total 1"),
        "{text}"
    );
    drop(idle);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_allowed_callers_than_the_schema_allows_are_refused() {
    let api = api_with(|_| {}).await;
    api.pool(&["17000000001"]).await;
    let many: Vec<String> = (0..1001).map(|i| format!("1360000{i:04}")).collect();
    let r = api
        .req(
            "POST",
            "/v1/bindings",
            Some(json!({ "a": A, "b": B, "conditions": { "allowed_callers": many } })),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.json()["field"], "conditions.allowed_callers");
    let b = api
        .req("POST", "/v1/bindings", Some(json!({ "a": A, "b": B })))
        .await
        .json();
    let path = format!("/v1/bindings/{}", b["id"]);
    let r = api
        .req("PATCH", &path, Some(json!({ "allowed_callers": many })))
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.json()["field"], "allowed_callers");
    // Nothing changed.
    let got = api.req("GET", &path, None).await.json();
    assert!(got["conditions"]["allowed_callers"].is_null(), "{got}");
    // A thousand is fine.
    let r = api
        .req(
            "PATCH",
            &path,
            Some(json!({ "allowed_callers": many[..1000] })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

/// Opens a connection to `api` from `ip` and sends `text`.
async fn open_from(ip: &str, api: std::net::SocketAddr, text: &str) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let sock = tokio::net::TcpSocket::new_v4().expect("socket");
    sock.bind(format!("{ip}:0").parse().expect("addr"))
        .expect("bind");
    let mut s = sock.connect(api).await.expect("connect");
    s.write_all(text.as_bytes()).await.expect("write");
    s
}

/// Everything the server sends on `s` until it closes it (or `wait` ends).
async fn answer_of(s: &mut tokio::net::TcpStream, wait: std::time::Duration) -> String {
    use tokio::io::AsyncReadExt;
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(wait, s.read_to_end(&mut raw)).await;
    String::from_utf8_lossy(&raw).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_sending_no_body_locks_out_nobody_and_is_timed_out() {
    let (api, keys) = api_with_tenants(&["slow"], |c| {
        c.api.max_connections = 20;
        c.api.max_requests_per_tenant = 8;
        c.api.body_timeout_secs = 1;
    })
    .await;
    // The slow tenant promises bodies it never sends, on every connection
    // the server takes, from several addresses.
    let head = format!(
        "POST /v1/numbers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{",
        keys[0]
    );
    let mut slow = Vec::new();
    for i in 0..20 {
        slow.push(open_from(&format!("127.0.0.{}", 20 + i % 4), api.api, &head).await);
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // Beyond its share it is told so at once; the others are kept waiting.
    let mut busy = 0;
    for s in &mut slow {
        let text = answer_of(s, std::time::Duration::from_millis(50)).await;
        if text.starts_with("HTTP/1.1 429") {
            assert!(text.contains("too-many-in-progress"), "{text}");
            busy += 1;
        }
    }
    assert_eq!(busy, 12, "eight requests in progress, twelve refused");
    // Another tenant is served meanwhile.
    let r = api.req("GET", "/v1/numbers", None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // The waiting ones get 408 at the body deadline, and are closed.
    let mut timed_out = 0;
    for s in &mut slow {
        let text = answer_of(s, std::time::Duration::from_secs(3)).await;
        if text.starts_with("HTTP/1.1 408") {
            assert!(text.contains("body-timeout"), "{text}");
            timed_out += 1;
        }
    }
    assert_eq!(timed_out, 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_gets_its_share_of_connections_only() {
    let api = api_with(|c| c.api.max_connections_per_source = 4).await;
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(open_from("127.0.0.30", api.api, "").await);
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let mut fifth = open_from(
        "127.0.0.30",
        api.api,
        "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await;
    let text = answer_of(&mut fifth, std::time::Duration::from_secs(2)).await;
    assert_eq!(text, "", "closed without an answer");
    let mut other = open_from(
        "127.0.0.31",
        api.api,
        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    let text = answer_of(&mut other, std::time::Duration::from_secs(2)).await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    drop(idle);
}
