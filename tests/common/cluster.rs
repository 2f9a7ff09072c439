//! A cluster of nodes on one PostgreSQL database for the tests: nodes,
//! a tenant, its pool and bindings made through a node's API, and waits
//! for a change to reach a node.

use std::time::{Duration, Instant};

use serde_json::json;

use super::pg::TempDb;
use super::{config, http, start, Http, Sut};

/// The caller of the tests' bindings.
pub const A: &str = "13800000000";
/// The callee of the tests' bindings.
pub const B: &str = "13900000000";

/// A node of the cluster on `db`, with tenant `acme` (its key returned by
/// the first node that makes it).
pub async fn node(db: &TempDb, callee: std::net::SocketAddr, name: &str) -> Sut {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(dir.path(), callee);
    cfg.storage.url = db.url.clone();
    cfg.storage.node = name.into();
    start(cfg, dir).await
}

/// Makes tenant `acme` in `db`; its API key.
pub fn acme_key(db: &TempDb) -> String {
    on_db(db, |s| {
        sipmask::service::tenants::add_tenant(s, "acme", sipmask::time::now()).expect("tenant")
    })
}

/// Adds `numbers` to acme's pool through `api`.
pub async fn pool(api: std::net::SocketAddr, key: &str, numbers: &[&str]) {
    let body = json!({ "numbers": numbers }).to_string();
    let r = http(api, "POST", "/v1/numbers", Some(key), Some(&body)).await;
    assert_eq!(r.status, 201, "{}", r.body);
}

/// Makes the AXB binding (`a`, B) with `conditions` through `api`: its id
/// and its X as the parties dial it.
pub async fn pair(
    api: std::net::SocketAddr,
    key: &str,
    a: &str,
    conditions: serde_json::Value,
) -> (i64, String) {
    let body = json!({ "a": a, "b": B, "conditions": conditions }).to_string();
    let r = http(api, "POST", "/v1/bindings", Some(key), Some(&body)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let b = r.json();
    let x = b["x"]
        .as_str()
        .unwrap_or_default()
        .trim_start_matches("+86");
    (b["id"].as_i64().unwrap_or_default(), x.to_string())
}

/// Waits until `api` answers `GET path` as `done` wants (a change
/// reached that node).
pub async fn until(api: std::net::SocketAddr, key: &str, path: &str, done: impl Fn(&Http) -> bool) {
    let waited = Instant::now();
    while !done(&http(api, "GET", path, Some(key), None).await) {
        assert!(
            waited.elapsed() < Duration::from_secs(5),
            "{path} never as wanted on {api}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until `api` shows binding `id` (it reached that node).
pub async fn until_shown(api: std::net::SocketAddr, key: &str, id: i64) {
    until(api, key, &format!("/v1/bindings/{id}"), |r| r.status == 200).await;
}

/// Runs `f` on a connection of its own to `db` (off the async threads:
/// the client blocks).
pub fn on_db<T: Send + 'static>(
    db: &TempDb,
    f: impl FnOnce(&mut dyn sipmask::store::Backend) -> T + Send + 'static,
) -> T {
    let url = db.url.clone();
    std::thread::spawn(move || {
        let at = sipmask::store::Location {
            url,
            dir: std::env::temp_dir(),
            ..Default::default()
        };
        let mut store = at.open().expect("store");
        f(store.as_mut())
    })
    .join()
    .expect("store thread")
}

/// Three nodes on `db` calling out to `callee`, and a binding (`A`, `B`)
/// with `conditions` made through the first and shown by all: the nodes,
/// the tenant's key, and the binding's id and X.
pub async fn three_nodes_and_a_pair(
    db: &TempDb,
    callee: std::net::SocketAddr,
    conditions: serde_json::Value,
) -> ([Sut; 3], String, (i64, String)) {
    let key = acme_key(db);
    let nodes = [
        node(db, callee, "one").await,
        node(db, callee, "two").await,
        node(db, callee, "three").await,
    ];
    let api = nodes[0].server.api_addr.expect("API");
    pool(api, &key, &["17000000001"]).await;
    let (id, x) = pair(api, &key, A, conditions).await;
    for n in &nodes[1..] {
        until_shown(n.server.api_addr.expect("API"), &key, id).await;
    }
    (nodes, key, (id, x))
}

/// Two nodes on `db` calling out to `callee`, with tenant `acme`: its key
/// and the nodes.
pub async fn two_nodes(db: &TempDb, callee: std::net::SocketAddr) -> (String, Sut, Sut) {
    let key = acme_key(db);
    let one = node(db, callee, "one").await;
    let two = node(db, callee, "two").await;
    (key, one, two)
}
