//! The one definition of every limit a binding can carry: its name, type,
//! bounds, default, what it counts and the refusal it gives. Each layer
//! that spells the limits out builds them from [`for_each_limit!`]: the
//! conditions, their defaults and the check (`conditions.rs`), the store's
//! columns, the API's model and OpenAPI schema, the command line's flags
//! and the config's `[defaults]`. A new limit is one line here and, if it
//! counts something new, one arm in [`Counts`].
//!
//! The same for refusals: [`for_each_refusal!`] is the one list that the
//! `Refusal` enum, its names and the config's `[refusals]` follow.

/// Calls `$then!` with every limit, in the order the check applies them
/// (which decides the refusal when several would refuse):
/// `Id name: type = default, min..=max, counts Counts, refusal Refusal|none, "doc";`
macro_rules! for_each_limit {
    ($then:ident) => {
        $then! {
            IdleSecs idle_secs: u64 = 0, 1..=3155760000_i64, counts Idle, refusal Expired,
                "Idle lifetime in seconds: the binding ends this long after creation or after its last answered call, whichever is later";
            MaxCalls max_calls: u32 = 0, 1..=3155760000_i64, counts Calls, refusal CallsUsedUp,
                "Answered calls allowed in all (calls in progress hold a use)";
            MaxCallsPerDay max_calls_per_day: u32 = 0, 1..=3155760000_i64, counts CallsToday, refusal DailyCallsUsedUp,
                "Answered calls allowed per day, the count starting again at midnight in the binding's time zone (UTC unless it sets one)";
            TalkBudgetSecs talk_budget_secs: u64 = 0, 1..=3155760000_i64, counts TalkTime, refusal TalkTimeUsedUp,
                "Total talk time in seconds over all calls; live calls lease it in chunks";
            MaxCallSecs max_call_secs: u32 = 3600, 1..=3155760000_i64, counts CallLength, refusal none,
                "Longest single call in seconds: both parties get BYE when it is reached";
        }
    };
}
pub(crate) use for_each_limit;

/// Calls `$then!` with every refusal a binding's check or the call path
/// gives: `Id name, "doc";`.
macro_rules! for_each_refusal {
    ($then:ident) => {
        $then! {
            UnknownNumber unknown_number, "No binding for this dialled number";
            CallerNotAllowed caller_not_allowed, "A binding exists but this caller may not use it";
            CallerBlocked caller_blocked, "The caller is on the tenant's blocklist";
            NotYetValid not_yet_valid, "The validity window has not begun";
            Expired expired, "The validity window or the idle lifetime is over";
            CallsUsedUp calls_used_up, "Every allowed call has been used or is in progress";
            DailyCallsUsedUp daily_calls_used_up, "Today's allowed calls have been used or are in progress";
            TalkTimeUsedUp talk_time_used_up, "The talk-time budget is spent";
            SoftNumber soft_number, "The dialled number is a user's soft number: never callable";
            StoreUnavailable store_unavailable, "The shared database is out of reach: a counted binding (or, with storage.offline = \"refuse\", any) cannot be used";
        }
    };
}
pub(crate) use for_each_refusal;

/// What a limit counts, and so how the check and the table treat it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counts {
    /// Time since creation or the last answered call.
    Idle,
    /// Answered calls and calls in progress, ever.
    Calls,
    /// Answered calls and calls in progress, since local midnight.
    CallsToday,
    /// Seconds talked and leased to live calls.
    TalkTime,
    /// The length of each call (a cap, never a refusal).
    CallLength,
}

impl Counts {
    /// Whether uses of this limit must survive a crash exactly: they are
    /// committed before a call is answered.
    pub fn is_counted(self) -> bool {
        matches!(self, Counts::Calls | Counts::CallsToday)
    }

    /// Whether nodes sharing a database must count this limit there: a
    /// call on a binding with one holds its share from the INVITE.
    pub fn is_shared(self) -> bool {
        self.is_counted() || self == Counts::TalkTime
    }
}
