//! Several nodes on one PostgreSQL database, over real SIP and HTTP: what
//! one node's API changes, every node routes, and what a node counts is
//! in the shared database for the others.

mod common;

use std::time::{Duration, Instant};

use common::cluster::*;
use common::pg::TempDb;
use common::*;
use serde_json::json;
use sipmask::sip::Msg;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binding_made_on_one_node_is_called_through_another() {
    let db = TempDb::new();
    let mut caller = Ua::bind("127.0.0.2").await;
    let mut callee = Ua::bind("127.0.0.3").await;
    let (key, one, two) = two_nodes(&db, callee.addr).await;
    let api_one = one.server.api_addr.expect("API");
    let api_two = two.server.api_addr.expect("API");

    pool(api_one, &key, &["17000000001"]).await;
    let made = Instant::now();
    let (id, x) = pair(api_one, &key, A, json!({})).await;
    // Node two routes it as soon as its table has it.
    until_shown(api_two, &key, id).await;
    // How long it took is measured by `bench/cluster.sh` (the ignored
    // test below), not asserted here.
    eprintln!("reached node two in {:?}", made.elapsed());
    connected(&mut caller, &mut callee, two.addr, A, &x, "t").await;

    // A change on node two reaches node one; a removal too.
    let r = http(
        api_two,
        "PATCH",
        &format!("/v1/bindings/{id}"),
        Some(&key),
        Some(&json!({ "max_call_secs": 77 }).to_string()),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let path = format!("/v1/bindings/{id}");
    until(api_one, &key, &path, |r| {
        r.json()["conditions"]["max_call_secs"] == 77
    })
    .await;
    let r = http(
        api_one,
        "DELETE",
        &format!("/v1/bindings/{id}"),
        Some(&key),
        None,
    )
    .await;
    assert!(r.status == 204 || r.status == 200, "{}", r.body);
    until(api_two, &key, &path, |r| r.status == 404).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_events_written_on_three_nodes_are_each_delivered_once() {
    let db = TempDb::new();
    let callee = Ua::bind("127.0.0.3").await;
    let (key, one, two) = two_nodes(&db, callee.addr).await;
    let three = node(&db, callee.addr, "three").await;
    let apis = [
        one.server.api_addr.expect("API"),
        two.server.api_addr.expect("API"),
        three.server.api_addr.expect("API"),
    ];
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let mut hooks = common::hooks::receiver_on(listener).await;
    let url = format!("http://{}/hook", hooks.addr);
    let r = http(
        apis[0],
        "PUT",
        "/v1/webhook",
        Some(&key),
        Some(&json!({ "url": url }).to_string()),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // A thousand identifiers, made through the three nodes in turn: a
    // thousand events.
    for i in 0..1000 {
        let r = http(
            apis[i % 3],
            "POST",
            "/v1/identifiers",
            Some(&key),
            Some(&json!({ "kind": "token", "owner": B }).to_string()),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let mut ids = std::collections::HashMap::new();
    while let Some((_, body)) = hooks.any_within(Duration::from_secs(3)).await {
        let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        *ids.entry(v["id"].as_str().unwrap_or_default().to_string())
            .or_insert(0) += 1;
    }
    assert_eq!(ids.len(), 1000);
    let twice: Vec<_> = ids.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
}

/// Runs `f` on a store of `db` off the test's runtime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_nodes_calls_are_settled_by_another_and_a_name_has_one_holder() {
    let db = TempDb::new();
    let callee = Ua::bind("127.0.0.3").await;
    let key = acme_key(&db);
    let tenant = on_db(&db, |s| {
        s.tenant_by_name("acme").expect("tenant").expect("acme")
    });
    // A node on another host died during an answered call: its last beat
    // was a minute ago.
    let beat = sipmask::time::now_ms() - 60_000;
    on_db(&db, move |s| {
        s.save_checkpoint(&sipmask::store::live::Checkpoint {
            instance: "ghost".into(),
            at: beat,
            rows: vec![sipmask::store::live::LiveRow::New {
                key: "ghost-1".into(),
                record: Box::new(sipmask::store::CallRecord {
                    tenant,
                    caller: "+8613800000000".into(),
                    x: "+8617000000009".into(),
                    invite_at: beat - 20_000,
                    answer_at: Some(beat - 8_000),
                    ..Default::default()
                }),
                lease: Some(30),
            }],
        })
        .expect("checkpoint");
    });
    let one = node(&db, callee.addr, "same").await;
    let api_one = one.server.api_addr.expect("API");
    // Settled at start (its beat lapsed long ago), with its record.
    let r = http(api_one, "GET", "/v1/calls", Some(&key), None).await;
    let items = r.json()["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 1, "{}", r.body);
    assert_eq!(items[0]["duration_secs"], 8, "{}", r.body);

    // The node holds its name; a second process of the same name takes it
    // over at its first beat, and the first says it is no longer ready.
    let ready = |api| async move { http(api, "GET", "/readyz", None, None).await.status };
    let waited = Instant::now();
    while on_db(&db, |s| {
        s.hold_node(("same", ""), "probe", 0, 0, false)
            .expect("lease")
    }) {
        assert!(
            waited.elapsed() < Duration::from_secs(5),
            "the node never took its name"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(ready(api_one).await, 200);
    let two = node(&db, callee.addr, "same").await;
    let waited = Instant::now();
    while ready(api_one).await == 200 {
        assert!(
            waited.elapsed() < Duration::from_secs(5),
            "two holders of one name"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(ready(two.server.api_addr.expect("API")).await, 200);
}

/// Propagation of a change to another node: 200 bindings made through one
/// node's API, each timed until the other node's API shows it. A
/// measurement (`bench/cluster.sh`), not a check: run with `--ignored`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn propagation_to_another_node() {
    let db = TempDb::new();
    let callee = Ua::bind("127.0.0.3").await;
    let (key, one, two) = two_nodes(&db, callee.addr).await;
    let (api_one, api_two) = (
        one.server.api_addr.expect("API"),
        two.server.api_addr.expect("API"),
    );
    let mut took = Vec::new();
    for i in 0..200u32 {
        let owner = format!("1390000{i:04}");
        let made = Instant::now();
        let r = http(
            api_one,
            "POST",
            "/v1/identifiers",
            Some(&key),
            Some(&json!({ "kind": "token", "owner": owner }).to_string()),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.body);
        let id = r.json()["id"].as_i64().unwrap_or_default();
        let created = made.elapsed();
        loop {
            let r = http(
                api_two,
                "GET",
                &format!("/v1/identifiers/{id}"),
                Some(&key),
                None,
            )
            .await;
            if r.status == 200 {
                break;
            }
            assert!(made.elapsed() < Duration::from_secs(5), "never propagated");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        took.push(made.elapsed().saturating_sub(created));
    }
    took.sort();
    let at = |q: f64| took[((took.len() as f64 * q) as usize).min(took.len() - 1)];
    println!(
        "propagation after commit, 200 changes: p50 {:?} p99 {:?} max {:?}",
        at(0.5),
        at(0.99),
        took[took.len() - 1]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_from_its_database_fails_closed_and_comes_back_by_itself() {
    let db = TempDb::new();
    let relay = common::pg::Relay::to("127.0.0.1:5432");
    let mut caller = Ua::bind("127.0.0.2").await;
    let mut callee = Ua::bind("127.0.0.3").await;
    let key = acme_key(&db);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(dir.path(), callee.addr);
    cfg.storage.url = relay.url(&db.url);
    assert_ne!(
        cfg.storage.url, db.url,
        "the test database is on 127.0.0.1:5432"
    );
    cfg.storage.offline = sipmask::store::config::Offline::Route;
    let sut = start(cfg, dir).await;
    let api = sut.server.api_addr.expect("API");
    pool(api, &key, &["17000000001", "17000000002"]).await;
    let counted = pair(api, &key, A, json!({ "max_calls": 5 })).await.1;
    let (free_id, free) = pair(api, &key, "13800000002", json!({})).await;
    let xs = [counted, free];
    let ready = || async { http(api, "GET", "/readyz", None, None).await.status };

    relay.cut();
    let cut = Instant::now();
    while ready().await == 200 {
        assert!(
            cut.elapsed() < Duration::from_secs(15),
            "still ready without a database"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = http(api, "GET", "/v1/bindings", Some(&key), None).await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.json()["type"], "urn:sipmask:problem:store-unavailable");
    // The heartbeat has seen it too once the API has.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    // A counted binding: refused before anyone rings, never a free call.
    let d = Dialog::new(caller.addr, sut.addr, A, &xs[0]);
    caller.send(sut.addr, &d.invite()).await;
    let r = caller.expect_response(503).await;
    caller.send(sut.addr, &d.ack_failure(&r)).await;
    callee.expect_silence(Duration::from_millis(300)).await;
    // An uncounted one routes from the table (storage.offline = "route"),
    // and ends while the database is still away.
    let (mut d, _) = connected(
        &mut caller,
        &mut callee,
        sut.addr,
        "13800000002",
        &xs[1],
        "t1",
    )
    .await;
    caller.send(sut.addr, &d.request("BYE", "")).await;
    let bye = callee.expect_request("BYE").await;
    callee.send(bye.from, &bye.reply(200, "", "", "")).await;
    caller.expect_response(200).await;

    relay.heal();
    let healed = Instant::now();
    while ready().await != 200 {
        assert!(
            healed.elapsed() < Duration::from_secs(15),
            "never came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    connected(&mut caller, &mut callee, sut.addr, A, &xs[0], "t2").await;
    // What the node wrote while the database was away was kept and saved
    // once it answered: the refusal's record and the routed call's.
    let waited = Instant::now();
    loop {
        let results = on_db(&db, move |s| {
            let tenant = s.get(free_id).expect("get").expect("there").tenant;
            let filter = sipmask::store::CallFilter {
                limit: 10,
                ..Default::default()
            };
            let (records, _) = s.calls(tenant, &filter).expect("records");
            records.iter().map(|r| r.result).collect::<Vec<_>>()
        });
        if results.contains(&503) && results.contains(&200) {
            break;
        }
        assert!(
            waited.elapsed() < Duration::from_secs(5),
            "records of the cut lost: {results:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binding_that_expires_is_announced_once_by_the_cluster() {
    let db = TempDb::new();
    let callee = Ua::bind("127.0.0.3").await;
    let (key, one, two) = two_nodes(&db, callee.addr).await;
    let api = one.server.api_addr.expect("API");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let mut hooks = common::hooks::receiver_on(listener).await;
    let hook = json!({ "url": format!("http://{}/hook", hooks.addr) }).to_string();
    let r = http(api, "PUT", "/v1/webhook", Some(&key), Some(&hook)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    pool(api, &key, &["17000000001"]).await;
    let ends = sipmask::time::format(sipmask::time::now() + 2);
    let (id, _) = pair(api, &key, A, json!({ "not_after": ends })).await;
    until_shown(two.server.api_addr.expect("API"), &key, id).await;
    // Both nodes' sweeps see it expire; one node sweeps.
    let mut expired = 0;
    let waited = Instant::now();
    while waited.elapsed() < Duration::from_secs(6) {
        if let Some((_, body)) = hooks.any_within(Duration::from_millis(500)).await {
            let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
            if v["type"] == "binding.expired" {
                expired += 1;
            }
        }
    }
    assert_eq!(expired, 1, "announced once");
    // One node sweeps; when it stops, the other takes over once its lease
    // lapses.
    let sweeper = |api| async move {
        let m = http(api, "GET", "/metrics", None, None).await.body;
        m.lines().any(|l| l == "sipmask_sweeper 1")
    };
    let (api_two, api_one) = (two.server.api_addr.expect("API"), api);
    let both = [sweeper(api_one).await, sweeper(api_two).await];
    assert_eq!(both.iter().filter(|s| **s).count(), 1, "{both:?}");
    let (holder, other) = if both[0] {
        (one, api_two)
    } else {
        (two, api_one)
    };
    holder.server.shutdown(Duration::from_secs(1)).await;
    let stopped = Instant::now();
    while !sweeper(other).await {
        assert!(
            stopped.elapsed() < Duration::from_secs(20),
            "nobody took the sweeps over"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Ended answered calls a node's `/metrics` counts.
async fn answered(api: std::net::SocketAddr) -> u64 {
    let m = http(api, "GET", "/metrics", None, None).await;
    m.body
        .lines()
        .find_map(|l| l.strip_prefix("sipmask_calls_total{result=\"answered\"} "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_one_host_share_the_port_and_hand_each_other_what_is_theirs() {
    let db = TempDb::new();
    let mut callee = Ua::bind("127.0.0.3").await;
    let key = acme_key(&db);
    // Side by side on one host: one data dir, one SIP port.
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port("127.0.0.1");
    let mut nodes = Vec::new();
    for name in ["one", "two"] {
        let mut cfg = config(dir.path(), callee.addr);
        cfg.storage.url = db.url.clone();
        cfg.storage.node = name.into();
        cfg.sip.listen = vec![format!("127.0.0.1:{port}")];
        nodes.push(start(cfg, tempfile::tempdir().expect("tempdir")).await);
    }
    let sut = nodes[0].addr;
    assert_eq!(nodes[1].addr, sut, "both on one port");
    let api = nodes[0].server.api_addr.expect("API");
    pool(api, &key, &["17000000001"]).await;
    let (id, x) = pair(api, &key, A, json!({})).await;
    until_shown(nodes[1].server.api_addr.expect("API"), &key, id).await;
    // Callers on sockets of their own: the kernel spreads their INVITEs
    // over the two nodes. The callee's one socket reaches one node only,
    // which hands the other node's answers and BYEs over.
    let mut calls = Vec::new();
    for i in 0..24 {
        let mut caller = Ua::bind("127.0.0.2").await;
        let (d, inv) = connected(&mut caller, &mut callee, sut, A, &x, &format!("b{i}")).await;
        calls.push((caller, d, inv, i));
    }
    for (caller, d, inv, i) in calls.iter_mut() {
        let bye = format!(
            "BYE sip:x@{sut} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKbye{i}\r\n\
             From: {to};tag=b{i}\r\nTo: {from}\r\nCall-ID: {cid}\r\nCSeq: 9 BYE\r\n\
             Content-Length: 0\r\n\r\n",
            me = callee.addr,
            to = inv.msg.to,
            from = inv.msg.from,
            cid = inv.msg.call_id,
        );
        callee.send(sut, &bye).await;
        callee.expect_response(200).await;
        let got = caller.expect_request("BYE").await;
        assert_eq!(got.msg.call_id, d.call_id);
        caller.send(got.from, &got.reply(200, "", "", "")).await;
    }
    // Each node counts the calls it took (at their end).
    let took = [
        answered(nodes[0].server.api_addr.expect("API")).await,
        answered(nodes[1].server.api_addr.expect("API")).await,
    ];
    assert_eq!(took[0] + took[1], 24, "{took:?}");
    assert!(
        took[0] > 0 && took[1] > 0,
        "both nodes took calls: {took:?}"
    );
    eprintln!("calls taken by each node: {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_registered_through_one_node_is_rung_by_a_call_through_another() {
    const PW: &str = "alice-secret-1";
    let db = TempDb::new();
    let callee = Ua::bind("127.0.0.3").await;
    let (key, one, two, x) = two_nodes_and_an_account(&db, callee.addr, "alice", PW).await;
    // The phone registers through node one only.
    let mut phone = common::phone::Phone::new("127.0.0.5", "alice", PW, one.addr).await;
    let ok = phone.register(600).await;
    assert_eq!(ok.code(), 200, "{}", ok.raw);
    // Node two learns the contact from the database's change log.
    both_know(&one, &two, &key, "alice").await;
    // A call entering node two rings the phone through node one, which
    // holds its flow (the phone's NAT lets in only what comes from where
    // it registered).
    let mut caller = Ua::bind("127.0.0.2").await;
    let mut d = Dialog::new(caller.addr, two.addr, A, &x);
    caller.send(two.addr, &d.invite()).await;
    let inv = phone.ua.expect_request("INVITE").await;
    assert_eq!(inv.from, one.addr, "relayed by node one");
    let rr = inv.headers("Record-Route");
    assert_eq!(rr.len(), 1, "node one stays on the path: {}", inv.raw);
    assert!(rr[0].contains(&one.addr.to_string()), "{}", rr[0]);
    let contact = format!("Contact: <sip:alice@{}>\r\n", phone.ua.addr);
    phone
        .ua
        .send(
            inv.from,
            &inv.reply(200, "ph1", &contact, &sdp("alice", "127.0.0.5")),
        )
        .await;
    let ok = caller.expect_response(200).await;
    d.confirm(&ok);
    caller.send(two.addr, &d.ack(1)).await;
    let ack = phone.ua.expect_request("ACK").await;
    assert_eq!(ack.from, one.addr, "the ACK follows the route");
    // The phone hangs up along its route set: through node one, to node
    // two, which ends the caller's leg.
    let mut bye = Dialog::new(phone.ua.addr, one.addr, "alice", "x");
    bye.call_id = inv.msg.call_id.to_string();
    bye.tag = "ph1".into();
    bye.remote_to = inv.msg.from.to_string();
    bye.route = rr;
    bye.remote_target = inv.msg.contact.as_deref().map(str::to_string);
    phone.ua.send(one.addr, &bye.request("BYE", "")).await;
    let hung = caller.expect_request("BYE").await;
    caller.send(two.addr, &hung.reply(200, "", "", "")).await;
    let done = phone.ua.expect_response(200).await;
    assert!(done.raw.contains("CSeq: 2 BYE"), "{}", done.raw);
    assert_eq!(done.from, one.addr);
    // Nothing of node two's own hop (its Via) reached the phone in the
    // answer to its BYE: node one took its own Via off.
    assert_eq!(done.headers("Via").len(), 1, "{}", done.raw);
    // Someone who is not a node and names the phone's flow is refused,
    // and the phone hears nothing.
    let mut stranger = Dialog::new(caller.addr, one.addr, A, "alice");
    stranger.route = inv.headers("Record-Route");
    caller.send(one.addr, &stranger.invite()).await;
    let no = caller.expect_response(403).await;
    assert!(no.raw.starts_with("SIP/2.0 403 Not Relayed"), "{}", no.raw);
    phone.ua.expect_silence(Duration::from_millis(300)).await;
}

/// Two nodes on `db`, and account `name` (with `password`) made through
/// node one with an AXB binding from A to it, known to node two: the key,
/// the nodes, and X as the caller dials it.
async fn two_nodes_and_an_account(
    db: &TempDb,
    callee: std::net::SocketAddr,
    name: &str,
    password: &str,
) -> (String, Sut, Sut, String) {
    let (key, one, two) = two_nodes(db, callee).await;
    let api = one.server.api_addr.expect("API");
    let body = json!({ "name": name, "password": password }).to_string();
    let r = http(api, "POST", "/v1/accounts", Some(&key), Some(&body)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    pool(api, &key, &["17000000001"]).await;
    let b = format!("sip:{name}@example.com");
    let body = json!({ "a": A, "b": b }).to_string();
    let r = http(api, "POST", "/v1/bindings", Some(&key), Some(&body)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let x = r.json()["x"]
        .as_str()
        .unwrap_or_default()
        .trim_start_matches("+86")
        .to_string();
    let path = format!("/v1/accounts/{name}");
    until(two.server.api_addr.expect("API"), &key, &path, |r| {
        r.status == 200
    })
    .await;
    (key, one, two, x)
}

/// Waits until node two knows where `name` registered, and node one
/// knows node two (it relays for the nodes it knows: their leases, read
/// every second).
async fn both_know(one: &Sut, two: &Sut, key: &str, name: &str) {
    let (api_one, api_two) = (
        one.server.api_addr.expect("API"),
        two.server.api_addr.expect("API"),
    );
    until(api_two, key, &format!("/v1/accounts/{name}"), |r| {
        r.json()["registrations"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    })
    .await;
    until(api_one, key, "/metrics", |r| {
        r.body.contains("sipmask_cluster_nodes 2")
    })
    .await;
}

/// A phone's TCP connection: what it reads, message by message.
struct TcpPhone {
    conn: tokio::net::TcpStream,
    addr: std::net::SocketAddr,
    buf: Vec<u8>,
}

impl TcpPhone {
    async fn send(&mut self, text: &str) {
        use tokio::io::AsyncWriteExt;
        let text = text.replace("SIP/2.0/UDP", "SIP/2.0/TCP");
        self.conn.write_all(text.as_bytes()).await.expect("write");
    }

    async fn recv(&mut self) -> Sip {
        use tokio::io::AsyncReadExt;
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).to_string();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("Content-Length:"))
                    .map_or(0, |v| v.trim().parse().expect("length"));
                if self.buf.len() >= end + 4 + len {
                    let bytes: Vec<u8> = self.buf.drain(..end + 4 + len).collect();
                    let msg = Msg::parse(&bytes, false).expect("parsable");
                    let raw = String::from_utf8_lossy(&bytes).to_string();
                    if msg.code() == Some(100) {
                        continue;
                    }
                    return Sip {
                        raw,
                        msg,
                        from: self.addr,
                    };
                }
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(Duration::from_secs(5), self.conn.read(&mut chunk))
                .await
                .expect("a message within 5 s")
                .expect("read");
            assert!(n > 0, "connection closed");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_on_tcp_at_one_node_is_rung_over_its_connection_by_a_call_through_another() {
    const PW: &str = "bob-secret-22";
    let db = TempDb::new();
    let callee = Ua::bind("127.0.0.3").await;
    let (key, one, two, x) = two_nodes_and_an_account(&db, callee.addr, "bob", PW).await;
    // The phone registers over TCP with node one only.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind("127.0.0.6:0".parse().expect("addr"))
        .expect("bind");
    let conn = socket.connect(one.addr).await.expect("connect");
    let me = conn.local_addr().expect("local");
    let mut phone = TcpPhone {
        conn,
        addr: one.addr,
        buf: Vec::new(),
    };
    let mut reg = common::phone::Phone::new("127.0.0.6", "bob", PW, one.addr).await;
    reg.ua.addr = me;
    let contact = format!("<sip:bob@{me};transport=tcp>");
    let m = reg.register_msg(&contact, Some(600), None);
    phone.send(&m).await;
    let ch = phone.recv().await;
    assert_eq!(ch.code(), 401, "{}", ch.raw);
    let auth = common::phone::credentials(
        &ch.header("WWW-Authenticate").expect("challenge"),
        "bob",
        PW,
        "REGISTER",
        &format!("sip:{}", one.addr),
        1,
    );
    let m = reg.register_msg(&contact, Some(600), Some(&auth));
    phone.send(&m).await;
    let ok = phone.recv().await;
    assert_eq!(ok.code(), 200, "{}", ok.raw);
    both_know(&one, &two, &key, "bob").await;
    // A call entering node two reaches the phone over its connection to
    // node one: nobody else can open one to it.
    let mut caller = Ua::bind("127.0.0.2").await;
    let mut d = Dialog::new(caller.addr, two.addr, A, &x);
    caller.send(two.addr, &d.invite()).await;
    let inv = phone.recv().await;
    assert_eq!(inv.method(), "INVITE", "{}", inv.raw);
    let rr = inv.headers("Record-Route");
    assert!(
        rr.len() == 1 && rr[0].contains(";transport=tcp"),
        "{}",
        inv.raw
    );
    let contact = format!("Contact: <sip:bob@{me};transport=tcp>\r\n");
    phone
        .send(&inv.reply(200, "pt1", &contact, &sdp("bob", "127.0.0.6")))
        .await;
    let ok = caller.expect_response(200).await;
    d.confirm(&ok);
    caller.send(two.addr, &d.ack(1)).await;
    let ack = phone.recv().await;
    assert_eq!(ack.method(), "ACK", "{}", ack.raw);
    // The caller hangs up: the BYE reaches the phone the same way.
    caller.send(two.addr, &d.request("BYE", "")).await;
    let bye = phone.recv().await;
    assert_eq!(bye.method(), "BYE", "{}", bye.raw);
    phone.send(&bye.reply(200, "", "", "")).await;
    caller.expect_response(200).await;
}
