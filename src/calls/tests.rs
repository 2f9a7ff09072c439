//! The masking policy on its own: real bindings in a real table and a
//! SQLite store in a temp dir, INVITEs as parsed bytes, milestones told by
//! hand, and what the store holds afterwards.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Masking, MaskingConfig};
use crate::b2bua::policy::{Decision, EndReason, Ending, Limit, Milestone, Offer, Policy};
use crate::bindings::{BindingTable, Conditions, Kind, Normaliser, Number, OPERATOR};
use crate::sip::{Msg, Peer, Target, Transport};
use crate::store::{CallFilter, NewBinding, Writer};
use crate::time::Now;

const A: &str = "+8613800000000";
const B: &str = "+8613900000000";
const X: &str = "+8617000000000";

struct Rig {
    policy: Masking,
    writer: Writer,
    dir: tempfile::TempDir,
    now: Now,
}

fn n(s: &str) -> Number {
    Number::from_normalised(s.to_string())
}

/// A section of the embedded default config, read as the config reads it
/// (`config` assembles every module's section, so it is above this one).
fn section<T: serde::de::DeserializeOwned>(name: &str) -> T {
    let all: toml::Table = include_str!("../../config/sipmask.toml")
        .parse()
        .expect("embedded config");
    all.get(name)
        .cloned()
        .expect("the section")
        .try_into()
        .expect("a valid section")
}

/// A policy over one AXB binding (A, X, B) with `conditions`.
fn rig(conditions: Conditions) -> Rig {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = crate::store::open(dir.path()).expect("store");
    store
        .insert(&[NewBinding {
            tenant: OPERATOR,
            kind: Kind::Cli,
            a: Some(n(A)),
            x: n(X),
            b: n(B),
            conditions,
            created_at: 1_795_430_000,
        }])
        .expect("insert");
    let table = Arc::new(BindingTable::new(
        section::<crate::bindings::config::DefaultsConfig>("defaults").binding_defaults(),
    ));
    for b in store.load_all().expect("load") {
        table.insert(b).expect("table");
    }
    let hub = crate::events::Hub::new(Vec::new());
    let (writer, _thread) = Writer::start(store, 0, hub.clone()).expect("writer");
    let policy = Masking::new(
        MaskingConfig {
            media: crate::b2bua::Media::Mask,
            announce: false,
            announcement: false,
            warning: None,
            trunks: vec![super::trunks::Trunk {
                name: "trunk".into(),
                target: Target::parse("127.0.0.3:5060").expect("trunk"),
                prefixes: Vec::new(),
                priority: 0,
                weight: 100,
                auth: None,
                asserted_caller: true,
                options: None,
                options_timeout: None,
                down_after: 1,
                setup: None,
                outbound_proxy: true,
            }],
            refusals: section("refusals"),
            normaliser: Normaliser {
                default_country_code: "86".into(),
            },
            no_answer: Duration::from_secs(30),
            instance: "test".into(),
            trusted: Vec::new(),
            asserted_caller: true,
            pike: super::pike::PikeConfig {
                per_sec: 0.0,
                burst: 0.0,
                ban: Duration::ZERO,
            },
            shared_store: false,
            nodes: Default::default(),
            store_up: Arc::new(std::sync::atomic::AtomicBool::new(true)),
            offline_refuse: false,
        },
        table,
        writer.clone(),
        hub,
        crate::registrar::Registrar::new(
            crate::registrar::RegistrarConfig::from_section(&section("registrar")),
            Arc::new(crate::registrar::Directory::default()),
            None,
        ),
    );
    Rig {
        policy,
        writer,
        dir,
        now: Now {
            mono: Instant::now(),
            unix_ms: 1_795_430_252_000,
        },
    }
}

