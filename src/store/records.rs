//! Call records: one row per call attempt, refused ones included, written
//! in batches by the store's writer thread and kept for a configured number
//! of days.

use crate::bindings::TenantId;
/// One call attempt.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallRecord {
    /// Row id (0 before it is stored).
    pub id: i64,
    /// Owner of the binding or of the dialled X.
    pub tenant: TenantId,
    /// The binding, if one admitted the call.
    pub binding: Option<i64>,
    /// `a_to_b`, `b_to_a`, `ax`, or `None` when refused before a binding was found.
    pub direction: Option<String>,
    /// Caller (normalised).
    pub caller: String,
    /// Real callee, if the call was bridged.
    pub callee: Option<String>,
    /// Dialled X.
    pub x: String,
    /// Unix milliseconds of the INVITE.
    pub invite_at: i64,
    /// First ringing (18x).
    pub ringing_at: Option<i64>,
    /// Answer.
    pub answer_at: Option<i64>,
    /// End.
    pub end_at: Option<i64>,
    /// Talk time in seconds.
    pub duration_secs: u64,
    /// Final SIP status the caller got (200 when answered).
    pub result: u16,
    /// `caller`, `callee` or `system`, for answered calls.
    pub ended_by: Option<String>,
    /// Why it ended or was refused.
    pub reason: String,
    /// File name of the call's recording (in the recordings folder), if
    /// it was recorded.
    pub recording: Option<String>,
    /// A prompt told the parties the call is recorded.
    pub announced: bool,
}

/// Filters of a call record query.
#[derive(Default)]
pub struct CallFilter {
    /// Only ids above this.
    pub after: i64,
    /// Page size.
    pub limit: u32,
    /// Binding id.
    pub binding: Option<i64>,
    /// Caller, callee or X equals.
    pub number: Option<String>,
    /// INVITE at or after (unix ms).
    pub from: Option<i64>,
    /// INVITE before (unix ms).
    pub to: Option<i64>,
    /// Final status equals.
    pub result: Option<u16>,
}
