//! One suite of the storage traits' behaviour, run against every backend
//! through their public interface:
//! SQLite in a temp dir, and PostgreSQL in a database of its own made on
//! the server that `SIPMASK_TEST_POSTGRES` names (default
//! `postgresql://postgres@127.0.0.1:5432`, the one this project's machines
//! run) and dropped after. Whatever one backend does, the other must.

mod common;

use common::pg::{Relay, TempDb};
use sipmask::bindings::{
    Claim, Conditions, Counted, Direction, Kind, Number, Refusal, Usage, Zone,
};
use sipmask::store::accounts::{AccountRow, ContactRow};
use sipmask::store::changes::Change;
use sipmask::store::events::NewEvent;
use sipmask::store::flow::{AcquisitionFilter, AcquisitionRecord, NewInteraction, UserKey};
use sipmask::store::live::{Checkpoint, LiveRow};
use sipmask::store::prelude::*;
use sipmask::store::webhooks::Attempt;
use sipmask::store::{
    open, open_url, Answered, CallFilter, CallRecord, Filter, NewBinding, Reserve, Settle,
    StoreError, UsageUpdate,
};

fn n(s: &str) -> Number {
    Number::from_normalised(s.into())
}

fn binding(tenant: i64, a: Option<&str>, x: &str, b: &str) -> NewBinding {
    NewBinding {
        tenant,
        kind: if a.is_some() { Kind::Axb } else { Kind::Cli },
        a: a.map(n),
        x: n(x),
        b: n(b),
        conditions: Conditions::default(),
        created_at: 100,
    }
}

/// Runs the suite on both backends.
fn both(suite: fn(&mut dyn Backend)) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut sqlite = open(dir.path()).expect("sqlite");
    suite(sqlite.as_mut());
    let db = TempDb::new();
    let mut pg = open_url(&db.url, dir.path()).expect("postgresql");
    suite(pg.as_mut());
    // A second open finds the schema in place.
    drop(pg);
    let mut again = open_url(&db.url, dir.path()).expect("reopen");
    assert!(!again.load_all().expect("load").is_empty());
}

#[test]
fn tenants_keys_numbers_and_claims() {
    both(|s| {
        let t = s.add_tenant("acme", 1).expect("tenant");
        let u = s.add_tenant("umbrella", 1).expect("tenant");
        assert!(s.add_tenant("acme", 2).is_err(), "names are unique");
        assert_eq!(s.tenant_by_name("umbrella").expect("by name"), Some(u));
        s.add_key(t, "key_a", "hash_a", 5).expect("key");
        s.add_key(t, "key_b", "hash_b", 6).expect("key");
        assert_eq!(s.key_tenant("hash_b").expect("key"), Some(t));
        let keys: Vec<String> = s
            .tenant_keys(t)
            .expect("keys")
            .into_iter()
            .map(|k| k.0)
            .collect();
        assert_eq!(keys, ["key_a", "key_b"]);
        assert!(s.revoke_key(t, "key_a").expect("revoke"));
        assert!(!s.revoke_key(u, "key_b").expect("not its own"));
        assert_eq!(s.keys().expect("keys").len(), 1);
        assert_eq!(s.tenants().expect("tenants").len(), 2);

        assert_eq!(
            s.add_numbers(t, &[n("+1700"), n("+1701")], 1)
                .expect("pool"),
            Ok(())
        );
        let clash = s
            .add_numbers(u, &[n("+1702"), n("+1701")], 1)
            .expect("pool");
        assert_eq!(clash, Err((n("+1701"), false)));
        assert_eq!(s.owner(&n("+1702")).expect("owner"), None, "all or nothing");
        assert_eq!(s.numbers(t).expect("numbers"), [n("+1700"), n("+1701")]);
        assert!(s.claim(u, &n("+1799"), Claim::Token, 2).expect("claim"));
        assert!(!s
            .claim(t, &n("+1799"), Claim::Token, 2)
            .expect("someone else's"));
        assert!(s.claim(u, &n("+1799"), Claim::Token, 2).expect("its own"));
        assert_eq!(
            s.owner(&n("+1799")).expect("owner"),
            Some((u, Claim::Token))
        );
        assert!(s.remove_number(t, &n("+1700")).expect("remove"));
        assert!(!s.remove_number(t, &n("+1700")).expect("gone"));
        s.insert(&[binding(t, None, "+1701", "+2")])
            .expect("insert");
    });
}

