//! Rows read as the neutral types, once for every backend: a backend's row
//! type gives its cells through [`Cells`], and the columns are in the
//! order its `SELECT`s name them (the same in both backends).

use super::accounts::{AccountRow, ContactRow};
use super::flow::{AcquisitionRecord, Agent, Team, User};
use super::webhooks::{Delivery, Due, Webhook};
use super::{CallRecord, StoreError};
use crate::bindings::limits::for_each_limit;
use crate::bindings::{Binding, Conditions, Direction, Kind, Number, Usage, Zone};

/// The cells of one row, by position.
pub(crate) trait Cells {
    /// An integer.
    fn int(&self, i: usize) -> Result<i64, StoreError>;
    /// An integer or NULL.
    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError>;
    /// Text.
    fn text(&self, i: usize) -> Result<String, StoreError>;
    /// Text or NULL.
    fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError>;
    /// A truth value (SQLite's 0/1, PostgreSQL's BOOLEAN).
    fn flag(&self, i: usize) -> Result<bool, StoreError>;
    /// A truth value or NULL.
    fn opt_flag(&self, i: usize) -> Result<Option<bool>, StoreError>;
}

/// A stored count: negative is 0, too large is the most.
pub(crate) fn count(v: i64) -> u32 {
    u32::try_from(v.max(0)).unwrap_or(u32::MAX)
}

/// `id, tenant_id, real, soft, ext_id, created_at, active_at, recycled_at`.
pub(crate) fn user(r: &impl Cells) -> Result<User, StoreError> {
    Ok(User {
        id: r.int(0)?,
        tenant: r.int(1)?,
        real: Number::from_normalised(r.text(2)?),
        soft: r.text(3)?,
        ext_id: r.opt_text(4)?,
        created_at: r.int(5)?,
        active_at: r.int(6)?,
        recycled_at: r.opt_int(7)?,
    })
}

/// `id, tenant_id, name, shares`.
pub(crate) fn team(r: &impl Cells) -> Result<Team, StoreError> {
    Ok(Team {
        id: r.int(0)?,
        tenant: r.int(1)?,
        name: r.text(2)?,
        shares: r.flag(3)?,
    })
}

/// `id, tenant_id, real, team_id, name`.
pub(crate) fn agent(r: &impl Cells) -> Result<Agent, StoreError> {
    Ok(Agent {
        id: r.int(0)?,
        tenant: r.int(1)?,
        real: Number::from_normalised(r.text(2)?),
        team: r.int(3)?,
        name: r.opt_text(4)?,
    })
}

/// `id, tenant_id, agent_number, agent_id, team_id, soft, user_id, result,
/// reason, x, binding_id, at`.
pub(crate) fn acquisition(r: &impl Cells) -> Result<AcquisitionRecord, StoreError> {
    Ok(AcquisitionRecord {
        id: r.int(0)?,
        tenant: r.int(1)?,
        agent_number: r.text(2)?,
        agent: r.opt_int(3)?,
        team: r.opt_int(4)?,
        soft: r.text(5)?,
        user: r.opt_int(6)?,
        result: r.text(7)?,
        reason: r.text(8)?,
        x: r.opt_text(9)?,
        binding: r.opt_int(10)?,
        at: r.int(11)?,
    })
}

/// `id, tenant_id, binding_id, direction, caller, callee, virtual,
/// invite_at, ringing_at, answer_at, end_at, duration_secs, result,
/// ended_by, reason, recording, announced`.
pub(crate) fn call(r: &impl Cells) -> Result<CallRecord, StoreError> {
    Ok(CallRecord {
        id: r.int(0)?,
        tenant: r.int(1)?,
        binding: r.opt_int(2)?,
        direction: r.opt_text(3)?,
        caller: r.text(4)?,
        callee: r.opt_text(5)?,
        x: r.text(6)?,
        invite_at: r.int(7)?,
        ringing_at: r.opt_int(8)?,
        answer_at: r.opt_int(9)?,
        end_at: r.opt_int(10)?,
        duration_secs: r.int(11)?.max(0) as u64,
        result: u16::try_from(r.int(12)?).unwrap_or(0),
        ended_by: r.opt_text(13)?,
        reason: r.text(14)?,
        recording: r.opt_text(15)?,
        announced: r.flag(16)?,
    })
}

