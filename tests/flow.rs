//! Flow 2 end to end over real HTTP and SIP: users get soft numbers and
//! browse; agents of a sharing team, of a team that does not share, and a
//! number that is no agent ask for numbers; the right ones get an X and
//! reach the user through sipmask while the others get the right problem;
//! X is useless to a third number; renewal keeps X, expiry frees it;
//! recycled soft numbers stop resolving; pushes arrive once per window,
//! signed, on the right tenant only; bad input changes nothing.

mod common;

use std::time::Duration;

use common::api::*;
use common::hooks::*;
use common::*;
use serde_json::{json, Value};

/// The user's real number: it must never come back from the API.
const USER: &str = "13900000000";
const USER_FULL: &str = "+8613900000000";
const NORTH_1: &str = "13700000001";
const NORTH_2: &str = "13700000002";
const SOUTH_1: &str = "13700000003";
const SOUTH_2: &str = "13700000004";
const STRANGER: &str = "13700000009";

/// Teams north (sharing: agents 1 and 2) and south (not: agents 3 and 4),
/// a pool, and the user's soft number.
async fn world(api: &Api) -> String {
    api.pool(&["17000000001", "17000000002", "17000000003", "17000000004"])
        .await;
    let mut teams = Vec::new();
    for (name, shares) in [("north", true), ("south", false)] {
        let r = api
            .req(
                "POST",
                "/v1/teams",
                Some(json!({ "name": name, "shares": shares })),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        teams.push(r.json()["id"].as_i64().expect("id"));
    }
    for (n, team) in [(NORTH_1, 0), (NORTH_2, 0), (SOUTH_1, 1), (SOUTH_2, 1)] {
        let r = api
            .req(
                "POST",
                "/v1/agents",
                Some(json!({ "number": n, "team": teams[team] })),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let r = api
        .req(
            "POST",
            "/v1/users",
            Some(json!({ "number": USER, "user_id": "u-1" })),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let soft = r.json()["soft_number"].as_str().expect("soft").to_string();
    assert!(soft.starts_with("58") && soft.len() == 11, "{soft}");
    assert!(!r.body.contains(USER), "{}", r.body);
    // The same real number gets the same soft number.
    let again = api
        .req("POST", "/v1/users", Some(json!({ "number": USER })))
        .await;
    assert_eq!(again.status, 200);
    assert_eq!(again.json()["soft_number"], soft.as_str());
    soft
}

async fn acquire(api: &Api, agent: &str, soft: &str) -> Http {
    api.req(
        "POST",
        "/v1/acquisitions",
        Some(json!({ "agent": agent, "soft_number": soft })),
    )
    .await
}

/// The tenant's flow `settings` set, the user chatted with north-1, and
/// the X north-1 then acquires for the user.
async fn chatted_x(api: &Api, soft: &str, settings: Value) -> String {
    let r = api.req("PUT", "/v1/flow/settings", Some(settings)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let chat = json!({ "soft_number": soft, "agent": NORTH_1, "kind": "chat" });
    let r = api.req("POST", "/v1/interactions", Some(chat)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = acquire(api, NORTH_1, soft).await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.json()["x"].as_str().expect("x").to_string()
}

fn problem(r: &Http) -> String {
    r.json()["type"].as_str().unwrap_or("").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_agents_that_interacted_get_a_number_that_only_they_can_use() {
    let mut api = api_with(|_| {}).await;
    let soft = world(&api).await;
    // The user browses north-1's listing and chats with south-1.
    let r = api
        .req(
            "POST",
            "/v1/interactions/bulk",
            Some(json!({ "items": [
                { "soft_number": soft, "agent": NORTH_1, "kind": "browse" },
                { "user_id": "u-1", "agent": SOUTH_1, "kind": "chat" },
            ]})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["recorded"], 2);

    let r = acquire(&api, STRANGER, &soft).await;
    assert_eq!(
        (r.status, problem(&r).as_str()),
        (403, "urn:sipmask:problem:identity-check-failed"),
        "{}",
        r.body
    );
    let n1 = acquire(&api, NORTH_1, &soft).await;
    assert_eq!(n1.status, 201, "{}", n1.body);
    let x = n1.json()["x"].as_str().expect("x").to_string();
    // A team mate of a sharing team qualifies; of a team that does not, no.
    let n2 = acquire(&api, NORTH_2, &soft).await;
    assert_eq!(n2.status, 201, "{}", n2.body);
    assert_eq!(acquire(&api, SOUTH_1, &soft).await.status, 201);
    let s2 = acquire(&api, SOUTH_2, &soft).await;
    assert_eq!(
        (s2.status, problem(&s2).as_str()),
        (403, "urn:sipmask:problem:no-permission"),
        "{}",
        s2.body
    );
    for r in [&n1, &n2, &s2] {
        assert!(
            !r.body.contains(USER),
            "the user's real number leaked: {}",
            r.body
        );
    }
    // The same pair again: the same X, renewed.
    let again = acquire(&api, NORTH_1, &soft).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.json()["x"], x.as_str());
    assert_eq!(again.json()["renewed"], true);

    // X is useless to a third number, and reaches the user from north-1.
    assert_eq!(api.call(STRANGER, &x).await, 403);
    api.sut.clock.advance(Duration::from_secs(100));
    let before = api
        .req("GET", &format!("/v1/users/{soft}"), None)
        .await
        .json();
    let d = Dialog::new(api.caller.addr, api.sut.addr, NORTH_1, &x);
    api.caller.send(api.sut.addr, &d.invite()).await;
    let inv = api.callee.expect_request("INVITE").await;
    assert!(
        inv.raw.starts_with(&format!("INVITE sip:{USER_FULL}@")),
        "{}",
        inv.raw
    );
    assert!(inv.msg.from.contains(&x), "{}", inv.raw);
    assert!(!inv.raw.contains(NORTH_1), "{}", inv.raw);
    api.callee
        .send(inv.from, &inv.reply(486, "busy", "", ""))
        .await;
    api.callee.expect_request("ACK").await;
    let busy = api.caller.expect_response(486).await;
    api.caller.send(api.sut.addr, &d.ack_failure(&busy)).await;
    let status = api.call(NORTH_1, &x).await;
    assert_eq!(status, 200);
    // The call was an interaction: the user is active as of now.
    let mut active = Value::Null;
    for _ in 0..50 {
        active = api
            .req("GET", &format!("/v1/users/{soft}"), None)
            .await
            .json()["active_at"]
            .clone();
        if active != before["active_at"] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_ne!(
        active, before["active_at"],
        "a call through X records an interaction"
    );

    // Every decision is recorded, per agent, user and team; by soft
    // number, those that never came to a user (the stranger's) too.
    let all = api
        .req("GET", &format!("/v1/acquisitions?soft_number={soft}"), None)
        .await;
    let results: Vec<String> = all.json()["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["result"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        results,
        [
            "identity-check-failed",
            "granted",
            "granted",
            "granted",
            "no-permission",
            "renewed"
        ],
        "{}",
        all.body
    );
    assert!(!all.body.contains(USER), "{}", all.body);
    let agents = api.req("GET", "/v1/agents", None).await.json();
    let south_2 = agents["items"][3]["id"].as_i64().expect("id");
    let mine = api
        .req("GET", &format!("/v1/acquisitions?agent_id={south_2}"), None)
        .await;
    assert_eq!(
        mine.json()["items"].as_array().map(Vec::len),
        Some(1),
        "{}",
        mine.body
    );
    let strangers = api.req("GET", "/v1/acquisitions", None).await.json();
    assert_eq!(strangers["items"][0]["result"], "identity-check-failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_frees_x_and_a_recycled_soft_number_stops_resolving() {
    let mut api = api_with(|_| {}).await;
    let soft = world(&api).await;
    let r = api
        .req(
            "PUT",
            "/v1/flow/settings",
            Some(json!({ "x_lifetime_secs": 60, "soft_quarantine_secs": 3600, "x_max_calls": 1 })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["soft_flag"], 5);
    api.req(
        "POST",
        "/v1/interactions",
        Some(json!({ "soft_number": soft, "agent": NORTH_1, "kind": "favourite" })),
    )
    .await;
    let first = acquire(&api, NORTH_1, &soft).await;
    assert_eq!(first.status, 201, "{}", first.body);
    let x = first.json()["x"].as_str().expect("x").to_string();
    // The tenant's conditions of an acquired X: one answered call.
    assert_eq!(api.call(NORTH_1, &x).await, 200);
    assert_eq!(api.call(USER, &x).await, 403, "its one call is used");
    api.sut.clock.advance(Duration::from_secs(61));
    assert_eq!(
        api.call(NORTH_1, &x).await,
        404,
        "an expired X reaches no one"
    );
    let second = acquire(&api, NORTH_1, &soft).await;
    assert_eq!(second.status, 201, "a new acquisition: {}", second.body);
    assert_eq!(second.json()["renewed"], false);
    assert_ne!(
        second.json()["x"],
        x.as_str(),
        "the old X rests for the pair"
    );

    // Recycled: the soft number no longer resolves, and the X acquired for
    // its user no longer reaches the user; the same real number gets
    // another soft number while the old one rests.
    let live_x = second.json()["x"].as_str().expect("x").to_string();
    let r = api.req("DELETE", &format!("/v1/users/{soft}"), None).await;
    assert_eq!(r.status, 204);
    assert_eq!(
        api.call(NORTH_1, &live_x).await,
        404,
        "the recycled user's X still reached the user"
    );
    assert_eq!(
        api.req("GET", &format!("/v1/users/{soft}"), None)
            .await
            .status,
        404
    );
    let gone = acquire(&api, NORTH_1, &soft).await;
    assert_eq!(
        (gone.status, problem(&gone).as_str()),
        (404, "urn:sipmask:problem:unknown-soft-number"),
        "{}",
        gone.body
    );
    let fresh = api
        .req("POST", "/v1/users", Some(json!({ "number": USER })))
        .await;
    assert_eq!(fresh.status, 201);
    assert_ne!(fresh.json()["soft_number"], soft.as_str());
    // A soft number is never callable, nor a number of a pool.
    let new_soft = fresh.json()["soft_number"]
        .as_str()
        .expect("soft")
        .to_string();
    assert_eq!(api.call(STRANGER, &new_soft).await, 404);
    let m = http(api.api, "GET", "/metrics", None, None).await;
    assert!(
        m.body.contains("sipmask_soft_number_calls_total 1"),
        "{}",
        m.body
    );
    let r = api
        .req(
            "POST",
            "/v1/numbers",
            Some(json!({ "numbers": [new_soft] })),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soft_numbers_are_pushed_once_per_window_signed_and_to_their_tenant_only() {
    let (api, keys) = api_with_tenants(&["other"], |_| {}).await;
    let soft = world(&api).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let mut rx = receiver_on(listener).await;
    let r = api
        .req("PUT", "/v1/webhook", Some(json!({ "url": url })))
        .await;
    let secret = r.json()["secret"].as_str().expect("secret").to_string();
    let other = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let other_url = format!("http://{}/hook", other.local_addr().expect("addr"));
    let mut other_rx = receiver_on(other).await;
    api.req_as(
        &keys[0],
        "PUT",
        "/v1/webhook",
        Some(json!({ "url": other_url })),
    )
    .await;
    let browse = json!({ "soft_number": soft, "agent": NORTH_1, "kind": "browse" });
    for _ in 0..3 {
        api.req("POST", "/v1/interactions", Some(browse.clone()))
            .await;
    }
    // A call-kind interaction pushes nothing.
    api.req(
        "POST",
        "/v1/interactions",
        Some(json!({ "soft_number": soft, "agent": NORTH_2, "kind": "call" })),
    )
    .await;
    let (ev, sig) = rx.next("soft_number.pushed").await;
    check_signature(&secret, &sig);
    assert_eq!(ev["data"]["soft_number"], soft.as_str());
    assert_eq!(ev["data"]["agent"]["number"], format!("+86{NORTH_1}"));
    assert!(!ev.to_string().contains(USER), "{ev}");
    let more = rx.any_within(Duration::from_millis(500)).await;
    assert!(more.is_none(), "pushed once per window: {more:?}");
    // A day later (the default window) the next browse pushes again.
    api.sut.clock.advance(Duration::from_secs(86_401));
    api.req("POST", "/v1/interactions", Some(browse)).await;
    rx.next("soft_number.pushed").await;
    assert!(
        other_rx
            .any_within(Duration::from_millis(300))
            .await
            .is_none(),
        "nothing for another tenant"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_clear_problem_and_changes_nothing() {
    let (api, keys) = api_with_tenants(&["other"], |_| {}).await;
    let soft = world(&api).await;
    // Another tenant's user and agents are not theirs.
    let theirs = api
        .req_as(
            &keys[0],
            "POST",
            "/v1/users",
            Some(json!({ "number": "13900000555" })),
        )
        .await;
    let their_soft = theirs.json()["soft_number"]
        .as_str()
        .expect("soft")
        .to_string();
    let r = api
        .req(
            "POST",
            "/v1/interactions/bulk",
            Some(json!({ "items": [
                { "soft_number": soft, "agent": NORTH_1, "kind": "browse" },
                { "soft_number": their_soft, "agent": NORTH_1, "kind": "browse" },
                { "soft_number": "123", "agent": NORTH_1, "kind": "browse" },
                { "soft_number": soft, "agent": STRANGER, "kind": "browse" },
                { "soft_number": soft, "agent": NORTH_1, "kind": "Not A Kind" },
            ]})),
        )
        .await;
    assert_eq!(
        (r.status, problem(&r).as_str()),
        (422, "urn:sipmask:problem:invalid-items"),
        "{}",
        r.body
    );
    let fields: Vec<String> = r.json()["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .map(|p| p["field"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        fields,
        ["items[2].soft_number"],
        "format problems first: {}",
        r.body
    );
    let r = api
        .req(
            "POST",
            "/v1/interactions/bulk",
            Some(json!({ "items": [
                { "soft_number": soft, "agent": NORTH_1, "kind": "browse" },
                { "soft_number": their_soft, "agent": NORTH_1, "kind": "browse" },
                { "soft_number": soft, "agent": STRANGER, "kind": "browse" },
                { "soft_number": soft, "agent": NORTH_1, "kind": "Not A Kind" },
            ]})),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    let fields: Vec<String> = r.json()["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .map(|p| p["field"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        fields,
        ["items[1].soft_number", "items[2].agent", "items[3].kind"],
        "{}",
        r.body
    );
    // All or nothing: the good first item was not recorded either.
    let r = acquire(&api, NORTH_1, &soft).await;
    assert_eq!(
        problem(&r),
        "urn:sipmask:problem:no-permission",
        "{}",
        r.body
    );
    // Another tenant's soft number is no user of ours.
    let r = acquire(&api, NORTH_1, &their_soft).await;
    assert_eq!(r.status, 403, "{}", r.body);
    let r = acquire(&api, NORTH_1, "58").await;
    assert_eq!(
        (r.status, r.json()["field"].as_str()),
        (422, Some("soft_number")),
        "{}",
        r.body
    );
    let r = api.req("GET", "/v1/users/5812345678x", None).await;
    assert_eq!(r.status, 422);
    // A key of no tenant gets nothing.
    let r = http(
        api.api,
        "POST",
        "/v1/acquisitions",
        Some("smk_not-a-key"),
        Some("{}"),
    )
    .await;
    assert_eq!(r.status, 401);
    // A soft number is no party of a binding.
    let r = api
        .req(
            "POST",
            "/v1/bindings",
            Some(json!({ "a": NORTH_1, "b": soft })),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["field"].as_str()),
        (422, Some("b")),
        "{}",
        r.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acquired_x_carries_a_sipp_call_from_the_agent_to_the_user() {
    let uas_port = free_port("127.0.0.3");
    let api = api_with(|c| c.sip.trunk = format!("127.0.0.3:{uas_port}")).await;
    let soft = world(&api).await;
    let x = chatted_x(&api, &soft, json!({ "x_lifetime_secs": 60 })).await;
    let chat = json!({ "soft_number": soft, "agent": NORTH_1, "kind": "chat" });
    // A new interaction renews X: 50 s later it has another 60.
    api.sut.clock.advance(Duration::from_secs(50));
    api.req("POST", "/v1/interactions", Some(chat)).await;
    api.sut.clock.advance(Duration::from_secs(50));
    // The tenant watches its events while the call goes on.
    let mut events = api.event_stream().await;
    // SIPp as the agent's phone (on 127.0.0.2, a trusted network) and as
    // the user's phone behind the trunk: the call must go through.
    Sipp::new()
        .call(
            api.sut.addr,
            uas_port,
            "uas.xml",
            "uac.xml",
            NORTH_1,
            &x,
            false,
        )
        .await;
    // Wherever the acquired binding's user shows (events, call records,
    // bindings, by party too), the tenant sees the soft number, never the
    // real one: it may forward all of it to agents.
    let mut seen = String::new();
    let mut buf = vec![0u8; 8192];
    while !seen.contains("call.ended") {
        use tokio::io::AsyncReadExt;
        let n = tokio::time::timeout(Duration::from_secs(5), events.read(&mut buf))
            .await
            .expect("events in time")
            .expect("read");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(
        seen.contains("call.offered") && seen.contains(&soft),
        "{seen}"
    );
    let mut listed = String::new();
    for _ in 0..50 {
        listed = api.req("GET", "/v1/calls", None).await.body;
        if listed.contains(&x) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The list masks parties: the soft number's mask, not the user's.
    let soft_masked = format!("{}****{}", &soft[..3], &soft[soft.len() - 4..]);
    assert!(listed.contains(&soft_masked), "{listed}");
    assert!(!listed.contains("139****0000"), "{listed}");
    let bindings = api.req("GET", "/v1/bindings", None).await.body;
    assert!(bindings.contains(&soft), "{bindings}");
    let by_party = api
        .req("GET", &format!("/v1/bindings?party={USER}"), None)
        .await
        .body;
    for (what, text) in [
        ("events", &seen),
        ("records", &listed),
        ("bindings", &bindings),
        ("bindings by party", &by_party),
    ] {
        assert!(
            !text.contains(USER),
            "the user's real number in {what}: {text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whether_a_number_is_a_live_soft_number_is_no_other_tenants_to_learn() {
    let (api, keys) = api_with_tenants(&["rival"], |_| {}).await;
    let soft = world(&api).await;
    let rival = |path: &'static str, body: Value| {
        let (api, key) = (api.api, keys[0].clone());
        async move { http(api, "POST", path, Some(&key), Some(&body.to_string())).await }
    };
    // A live soft number and one nobody holds, of the same shape: the
    // same answer, by shape.
    let unused = if soft.ends_with('1') {
        "58000000002"
    } else {
        "58000000001"
    };
    let live = rival("/v1/numbers", json!({ "numbers": [soft] })).await;
    let free = rival("/v1/numbers", json!({ "numbers": [unused] })).await;
    assert_eq!(live.status, 422, "{}", live.body);
    assert_eq!(
        (live.status, live.body.replace(&soft, "N")),
        (free.status, free.body.replace(unused, "N"))
    );
    assert_eq!(
        rival("/v1/numbers", json!({ "numbers": ["17000000009"] }))
            .await
            .status,
        201
    );
    // Nor is a soft number anyone's real number.
    let r = api
        .req("POST", "/v1/users", Some(json!({ "number": soft })))
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbers_ids_and_names_are_read_exactly_and_refused_for_what_they_are() {
    let (api, keys) = api_with_tenants(&["rival"], |_| {}).await;
    world(&api).await;
    // Another tenant's agent is not found, whatever the body says.
    let agents = api.req("GET", "/v1/agents", None).await.json();
    let id = agents["items"][0]["id"].as_i64().expect("an agent");
    let body = json!({ "team": 1 }).to_string();
    let r = http(
        api.api,
        "PATCH",
        &format!("/v1/agents/{id}"),
        Some(&keys[0]),
        Some(&body),
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.body);
    // A control character is said to be one, not a length.
    let r = api
        .req(
            "POST",
            "/v1/users",
            Some(json!({ "number": "13900000001", "user_id": "u\u{85}1" })),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("control"), "{}", r.body);
    // An integer written as a float is read exactly (or refused).
    let r = api
        .req(
            "POST",
            "/v1/bindings/delete",
            Some(json!({ "ids": [serde_json::Number::from_f64(4032036042280702.0)] })),
        )
        .await;
    assert!(!r.body.contains("702.5"), "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_ids_and_old_interactions_mean_what_they_say() {
    let mut api = api_with(|_| {}).await;
    let soft = world(&api).await;
    let put = |v: Value| api.req("PUT", "/v1/flow/settings", Some(v));
    // Spans are at most 100 years, calls included.
    assert_eq!(
        put(json!({ "x_max_call_secs": 4294967295u32 }))
            .await
            .status,
        422
    );
    // A flag digit that starts real mobile numbers (+86: 1) is refused.
    let r = put(json!({ "soft_flag": 1 })).await;
    assert_eq!(r.status, 422, "{}", r.body);
    // null returns a setting to the server's default.
    assert_eq!(
        put(json!({ "x_lifetime_secs": 60 })).await.json()["x_lifetime_secs"],
        60
    );
    let r = put(json!({ "x_lifetime_secs": null })).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let default = sipmask::config::Config::embedded()
        .expect("config")
        .flow
        .x_lifetime_secs;
    assert_eq!(r.json()["x_lifetime_secs"], default);
    // The same number with another user_id is a conflict, not ignored.
    let r = api
        .req(
            "POST",
            "/v1/users",
            Some(json!({ "number": USER, "user_id": "u-2" })),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    // An interaction from before the look-back renews no X.
    let x = chatted_x(
        &api,
        &soft,
        json!({ "x_lifetime_secs": 60, "lookback_secs": 3600 }),
    )
    .await;
    api.sut.clock.advance(Duration::from_secs(50));
    let now = sipmask::time::Clock::now(api.sut.clock.as_ref()).unix();
    let old = json!({ "soft_number": soft, "agent": NORTH_1, "kind": "chat", "at": now - 7200 });
    let r = api.req("POST", "/v1/interactions", Some(old)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    api.sut.clock.advance(Duration::from_secs(20));
    assert_eq!(
        api.call(NORTH_1, &x).await,
        404,
        "a backdated interaction renewed X"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answered_call_through_an_acquired_x_renews_it() {
    let mut api = api_with(|_| {}).await;
    let soft = world(&api).await;
    let x = chatted_x(&api, &soft, json!({ "x_lifetime_secs": 60 })).await;
    // A call 50 s in: X now lives until 110 s, not 60.
    api.sut.clock.advance(Duration::from_secs(50));
    assert_eq!(api.call(NORTH_1, &x).await, 200);
    api.sut.clock.advance(Duration::from_secs(20));
    assert_eq!(api.call(USER, &x).await, 200, "the call did not renew X");
    api.sut.clock.advance(Duration::from_secs(45));
    assert_eq!(api.call(NORTH_1, &x).await, 200, "renewed again at 70 s");
    // The renewal is stored: what a restart loads is what serves now.
    let live = api.req("GET", "/v1/bindings", None).await.json()["items"][0]["conditions"]
        ["not_after"]
        .as_str()
        .map(str::to_string);
    let mut stored = None;
    for _ in 0..50 {
        let mut store = sipmask::store::open(api.sut.dir.path()).expect("store");
        stored = store
            .load_all()
            .expect("bindings")
            .into_iter()
            .find(|b| b.x.as_str().ends_with(&x))
            .and_then(|b| b.conditions.not_after)
            .map(sipmask::time::format);
        if stored == live {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(live.is_some());
    assert_eq!(stored, live);
}
