//! What the table counts of a binding's use: reservations at admission,
//! uses at the answer (and their refunds), talk-time leases and bookings,
//! and what the shared database's count says (`counted_limits`,
//! `saturate`).

use super::BindingTable;
use crate::bindings::conditions::{day_of, Refusal, Usage, LIMITS};
use crate::bindings::limits::Counts;
use crate::bindings::BindingId;

/// A binding's counted limits in force (0: none), as a shared database
/// is asked to apply them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counted {
    /// `max_calls`.
    pub max_calls: u32,
    /// `max_calls_per_day`.
    pub max_per_day: u32,
    /// The binding's local day.
    pub today: i64,
    /// `talk_budget_secs`.
    pub budget: u64,
}

impl Counted {
    /// Which limit a refusal of the database's most likely means: the
    /// first that is set.
    pub fn refusal(&self) -> Refusal {
        if self.max_calls > 0 {
            Refusal::CallsUsedUp
        } else if self.max_per_day > 0 {
            Refusal::DailyCallsUsedUp
        } else {
            Refusal::TalkTimeUsedUp
        }
    }
}

impl BindingTable {
    /// Whether binding `id` counts its calls (a `max_calls`, its own or
    /// the default): its uses must survive a crash exactly.
    pub fn counted(&self, id: BindingId) -> bool {
        self.sets_limit(id, Counts::is_counted)
    }

    /// Whether binding `id` has a limit that nodes sharing a database
    /// count there (calls, or talk time).
    pub fn shared_count(&self, id: BindingId) -> bool {
        self.sets_limit(id, Counts::is_shared)
    }

    /// Whether binding `id` sets (or inherits) a limit whose count is
    /// `kind`.
    fn sets_limit(&self, id: BindingId, kind: fn(Counts) -> bool) -> bool {
        self.read(id, |b| {
            let eff = b.conditions().effective(&self.defaults, b.created_at);
            LIMITS.iter().any(|l| kind(l.counts) && eff.limit(l.id) > 0)
        })
        .unwrap_or(false)
    }

    /// The counted limits of binding `id` in force at `now`; `None` if
    /// it is gone.
    pub fn counted_limits(&self, id: BindingId, now: i64) -> Option<Counted> {
        self.read(id, |b| {
            let eff = b.conditions().effective(&self.defaults, b.created_at);
            Counted {
                max_calls: eff.max_calls,
                max_per_day: eff.max_calls_per_day,
                today: day_of(b.conditions(), now),
                budget: eff.talk_budget_secs,
            }
        })
    }

    /// Moves a live call's lease of talk time in this table's view from
    /// `from` to `to` seconds (the shared database granted `to`).
    pub fn relet(&self, id: BindingId, from: u64, to: u64) {
        self.write(id, |b| {
            b.usage.talk_leased = b.usage.talk_leased.saturating_sub(from) + to;
        });
    }

    /// Brings this table's view of binding `id` to its counted limits (the
    /// database said one is reached: the next callers are refused here);
    /// which refusal that is.
    pub fn saturate(&self, id: BindingId, now: i64) -> Refusal {
        self.write(id, |b| {
            let eff = b.conditions().effective(&self.defaults, b.created_at);
            let today = day_of(b.conditions(), now);
            if eff.max_calls > 0 {
                b.usage.calls_used = b.usage.calls_used.max(eff.max_calls);
                return Refusal::CallsUsedUp;
            }
            if eff.max_calls_per_day > 0 {
                b.usage.day_calls = b.usage.calls_on(today).max(eff.max_calls_per_day);
                b.usage.day = today;
            }
            Refusal::DailyCallsUsedUp
        })
        .unwrap_or(Refusal::CallsUsedUp)
    }

    /// Gives back the use of an answered call that was never confirmed
    /// (charged at its answer). Returns the new usage to persist.
    pub fn refund(&self, id: BindingId, now: i64) -> Option<Usage> {
        self.write(id, |b| {
            b.usage.calls_used = b.usage.calls_used.saturating_sub(1);
            // A call answered yesterday and refunded today gave back
            // nothing of today's count.
            if b.usage.day == day_of(b.conditions(), now) {
                b.usage.day_calls = b.usage.day_calls.saturating_sub(1);
            }
            b.usage
        })
    }

    /// Ends a reservation: an answered call consumes the use and restarts
    /// the idle lifetime. Returns the new usage so the caller can persist it;
    /// `None` if the binding is gone.
    pub fn settle(&self, id: BindingId, answered: bool, now: i64) -> Option<Usage> {
        self.write(id, |b| {
            b.usage.reserved = b.usage.reserved.saturating_sub(1);
            if answered {
                b.usage.calls_used += 1;
                b.usage.last_call_at = Some(now);
                let today = day_of(b.conditions(), now);
                b.usage.count_on(today);
            }
            b.usage
        })
    }

    /// Leases more talk time to a live call that holds `held` seconds and
    /// may last `max_secs` (0 = no cap); returns what was granted, 0 when
    /// the budget is spent (or the binding gone).
    pub fn extend_lease(&self, id: BindingId, held: u64, max_secs: u64) -> u64 {
        self.write(id, |b| {
            let eff = b.conditions().effective(&self.defaults, b.created_at);
            let Some(left) = crate::bindings::conditions::budget_left(&eff, &b.usage) else {
                // The budget was lifted meanwhile: grant the rest of the call.
                return if max_secs > 0 {
                    max_secs.saturating_sub(held)
                } else {
                    crate::bindings::conditions::LEASE_SECS
                };
            };
            let g = crate::bindings::conditions::lease(left, max_secs, held);
            b.usage.talk_leased += g;
            g
        })
        .unwrap_or(0)
    }

    /// Ends a call's lease and books the `talk` seconds it used (at most
    /// the lease, when it had one). Returns the new usage to persist.
    pub fn book_talk(&self, id: BindingId, leased: u64, talk: u64) -> Option<Usage> {
        self.write(id, |b| {
            b.usage.talk_leased = b.usage.talk_leased.saturating_sub(leased);
            b.usage.talk_secs_used = b.usage.talk_secs_used.saturating_add(talk);
            b.usage
        })
    }
}
