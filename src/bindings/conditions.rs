//! Call conditions of a binding and the pure check that admits or refuses a
//! call. No clock, no lock, no socket: `now` and the usage are passed in.

use super::limits::{for_each_limit, for_each_refusal, Counts};
use super::number::Number;
pub use super::zone::Zone;

/// Which way an AXB binding may be used.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Direction {
    /// A may call B and B may call A.
    #[default]
    Both,
    /// Only A may call (B is reached).
    AToB,
    /// Only B may call (A is reached).
    BToA,
}

impl Direction {
    /// Stable name for the store and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Both => "both",
            Direction::AToB => "a_to_b",
            Direction::BToA => "b_to_a",
        }
    }

    /// Parses [`Direction::as_str`].
    pub fn parse(s: &str) -> Option<Direction> {
        match s {
            "both" => Some(Direction::Both),
            "a_to_b" => Some(Direction::AToB),
            "b_to_a" => Some(Direction::BToA),
            _ => None,
        }
    }
}

/// Generates, from the one list of limits, the conditions, their
/// defaults, the effective values and the table of [`Limit`]s.
macro_rules! conditions {
    ($($id:ident $name:ident: $ty:ty = $def:literal, $min:literal..=$max:literal,
       counts $counts:ident, refusal $refusal:ident, $doc:literal;)*) => {
        /// Conditions set on one binding. `None` means "use the configured
        /// default"; a limit of 0 means unlimited.
        #[derive(Clone, Debug, Default, PartialEq, Eq)]
        pub struct Conditions {
            /// Unix seconds before which calls are refused.
            pub not_before: Option<i64>,
            /// Unix seconds from which calls are refused.
            pub not_after: Option<i64>,
            $(#[doc = $doc] pub $name: Option<$ty>,)*
            /// Who may call an AX binding; `None` = anyone.
            pub allowed_callers: Option<Vec<Number>>,
            /// Which way an AXB binding may be used; `None` = both.
            pub direction: Option<Direction>,
            /// Record answered calls (both parties, one per channel).
            pub record: bool,
            /// Whether prompts play on this binding's calls (`None`: the
            /// config's `[media] announce`).
            pub announce: Option<bool>,
            /// Where the binding's days begin (`max_calls_per_day`);
            /// `None` = UTC.
            pub time_zone: Option<Zone>,
        }

        /// Defaults from the config, applied where a binding sets nothing.
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct Defaults {
            $(#[doc = $doc] pub $name: $ty,)*
            /// A binding without `not_after` ends this long after creation
            /// (0 = never).
            pub lifetime_secs: u64,
        }

        impl Default for Defaults {
            fn default() -> Self {
                Defaults { $($name: $def,)* lifetime_secs: 0 }
            }
        }

        /// Conditions with defaults filled in.
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct Effective {
            /// Start of validity.
            pub not_before: Option<i64>,
            /// End of validity.
            pub not_after: Option<i64>,
            $(#[doc = $doc] pub $name: $ty,)*
            /// Creation time, the start of an idle lifetime.
            pub created_at: i64,
        }

        impl Conditions {
            /// Fills in defaults; `created_at` anchors the default lifetime.
            pub fn effective(&self, d: &Defaults, created_at: i64) -> Effective {
                let lifetime_end = (d.lifetime_secs > 0)
                    .then(|| created_at.saturating_add(secs(d.lifetime_secs)));
                Effective {
                    not_before: self.not_before,
                    not_after: self.not_after.or(lifetime_end),
                    $($name: self.$name.unwrap_or(d.$name),)*
                    created_at,
                }
            }
        }

        /// Names a limit.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum LimitId {
            $(#[doc = $doc] $id,)*
        }

        impl Effective {
            /// The value of one limit (0 = unlimited).
            pub fn limit(&self, id: LimitId) -> u64 {
                match id {
                    $(LimitId::$id => u64::from(self.$name),)*
                }
            }
        }

        /// Every limit, in the order the check applies them.
        pub const LIMITS: &[Limit] = &[$(Limit {
            id: LimitId::$id,
            name: stringify!($name),
            default: $def,
            min: $min,
            max: $max,
            counts: Counts::$counts,
            refusal: refusal!($refusal),
            doc: $doc,
        },)*];
    };
}

macro_rules! refusal {
    (none) => {
        None
    };
    ($r:ident) => {
        Some(Refusal::$r)
    };
}

for_each_limit!(conditions);

/// One limit as data: what the check, the docs and the command line's help
/// need to know of it.
#[derive(Clone, Copy, Debug)]
pub struct Limit {
    /// Which field.
    pub id: LimitId,
    /// Its name in the API, the config, the store and (with dashes) on the
    /// command line.
    pub name: &'static str,
    /// Its value when neither the binding nor the config sets one.
    pub default: u64,
    /// Smallest value a binding may set.
    pub min: i64,
    /// Largest value a binding may set.
    pub max: i64,
    /// What it counts.
    pub counts: Counts,
    /// The refusal once it is reached; `None` for a cap.
    pub refusal: Option<Refusal>,
    /// What it means.
    pub doc: &'static str,
}

/// What a binding has used so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Answered calls.
    pub calls_used: u32,
    /// Calls admitted and not yet answered or failed: they hold a use.
    pub reserved: u32,
    /// Seconds talked over all ended calls.
    pub talk_secs_used: u64,
    /// Unix seconds of the last answered call.
    pub last_call_at: Option<i64>,
    /// Talk time leased to live calls and not yet booked: live calls draw
    /// on the budget through leases, so together they never spend more
    /// than is left. Not stored: a restart has no live calls.
    pub talk_leased: u64,
    /// The day (as [`day_of`] numbers it) that `day_calls` counts.
    pub day: i64,
    /// Answered calls on `day`.
    pub day_calls: u32,
}

impl Usage {
    /// Answered calls on `today`: none if the count is of another day.
    pub fn calls_on(&self, today: i64) -> u32 {
        if self.day == today {
            self.day_calls
        } else {
            0
        }
    }

    /// Counts an answered call of `today` (a new day starts from 0).
    pub fn count_on(&mut self, today: i64) {
        self.day_calls = self.calls_on(today) + 1;
        self.day = today;
    }
}

/// Seconds of talk time a live call leases at a time from a budget.
pub const LEASE_SECS: u64 = 10;

macro_rules! refusals {
    ($($id:ident $name:ident, $doc:literal;)*) => {
        /// Why a call is refused; each has its own configurable SIP status.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Refusal {
            $(#[doc = $doc] $id,)*
        }

        impl Refusal {
            /// Every refusal.
            pub const ALL: &'static [Refusal] = &[$(Refusal::$id,)*];

            /// Stable name, used in config keys and logs.
            pub fn name(self) -> &'static str {
                match self {
                    $(Refusal::$id => stringify!($name),)*
                }
            }
        }
    };
}

for_each_refusal!(refusals);

/// How the caller relates to an AXB binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Way {
    /// AX binding: no direction.
    Ax,
    /// The caller is A.
    FromA,
    /// The caller is B.
    FromB,
}

