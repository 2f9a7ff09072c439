//! JSON shapes of the API and their translation to and from domain types.
//! Input is validated here, field by field, so a bad request names its
//! field and nothing is applied.

use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

pub use super::input::{filter, number, object, objects, page, phone, JsonInt, Party, Phone};
use super::problem::ApiError;
use crate::bindings::conditions::{idle_end, Defaults};
use crate::bindings::{Binding, Conditions, Direction, Normaliser};

/// Way an AXB binding may be used.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DirectionJson {
    /// Both ways.
    Both,
    /// Only A calls B.
    AToB,
    /// Only B calls A.
    BToA,
}

impl From<DirectionJson> for Direction {
    fn from(d: DirectionJson) -> Self {
        match d {
            DirectionJson::Both => Direction::Both,
            DirectionJson::AToB => Direction::AToB,
            DirectionJson::BToA => Direction::BToA,
        }
    }
}

impl From<Direction> for DirectionJson {
    fn from(d: Direction) -> Self {
        match d {
            Direction::Both => DirectionJson::Both,
            Direction::AToB => DirectionJson::AToB,
            Direction::BToA => DirectionJson::BToA,
        }
    }
}

/// Call conditions as sent by the client. Absent fields take the defaults
/// (on create) or stay as they are (on change); `null` clears a field.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConditionsIn {
    /// RFC 3339 time before which calls are refused.
    #[serde(default, deserialize_with = "some")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub not_before: Option<Option<String>>,
    /// RFC 3339 time from which calls are refused (absolute end).
    #[serde(default, deserialize_with = "some")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub not_after: Option<Option<String>>,
    /// Answered calls allowed (at least 1).
    #[serde(default, deserialize_with = "some")]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 3155760000_i64)]
    pub max_calls: Option<Option<JsonInt>>,
    /// Longest single call in seconds (at least 1).
    #[serde(default, deserialize_with = "some")]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 3155760000_i64)]
    pub max_call_secs: Option<Option<JsonInt>>,
    /// Total talk time in seconds (1 to 100 years).
    #[serde(default, deserialize_with = "some")]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 3155760000_i64)]
    pub talk_budget_secs: Option<Option<JsonInt>>,
    /// Idle lifetime in seconds, restarted by each answered call (1 to 100 years).
    #[serde(default, deserialize_with = "some")]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 3155760000_i64)]
    pub idle_secs: Option<Option<JsonInt>>,
    /// Callers allowed on an identifier (AX); absent or null = anyone.
    #[serde(default, deserialize_with = "some")]
    #[schema(value_type = Option<Vec<Party>>, max_items = 1000)]
    pub allowed_callers: Option<Option<Vec<String>>>,
    /// Direction of an AXB binding.
    #[serde(default, deserialize_with = "some")]
    #[schema(value_type = Option<DirectionJson>)]
    pub direction: Option<Option<DirectionJson>>,
    /// Record answered calls: both parties to a stereo WAV, listed on the
    /// call record and downloadable (`GET /v1/calls/{id}/recording`).
    pub record: Option<bool>,
    /// Whether prompts (the announcement before bridging, the warning
    /// before the maximum call length) play on this binding's calls; null
    /// or absent: the server's default.
    #[serde(default, deserialize_with = "some")]
    pub announce: Option<Option<bool>>,
}

// Tells `"field": null` (Some(None)) from an absent field (None).
pub(crate) fn some<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

fn time(
    field: &str,
    v: &Option<Option<String>>,
    old: Option<i64>,
) -> Result<Option<i64>, ApiError> {
    match v {
        None => Ok(old),
        Some(None) => Ok(None),
        Some(Some(s)) => crate::time::parse_rfc3339(s).map(Some).ok_or_else(|| {
            ApiError::invalid(
                field,
                format!("{s:?} is not an RFC 3339 time between years 1 and 9999"),
            )
        }),
    }
}

fn positive<T: TryFrom<i64>>(
    field: &str,
    v: Option<Option<JsonInt>>,
    old: Option<T>,
) -> Result<Option<T>, ApiError> {
    match v.map(|o| o.map(|n| n.0)) {
        None => Ok(old),
        Some(None) => Ok(None),
        Some(Some(n)) if n >= 1 && n as u64 <= crate::time::MAX_SECS => T::try_from(n)
            .map(Some)
            .map_err(|_| ApiError::invalid(field, "too large")),
        Some(Some(n)) if n >= 1 => Err(ApiError::invalid(
            field,
            format!("must be at most {} (100 years)", crate::time::MAX_SECS),
        )),
        Some(Some(n)) => Err(ApiError::invalid(
            field,
            format!("must be at least 1, got {n}"),
        )),
    }
}

/// Most callers in `allowed_callers` (the schema's `maxItems`).
pub const MAX_ALLOWED: usize = 1000;