/// `url, secret, masked, failing_since, disabled_at`.
pub(crate) fn webhook(r: &impl Cells) -> Result<Webhook, StoreError> {
    Ok(Webhook {
        url: r.text(0)?,
        secret: r.text(1)?,
        masked: r.flag(2)?,
        failing_since: r.opt_int(3)?,
        disabled_at: r.opt_int(4)?,
    })
}

/// `e.id, e.body, e.event_id, e.attempts, w.url, w.secret, w.masked`.
pub(crate) fn due(r: &impl Cells) -> Result<Due, StoreError> {
    Ok(Due {
        id: r.int(0)?,
        body: r.text(1)?,
        event_id: r.text(2)?,
        attempts: count(r.int(3)?),
        url: r.text(4)?,
        secret: r.text(5)?,
        masked: r.flag(6)?,
    })
}

/// `event_id, type, attempts, created_at, next_attempt_at, failed_at,
/// last_error`: a failed event has no next attempt.
pub(crate) fn delivery(r: &impl Cells) -> Result<Delivery, StoreError> {
    let failed_at = r.opt_int(5)?;
    Ok(Delivery {
        event_id: r.text(0)?,
        kind: r.text(1)?,
        attempts: count(r.int(2)?),
        created_at: r.int(3)?,
        next_attempt_at: if failed_at.is_none() {
            r.opt_int(4)?
        } else {
            None
        },
        failed_at,
        last_error: r.opt_text(6)?,
    })
}

/// `name, tenant_id, realm, ha1_md5, ha1_sha256, created_at, uid`.
pub(crate) fn account(r: &impl Cells) -> Result<AccountRow, StoreError> {
    Ok(AccountRow {
        name: r.text(0)?,
        tenant: r.int(1)?,
        realm: r.text(2)?,
        ha1_md5: r.text(3)?,
        ha1_sha256: r.text(4)?,
        created_at: r.int(5)?,
        uid: r.int(6)?,
    })
}

/// `account, uri, transport, addr, expires_ms, call_id, cseq, since_ms,
/// path`.
pub(crate) fn contact(r: &impl Cells) -> Result<(String, ContactRow), StoreError> {
    Ok((
        r.text(0)?,
        ContactRow {
            uri: r.text(1)?,
            transport: r.text(2)?,
            addr: r.text(3)?,
            expires_ms: r.int(4)?,
            call_id: r.text(5)?,
            cseq: count(r.int(6)?),
            since_ms: r.int(7)?,
            path: r.text(8)?,
        },
    ))
}

/// A live call of an instance that died, settled at `at` (unix ms, its
/// last heartbeat): its record, and the seconds talked (from the answer to
/// `at`, at most its lease). `tenant_id, binding_id, direction, caller,
/// callee, virtual, invite_at, ringing_at, answer_at, lease_secs`.
pub(crate) fn dead_call(r: &impl Cells, at: i64) -> Result<(CallRecord, i64), StoreError> {
    let answered = r.opt_int(8)?;
    let lease = r.opt_int(9)?;
    let talk = answered.map_or(0, |a| {
        let secs = (at - a).max(0) / 1000;
        lease.map_or(secs, |l| secs.min(l))
    });
    Ok((
        CallRecord {
            tenant: r.int(0)?,
            binding: r.opt_int(1)?,
            direction: r.opt_text(2)?,
            caller: r.text(3)?,
            callee: r.opt_text(4)?,
            x: r.text(5)?,
            invite_at: r.int(6)?,
            ringing_at: r.opt_int(7)?,
            answer_at: answered,
            end_at: Some(at),
            duration_secs: talk as u64,
            result: if answered.is_some() { 200 } else { 503 },
            ended_by: answered.map(|_| "system".to_string()),
            reason: "sipmask stopped during the call".into(),
            ..Default::default()
        },
        talk,
    ))
}

