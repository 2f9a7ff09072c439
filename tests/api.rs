//! The HTTP control API over real HTTP against a running sipmask: resource
//! life cycles, tenant isolation, bad input, rate limits, durability, and
//! changes that take effect on the next INVITE.

mod common;

use std::time::Duration;

use common::api::*;
use common::hooks::*;
use common::*;
use serde_json::{json, Value};

const A: &str = "13800000000";
const B: &str = "13900000000";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binding_life_cycle_with_allocation_paging_change_and_quarantine() {
    let api = api_with(|_| {}).await;
    api.pool(&["17000000001", "17000000002", "17000000003"])
        .await;
    let r = api
        .req(
            "POST",
            "/v1/bindings",
            Some(json!({ "a": A, "b": B, "conditions": { "max_calls": 2 } })),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let b = r.json();
    assert_eq!(b["x"], "+8617000000001", "lowest free number first");
    assert_eq!(b["a"], "+8613800000000");
    assert_eq!(b["conditions"]["max_calls"], 2);
    let id = b["id"].as_i64().expect("id");

    // The same pair again gets the next X; a preferred X is honoured.
    let r = api
        .req(
            "POST",
            "/v1/bindings",
            Some(json!({ "a": A, "b": "13600000000", "prefer_x": "17000000003" })),
        )
        .await;
    assert_eq!(r.json()["x"], "+8617000000003");
    let r = api
        .req("GET", &format!("/v1/availability?a={A}&b={B}"), None)
        .await;
    assert_eq!(r.json()["available"], 1, "{}", r.body);
    assert_eq!(r.json()["next"], "+8617000000002");

    let page = api.req("GET", "/v1/bindings?limit=1", None).await.json();
    assert_eq!(page["items"].as_array().map(Vec::len), Some(1));
    let cursor = page["next_cursor"].as_str().expect("more pages");
    let page2 = api
        .req(
            "GET",
            &format!("/v1/bindings?limit=1&cursor={cursor}"),
            None,
        )
        .await
        .json();
    assert_ne!(page2["items"][0]["id"], page["items"][0]["id"]);
    assert!(page2["next_cursor"].is_null());
    let mine = api
        .req("GET", "/v1/bindings?party=13600000000", None)
        .await
        .json();
    assert_eq!(mine["items"].as_array().map(Vec::len), Some(1));

    let r = api
        .req(
            "PATCH",
            &format!("/v1/bindings/{id}"),
            Some(json!({ "max_calls": null, "idle_secs": 3600 })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let got = api
        .req("GET", &format!("/v1/bindings/{id}"), None)
        .await
        .json();
    assert!(got["conditions"]["max_calls"].is_null());
    assert_eq!(got["conditions"]["idle_secs"], 3600);
    assert!(got["conditions"]["idle_expires_at"].is_string());
    assert_eq!(
        got["created_at"], b["created_at"],
        "changing conditions restarts no clock"
    );

    assert_eq!(
        api.req("DELETE", &format!("/v1/bindings/{id}"), None)
            .await
            .status,
        204
    );
    assert_eq!(
        api.req("GET", &format!("/v1/bindings/{id}"), None)
            .await
            .status,
        404
    );
    let pool = api.req("GET", "/v1/numbers", None).await.json();
    assert_eq!(pool["numbers"][0]["status"], "quarantined", "{pool}");
    // X rests for A: A's next binding does not get it back.
    let r = api
        .req(
            "POST",
            "/v1/bindings",
            Some(json!({ "a": A, "b": "13500000000" })),
        )
        .await;
    assert_eq!(r.json()["x"], "+8617000000002");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_pool_says_why_and_how_many_are_left() {
    let api = api_with(|_| {}).await;
    let r = api
        .req("POST", "/v1/bindings", Some(json!({ "a": A, "b": B })))
        .await;
    assert_eq!(r.status, 409);
    assert_eq!(r.json()["type"], "urn:sipmask:problem:pool-exhausted");
    assert!(r.json()["detail"]
        .as_str()
        .is_some_and(|d| d.contains("empty")));
    api.pool(&["17000000001"]).await;
    assert_eq!(
        api.req("POST", "/v1/bindings", Some(json!({ "a": A, "b": B })))
            .await
            .status,
        201
    );
    let r = api
        .req(
            "POST",
            "/v1/bindings",
            Some(json!({ "a": A, "b": "13600000000" })),
        )
        .await;
    assert_eq!(r.status, 409);
    let p = r.json();
    assert_eq!(p["availability"]["serving_pair"], 1, "{p}");
    assert_eq!(p["availability"]["available"], 0);
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    // Another pair that shares nobody with the first still gets the same X.
    assert_eq!(
        api.req(
            "POST",
            "/v1/bindings",
            Some(json!({ "a": "13100000000", "b": "13200000000" }))
        )
        .await
        .status,
        201
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenants_records_answer_404_everywhere() {
    let api = api_with(|_| {}).await;
    api.pool(&["17000000001", "17000000002"]).await;
    let b = api
        .req("POST", "/v1/bindings", Some(json!({ "a": A, "b": B })))
        .await
        .json();
    let i = api
        .req(
            "POST",
            "/v1/identifiers",
            Some(json!({ "owner": B, "kind": "digits" })),
        )
        .await
        .json();
    let other = tenant(api.sut.dir.path(), "rival");
    let (bid, iid) = (b["id"].as_i64().expect("id"), i["id"].as_i64().expect("id"));
    let paths = [
        ("GET", format!("/v1/bindings/{bid}"), None),
        (
            "PATCH",
            format!("/v1/bindings/{bid}"),
            Some(json!({ "max_calls": 1 })),
        ),
        ("DELETE", format!("/v1/bindings/{bid}"), None),
        (
            "POST",
            "/v1/bindings/delete".to_string(),
            Some(json!({ "ids": [bid] })),
        ),
        ("GET", format!("/v1/identifiers/{iid}"), None),
        (
            "PATCH",
            format!("/v1/identifiers/{iid}"),
            Some(json!({ "max_calls": 1 })),
        ),
        ("DELETE", format!("/v1/identifiers/{iid}"), None),
        ("GET", format!("/v1/identifiers/{iid}/qr.svg"), None),
        ("GET", format!("/v1/identifiers/{iid}/qr.png"), None),
        ("DELETE", "/v1/numbers/17000000001".to_string(), None),
        ("GET", format!("/v1/bindings/{iid}"), None),
    ];
    for (m, p, body) in paths {
        let r = http(
            api.api,
            m,
            &p,
            Some(&other),
            body.map(|b| b.to_string()).as_deref(),
        )
        .await;
        assert_eq!(r.status, 404, "{m} {p}: {}", r.body);
    }
    let list = http(api.api, "GET", "/v1/bindings", Some(&other), None)
        .await
        .json();
    assert_eq!(list["items"].as_array().map(Vec::len), Some(0));
    let pool = http(api.api, "GET", "/v1/numbers", Some(&other), None)
        .await
        .json();
    assert_eq!(pool["numbers"].as_array().map(Vec::len), Some(0));
    // The owner still has everything.
    assert_eq!(
        api.req("GET", &format!("/v1/bindings/{bid}"), None)
            .await
            .status,
        200
    );
    assert_eq!(
        http(api.api, "GET", "/v1/bindings", None, None)
            .await
            .status,
        401
    );
    assert_eq!(
        http(api.api, "GET", "/v1/bindings", Some("smk_nope"), None)
            .await
            .status,
        401
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_problem_naming_the_field_and_changes_nothing() {
    let api = api_with(|c| c.api.max_body_bytes = 4096).await;
    api.pool(&["17000000001", "17000000002"]).await;
    let cases = [
        ("{not json", 400, None),
        (r#"{"a":"1","b":"2","colour":"red"}"#, 400, None),
        (r#"{"a":"x\"y","b":"13900000000"}"#, 422, Some("a")),
        (
            r#"{"a":"13800000000","b":"13900000000","conditions":{"max_calls":0}}"#,
            422,
            Some("conditions.max_calls"),
        ),
        (
            r#"{"a":"13800000000","b":"13900000000","conditions":{"not_before":"2027-01-02T00:00:00Z","not_after":"2027-01-01T00:00:00Z"}}"#,
            422,
            Some("conditions.not_after"),
        ),
        (
            r#"{"a":"13800000000","b":"13900000000","conditions":{"not_after":"tomorrow"}}"#,
            422,
            Some("conditions.not_after"),
        ),
        (r#"{"a":"13800000000","b":"13800000000"}"#, 422, Some("b")),
        (
            r#"{"a":"13800000000","b":"13900000000","x":"17099999999"}"#,
            422,
            Some("x"),
        ),
    ];
    for (body, status, field) in cases {
        let r = http(api.api, "POST", "/v1/bindings", Some(&api.key), Some(body)).await;
        assert_eq!(r.status, status, "{body}: {}", r.body);
        assert!(r.json()["type"]
            .as_str()
            .is_some_and(|t| t.starts_with("urn:sipmask:problem:")));
        if let Some(f) = field {
            assert_eq!(r.json()["field"], f, "{body}");
        }
    }
    let big = format!(r#"{{"a":"{}","b":"1"}}"#, "1".repeat(8000));
    assert_eq!(
        http(api.api, "POST", "/v1/bindings", Some(&api.key), Some(&big))
            .await
            .status,
        413
    );
    // A bulk request with bad items applies nothing, and names each.
    let bulk = json!({ "bindings": [
        { "a": A, "b": B }, { "a": A, "b": "bad\"" }, { "a": "0123", "b": B }
    ] });
    let r = api.req("POST", "/v1/bindings/bulk", Some(bulk)).await;
    assert_eq!(r.status, 422);
    let named: Vec<String> = r.json()["problems"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["field"].as_str().map(str::to_string))
        .collect();
    assert_eq!(named, ["bindings[1].b", "bindings[2].a"], "{}", r.body);
    let list = api.req("GET", "/v1/bindings", None).await.json();
    assert_eq!(
        list["items"].as_array().map(Vec::len),
        Some(0),
        "nothing half-applied"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_create_and_delete_all_or_none() {
    let api = api_with(|_| {}).await;
    api.pool(&["17000000001", "17000000002"]).await;
    let items: Vec<Value> = (0..300)
        .map(|i| json!({ "a": format!("1380000{i:04}"), "b": format!("1390000{i:04}") }))
        .collect();
    let r = api
        .req(
            "POST",
            "/v1/bindings/bulk",
            Some(json!({ "bindings": items })),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let ids: Vec<i64> = r.json()["bindings"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|b| b["id"].as_i64())
        .collect();
    assert_eq!(ids.len(), 300);
    let mut with_unknown = ids.clone();
    with_unknown.push(999_999);
    assert_eq!(
        api.req(
            "POST",
            "/v1/bindings/delete",
            Some(json!({ "ids": with_unknown }))
        )
        .await
        .status,
        404
    );
    assert_eq!(
        api.req("GET", &format!("/v1/bindings/{}", ids[0]), None)
            .await
            .status,
        200
    );
    assert_eq!(
        api.req("POST", "/v1/bindings/delete", Some(json!({ "ids": ids })))
            .await
            .status,
        204
    );
    let list = api.req("GET", "/v1/bindings", None).await.json();
    assert_eq!(list["items"].as_array().map(Vec::len), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_condition_changed_by_api_applies_to_the_next_call() {
    let mut api = api_with(|_| {}).await;
    api.pool(&["17000000001"]).await;
    let b = api
        .req(
            "POST",
            "/v1/bindings",
            Some(json!({ "a": A, "b": B, "conditions": { "max_calls": 1 } })),
        )
        .await
        .json();
    let id = b["id"].as_i64().expect("id");
    assert_eq!(api.call(A, "17000000001").await, 200);
    assert_eq!(api.call(A, "17000000001").await, 403);
    let r = api
        .req(
            "PATCH",
            &format!("/v1/bindings/{id}"),
            Some(json!({ "max_calls": 2 })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(api.call(A, "17000000001").await, 200);
    let got = api
        .req("GET", &format!("/v1/bindings/{id}"), None)
        .await
        .json();
    assert_eq!(got["usage"]["calls_used"], 2);
    assert!(got["usage"]["last_call_at"].is_string());

    // Direction and blocklist are checked like the other conditions.
    api.req(
        "PATCH",
        &format!("/v1/bindings/{id}"),
        Some(json!({ "max_calls": null, "direction": "a_to_b" })),
    )
    .await;
    assert_eq!(api.call(B, "17000000001").await, 403);
    assert_eq!(
        api.req("PUT", &format!("/v1/blocklist/{A}"), None)
            .await
            .status,
        204
    );
    let d = Dialog::new(api.caller.addr, api.sut.addr, A, "17000000001");
    api.caller.send(api.sut.addr, &d.invite()).await;
    let r = api.caller.recv().await;
    assert_eq!(
        r.msg.call_id, d.call_id,
        "no retransmission of an earlier refusal"
    );
    assert!(r.raw.starts_with("SIP/2.0 403 Caller Blocked"), "{}", r.raw);
    assert_eq!(
        api.req("DELETE", &format!("/v1/blocklist/{A}"), None)
            .await
            .status,
        204
    );
    let list = api.req("GET", "/v1/blocklist", None).await.json();
    assert_eq!(list["numbers"].as_array().map(Vec::len), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identifier_created_by_api_reaches_its_owner_and_can_be_revoked() {
    let mut api = api_with(|_| {}).await;
    let r = api
        .req(
            "POST",
            "/v1/identifiers",
            Some(json!({ "owner": B, "kind": "token", "conditions": { "max_call_secs": 60 } })),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let i = r.json();
    let ident = i["identifier"].as_str().expect("identifier").to_string();
    assert!(ident.starts_with("t-"));
    assert!(i["sip_uri"]
        .as_str()
        .is_some_and(|u| u.starts_with(&format!("sip:{ident}@"))));
    let svg = api
        .req("GET", i["qr_svg"].as_str().expect("link"), None)
        .await;
    assert_eq!(svg.status, 200);
    assert!(svg.body.contains("<svg"));
    let png = api
        .req("GET", i["qr_png"].as_str().expect("link"), None)
        .await;
    assert_eq!(png.header("content-type"), Some("image/png"));

    assert_eq!(api.call("13711112222", &ident).await, 200);
    let id = i["id"].as_i64().expect("id");
    let r = api
        .req(
            "PATCH",
            &format!("/v1/identifiers/{id}"),
            Some(json!({ "allowed_callers": ["13600000000"] })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(api.call("13711112222", &ident).await, 403);
    assert_eq!(
        api.req("DELETE", &format!("/v1/identifiers/{id}"), None)
            .await
            .status,
        204
    );
    assert_eq!(api.call("13600000000", &ident).await, 404);

    // Digits identifiers come from the pool and have a tel: URI.
    api.pool(&["17000000009"]).await;
    let d = api
        .req(
            "POST",
            "/v1/identifiers",
            Some(json!({ "owner": B, "kind": "digits" })),
        )
        .await
        .json();
    assert_eq!(d["identifier"], "+8617000000009");
    assert_eq!(d["tel_uri"], "tel:+8617000000009");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identifier_created_by_api_is_called_with_sipp() {
    let sipp = Sipp::new();
    let uas_port = free_port("127.0.0.3");
    let dir = tempfile::tempdir().expect("tempdir");
    let key = tenant(dir.path(), "acme");
    let cfg = config(
        dir.path(),
        format!("127.0.0.3:{uas_port}").parse().expect("addr"),
    );
    let sut = start(cfg, dir).await;
    let api = sut.server.api_addr.expect("api");
    let body = json!({ "owner": B, "kind": "token" }).to_string();
    let i = http(api, "POST", "/v1/identifiers", Some(&key), Some(&body))
        .await
        .json();
    let ident = i["identifier"].as_str().expect("identifier").to_string();
    sipp.call(
        sut.addr,
        uas_port,
        "uas.xml",
        "uac.xml",
        "13755556666",
        &ident,
        false,
    )
    .await;
    let got = http(
        api,
        "GET",
        &format!("/v1/identifiers/{}", i["id"]),
        Some(&key),
        None,
    )
    .await
    .json();
    assert_eq!(got["usage"]["calls_used"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_over_the_rate_get_429_with_retry_after() {
    let api = api_with(|c| {
        c.api.rate_per_sec = 1;
        c.api.burst = 3;
    })
    .await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let r = api.req("GET", "/v1/numbers", None).await;
        statuses.push(r.status);
        if r.status == 429 {
            assert_eq!(r.header("retry-after"), Some("1"));
            assert_eq!(r.json()["type"], "urn:sipmask:problem:rate-limited");
        }
    }
    assert_eq!(&statuses[..3], &[200, 200, 200]);
    assert!(statuses[3..].contains(&429), "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledged_binding_survives_a_restart() {
    let api = api_with(|_| {}).await;
    api.pool(&["17000000001"]).await;
    let b = api
        .req("POST", "/v1/bindings", Some(json!({ "a": A, "b": B })))
        .await
        .json();
    api.req("PUT", "/v1/blocklist/13700000000", None).await;
    let Api {
        sut,
        key,
        callee,
        mut caller,
        ..
    } = api;
    let Sut { server, dir, .. } = sut;
    server.shutdown(Duration::from_millis(100)).await;
    let cfg = config(dir.path(), callee.addr);
    let sut = start(cfg, dir).await;
    let api = sut.server.api_addr.expect("api");
    let got = http(
        api,
        "GET",
        &format!("/v1/bindings/{}", b["id"]),
        Some(&key),
        None,
    )
    .await;
    assert_eq!(got.status, 200);
    assert_eq!(got.json()["x"], "+8617000000001");
    let d = Dialog::new(caller.addr, sut.addr, "13700000000", "17000000001");
    caller.send(sut.addr, &d.invite()).await;
    assert!(caller
        .recv()
        .await
        .raw
        .starts_with("SIP/2.0 403 Caller Blocked"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_endpoints_answer_without_a_key() {
    let api = api_with(|_| {}).await;
    assert_eq!(
        http(api.api, "GET", "/healthz", None, None).await.status,
        200
    );
    assert_eq!(
        http(api.api, "GET", "/readyz", None, None).await.status,
        200
    );
    let doc = http(api.api, "GET", "/openapi.json", None, None)
        .await
        .json();
    assert!(doc["openapi"]
        .as_str()
        .is_some_and(|v| v.starts_with("3.1")));
    assert!(doc["paths"]["/v1/bindings"]["post"].is_object());
    let m = http(api.api, "GET", "/metrics", None, None).await;
    for name in [
        "sipmask_calls_total",
        "sipmask_active_calls",
        "sipmask_transactions",
        "sipmask_bindings",
        "sipmask_binding_table_bytes",
        "sipmask_api_request_seconds_bucket",
        "sipmask_binding_lookup_seconds_count",
    ] {
        assert!(m.body.contains(name), "{name} missing");
    }
    assert_eq!(http(api.api, "GET", "/nope", None, None).await.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_attempt_leaves_a_record_masked_in_lists() {
    let mut api = api_with(|_| {}).await;
    api.pool(&["17000000001"]).await;
    let b = api
        .req(
            "POST",
            "/v1/bindings",
            Some(json!({ "a": A, "b": B, "conditions": { "max_calls": 1 } })),
        )
        .await
        .json();
    assert_eq!(api.call(A, "17000000001").await, 200);
    assert_eq!(api.call(A, "17000000001").await, 403);
    assert_eq!(api.call("13711112222", "17000000001").await, 403);
    // Records are written behind the call path: wait for them.
    let mut page = Value::Null;
    for _ in 0..50 {
        page = api.req("GET", "/v1/calls", None).await.json();
        if page["items"].as_array().map(Vec::len) == Some(3) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let items = page["items"].as_array().expect("items");
    assert_eq!(items.len(), 3, "{page}");
    let answered = &items[0];
    assert_eq!(answered["result"], 200);
    assert_eq!(answered["binding_id"], b["id"]);
    assert_eq!(answered["direction"], "a_to_b");
    assert_eq!(answered["caller"], "+86138****0000", "masked in lists");
    assert_eq!(answered["ended_by"], "caller");
    assert!(answered["answer_at"].is_string() && answered["end_at"].is_string());
    assert_eq!(items[1]["reason"], "calls_used_up");
    assert_eq!(items[2]["reason"], "caller_not_allowed");
    let one = api
        .req("GET", &format!("/v1/calls/{}", answered["id"]), None)
        .await
        .json();
    assert_eq!(one["caller"], "+8613800000000", "in full by id");
    assert_eq!(one["callee"], "+8613900000000");
    let refused = api.req("GET", "/v1/calls?result=403", None).await.json();
    assert_eq!(refused["items"].as_array().map(Vec::len), Some(2));
    let by_number = api
        .req("GET", "/v1/calls?number=13711112222", None)
        .await
        .json();
    assert_eq!(by_number["items"].as_array().map(Vec::len), Some(1));
    let later = api
        .req("GET", "/v1/calls?from=2100-01-01T00:00:00Z", None)
        .await
        .json();
    assert_eq!(later["items"].as_array().map(Vec::len), Some(0));
    let other = tenant(api.sut.dir.path(), "rival");
    let r = http(
        api.api,
        "GET",
        &format!("/v1/calls/{}", answered["id"]),
        Some(&other),
        None,
    )
    .await;
    assert_eq!(r.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_get_signed_numbered_binding_and_call_events() {
    let mut api = api_with(|_| {}).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let mut rx = receiver_on(listener).await;
    let w = api
        .req(
            "PUT",
            "/v1/webhook",
            Some(json!({ "url": format!("http://{}/hooks", rx.addr) })),
        )
        .await;
    assert_eq!(w.status, 200, "{}", w.body);
    let secret = w.json()["secret"].as_str().expect("secret").to_string();
    let bad = api
        .req(
            "PUT",
            "/v1/webhook",
            Some(json!({ "url": "ftp://example.com/" })),
        )
        .await;
    assert_eq!(bad.json()["field"], "url");

    api.pool(&["17000000001"]).await;
    let b = api
        .req("POST", "/v1/bindings", Some(json!({ "a": A, "b": B })))
        .await
        .json();
    let (created, sig) = rx.next("binding.created").await;
    check_signature(&secret, &sig);
    assert_eq!(created["binding_id"], b["id"]);
    assert_eq!(created["seq"], 1);
    assert_eq!(created["data"]["x"], "+8617000000001");

    assert_eq!(api.call(A, "17000000001").await, 200);
    let mut seqs = vec![1];
    for kind in [
        "call.offered",
        "call.ringing",
        "call.answered",
        "call.ended",
    ] {
        let (e, sig) = rx.next(kind).await;
        check_signature(&secret, &sig);
        seqs.push(e["seq"].as_i64().expect("seq"));
    }
    let mut sorted = seqs.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(
        sorted.len(),
        seqs.len(),
        "per-binding sequence numbers are unique: {seqs:?}"
    );
    assert!(seqs.iter().all(|s| *s >= 1));
    api.req(
        "PATCH",
        &format!("/v1/bindings/{}", b["id"]),
        Some(json!({ "max_calls": 5 })),
    )
    .await;
    let (changed, _) = rx.next("binding.changed").await;
    assert_eq!(changed["data"]["conditions"]["max_calls"], 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undelivered_event_is_delivered_after_a_restart() {
    let api = api_with(|_| {}).await;
    // A receiver address with nobody listening yet.
    let port = free_port("127.0.0.1");
    let url = format!("http://127.0.0.1:{port}/hooks");
    let secret = api
        .req("PUT", "/v1/webhook", Some(json!({ "url": url })))
        .await
        .json()["secret"]
        .as_str()
        .expect("s")
        .to_string();
    api.pool(&["17000000001"]).await;
    let b = api
        .req("POST", "/v1/bindings", Some(json!({ "a": A, "b": B })))
        .await
        .json();
    tokio::time::sleep(Duration::from_millis(600)).await; // at least one failed attempt
    let Api { sut, callee, .. } = api;
    let Sut { server, dir, .. } = sut;
    server.shutdown(Duration::from_millis(100)).await;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind receiver");
    let mut rx = receiver_on(listener).await;
    let cfg = config(dir.path(), callee.addr);
    let _sut = start(cfg, dir).await;
    let (e, sig) = rx.next("binding.created").await;
    assert_eq!(e["binding_id"], b["id"]);
    check_signature(&secret, &sig);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_shows_the_tenants_events_live() {
    use tokio::io::AsyncReadExt;
    let api = api_with(|_| {}).await;
    api.pool(&["17000000001"]).await;
    let mut s = api.event_stream().await;
    let mut buf = vec![0u8; 4096];
    let other = tenant(api.sut.dir.path(), "rival");
    let body = json!({ "numbers": ["17000000002"] }).to_string();
    http(api.api, "POST", "/v1/numbers", Some(&other), Some(&body)).await;
    let body = json!({ "a": "13100000000", "b": "13200000000" }).to_string();
    assert_eq!(
        http(api.api, "POST", "/v1/bindings", Some(&other), Some(&body))
            .await
            .status,
        201
    );
    api.req("POST", "/v1/bindings", Some(json!({ "a": A, "b": B })))
        .await;
    let mut seen = String::new();
    while !seen.contains("binding.created") {
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .expect("event in time")
            .expect("read");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(seen.contains("+8613800000000"), "{seen}");
    assert!(
        !seen.contains("13100000000"),
        "another tenant's event leaked: {seen}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expiring_binding_is_announced_once() {
    let api = api_with(|_| {}).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let mut rx = receiver_on(listener).await;
    api.req(
        "PUT",
        "/v1/webhook",
        Some(json!({ "url": format!("http://{}/", rx.addr) })),
    )
    .await;
    api.pool(&["17000000001"]).await;
    let end = sipmask::time::format(sipmask::time::now() + 2);
    let b = api
        .req(
            "POST",
            "/v1/bindings",
            Some(json!({ "a": A, "b": B, "conditions": { "not_after": end } })),
        )
        .await
        .json();
    // Its end passes on the server's clock; the sweep (every second) tells.
    api.sut.clock.advance(Duration::from_secs(3));
    let (e, _) = rx.next("binding.expired").await;
    assert_eq!(e["binding_id"], b["id"]);
    assert_eq!(e["data"]["conditions"]["not_after"], end);
    // No second notice at the sweeps that follow.
    let again = tokio::time::timeout(Duration::from_millis(1500), rx.next("binding.expired")).await;
    assert!(again.is_err(), "expiry announced twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_binding_on_a_removed_ones_id_is_not_removed_by_the_change_log() {
    let api = api_with(|_| {}).await;
    api.pool(&["17000000001"]).await;
    let r = api
        .req("POST", "/v1/bindings", Some(json!({ "a": A, "b": B })))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let old = r.json()["id"].as_i64().unwrap_or_default();
    let r = api
        .req("DELETE", &format!("/v1/bindings/{old}"), None)
        .await;
    assert!(r.status == 204 || r.status == 200, "{}", r.body);
    // SQLite gives the next binding the removed one's id.
    let r = api
        .req(
            "POST",
            "/v1/bindings",
            Some(json!({ "a": "13800000001", "b": "13900000001" })),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let new = r.json()["id"].as_i64().unwrap_or_default();
    assert_eq!(new, old, "the id is used again");
    // The server reads the change log (and its removal) meanwhile.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let r = api.req("GET", &format!("/v1/bindings/{new}"), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
}