#[test]
fn bindings_their_conditions_usage_and_quarantine() {
    both(|s| {
        let mut axb = binding(3, Some("+1"), "+9", "+2");
        axb.conditions = Conditions {
            max_calls: Some(4),
            max_calls_per_day: Some(2),
            idle_secs: Some(60),
            direction: Some(Direction::AToB),
            allowed_callers: Some(vec![n("+5"), n("+6")]),
            record: true,
            announce: Some(false),
            time_zone: Some(Zone::parse("Asia/Shanghai").expect("zone")),
            not_after: Some(9_000),
            ..Default::default()
        };
        let ids = s
            .insert(&[axb.clone(), binding(3, None, "+8", "+2")])
            .expect("insert");
        let got = s.get(ids[0]).expect("get").expect("there");
        assert_eq!(
            got.conditions, axb.conditions,
            "every condition round-trips"
        );
        assert_eq!((got.kind, got.tenant, got.created_at), (Kind::Axb, 3, 100));
        assert!(
            s.insert(&[binding(3, Some("+1"), "+9", "+7")]).is_err(),
            "A and X clash"
        );

        let usage = Usage {
            calls_used: 3,
            talk_secs_used: 70,
            last_call_at: Some(500),
            day: 20_001,
            day_calls: 2,
            ..Default::default()
        };
        s.save_usage(&[UsageUpdate { id: ids[0], usage }])
            .expect("usage");
        let mut c = got.conditions.clone();
        c.max_calls = None;
        c.time_zone = None;
        s.set_conditions(ids[0], &c, 700).expect("conditions");
        let got = s.get(ids[0]).expect("get").expect("there");
        assert_eq!(got.usage, usage);
        assert_eq!(got.conditions, c);

        let page = s
            .list(
                3,
                &Filter {
                    limit: 1,
                    kinds: vec![Kind::Axb, Kind::Cli],
                    ..Default::default()
                },
            )
            .expect("list");
        assert_eq!((page.items.len(), page.next), (1, Some(ids[0])));
        let by_x = s
            .list(
                3,
                &Filter {
                    limit: 10,
                    x: Some("+8".into()),
                    kinds: vec![Kind::Cli],
                    ..Default::default()
                },
            )
            .expect("list");
        assert_eq!(by_x.items.len(), 1);
        // By party, A or B, with the cursor; another tenant's party finds
        // nothing.
        let by = |tenant, party: &str, x: Option<&str>, after| {
            s.list(
                tenant,
                &Filter {
                    after,
                    limit: 10,
                    party: Some(party.into()),
                    x: x.map(Into::into),
                    kinds: vec![Kind::Axb, Kind::Cli],
                },
            )
            .expect("list")
            .items
            .iter()
            .map(|b| b.id)
            .collect::<Vec<_>>()
        };
        assert_eq!(by(3, "+1", None, 0), [ids[0]]);
        assert_eq!(by(3, "+2", None, 0), ids);
        assert_eq!(by(3, "+2", None, ids[0]), [ids[1]]);
        assert_eq!(by(3, "+2", Some("+8"), 0), [ids[1]]);
        assert!(by(4, "+2", None, 0).is_empty());
        assert_eq!(s.bindings_between(ids[0], ids[1]).expect("range").len(), 2);
        // In id order, a chunk at a time, as the table loads them.
        let first = s.bindings_after(i64::MIN, 1).expect("chunk");
        assert_eq!(first.iter().map(|b| b.id).collect::<Vec<_>>(), [ids[0]]);
        let rest = s.bindings_after(first[0].id, 10).expect("chunk");
        assert!(rest.iter().all(|b| b.id > ids[0]) && !rest.is_empty());
        assert!(rest.windows(2).all(|w| w[0].id < w[1].id));

        let got = s.get(ids[0]).expect("get").expect("there");
        s.delete(&[got], 1_000).expect("delete");
        s.delete(&[s.get(ids[1]).expect("get").expect("there")], 900)
            .expect("delete");
        let mut q = s.quarantined(&[&n("+2")], 500).expect("quarantine");
        q.sort();
        assert_eq!(q, [(n("+8"), 900), (n("+9"), 1_000)]);
        assert_eq!(s.quarantined(&[], 950).expect("all"), [(n("+9"), 1_000)]);
        assert!(s.load_all().expect("load").is_empty());

        assert!(s.set_blocked(3, &n("+4"), true, 1).expect("block"));
        assert!(!s.set_blocked(3, &n("+4"), true, 1).expect("again"));
        assert_eq!(s.blocklist().expect("list"), [(3, n("+4"))]);
        assert!(s.set_blocked(3, &n("+4"), false, 1).expect("unblock"));
        // Something for the reopen check of `both`.
        s.insert(&[binding(3, None, "+77", "+2")]).expect("insert");
    });
}

