//! JSON shapes of the API and their translation to and from domain types.
//! Input is validated here, field by field, so a bad request names its
//! field and nothing is applied.

use serde::Serialize;
use utoipa::ToSchema;

pub use super::input::{filter, number, object, objects, page, phone, JsonInt, Party, Phone};
use crate::bindings::conditions::Defaults;
use crate::bindings::Binding;

pub use super::conditions::{some, ConditionsIn, ConditionsOut, DirectionJson, MAX_ALLOWED};

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
    /// The local date (in the binding's time zone) that `day_calls`
    /// counts; null before the first answered call. A later date has none
    /// yet.
    pub day: Option<String>,
    /// Answered calls on `day` (what `max_calls_per_day` counts).
    pub day_calls: u32,
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

impl BindingOut {
    /// Shows a binding with `defaults` filled in.
    pub fn from(b: &Binding, defaults: &Defaults) -> BindingOut {
        let eff = b.conditions.effective(defaults, b.created_at);
        BindingOut {
            id: b.id,
            kind: b.kind.as_str().to_string(),
            a: b.a.as_ref().map(|n| n.as_str().to_string()),
            b: b.b.as_str().to_string(),
            x: b.x.as_str().to_string(),
            conditions: ConditionsOut::of(b, &eff),
            usage: UsageOut {
                calls_used: b.usage.calls_used,
                calls_in_progress: b.usage.reserved,
                talk_secs_used: b.usage.talk_secs_used,
                last_call_at: b.usage.last_call_at.map(crate::time::format),
                day: (b.usage.day_calls > 0).then(|| crate::time::day_to_date(b.usage.day)),
                day_calls: b.usage.day_calls,
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
