//! A call's hold on its binding in a database that nodes share: the
//! use it reserves at the INVITE (so that nobody rings for a call over
//! `max_calls`), the talk time leased to it in chunks, and the settling at
//! its end. One conditional statement decides each hold, so N nodes never
//! overrun a limit between them; a dead instance's holds are given back
//! by the node that settles its calls.

use super::StoreError;
use crate::bindings::{BindingId, Counted, Refusal};

/// A new call's hold: a use reserved, and the first lease of talk time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reserve {
    /// Which binding.
    pub id: BindingId,
    /// Its counted limits in force, and its local day at the INVITE.
    pub limits: Counted,
    /// Unix seconds of the INVITE.
    pub at: i64,
    /// The call's hold (its checkpoint key), if it makes one.
    pub hold: Option<String>,
    /// The instance that holds the call.
    pub instance: String,
    /// The lease asked for (at most what is left of the budget is given).
    pub want: u64,
}

/// A hold's end, or the talk of a call that made none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settle {
    /// Which binding.
    pub id: BindingId,
    /// The call's hold, if it made one.
    pub hold: Option<String>,
    /// Seconds talked, booked against the budget.
    pub talk: u64,
    /// When the call was answered (and acknowledged): its use is counted.
    pub answered: Option<Answered>,
}

/// When a settled call was answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Answered {
    /// The binding's local day of the answer.
    pub today: i64,
    /// Unix seconds of the answer.
    pub at: i64,
}

/// Holds in a database that nodes share.
pub trait HoldStore {
    /// Reserves a use of `r.id` if `max_calls` and
    /// `max_calls_per_day` (counting answered and reserved calls) and the
    /// talk budget (counting booked and leased time) allow one more, and
    /// leases it `min(want, what is left)` of talk time: one conditional
    /// statement. The seconds leased (0 without a budget), or which limit
    /// is reached (`UnknownNumber`: the binding is gone).
    fn reserve(&mut self, r: &Reserve) -> Result<Result<u64, Refusal>, StoreError>;

    /// Leases hold `hold` on binding `id` up to `want` more seconds of a
    /// budget of `budget`; what was leased (0: the budget is spent).
    fn lease(
        &mut self,
        id: BindingId,
        hold: &str,
        budget: u64,
        want: u64,
    ) -> Result<u64, StoreError>;

    /// Ends holds: the reserved use counted as used if the call was
    /// answered (given back if not), the lease given back and the talk
    /// booked. A hold already gone (given back by the node that recovered a
    /// cut-off instance, which counted its use and booked its talk) books
    /// nothing again. The answer itself makes no round trip: a reserved
    /// use already counts against every limit.
    fn settle_holds(&mut self, settled: &[Settle]) -> Result<(), StoreError>;

    /// Ends every hold of instances that are not `alive` and have no node
    /// lease fresher than `fresh_since` (unix ms): each counts as a used
    /// call (its node may have answered it, and a count errs on the side of
    /// its limit), its lease given back; how many.
    fn release_dead_holds(
        &mut self,
        alive: &dyn Fn(&str) -> bool,
        fresh_since: i64,
    ) -> Result<usize, StoreError>;
}

/// The reservation's conditional update: one more live call if the
/// limits allow it, and the grant of talk time (kept in `talk_granted`, as
/// every right-hand side sees the row as it was).
pub(crate) const RESERVE: &str = "UPDATE bindings SET calls_live = calls_live + 1,
     talk_leased = talk_leased + (CASE WHEN CAST(?6 AS BIGINT) = 0 THEN 0
       WHEN CAST(?6 AS BIGINT) - talk_secs_used - talk_leased < CAST(?7 AS BIGINT)
       THEN CAST(?6 AS BIGINT) - talk_secs_used - talk_leased ELSE CAST(?7 AS BIGINT) END),
     talk_granted = (CASE WHEN CAST(?6 AS BIGINT) = 0 THEN 0
       WHEN CAST(?6 AS BIGINT) - talk_secs_used - talk_leased < CAST(?7 AS BIGINT)
       THEN CAST(?6 AS BIGINT) - talk_secs_used - talk_leased ELSE CAST(?7 AS BIGINT) END)
     WHERE id = ?1 AND (CAST(?2 AS BIGINT) = 0 OR calls_used + calls_live < CAST(?2 AS BIGINT))
     AND (CAST(?5 AS BIGINT) = 0 OR day <> CAST(?3 AS BIGINT)
       OR day_calls + calls_live < CAST(?5 AS BIGINT))
     AND (CAST(?6 AS BIGINT) = 0 OR talk_secs_used + talk_leased < CAST(?6 AS BIGINT))
     RETURNING id, talk_granted";

/// A hold recorded: key, instance, binding, unix ms, lease.
pub(crate) const INSERT_HOLD: &str =
    "INSERT INTO holds (key, instance, binding, at, answered, leased)
     VALUES (?1, ?2, ?3, ?4, 0, ?5)";

/// More talk time leased, if the budget has any left.
pub(crate) const LEASE: &str = "UPDATE bindings SET
     talk_leased = talk_leased + (CASE
       WHEN CAST(?2 AS BIGINT) - talk_secs_used - talk_leased < CAST(?3 AS BIGINT)
       THEN CAST(?2 AS BIGINT) - talk_secs_used - talk_leased ELSE CAST(?3 AS BIGINT) END),
     talk_granted = (CASE
       WHEN CAST(?2 AS BIGINT) - talk_secs_used - talk_leased < CAST(?3 AS BIGINT)
       THEN CAST(?2 AS BIGINT) - talk_secs_used - talk_leased ELSE CAST(?3 AS BIGINT) END)
     WHERE id = ?1 AND talk_secs_used + talk_leased < CAST(?2 AS BIGINT)
     RETURNING talk_granted";

