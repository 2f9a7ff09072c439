//! Checkpoints of live calls, so a crash loses seconds, not calls. A live
//! call gets a row once (its record so far) and an update only when it is
//! answered or leases more talk time; the instance's heartbeat (one row)
//! moves every checkpoint. A call's end deletes its row in the transaction
//! that books it. At start, rows of instances that died are booked: talk
//! time from the answer to their last heartbeat (at most the lease), and a
//! call record saying sipmask stopped.

use super::CallRecord;
/// A change to an instance's checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LiveRow {
    /// A call seen for the first time: its record so far.
    New {
        /// `<instance>-<call id>`.
        key: String,
        /// The record (answer_at only once the caller ACKed).
        record: Box<CallRecord>,
        /// Talk time leased so far, if the binding has a budget.
        lease: Option<u64>,
    },
    /// A known call was answered or leased more.
    Changed {
        /// Its key.
        key: String,
        /// Answer time, unix ms.
        answer_at: Option<i64>,
        /// Lease so far.
        lease: Option<u64>,
    },
}

/// One checkpoint of an instance.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Checkpoint {
    /// Whose.
    pub instance: String,
    /// Unix ms: live calls talked at least until then.
    pub at: i64,
    /// What changed since the last one.
    pub rows: Vec<LiveRow>,
}