/// A call's hold on its binding: `key` reserved on `id` by `instance`.
fn reserve(
    s: &mut dyn Backend,
    (id, instance, key): (i64, &str, &str),
    max_calls: u32,
    budget: u64,
) -> Result<u64, Refusal> {
    let r = Reserve {
        id,
        limits: Counted {
            max_calls,
            max_per_day: 0,
            today: 1,
            budget,
        },
        at: 800,
        hold: Some(key.into()),
        instance: instance.into(),
        want: 10,
    };
    s.reserve(&r).expect("reserve")
}

#[test]
fn holds_reserve_at_the_invite_lease_talk_and_count_at_the_end() {
    both(|s| {
        let ids = s
            .insert(&[
                binding(1, None, "+50", "+51"),
                binding(1, None, "+52", "+53"),
            ])
            .expect("insert");
        let (calls, talk) = (ids[0], ids[1]);
        // max_calls 2 counts reserved calls: a third waits for one to go.
        assert_eq!(reserve(s, (calls, "i", "i-1"), 2, 0), Ok(0));
        assert_eq!(reserve(s, (calls, "i", "i-2"), 2, 0), Ok(0));
        assert_eq!(
            reserve(s, (calls, "i", "i-3"), 2, 0),
            Err(Refusal::CallsUsedUp),
            "two live"
        );
        let end = |hold: &str, talk: u64, id| Settle {
            id,
            hold: Some(hold.into()),
            talk,
            answered: None,
        };
        s.settle_holds(&[end("i-2", 0, calls)]).expect("settle");
        assert_eq!(reserve(s, (calls, "i", "i-3"), 2, 0), Ok(0));
        // The answer makes no round trip: the end counts the reserved use
        // as used, on the answer's day, once.
        let answered = Settle {
            answered: Some(Answered {
                today: 20_002,
                at: 900,
            }),
            ..end("i-1", 30, calls)
        };
        s.settle_holds(&[answered.clone(), end("i-3", 0, calls)])
            .expect("settle");
        s.settle_holds(&[answered]).expect("settled twice");
        let b = s.get(calls).expect("get").expect("there");
        let u = &b.usage;
        assert_eq!(
            (
                u.calls_used,
                u.talk_secs_used,
                u.day,
                u.day_calls,
                u.last_call_at
            ),
            (1, 30, 20_002, 1, Some(900))
        );
        // The daily count (1 of 1 on day 20,002) refuses on that day and
        // starts again on the next.
        let daily = |today| Reserve {
            id: calls,
            limits: Counted {
                max_calls: 0,
                max_per_day: 1,
                today,
                budget: 0,
            },
            at: 950,
            hold: Some(format!("d-{today}")),
            instance: "i".into(),
            want: 10,
        };
        assert_eq!(
            s.reserve(&daily(20_002)).expect("reserve"),
            Err(Refusal::DailyCallsUsedUp)
        );
        assert_eq!(s.reserve(&daily(20_003)).expect("reserve"), Ok(0));
        s.settle_holds(&[end("d-20003", 0, calls)]).expect("settle");
        assert_eq!(reserve(s, (calls, "i", "i-4"), 2, 0), Ok(0), "one left");
        assert_eq!(
            reserve(s, (calls, "i", "i-5"), 2, 0),
            Err(Refusal::CallsUsedUp)
        );

        // A budget of 15 s leased in chunks of 10: never more than is left.
        assert_eq!(reserve(s, (talk, "i", "t-a"), 0, 15), Ok(10));
        assert_eq!(reserve(s, (talk, "i", "t-b"), 0, 15), Ok(5));
        assert_eq!(
            reserve(s, (talk, "i", "t-c"), 0, 15),
            Err(Refusal::TalkTimeUsedUp),
            "all leased"
        );
        assert_eq!(s.lease(talk, "t-a", 15, 10).expect("lease"), 0);
        s.settle_holds(&[end("t-b", 2, talk)]).expect("settle");
        assert_eq!(s.lease(talk, "t-a", 15, 10).expect("lease"), 3);
        s.settle_holds(&[end("t-a", 13, talk)]).expect("settle");
        // Settled again (its node was cut off and recovered meanwhile):
        // nothing booked twice.
        s.settle_holds(&[end("t-a", 13, talk)]).expect("settle");
        let b = s.get(talk).expect("get").expect("there");
        assert_eq!(b.usage.talk_secs_used, 15);
        assert_eq!(
            reserve(s, (talk, "i", "t-d"), 0, 15),
            Err(Refusal::TalkTimeUsedUp),
            "spent"
        );
        // With calls to spare, the budget is what refuses; a binding gone is
        // unknown.
        assert_eq!(
            reserve(s, (talk, "i", "t-e"), 100, 15),
            Err(Refusal::TalkTimeUsedUp)
        );
        assert_eq!(
            reserve(s, (9_999, "i", "t-f"), 1, 0),
            Err(Refusal::UnknownNumber)
        );

        // A dead instance's holds are given back; a live node's are not.
        s.hold_node(("n1", ""), "alive", 9_000_000, 0, true)
            .expect("node");
        assert_eq!(reserve(s, (calls, "alive", "alive-1"), 3, 0), Ok(0));
        assert_eq!(
            reserve(s, (calls, "dead", "dead-1"), 3, 0),
            Err(Refusal::CallsUsedUp)
        );
        s.settle_holds(&[end("i-4", 0, calls)]).expect("settle");
        assert_eq!(reserve(s, (calls, "dead", "dead-1"), 3, 0), Ok(0));
        assert_eq!(
            reserve(s, (calls, "i", "i-6"), 3, 0),
            Err(Refusal::CallsUsedUp),
            "3 of 3"
        );
        let gone = s
            .release_dead_holds(&|i| i == "i", 5_000_000)
            .expect("release");
        assert_eq!(gone, 1, "only the dead instance's hold");
        // Its node may have answered it: it counts as used.
        let b = s.get(calls).expect("get").expect("there");
        assert_eq!(b.usage.calls_used, 2);
        assert_eq!(
            reserve(s, (calls, "i", "i-6"), 3, 0),
            Err(Refusal::CallsUsedUp),
            "2 used and alive-1"
        );
        // Leave nothing behind for the reopen check of `both`.
        s.settle_holds(&[end("alive-1", 0, calls)]).expect("settle");
        assert_eq!(reserve(s, (calls, "i", "i-6"), 3, 0), Ok(0));
        s.settle_holds(&[end("i-6", 0, calls)]).expect("settle");
    });
}