impl ConditionsIn {
    /// Applies this change to `old` (use `Conditions::default()` on create).
    pub fn apply(
        &self,
        old: &Conditions,
        norm: &Normaliser,
        prefix: &str,
    ) -> Result<Conditions, ApiError> {
        let f = |n: &str| format!("{prefix}{n}");
        let allowed = match &self.allowed_callers {
            None => old.allowed_callers.clone(),
            Some(None) => None,
            Some(Some(list)) if list.len() > MAX_ALLOWED => {
                return Err(ApiError::invalid(
                    f("allowed_callers"),
                    format!("must hold at most {MAX_ALLOWED} callers"),
                ))
            }
            Some(Some(list)) => Some(
                list.iter()
                    .enumerate()
                    .map(|(i, c)| number(norm, &f(&format!("allowed_callers[{i}]")), c))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        };
        let c = Conditions {
            not_before: time(&f("not_before"), &self.not_before, old.not_before)?,
            not_after: time(&f("not_after"), &self.not_after, old.not_after)?,
            max_calls: positive(&f("max_calls"), self.max_calls, old.max_calls)?,
            max_call_secs: positive(&f("max_call_secs"), self.max_call_secs, old.max_call_secs)?,
            talk_budget_secs: positive(
                &f("talk_budget_secs"),
                self.talk_budget_secs,
                old.talk_budget_secs,
            )?,
            idle_secs: positive(&f("idle_secs"), self.idle_secs, old.idle_secs)?,
            allowed_callers: allowed,
            direction: match self.direction {
                None => old.direction,
                Some(d) => d.map(Into::into),
            },
            record: self.record.unwrap_or(old.record),
            announce: self.announce.unwrap_or(old.announce),
        };
        if let (Some(s), Some(e)) = (c.not_before, c.not_after) {
            if e <= s {
                return Err(ApiError::invalid(
                    f("not_after"),
                    "must be later than not_before",
                ));
            }
        }
        Ok(c)
    }
}

/// Conditions as shown, with defaults filled in and both clocks explicit.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConditionsOut {
    /// Start of validity.
    pub not_before: Option<String>,
    /// Absolute end as set on the binding (or by the default lifetime).
    pub not_after: Option<String>,
    /// Idle lifetime in seconds, if any.
    pub idle_secs: Option<u64>,
    /// When the idle lifetime runs out unless a call is answered first.
    pub idle_expires_at: Option<String>,
    /// Answered calls allowed (null = unlimited).
    pub max_calls: Option<u32>,
    /// Longest call in seconds (null = unlimited).
    pub max_call_secs: Option<u32>,
    /// Talk time in seconds (null = unlimited).
    pub talk_budget_secs: Option<u64>,
    /// Callers allowed (null = anyone).
    pub allowed_callers: Option<Vec<String>>,
    /// Direction (AXB).
    pub direction: DirectionJson,
    /// Answered calls are recorded.
    pub record: bool,
    /// Prompts play (null: the server's default).
    pub announce: Option<bool>,
}

/// Usage so far.
#[derive(Debug, Serialize, ToSchema)]
pub struct UsageOut {
    /// Answered calls.
    pub calls_used: u32,
    /// Calls in progress holding a use.
    pub calls_in_progress: u32,
    /// Seconds talked.
    pub talk_secs_used: u64,
    /// Last answered call.
    pub last_call_at: Option<String>,
}

/// An AXB binding or an identifier.
#[derive(Debug, Serialize, ToSchema)]
pub struct BindingOut {
    /// Id.
    pub id: i64,
    /// `axb`, `digits`, `token` or `cli`.
    pub kind: String,
    /// A (AXB only).
    pub a: Option<String>,
    /// B, or the identifier's owner.
    pub b: String,
    /// The virtual number or identifier.
    pub x: String,
    /// Conditions in force.
    pub conditions: ConditionsOut,
    /// Usage.
    pub usage: UsageOut,
    /// Creation time.
    pub created_at: String,
}

fn zero_is_none<T: PartialEq + Default>(v: T) -> Option<T> {
    (v != T::default()).then_some(v)
}

impl BindingOut {
    /// Shows a binding with `defaults` filled in.
    pub fn from(b: &Binding, defaults: &Defaults) -> BindingOut {
        let c = &b.conditions;
        let eff = c.effective(defaults, b.created_at);
        BindingOut {
            id: b.id,
            kind: b.kind.as_str().to_string(),
            a: b.a.as_ref().map(|n| n.as_str().to_string()),
            b: b.b.as_str().to_string(),
            x: b.x.as_str().to_string(),
            conditions: ConditionsOut {
                not_before: eff.not_before.map(crate::time::format),
                not_after: eff.not_after.map(crate::time::format),
                idle_secs: c.idle_secs,
                idle_expires_at: idle_end(c, &b.usage, &eff).map(crate::time::format),
                max_calls: zero_is_none(eff.max_calls),
                max_call_secs: zero_is_none(eff.max_call_secs),
                talk_budget_secs: zero_is_none(eff.talk_budget_secs),
                allowed_callers: c
                    .allowed_callers
                    .as_ref()
                    .map(|v| v.iter().map(|n| n.as_str().to_string()).collect()),
                direction: c.direction.unwrap_or_default().into(),
                record: c.record,
                announce: c.announce,
            },
            usage: UsageOut {
                calls_used: b.usage.calls_used,
                calls_in_progress: b.usage.reserved,
                talk_secs_used: b.usage.talk_secs_used,
                last_call_at: b.usage.last_call_at.map(crate::time::format),
            },
            created_at: crate::time::format(b.created_at),
        }
    }
}

/// A page of results.
#[derive(Debug, Serialize, ToSchema)]
pub struct BindingPage {
    /// This page.
    pub items: Vec<BindingOut>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// A binding as events show it: the API's representation.
pub fn view(b: &crate::bindings::Binding, d: &crate::bindings::Defaults) -> serde_json::Value {
    serde_json::to_value(BindingOut::from(b, d)).unwrap_or_default()
}