fn invite(from: &str, to: &str) -> Msg {
    let raw = format!(
        "INVITE sip:{to}@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bKp1\r\n\
         Max-Forwards: 70\r\nFrom: <sip:{from}@127.0.0.2>;tag=at\r\nTo: <sip:{to}@127.0.0.1>\r\n\
         Call-ID: p-call\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    );
    Msg::parse(raw.as_bytes(), true).expect("parses")
}

/// What the store holds once the writer is done: the binding's (uses,
/// talk seconds) and the operator's call records.
fn stored(r: &Rig) -> ((u32, u64), Vec<crate::store::CallRecord>) {
    r.writer.flush();
    let mut store = crate::store::open(r.dir.path()).expect("store");
    let u = store.load_all().expect("load")[0].usage;
    let f = CallFilter {
        limit: 10,
        ..Default::default()
    };
    let (records, _) = store.calls(OPERATOR, &f).expect("records");
    ((u.calls_used, u.talk_secs_used), records)
}

fn decide(r: &mut Rig, from: &str, to: &str) -> Decision<super::CallState> {
    let m = invite(from, to);
    let offer = Offer {
        id: 7,
        request: &m,
        source: Peer {
            transport: Transport::Udp,
            addr: "127.0.0.2:5060".parse().expect("addr"),
        },
        account: None,
    };
    r.policy.decide(&offer, r.now)
}

#[test]
fn an_admitted_call_is_planned_to_the_real_party_through_the_trunk_showing_x() {
    let mut r = rig(Conditions {
        max_call_secs: Some(60),
        ..Default::default()
    });
    let Decision::Bridge(plan, state) = decide(&mut r, "13800000000", "17000000000") else {
        panic!("refused");
    };
    assert_eq!(plan.targets[0].uri, format!("sip:{B}@127.0.0.3:5060"));
    assert_eq!(plan.targets[0].peer.addr.to_string(), "127.0.0.3:5060");
    assert_eq!(plan.from_user, X);
    assert_eq!(plan.no_answer, Duration::from_secs(30));
    assert_eq!(plan.limit, Some(Duration::from_secs(60)));
    assert_eq!(state.callee, n(B));
    assert_eq!(state.record.direction.as_deref(), Some("a_to_b"));
}

#[test]
fn refusals_carry_the_configured_status_and_are_recorded() {
    let mut r = rig(Conditions::default());
    let Decision::Refuse { status, why, .. } = decide(&mut r, "13700000000", "17000000000") else {
        panic!("a stranger was admitted");
    };
    assert_eq!((status, why), (403, "caller_not_allowed"));
    let Decision::Refuse { status, .. } = decide(&mut r, "13800000000", "17099999999") else {
        panic!("an unknown number was admitted");
    };
    assert_eq!(status, 404);
    let (_, records) = stored(&r);
    // The stranger's refusal is on X, which the operator owns; the unknown
    // number belongs to nobody's records.
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].result, 403);
}

#[test]
fn a_confirmed_call_consumes_a_use_and_books_its_talk_time_with_its_record() {
    let mut r = rig(Conditions::default());
    let Decision::Bridge(_, mut call) = decide(&mut r, "13800000000", "17000000000") else {
        panic!("refused");
    };
    let now = r.now;
    for m in [
        Milestone::Offered,
        Milestone::Ringing { status: 180 },
        Milestone::Answered,
        Milestone::Confirmed,
        Milestone::Ended(Ending {
            reason: EndReason::CalleeHungUp,
            status: 200,
            talk: Some(Duration::from_secs(42)),
        }),
    ] {
        r.policy.milestone(7, &mut call, m, now);
    }
    let (usage, records) = stored(&r);
    assert_eq!(usage, (1, 42));
    let rec = &records[0];
    assert_eq!((rec.result, rec.duration_secs), (200, 42));
    assert_eq!(rec.ended_by.as_deref(), Some("callee"));
    assert_eq!(rec.reason, "callee hung up");
    assert_eq!(r.policy.stats().answered, 1);
}

#[test]
fn an_answer_never_confirmed_costs_nothing() {
    let mut r = rig(Conditions::default());
    let Decision::Bridge(_, mut call) = decide(&mut r, "13800000000", "17000000000") else {
        panic!("refused");
    };
    let now = r.now;
    r.policy.milestone(7, &mut call, Milestone::Answered, now);
    let end = Ending {
        reason: EndReason::NoAck,
        status: 408,
        talk: None,
    };
    r.policy.milestone(7, &mut call, Milestone::Ended(end), now);
    let (usage, records) = stored(&r);
    assert_eq!(usage, (0, 0));
    assert_eq!((records[0].result, records[0].duration_secs), (408, 0));
    assert_eq!(r.policy.stats().failed, 1);
}

#[test]
fn a_talk_budget_is_leased_and_its_end_ends_the_call() {
    let mut r = rig(Conditions {
        talk_budget_secs: Some(15),
        ..Default::default()
    });
    let Decision::Bridge(plan, mut call) = decide(&mut r, "13800000000", "17000000000") else {
        panic!("refused");
    };
    // A first lease of at most 10 s, then the rest, then nothing.
    assert_eq!(plan.limit, Some(Duration::from_secs(10)));
    let now = r.now;
    let held = Duration::from_secs(10);
    assert_eq!(
        r.policy.limit(7, &mut call, held, now),
        Limit::Until(Duration::from_secs(15))
    );
    assert_eq!(
        r.policy.limit(7, &mut call, Duration::from_secs(15), now),
        Limit::End(EndReason::TalkTimeUsedUp)
    );
}

#[test]
fn the_lookup_time_and_results_are_in_the_metrics() {
    let mut r = rig(Conditions::default());
    decide(&mut r, "13700000000", "17000000000");
    let mut out = String::new();
    r.policy.metrics(&mut out);
    assert!(
        out.contains("sipmask_calls_total{result=\"refused\"} 1"),
        "{out}"
    );
    assert!(
        out.contains("sipmask_binding_lookup_seconds_count 1"),
        "{out}"
    );
}