#[test]
fn units_of_work_commit_whole_or_not_at_all() {
    both(|s| {
        let r: Result<(), StoreError> = s.atomically(|s| {
            s.insert(&[binding(1, None, "+9", "+2")])?;
            s.atomically(|s| {
                s.add_tenant("inner", 1)?;
                Ok::<_, StoreError>(())
            })?;
            Err(StoreError::RolledBack)
        });
        assert!(r.is_err());
        assert!(s.load_all().expect("load").is_empty());
        assert_eq!(s.tenant_by_name("inner").expect("tenant"), None);
        let inner: Result<(), StoreError> = s.atomically(|s| {
            s.add_tenant("kept", 1)?;
            let _ = s.atomically(|s| {
                s.add_tenant("dropped", 1)?;
                Err::<(), _>(StoreError::RolledBack)
            });
            Ok(())
        });
        assert!(inner.is_ok());
        assert!(s.tenant_by_name("kept").expect("tenant").is_some());
        assert_eq!(s.tenant_by_name("dropped").expect("tenant"), None);
        s.insert(&[binding(1, None, "+9", "+2")]).expect("insert");
    });
}

#[test]
fn events_webhooks_records_and_changes() {
    both(|s| {
        s.set_webhook(4, "https://example.com/h", "sec", true)
            .expect("hook");
        let e = |at| NewEvent {
            tenant: 4,
            kind: "call.answered",
            binding: Some(11),
            data: serde_json::json!({ "x": "+9" }),
            at,
        };
        // The database's webhook counts even where the caller's view of
        // who has one is behind (another node set it a moment ago).
        let bodies = s
            .insert_events(&[e(10), e(20)], &|_| false)
            .expect("events");
        assert!(bodies[1].1.contains("\"seq\":2"), "{}", bodies[1].1);
        assert_eq!(s.due_tenants(20).expect("due"), [4]);
        let due = s.due_events(4, 20, 10).expect("due");
        assert_eq!(due.len(), 2);
        assert!(due[0].masked);
        s.record_attempt(4, due[0].id, &Attempt::Delivered, 30, 1_000)
            .expect("delivered");
        let disabled = s
            .record_attempt(4, due[1].id, &Attempt::Retry(40, "503".into()), 30, 0)
            .expect("retry");
        assert!(disabled, "failing for longer than allowed disables it");
        assert_eq!(s.webhook_health().expect("health"), (1, 0));
        let pending = s.deliveries(4, false, 10).expect("deliveries");
        assert_eq!((pending.len(), pending[0].attempts), (1, 1));
        s.record_attempt(4, due[1].id, &Attempt::Failed("gone".into()), 50, 1_000)
            .expect("failed");
        let failed = s.deliveries(4, true, 10).expect("failed");
        assert_eq!(failed[0].last_error.as_deref(), Some("gone"));
        assert!(s.redeliver(4, &failed[0].event_id, 60).expect("redeliver"));
        assert!(s
            .webhook(4)
            .expect("hook")
            .expect("there")
            .disabled_at
            .is_some());
        assert!(s.delete_webhook(4).expect("delete"));
        assert_eq!(s.webhook_tenants().expect("tenants"), Vec::<i64>::new());

        let rec = |result| CallRecord {
            tenant: 4,
            binding: Some(11),
            caller: "+1".into(),
            x: "+9".into(),
            invite_at: 1_000,
            duration_secs: 7,
            result,
            reason: "ok".into(),
            announced: true,
            ..Default::default()
        };
        s.insert_calls(&[rec(200), rec(486)]).expect("records");
        let (calls, next) = s
            .calls(
                4,
                &CallFilter {
                    limit: 10,
                    result: Some(486),
                    number: Some("+9".into()),
                    ..Default::default()
                },
            )
            .expect("calls");
        assert_eq!((calls.len(), next), (1, None));
        assert!(calls[0].announced && calls[0].duration_secs == 7);
        assert!(s.purge_calls(1_001).expect("purge") >= 2);

        s.log_change(&Change::BindingsAdded(3, 5)).expect("change");
        s.log_change(&Change::Accounts).expect("change");
        let last = s.last_change().expect("last");
        let since = s.changes_since(last - 1).expect("since");
        assert_eq!(
            since,
            [(last, Change::Accounts, true)],
            "logged by this process"
        );
        s.insert(&[binding(1, None, "+9", "+2")]).expect("insert");
    });
}

