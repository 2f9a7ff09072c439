//! Which X a new AXB pair gets: a pure, predictable rule. Candidates are the
//! tenant's pool numbers that serve neither A nor B and are not quarantined
//! for A or B; among them the least used wins, ties going to the lowest
//! number. A preferred X is taken when it is a candidate.

use std::collections::{BTreeSet, HashMap, HashSet};

use super::number::Number;

/// Picks X for the pairs of one request in turn without looking at every
/// pool number for each (issue 32): the pool ordered by use, then by
/// number, and each pick counted at once so the next pair sees it. The
/// rule is [`availability`]'s; that full count is only needed to say why
/// nothing is left.
pub struct Picker<'a> {
    pool: &'a [Number],
    at: HashMap<&'a Number, usize>,
    uses: Vec<u32>,
    order: BTreeSet<(u32, usize)>,
}

impl<'a> Picker<'a> {
    /// `pool` in number order; `uses`: live bindings on an X.
    pub fn new(pool: &'a [Number], uses: impl Fn(&Number) -> u32) -> Picker<'a> {
        let uses: Vec<u32> = pool.iter().map(uses).collect();
        Picker {
            pool,
            at: pool.iter().enumerate().map(|(i, x)| (x, i)).collect(),
            order: uses.iter().enumerate().map(|(i, &u)| (u, i)).collect(),
            uses,
        }
    }

    /// The least-used X that serves neither party (`taken`) and does not
    /// rest for them (`resting`), `prefer` if it is one; counted as used.
    pub fn pick(
        &mut self,
        taken: impl Fn(&Number) -> bool,
        resting: &HashSet<Number>,
        prefer: Option<&Number>,
    ) -> Option<Number> {
        let pool = self.pool;
        let free = |i: &usize| !taken(&pool[*i]) && !resting.contains(&pool[*i]);
        let i = prefer
            .and_then(|p| self.at.get(p).copied())
            .filter(free)
            .or_else(|| self.order.iter().map(|&(_, i)| i).find(free))?;
        self.count_at(i);
        Some(pool[i].clone())
    }

    /// Counts a use of `x` chosen by the caller.
    pub fn count(&mut self, x: &Number) {
        if let Some(&i) = self.at.get(x) {
            self.count_at(i);
        }
    }

    fn count_at(&mut self, i: usize) {
        self.order.remove(&(self.uses[i], i));
        self.uses[i] += 1;
        self.order.insert((self.uses[i], i));
    }
}

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
    fn the_picker_follows_the_rule_and_counts_its_picks() {
        let pool = vec![n("+1"), n("+2"), n("+3"), n("+4")];
        let uses = |x: &Number| match x.as_str() {
            "+1" => 5,
            "+4" => 2,
            _ => 1,
        };
        let mut p = Picker::new(&pool, uses);
        let none = set(&[]);
        // Ties go to the lowest number; a pick counts at once.
        assert_eq!(p.pick(|_| false, &none, None), Some(n("+2")));
        assert_eq!(p.pick(|_| false, &none, None), Some(n("+3")));
        // Taken and resting numbers are passed over.
        let taken = |x: &Number| x.as_str() == "+2";
        assert_eq!(p.pick(taken, &set(&["+3"]), None), Some(n("+4")));
        // A preferred number is taken when it is a candidate, else not.
        assert_eq!(p.pick(|_| false, &none, Some(&n("+1"))), Some(n("+1")));
        let all = |_: &Number| true;
        assert_eq!(p.pick(all, &none, Some(&n("+1"))), None);
        // Each pick agrees with the full count's choice.
        let mut q = Picker::new(&pool, uses);
        let mut counted: HashMap<Number, u32> = pool.iter().map(|x| (x.clone(), uses(x))).collect();
        for _ in 0..20 {
            let want = availability(&pool, |_| false, &none, |x| counted[x], None).next;
            let got = q.pick(|_| false, &none, None);
            assert_eq!(got, want);
            if let Some(x) = got {
                *counted.entry(x).or_default() += 1;
            }
        }
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
