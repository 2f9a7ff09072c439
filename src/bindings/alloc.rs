//! Which X a new AXB pair gets: a pure, predictable rule. Candidates are the
//! tenant's pool numbers that serve neither A nor B and are not quarantined
//! for A or B; among them the least used wins, ties going to the lowest
//! number. A preferred X is taken when it is a candidate.

use std::collections::HashSet;

use super::number::Number;

/// What the pool can still give one pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Availability {
    /// Numbers in the tenant's pool.
    pub pool: usize,
    /// Pool numbers already serving A or B.
    pub serving_pair: usize,
    /// Pool numbers quarantined for A or B (and not serving them).
    pub quarantined: usize,
    /// Numbers the pair could still get.
    pub available: usize,
    /// The X an allocation would pick now.
    pub next: Option<Number>,
}

/// Why no X can be had.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Shortage {
    /// The tenant has no numbers.
    EmptyPool,
    /// Every number serves A or B, or is quarantined for them.
    Exhausted(Availability),
}

/// Counts what `pool` can give a pair and picks the next X.
/// `taken`: whether an X serves A or B; `quarantined`: X values resting for A or B;
/// `uses`: live bindings on an X.
pub fn availability(
    pool: &[Number],
    taken: impl Fn(&Number) -> bool,
    quarantined: &HashSet<Number>,
    uses: impl Fn(&Number) -> u32,
    prefer: Option<&Number>,
) -> Availability {
    let mut serving_pair = 0;
    let mut resting = 0;
    let mut best: Option<(&Number, u32)> = None;
    let mut preferred = None;
    let mut available = 0;
    for x in pool {
        if taken(x) {
            serving_pair += 1;
            continue;
        }
        if quarantined.contains(x) {
            resting += 1;
            continue;
        }
        available += 1;
        if Some(x) == prefer {
            preferred = Some(x);
        }
        let u = uses(x);
        // Pool order is number order, so `<` keeps the lowest on ties.
        if best.is_none_or(|(_, bu)| u < bu) {
            best = Some((x, u));
        }
    }
    Availability {
        pool: pool.len(),
        serving_pair,
        quarantined: resting,
        available,
        next: preferred.or(best.map(|(x, _)| x)).cloned(),
    }
}

/// Picks X for a pair, or says why none is left.
pub fn allocate(a: Availability) -> Result<Number, Shortage> {
    if a.pool == 0 {
        return Err(Shortage::EmptyPool);
    }
    match a.next.clone() {
        Some(x) => Ok(x),
        None => Err(Shortage::Exhausted(a)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Number {
        Number::from_normalised(s.into())
    }

    fn set(v: &[&str]) -> HashSet<Number> {
        v.iter().map(|s| n(s)).collect()
    }

    #[test]
    fn least_used_then_lowest_number_wins() {
        let pool = vec![n("+1"), n("+2"), n("+3")];
        let uses = |x: &Number| if x.as_str() == "+1" { 5 } else { 1 };
        let a = availability(&pool, |_| false, &set(&[]), uses, None);
        assert_eq!(a.next, Some(n("+2")));
        assert_eq!(a.available, 3);
    }

    #[test]
    fn numbers_serving_the_pair_or_resting_are_skipped_and_counted() {
        let pool = vec![n("+1"), n("+2"), n("+3")];
        let a = availability(
            &pool,
            |x| set(&["+1"]).contains(x),
            &set(&["+2"]),
            |_| 0,
            None,
        );
        assert_eq!((a.serving_pair, a.quarantined, a.available), (1, 1, 1));
        assert_eq!(allocate(a), Ok(n("+3")));
    }

    #[test]
    fn a_preferred_candidate_is_taken() {
        let pool = vec![n("+1"), n("+2")];
        let a = availability(&pool, |_| false, &set(&[]), |_| 0, Some(&n("+2")));
        assert_eq!(a.next, Some(n("+2")));
    }

    #[test]
    fn empty_and_exhausted_pools_say_why() {
        assert_eq!(
            allocate(availability(&[], |_| false, &set(&[]), |_| 0, None)),
            Err(Shortage::EmptyPool)
        );
        let pool = vec![n("+1")];
        assert!(matches!(
            allocate(availability(
                &pool,
                |x| set(&["+1"]).contains(x),
                &set(&[]),
                |_| 0,
                None
            )),
            Err(Shortage::Exhausted(Availability {
                available: 0,
                serving_pair: 1,
                ..
            }))
        ));
    }
}