#[test]
fn live_calls_accounts_and_contacts() {
    both(|s| {
        let call = |instance: &str| Checkpoint {
            instance: instance.into(),
            at: 10_000,
            rows: vec![LiveRow::New {
                key: format!("{instance}-1"),
                record: Box::new(CallRecord {
                    caller: "+1".into(),
                    x: "+9".into(),
                    invite_at: 1_000,
                    answer_at: Some(2_000),
                    ..Default::default()
                }),
                lease: Some(5),
            }],
        };
        s.save_checkpoint(&call("dead")).expect("save");
        s.save_checkpoint(&call("draining")).expect("save");
        assert_eq!(
            s.recover_live(&|_| false, 9_000).expect("fresh"),
            0,
            "a heartbeat after fresh_since is a node alive elsewhere"
        );
        assert_eq!(
            s.recover_live(&|i| i == "draining", i64::MAX)
                .expect("recover"),
            1
        );
        let (calls, _) = s
            .calls(
                0,
                &CallFilter {
                    limit: 10,
                    ..Default::default()
                },
            )
            .expect("records");
        assert_eq!(calls[0].duration_secs, 5, "the lease caps the talk");
        s.end_live(&["draining-1".into()]).expect("end");
        assert_eq!(s.recover_live(&|_| false, i64::MAX).expect("instance"), 0);
        assert!(s
            .hold_node(("a", "10.0.0.1:5060"), "i1", 1_000, 0, false)
            .expect("free name"));
        assert!(s
            .hold_node(("a", "10.0.0.1:5060"), "i1", 2_000, 0, false)
            .expect("its own"));
        assert!(!s
            .hold_node(("a", "10.0.0.2:5060"), "i2", 2_500, 1_500, false)
            .expect("held and fresh"));
        assert!(s
            .hold_node(("a", "10.0.0.2:5060"), "i2", 9_000, 8_000, false)
            .expect("held but stale"));
        assert!(s
            .hold_node(("a", "10.0.0.3:5060"), "i3", 9_100, 0, true)
            .expect("taken over"));
        assert!(!s
            .hold_node(("a", "10.0.0.2:5060"), "i2", 9_200, 0, false)
            .expect("lost"));
        // Where the nodes with fresh leases are reached: the holder's.
        s.hold_node(("b", "10.0.0.4:5060"), "i4", 5_000, 0, false)
            .expect("b");
        assert_eq!(
            s.node_addresses(9_000).expect("addresses"),
            ["10.0.0.3:5060"]
        );
        assert_eq!(s.node_addresses(0).expect("all").len(), 2);

        let acct = AccountRow {
            name: "alice".into(),
            tenant: 2,
            realm: "sipmask".into(),
            ha1_md5: "m".into(),
            ha1_sha256: "s".into(),
            created_at: 1,
            uid: 7,
        };
        assert!(s.add_account(&acct).expect("add"));
        assert!(!s.add_account(&acct).expect("unique"));
        let contact = ContactRow {
            uri: "sip:alice@10.0.0.1".into(),
            transport: "UDP".into(),
            addr: "10.0.0.1:5060".into(),
            expires_ms: 50_000,
            call_id: "c".into(),
            cseq: 3,
            since_ms: 1,
            path: "<sip:edge;lr>".into(),
        };
        s.save_contacts("alice", std::slice::from_ref(&contact))
            .expect("contacts");
        s.save_contacts("nobody", std::slice::from_ref(&contact))
            .expect("no account");
        assert_eq!(
            s.contacts(0).expect("contacts"),
            [("alice".into(), contact.clone())]
        );
        // One account's contacts by its uid (another node took a change).
        assert_eq!(
            s.contacts_of(7).expect("contacts of"),
            Some(("alice".into(), vec![contact]))
        );
        assert_eq!(s.contacts_of(8).expect("contacts of"), None);
        assert!(s
            .set_password(2, "alice", "r", "m2", "s2")
            .expect("password"));
        assert_eq!(s.accounts(Some(2)).expect("accounts")[0].ha1_md5, "m2");
        assert_eq!(s.account_tenant("alice").expect("tenant"), Some(2));
        assert!(s.remove_account(2, "alice").expect("remove"));
        assert!(s.contacts(0).expect("contacts").is_empty());
        s.insert(&[binding(1, None, "+9", "+2")]).expect("insert");
    });
}

