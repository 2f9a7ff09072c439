//! One owner per virtual number, whatever made it: a tenant cannot claim
//! another tenant's pool number, token identifier or the operator's X, and
//! what is neither a phone number nor an account is refused by field.

mod common;

use common::api::*;
use common::*;
use serde_json::json;

const A: &str = "13800000000";
const B: &str = "13900000000";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_cannot_take_another_tenants_identifier_or_number() {
    let (mut api, keys) = api_with_tenants(&["evil"], |_| {}).await;
    let evil = &keys[0];
    api.pool(&["17000000001"]).await;
    let r = api
        .req(
            "POST",
            "/v1/identifiers",
            Some(json!({ "owner": B, "kind": "token" })),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let token = r.json()["identifier"]
        .as_str()
        .expect("identifier")
        .to_string();

    // evil tries acme's token and acme's pool number: both "not available",
    // with nothing that names acme.
    for n in [token.as_str(), "17000000001"] {
        let r = api
            .req_as(evil, "POST", "/v1/numbers", Some(json!({ "numbers": [n] })))
            .await;
        // A token is not a phone number at all; a taken number is a conflict.
        assert!(
            matches!(r.status, 409 | 422),
            "{n}: {} {}",
            r.status,
            r.body
        );
        assert!(!r.body.contains("acme"), "{}", r.body);
        if r.status == 409 {
            assert!(r.body.contains("not available"), "{}", r.body);
        }
    }
    // The token is claimed even as a SIP URI spelling of a phone-less X.
    let r = api
        .req_as(
            evil,
            "POST",
            "/v1/bindings",
            Some(json!({ "a": A, "b": "13600000000", "x": token })),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    // acme's own number is "yours" to acme, not to evil.
    let r = api
        .req(
            "POST",
            "/v1/numbers",
            Some(json!({ "numbers": ["17000000001"] })),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.body);

    // A caller dialling acme's token still reaches acme's owner.
    let status = api.call(A, &token).await;
    assert_eq!(status, 200);
    let got = api.callee.seen.join("");
    assert!(got.contains("+8613900000000"), "the owner was called");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operators_numbers_and_tenants_numbers_stay_apart() {
    let (api, keys) = api_with_tenants(&["evil"], |_| {}).await;
    let evil = &keys[0];
    let cfg = config(api.sut.dir.path(), api.callee.addr);
    // The operator binds an X on the command line; no tenant may pool it.
    add(&cfg, axb(A, "17000000009", B));
    let r = api
        .req_as(
            evil,
            "POST",
            "/v1/numbers",
            Some(json!({ "numbers": ["17000000009"] })),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    // And the operator may not bind a tenant's pool number.
    api.pool(&["17000000002"]).await;
    let err = sipmask::cli::add(&cfg, api.sut.dir.path(), axb(A, "17000000002", B))
        .expect_err("a tenant's number is not the operator's");
    assert!(
        err.to_string().contains("belongs to an API tenant"),
        "{err}"
    );
    // Removing the operator's last binding on its X frees the X.
    let id = add(&cfg, axb("13700000000", "17000000008", B));
    assert!(sipmask::cli::remove(api.sut.dir.path(), id).expect("remove"));
    let r = api
        .req_as(
            evil,
            "POST",
            "/v1/numbers",
            Some(json!({ "numbers": ["17000000008"] })),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_digits_identifiers_number_is_never_given_to_a_pair() {
    let api = api_with(|_| {}).await;
    api.pool(&["17000000001", "17000000002"]).await;
    let r = api
        .req(
            "POST",
            "/v1/identifiers",
            Some(json!({ "owner": B, "kind": "digits" })),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let ident = r.json()["x"].as_str().expect("x").to_string();
    assert_eq!(ident, "+8617000000001");
    // The pair (A, owner) gets the other number, then none is left.
    let r = api
        .req("POST", "/v1/bindings", Some(json!({ "a": A, "b": B })))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["x"], "+8617000000002");
    let r = api
        .req(
            "POST",
            "/v1/bindings",
            Some(json!({ "a": "13700000000", "b": B })),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    let r = api
        .req(
            "POST",
            "/v1/bindings",
            Some(json!({ "a": "13600000000", "b": "13500000000", "x": ident })),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.body.contains("identifier"), "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_is_neither_a_number_nor_an_account_is_refused_by_field() {
    let api = api_with(|_| {}).await;
    let r = api
        .req(
            "POST",
            "/v1/numbers",
            Some(json!({ "numbers": ["17000000001", "xyz"] })),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("numbers[1]"), "{}", r.body);
    api.pool(&["17000000001"]).await;
    for (field, body) in [
        ("a", json!({ "a": "abc", "b": B })),
        ("b", json!({ "a": A, "b": "12" })),
    ] {
        let r = api.req("POST", "/v1/bindings", Some(body)).await;
        assert_eq!(r.status, 422, "{}", r.body);
        assert!(r.body.contains(&format!("\"{field}\"")), "{}", r.body);
    }
    // An account written as a SIP URI is a party.
    let r = api
        .req(
            "POST",
            "/v1/bindings",
            Some(json!({ "a": "sip:alice@example.com", "b": B })),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["a"], "alice");
}