impl Way {
    /// The call's direction as call records and events name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Way::Ax => "ax",
            Way::FromA => "a_to_b",
            Way::FromB => "b_to_a",
        }
    }
}

/// What an admitted call may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grant {
    /// Longest the call may last (`max_call_secs`), 0 = no limit.
    pub max_secs: u64,
    /// Talk time leased from the budget; `None` when there is no budget.
    pub lease: Option<u64>,
}

/// Admits a call, returning what it may use, or the refusal. Allowed
/// callers and direction are checked here too.
pub fn check(
    cond: &Conditions,
    eff: &Effective,
    usage: &Usage,
    caller: &Number,
    way: Way,
    now: i64,
) -> Result<Grant, Refusal> {
    if let Some(allowed) = &cond.allowed_callers {
        if !allowed.contains(caller) {
            return Err(Refusal::CallerNotAllowed);
        }
    }
    match (cond.direction.unwrap_or_default(), way) {
        (Direction::AToB, Way::FromB) | (Direction::BToA, Way::FromA) => {
            return Err(Refusal::CallerNotAllowed)
        }
        _ => {}
    }
    if eff.not_before.is_some_and(|t| now < t) {
        return Err(Refusal::NotYetValid);
    }
    if eff.not_after.is_some_and(|t| now >= t) {
        return Err(Refusal::Expired);
    }
    let mut grant = Grant {
        max_secs: u64::from(eff.max_call_secs),
        lease: None,
    };
    for l in LIMITS {
        let limit = eff.limit(l.id);
        if limit == 0 {
            continue;
        }
        let reached = match l.counts {
            Counts::Idle => idle_end(usage, eff).is_some_and(|t| now >= t),
            Counts::Calls => u64::from(usage.calls_used + usage.reserved) >= limit,
            Counts::CallsToday => {
                let today = day_of(cond, now);
                u64::from(usage.calls_on(today) + usage.reserved) >= limit
            }
            Counts::TalkTime => match budget_left(eff, usage) {
                Some(left) if left > 0 => {
                    grant.lease = Some(lease(left, grant.max_secs, 0));
                    false
                }
                _ => true,
            },
            Counts::CallLength => false,
        };
        if let (true, Some(r)) = (reached, l.refusal) {
            return Err(r);
        }
    }
    Ok(grant)
}