#[test]
fn flow_users_teams_agents_and_acquisitions() {
    both(|s| {
        let u = s
            .add_user(5, &n("+1"), "19000000001", Some("ext"), 10)
            .expect("user");
        assert!(s.add_user(5, &n("+1"), "19000000002", None, 10).is_err());
        let found = s
            .live_user(5, UserKey::Ext("ext"))
            .expect("user")
            .expect("there");
        assert_eq!((found.id, found.soft.as_str()), (u, "19000000001"));
        s.touch_users(&[u], 20).expect("touch");
        assert_eq!(s.idle_users(5, 21, 10).expect("idle").len(), 1);
        assert!(s.recycle_user(5, u, 30).expect("recycle"));
        assert!(s.soft_resting(5, "19000000001", 25).expect("resting"));
        assert!(!s.soft_resting(5, "19000000001", 31).expect("rested"));
        assert!(s
            .live_user(5, UserKey::Soft("19000000001"))
            .expect("user")
            .is_none());

        let team = s
            .add_team(5, "sales", false, 1)
            .expect("team")
            .expect("new");
        assert_eq!(s.add_team(5, "sales", true, 1).expect("team"), None);
        assert!(s.set_team_shares(5, team, true).expect("shares"));
        assert!(s.team(5, team).expect("team").expect("there").shares);
        let agent = s
            .add_agent(5, &n("+3"), team, Some("Ann"), 1)
            .expect("agent")
            .expect("new");
        assert_eq!(s.agents(5, Some(team)).expect("agents").len(), 1);
        s.add_interactions(
            5,
            &[NewInteraction {
                user: u,
                agent,
                team,
                kind: "chat".into(),
                at: 40,
            }],
        )
        .expect("interactions");
        assert!(s
            .interacted(5, u, sipmask::store::flow::Interacted::Team(team), 40)
            .expect("interacted"));
        assert!(s.push_due(u, agent, 0, 50).expect("first push"));
        assert!(!s.push_due(u, agent, 0, 60).expect("inside the window"));
        s.set_acquired(agent, u, Some(77)).expect("acquired");
        assert_eq!(s.acquired(agent, u).expect("acquired"), Some(77));
        assert_eq!(
            s.pair_of_binding(77).expect("pair"),
            Some((5, agent, team, u))
        );
        let rec = AcquisitionRecord {
            tenant: 5,
            agent_number: "+3".into(),
            agent: Some(agent),
            soft: "19000000001".into(),
            result: "granted".into(),
            reason: "ok".into(),
            at: 70,
            ..Default::default()
        };
        s.add_acquisition(&rec).expect("acquisition");
        let f = AcquisitionFilter {
            limit: 10,
            agent: Some(agent),
            ..Default::default()
        };
        assert_eq!(s.acquisitions(5, &f).expect("list").len(), 1);
        s.set_flow_settings(5, "{}").expect("settings");
        s.set_flow_settings(5, "{\"a\":1}").expect("settings");
        assert_eq!(
            s.flow_settings(5).expect("settings").as_deref(),
            Some("{\"a\":1}")
        );
        assert!(s.remove_agent(5, agent).expect("remove"));
        s.insert(&[binding(1, None, "+9", "+2")]).expect("insert");
    });
}