/// What a hold holds, added to it.
pub(crate) const LEASE_HOLD: &str = "UPDATE holds SET leased = leased + ?2 WHERE key = ?1";

/// A hold ended: the lease it held.
pub(crate) const END_HOLD: &str = "DELETE FROM holds WHERE key = ?1 RETURNING leased";

/// What holds gave back and the talk booked: `?2` live calls ended, `?3`
/// seconds of lease, `?4` seconds talked, `?5` of the calls used (answered
/// at unix second `?6` on local day `?7`; a negative day: the binding's
/// current one).
pub(crate) const GIVE_BACK: &str = "UPDATE bindings SET
     calls_live = CASE WHEN calls_live > ?2 THEN calls_live - ?2 ELSE 0 END,
     talk_leased = CASE WHEN talk_leased > ?3 THEN talk_leased - ?3 ELSE 0 END,
     talk_secs_used = talk_secs_used + ?4,
     calls_used = calls_used + CAST(?5 AS BIGINT),
     last_call_at = CASE WHEN CAST(?5 AS BIGINT) > 0 AND (last_call_at IS NULL OR last_call_at < CAST(?6 AS BIGINT))
       THEN CAST(?6 AS BIGINT) ELSE last_call_at END,
     day_calls = CASE WHEN CAST(?5 AS BIGINT) = 0 THEN day_calls
       WHEN CAST(?7 AS BIGINT) < 0 OR day = CAST(?7 AS BIGINT) THEN day_calls + CAST(?5 AS BIGINT)
       WHEN day > CAST(?7 AS BIGINT) THEN day_calls ELSE CAST(?5 AS BIGINT) END,
     day = CASE WHEN CAST(?5 AS BIGINT) > 0 AND day < CAST(?7 AS BIGINT) THEN CAST(?7 AS BIGINT) ELSE day END
     WHERE id = ?1";

/// The parameters of [`GIVE_BACK`] for one settled call and what its
/// hold held (`None`: it made none): live calls ended, lease, talk, used,
/// answer second, day.
pub(crate) fn give_back(s: &Settle, leased: Option<i64>) -> [i64; 6] {
    let (used, at, day) = s.answered.map_or((0, 0, 0), |a| (1, a.at, a.today));
    let live = i64::from(leased.is_some());
    let talk = i64::try_from(s.talk).unwrap_or(i64::MAX);
    [live, leased.unwrap_or(0), talk, used, at, day]
}

/// The parameters of [`GIVE_BACK`] for `n` holds of a dead instance on
/// one binding, with `leased` seconds between them: each a used call (its
/// node may have answered it), counted on the binding's current day.
pub(crate) fn dead_give_back(n: i64, leased: i64) -> [i64; 6] {
    [n, leased, 0, n, 0, -1]
}

/// Instances with holds older than a node lease (`?1`, unix ms) and no
/// fresh lease of their own: a new instance reserves before its first beat.
pub(crate) const HOLDING: &str = "SELECT DISTINCT c.instance FROM holds c
     WHERE c.at * 1000 < CAST(?1 AS BIGINT)
     AND NOT EXISTS (SELECT 1 FROM nodes n WHERE n.instance = c.instance AND n.at >= ?1)";

/// A dead instance's holds, per binding: how many, leases.
pub(crate) const DEAD_HOLDS: &str = "SELECT binding,
     CAST(COUNT(*) AS BIGINT), CAST(SUM(leased) AS BIGINT)
     FROM holds WHERE instance = ?1 GROUP BY binding";

/// A dead instance's holds gone.
pub(crate) const FORGET_HOLDS: &str = "DELETE FROM holds WHERE instance = ?1";

/// A binding's counts as a refused reservation saw them: `calls_used,
/// calls_live, day, day_calls, talk_secs_used, talk_leased`.
pub(crate) const COUNTS: &str = "SELECT calls_used, calls_live, day, day_calls,
     talk_secs_used, talk_leased FROM bindings WHERE id = ?1";

/// Which limit refused `r`, from the binding's counts (`None`: it is
/// gone), tested in the order of [`RESERVE`]'s conditions. Counts read
/// before a concurrent change may show none reached: then the first limit
/// the binding sets.
pub(crate) fn refusal_of(r: &Reserve, counts: Option<[i64; 6]>) -> Refusal {
    let Some([used, live, day, day_calls, talked, leased]) = counts else {
        return Refusal::UnknownNumber;
    };
    let c = &r.limits;
    let budget = i64::try_from(c.budget).unwrap_or(i64::MAX);
    let today = if day == c.today { day_calls } else { 0 };
    if c.max_calls > 0 && used + live >= i64::from(c.max_calls) {
        Refusal::CallsUsedUp
    } else if c.max_per_day > 0 && today + live >= i64::from(c.max_per_day) {
        Refusal::DailyCallsUsedUp
    } else if budget > 0 && talked + leased >= budget {
        Refusal::TalkTimeUsedUp
    } else {
        c.refusal()
    }
}
