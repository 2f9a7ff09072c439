//! Counts that stay exact across nodes on one PostgreSQL database, over
//! real SIP: a call's use held in the database from its INVITE (nobody
//! rings past `max_calls`), and a talk budget leased in chunks.

mod common;

use std::time::Duration;

use common::cluster::*;
use common::pg::TempDb;
use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limit_counts_across_nodes_and_nobody_rings_past_it() {
    let db = TempDb::new();
    let mut caller = Ua::bind("127.0.0.2").await;
    let mut callee = Ua::bind("127.0.0.3").await;
    let (key, one, two) = two_nodes(&db, callee.addr).await;
    let api_one = one.server.api_addr.expect("API");
    pool(api_one, &key, &["17000000001"]).await;
    let (id, x) = pair(api_one, &key, A, json!({ "max_calls": 1 })).await;
    until_shown(two.server.api_addr.expect("API"), &key, id).await;

    // The one allowed call, through node one.
    connected(&mut caller, &mut callee, one.addr, A, &x, "t1").await;

    // Node two has not heard of that use, but its hold is asked of the
    // database at the INVITE: the caller is refused with the limit's
    // status, and nobody rings. Twice: node two never counts on its table.
    for _ in 0..2 {
        let d = Dialog::new(caller.addr, two.addr, A, &x);
        caller.send(two.addr, &d.invite()).await;
        let refused = caller.expect_response(403).await;
        assert!(
            refused.raw.starts_with("SIP/2.0 403 Call Limit Reached"),
            "{}",
            refused.raw
        );
        caller.send(two.addr, &d.ack_failure(&refused)).await;
        callee.expect_silence(Duration::from_millis(300)).await;
    }
    // The call is still up: its use is held, and counted when it ends.
    assert_eq!(db.uses(id), (0, 1), "one use, held once, across two nodes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_simultaneous_invites_over_three_nodes_against_five_calls_ring_and_connect_exactly_five(
) {
    let db = TempDb::new();
    let mut caller = Ua::bind("127.0.0.2").await;
    let mut callee = Ua::bind("127.0.0.3").await;
    let (nodes, _key, (id, x)) =
        three_nodes_and_a_pair(&db, callee.addr, json!({ "max_calls": 5 })).await;
    let mut dialogs = std::collections::HashMap::new();
    for i in 0..50 {
        let sut = nodes[i % 3].addr;
        let d = Dialog::new(caller.addr, sut, A, &x);
        caller.send(sut, &d.invite()).await;
        dialogs.insert(d.call_id.clone(), (d, sut));
    }
    // The callee answers every INVITE that reaches it.
    let contact = format!("Contact: <sip:bob@{}>\r\n", callee.addr);
    let mut rang = std::collections::HashSet::new();
    let mut finals: std::collections::HashMap<String, u16> = std::collections::HashMap::new();
    loop {
        tokio::select! {
            m = callee.recv_within(Duration::from_millis(500)) => {
                let Some(m) = m else { break };
                if m.method() == "INVITE" && rang.insert(m.msg.call_id.clone()) {
                    let tag = format!("t{}", rang.len());
                    callee.send(m.from, &m.reply(200, &tag, &contact, &sdp("bob", "127.0.0.3"))).await;
                } else if m.method() == "BYE" {
                    callee.send(m.from, &m.reply(200, "", "", "")).await;
                }
            }
            m = caller.recv_within(Duration::from_millis(500)) => {
                let Some(m) = m else { continue };
                if m.code() >= 200 {
                    let Some((d, sut)) = dialogs.get_mut(m.msg.call_id.as_str()) else { continue };
                    if m.code() == 200 {
                        d.confirm(&m);
                        caller.send(*sut, &d.ack(1)).await;
                    } else {
                        caller.send(*sut, &d.ack_failure(&m)).await;
                    }
                    finals.insert(m.msg.call_id.as_str().to_string(), m.code());
                }
            }
        }
    }
    let answered = finals.values().filter(|c| **c == 200).count();
    let refused = finals.values().filter(|c| **c == 403).count();
    assert_eq!(
        finals.len(),
        50,
        "every caller got a final answer: {finals:?}"
    );
    assert_eq!(answered, 5, "{finals:?}");
    assert_eq!(refused, 45, "{finals:?}");
    // Each use is held at the INVITE: nobody rings for a refused call.
    assert_eq!(rang.len(), 5, "the callee rang for {} calls", rang.len());
    // Five calls up, their uses held (counted as each ends).
    assert_eq!(db.uses(id), (0, 5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_talk_budget_is_leased_in_chunks_across_nodes_and_never_overrun() {
    let db = TempDb::new();
    let mut callee = Ua::bind("127.0.0.3").await;
    // 25 s in chunks of 10: 10 + 10 + 5 leased at the three INVITEs.
    let (nodes, _key, (id, x)) =
        three_nodes_and_a_pair(&db, callee.addr, json!({ "talk_budget_secs": 25 })).await;
    let mut callers = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        let mut ua = Ua::bind("127.0.0.2").await;
        let (d, _) = connected(&mut ua, &mut callee, n.addr, A, &x, &format!("t{i}")).await;
        callers.push((ua, d));
    }
    // Nobody hangs up: the budget must end the calls, each when the
    // database has no more time to lease it. The nodes' clocks run 20
    // times faster than real time.
    let ffs: Vec<_> = nodes.iter().map(|n| n.fast_forward(20)).collect();
    let mut byes = 0;
    while byes < 3 {
        let m = callee
            .recv_within(Duration::from_secs(10))
            .await
            .expect("the budget ends every call");
        if m.method() == "BYE" {
            callee.send(m.from, &m.reply(200, "", "", "")).await;
            byes += 1;
        }
    }
    for (ua, _) in callers.iter_mut() {
        let bye = ua.expect_request("BYE").await;
        ua.send(bye.from, &bye.reply(200, "", "", "")).await;
    }
    drop(ffs);
    // Each call's end books its talk: the three add up to the budget, and
    // never more.
    let waited = std::time::Instant::now();
    let talk = loop {
        let talk = on_db(&db, move |s| {
            s.get(id).expect("get").expect("there").usage.talk_secs_used
        });
        if talk >= 23 || waited.elapsed() > Duration::from_secs(5) {
            break talk;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(talk <= 25, "three nodes booked {talk} s of a 25 s budget");
    assert!(talk >= 23, "the budget was used: {talk} s");
    // Spent, with every lease given back: the next caller is refused
    // before anyone rings, through any node.
    let mut ua = Ua::bind("127.0.0.2").await;
    let d = Dialog::new(ua.addr, nodes[2].addr, A, &x);
    ua.send(nodes[2].addr, &d.invite()).await;
    let r = ua.expect_response(403).await;
    assert!(r.raw.contains("Talk Time Used Up"), "{}", r.raw);
    ua.send(nodes[2].addr, &d.ack_failure(&r)).await;
    callee.expect_silence(Duration::from_millis(300)).await;
}