#[test]
fn a_store_cut_from_its_database_fails_then_goes_on_by_itself() {
    let db = TempDb::new();
    let relay = Relay::to("127.0.0.1:5432");
    let through = relay.url(&db.url);
    assert_ne!(through, db.url, "the test server is 127.0.0.1:5432");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = open_url(&through, dir.path()).expect("open through the relay");
    s.insert(&[binding(1, None, "+9", "+2")]).expect("insert");
    relay.cut();
    let started = std::time::Instant::now();
    assert!(
        s.load_all().is_err(),
        "a cut database is an error, not an answer"
    );
    assert!(s.insert(&[binding(1, None, "+8", "+2")]).is_err());
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "said within the connect timeout"
    );
    relay.heal();
    assert_eq!(s.load_all().expect("back by itself").len(), 1);
    s.insert(&[binding(1, None, "+8", "+2")])
        .expect("writes again");
}

#[test]
fn a_postgresql_url_opens_postgresql_and_a_server_that_is_not_there_is_said() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = TempDb::new();
    let pg = open_url(&db.url, dir.path());
    assert!(pg.is_ok(), "{:?}", pg.err());
    assert!(
        !dir.path().join("sipmask.db").exists(),
        "no SQLite file beside it"
    );
    // Nothing listens on port 1: the database is out of reach, said.
    let err = open_url("postgresql://postgres@127.0.0.1:1/x", dir.path()).err();
    assert!(matches!(err, Some(StoreError::Unavailable(_))), "{err:?}");
}