/// The live calls [`dead_call`] reads, of one instance (`?1`).
pub(crate) const DEAD_CALLS: &str =
    "SELECT tenant_id, binding_id, direction, caller, callee, virtual, invite_at,
     ringing_at, answer_at, lease_secs FROM live_calls WHERE instance = ?1";

/// The columns every binding row has before its limits'; `binding` reads
/// them in this order.
macro_rules! binding_columns {
    () => {
        "id, caller, virtual, callee, not_before, not_after, allowed_callers, calls_used, \
         talk_secs_used, created_at, tenant_id, kind, direction, last_call_at, record, \
         announce, time_zone, day, day_calls"
    };
}
pub(crate) use binding_columns;

/// How many columns [`binding_columns!`] names.
const FIXED: usize = 19;

macro_rules! read_limits {
    ($($id:ident $name:ident: $ty:ty = $def:literal, $min:literal..=$max:literal,
       counts $counts:ident, refusal $refusal:ident, $doc:literal;)*) => {
        /// The limits' columns, after the fixed ones: stored values may
        /// predate the API's range checks.
        fn read_limits(r: &impl Cells, c: &mut Conditions) -> Result<(), StoreError> {
            let mut i = FIXED;
            $(
                c.$name = r.opt_int(i)?
                    .map(|v| <$ty>::try_from(v.max(0)).unwrap_or(<$ty>::MAX));
                i += 1;
            )*
            let _ = i;
            Ok(())
        }
    };
}

for_each_limit!(read_limits);

/// A binding from a row of its backend's `SELECT`; a row that cannot be
/// one is `Corrupt`, named by its id.
pub(crate) fn binding(r: &impl Cells) -> Result<Binding, StoreError> {
    let id = r.int(0)?;
    let corrupt = |reason: String| StoreError::Corrupt { id, reason };
    let zone = match r.opt_text(16)? {
        None => None,
        Some(name) => Some(Zone::parse(&name).map_err(|e| corrupt(format!("time_zone: {e}")))?),
    };
    let mut conditions = Conditions {
        not_before: r.opt_int(4)?,
        not_after: r.opt_int(5)?,
        allowed_callers: r.opt_text(6)?.map(|s| {
            s.split(',')
                .filter(|p| !p.is_empty())
                .map(|p| Number::from_normalised(p.to_string()))
                .collect()
        }),
        direction: r.opt_text(12)?.and_then(|d| Direction::parse(&d)),
        record: r.flag(14)?,
        announce: r.opt_flag(15)?,
        time_zone: zone,
        ..Default::default()
    };
    read_limits(r, &mut conditions)?;
    let calls_used =
        u32::try_from(r.int(7)?).map_err(|_| corrupt("calls_used out of range".into()))?;
    let kind = r.text(11)?;
    let kind = Kind::parse(&kind).ok_or_else(|| corrupt(format!("unknown kind {kind:?}")))?;
    Ok(Binding {
        id,
        tenant: r.int(10)?,
        kind,
        a: r.opt_text(1)?.map(Number::from_normalised),
        x: Number::from_normalised(r.text(2)?),
        b: Number::from_normalised(r.text(3)?),
        conditions,
        created_at: r.int(9)?,
        usage: Usage {
            calls_used,
            reserved: 0,
            talk_secs_used: r.int(8)?.max(0) as u64,
            last_call_at: r.opt_int(13)?,
            talk_leased: 0,
            day: r.int(17)?,
            day_calls: count(r.int(18)?),
        },
    })
}
