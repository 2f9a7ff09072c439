//! The table against a plain model (a `HashMap` of bindings and a scan):
//! random inserts, removals, condition changes and lookups, from fixed
//! seeds so that a failure can be replayed, over parties of every kind
//! (phone numbers, names interned by the table, a name longer than a
//! `Number` keeps in place).

use std::collections::HashMap;

use rand::{Rng, SeedableRng};

use super::*;

fn n(s: &str) -> Number {
    Number::from_normalised(s.into())
}

/// A party from a small pool, so that clashes and reuse are frequent.
fn party(rng: &mut impl Rng) -> Number {
    match rng.random_range(0..10) {
        0..=5 => n(&format!("+861380000{:04}", rng.random_range(0..12))),
        6..=7 => n(&format!("acct-{}", rng.random_range(0..6))),
        8 => n(&format!(
            "a-rather-long-account-name-{}",
            rng.random_range(0..3)
        )),
        _ => n(&format!("{}", 1000 + rng.random_range(0..4))),
    }
}

fn x(rng: &mut impl Rng) -> Number {
    match rng.random_range(0..4) {
        0..=2 => n(&format!("+8617000000{:03}", rng.random_range(0..6))),
        _ => n(&format!("t-token{}", rng.random_range(0..3))),
    }
}

/// What the model says `insert` does with `b`.
fn clash(model: &HashMap<BindingId, Binding>, b: &Binding) -> Option<TableError> {
    let owned = model.values().any(|m| m.x == b.x && m.tenant != b.tenant);
    match &b.a {
        Some(a) if a == &b.b => Some(TableError::SameParty),
        _ if owned => Some(TableError::VirtualOwned(b.x.clone())),
        Some(a) => [a, &b.b].into_iter().find_map(|p| {
            model
                .values()
                .any(|m| m.x == b.x && m.a.is_some() && (m.a.as_ref() == Some(p) || &m.b == p))
                .then(|| TableError::PartyTaken {
                    party: p.clone(),
                    x: b.x.clone(),
                })
        }),
        None => model
            .values()
            .any(|m| m.x == b.x && m.a.is_none())
            .then(|| TableError::VirtualTaken(b.x.clone())),
    }
}

/// The binding the model routes a call from `caller` to `dialled` to.
fn route(
    model: &HashMap<BindingId, Binding>,
    caller: &Number,
    dialled: &Number,
) -> Option<BindingId> {
    let axb = model.values().find(|m| {
        &m.x == dialled && m.a.is_some() && (m.a.as_ref() == Some(caller) || &m.b == caller)
    });
    axb.or_else(|| model.values().find(|m| &m.x == dialled && m.a.is_none()))
        .map(|m| m.id)
}

#[test]
fn the_table_does_what_a_plain_model_does() {
    for seed in 0..40u64 {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let t = BindingTable::new(Defaults::default());
        let mut model: HashMap<BindingId, Binding> = HashMap::new();
        let mut next = 1;
        for step in 0..400 {
            let what = format!("seed {seed} step {step}");
            match rng.random_range(0..10) {
                0..=3 => {
                    let b = Binding {
                        id: next,
                        // Now and then another owner's, who may not share X.
                        tenant: if rng.random_bool(0.1) { 7 } else { OPERATOR },
                        kind: Kind::Cli,
                        a: rng.random_bool(0.7).then(|| party(&mut rng)),
                        x: x(&mut rng),
                        b: party(&mut rng),
                        conditions: Conditions::default(),
                        created_at: step,
                        usage: Usage::default(),
                    };
                    next += 1;
                    let want = clash(&model, &b);
                    assert_eq!(t.insert(b.clone()).err(), want, "{what}: insert {b:?}");
                    if want.is_none() {
                        model.insert(b.id, b);
                    }
                }
                4..=5 => {
                    let id = rng.random_range(1..next.max(2));
                    let got = t.remove(id);
                    assert_eq!(got, model.remove(&id), "{what}: remove {id}");
                }
                6 => {
                    let id = rng.random_range(1..next.max(2));
                    let c = Conditions {
                        max_calls: rng.random_bool(0.5).then_some(3),
                        ..Default::default()
                    };
                    let got = t.set_conditions(id, c.clone());
                    let want = model.get_mut(&id).map(|m| {
                        m.conditions = c;
                        m.clone()
                    });
                    assert_eq!(
                        got.map(|b| b.conditions),
                        want.map(|b| b.conditions),
                        "{what}"
                    );
                }
                _ => {
                    let (caller, dialled) = (party(&mut rng), x(&mut rng));
                    let on_x = model.values().filter(|m| m.x == dialled);
                    assert_eq!(t.uses_of(&dialled) as usize, on_x.clone().count(), "{what}");
                    assert_eq!(
                        t.tenant_of(&dialled),
                        on_x.map(|m| m.tenant).next(),
                        "{what}"
                    );
                    let got = t.admit(&caller, &dialled, 0).ok().map(|a| a.binding);
                    if let Some(id) = got {
                        // The reservation given back: the model counts nothing.
                        t.settle(id, false, 0);
                    }
                    match route(&model, &caller, &dialled) {
                        // A binding its conditions refuse is still the one found.
                        Some(id) if model[&id].conditions.max_calls.is_some() => {
                            assert!(got.is_none_or(|g| g == id), "{what}")
                        }
                        want => assert_eq!(got, want, "{what}: {caller:?} -> {dialled:?}"),
                    }
                    let serves = model.values().any(|m| {
                        m.x == dialled
                            && m.a.is_some()
                            && (m.a.as_ref() == Some(&caller) || m.b == caller)
                    });
                    assert_eq!(t.serves(&caller, &dialled), serves, "{what}");
                    let ident = model.values().any(|m| m.x == dialled && m.a.is_none());
                    assert_eq!(t.is_identifier(&dialled), ident, "{what}");
                }
            }
            assert_eq!(t.len(), model.len(), "{what}");
        }
        for (id, b) in &model {
            let mut got = t.get(*id).expect("there");
            got.usage = b.usage;
            assert_eq!(&got, b, "seed {seed}");
        }
    }
}

#[test]
fn the_table_says_what_it_holds_in_bytes() {
    let t = BindingTable::new(Defaults::default());
    let empty = t.bytes();
    for i in 0..10_000i64 {
        t.insert(Binding {
            id: i + 1,
            tenant: OPERATOR,
            kind: Kind::Cli,
            a: Some(n(&format!("+86130{:08}", i))),
            x: n(&format!("+86170{:08}", i % 100)),
            b: n(&format!("+86150{:08}", i)),
            conditions: Conditions::default(),
            created_at: 0,
            usage: Usage::default(),
        })
        .expect("insert");
    }
    let per = (t.bytes() - empty) / 10_000;
    // A row and its index slots: more than a row, far less than the
    // kilobyte a binding cost in maps of owned keys.
    assert!(
        (std::mem::size_of::<row::Row>()..300).contains(&per),
        "{per} bytes a binding"
    );
}