/// The binding's day of `now`: days since 1970-01-01 where it lives.
pub fn day_of(cond: &Conditions, now: i64) -> i64 {
    match &cond.time_zone {
        Some(z) => z.day(now),
        None => now.div_euclid(86_400),
    }
}

/// Talk time neither booked nor leased to live calls; `None` without a
/// budget.
pub fn budget_left(eff: &Effective, usage: &Usage) -> Option<u64> {
    (eff.talk_budget_secs > 0).then(|| {
        eff.talk_budget_secs
            .saturating_sub(usage.talk_secs_used)
            .saturating_sub(usage.talk_leased)
    })
}

/// The next lease of a call that holds `held` seconds: at most
/// [`LEASE_SECS`], what is `left`, and what the call's length cap allows.
pub fn lease(left: u64, max_secs: u64, held: u64) -> u64 {
    let mut l = left.min(LEASE_SECS);
    if max_secs > 0 {
        l = l.min(max_secs.saturating_sub(held));
    }
    l
}

/// When an idle binding ends: its idle lifetime after creation or after the
/// last answered call, whichever is later.
pub fn idle_end(usage: &Usage, eff: &Effective) -> Option<i64> {
    let idle = secs(Some(eff.idle_secs).filter(|s| *s > 0)?);
    Some(
        usage
            .last_call_at
            .unwrap_or(eff.created_at)
            .max(eff.created_at)
            .saturating_add(idle),
    )
}

/// A duration as `i64` seconds, saturating: stored values may predate the
/// API's range checks.
fn secs(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(s: &str) -> Number {
        Number::from_normalised(s.into())
    }

    fn run(cond: Conditions, usage: Usage, now: i64) -> Result<u64, Refusal> {
        let eff = cond.effective(&Defaults::default(), 0);
        check(&cond, &eff, &usage, &num("+1"), Way::Ax, now).map(|g| g.lease.unwrap_or(g.max_secs))
    }

    #[test]
    fn window_is_enforced_at_both_ends() {
        let c = Conditions {
            not_before: Some(100),
            not_after: Some(200),
            ..Default::default()
        };
        assert_eq!(
            run(c.clone(), Usage::default(), 99),
            Err(Refusal::NotYetValid)
        );
        assert_eq!(run(c.clone(), Usage::default(), 100), Ok(3600));
        assert_eq!(run(c, Usage::default(), 200), Err(Refusal::Expired));
    }

    #[test]
    fn reserved_calls_count_against_the_limit() {
        let c = Conditions {
            max_calls: Some(2),
            ..Default::default()
        };
        let u = Usage {
            calls_used: 1,
            reserved: 1,
            ..Default::default()
        };
        assert_eq!(run(c, u, 0), Err(Refusal::CallsUsedUp));
    }

    #[test]
    fn talk_budget_caps_the_call_length() {
        let c = Conditions {
            talk_budget_secs: Some(100),
            max_call_secs: Some(60),
            ..Default::default()
        };
        let mut u = Usage {
            talk_secs_used: 95,
            ..Default::default()
        };
        assert_eq!(run(c.clone(), u, 0), Ok(5), "the lease is what is left");
        u.talk_secs_used = 70;
        assert_eq!(
            run(c.clone(), u, 0),
            Ok(LEASE_SECS),
            "leases come in chunks"
        );
        u.talk_secs_used = 100;
        assert_eq!(run(c, u, 0), Err(Refusal::TalkTimeUsedUp));
    }

    #[test]
    fn live_leases_count_against_the_budget() {
        let c = Conditions {
            talk_budget_secs: Some(5),
            ..Default::default()
        };
        let u = Usage {
            talk_leased: 5,
            ..Default::default()
        };
        assert_eq!(run(c, u, 0), Err(Refusal::TalkTimeUsedUp));
        assert_eq!(lease(100, 25, 20), 5, "the length cap bounds a lease");
        assert_eq!(lease(3, 0, 0), 3);
    }

    #[test]
    fn the_daily_count_starts_again_at_local_midnight() {
        let c = Conditions {
            max_calls_per_day: Some(2),
            time_zone: Some(Zone::parse("Asia/Shanghai").expect("zone")),
            ..Default::default()
        };
        // 2026-12-06T15:59:59Z: 23:59:59 in Shanghai.
        let late = 1_796_572_799;
        let mut u = Usage::default();
        u.count_on(day_of(&c, late));
        assert_eq!(run(c.clone(), u, late), Ok(3600));
        u.reserved = 1;
        assert_eq!(
            run(c.clone(), u, late),
            Err(Refusal::DailyCallsUsedUp),
            "a call in progress holds one of today's uses"
        );
        assert_eq!(
            run(c.clone(), u, late + 1),
            Ok(3600),
            "a new day in Shanghai"
        );
        let utc = Conditions {
            time_zone: None,
            ..c
        };
        let mut u = Usage::default();
        u.count_on(day_of(&utc, late));
        u.count_on(day_of(&utc, late + 1));
        assert_eq!(u.day_calls, 2, "the same day in UTC");
        assert_eq!(run(utc, u, late + 1), Err(Refusal::DailyCallsUsedUp));
    }

    #[test]
    fn only_listed_callers_pass() {
        let c = Conditions {
            allowed_callers: Some(vec![num("+2")]),
            ..Default::default()
        };
        assert_eq!(run(c, Usage::default(), 0), Err(Refusal::CallerNotAllowed));
    }

    #[test]
    fn default_lifetime_ends_validity() {
        let d = Defaults {
            lifetime_secs: 10,
            ..Default::default()
        };
        let c = Conditions::default();
        let eff = c.effective(&d, 1000);
        assert_eq!(eff.not_after, Some(1010));
        assert_eq!(
            check(&c, &eff, &Usage::default(), &num("+1"), Way::Ax, 1010),
            Err(Refusal::Expired)
        );
    }

    #[test]
    fn direction_limits_who_may_call() {
        let c = Conditions {
            direction: Some(Direction::AToB),
            ..Default::default()
        };
        let eff = c.effective(&Defaults::default(), 0);
        let u = Usage::default();
        assert!(check(&c, &eff, &u, &num("+1"), Way::FromA, 0).is_ok());
        assert_eq!(
            check(&c, &eff, &u, &num("+2"), Way::FromB, 0),
            Err(Refusal::CallerNotAllowed)
        );
    }

    #[test]
    fn idle_lifetime_restarts_with_each_answered_call() {
        let c = Conditions {
            idle_secs: Some(100),
            ..Default::default()
        };
        let eff = c.effective(&Defaults::default(), 1000);
        let mut u = Usage::default();
        assert_eq!(
            check(&c, &eff, &u, &num("+1"), Way::Ax, 1100),
            Err(Refusal::Expired)
        );
        u.last_call_at = Some(1050);
        assert!(check(&c, &eff, &u, &num("+1"), Way::Ax, 1100).is_ok());
        assert_eq!(
            check(&c, &eff, &u, &num("+1"), Way::Ax, 1150),
            Err(Refusal::Expired)
        );
    }
}
