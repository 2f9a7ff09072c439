//! Call conditions in the API: what a client sends (`ConditionsIn`, each
//! field validated and named when it is wrong) and what it is shown
//! (`ConditionsOut`). The limits' fields, bounds and schema follow their
//! one definition (`bindings::limits`).

use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

#[allow(unused_imports)] // named by the schema attribute only
use super::input::Party;
use super::input::{number, JsonInt};
use super::problem::ApiError;
use crate::bindings::conditions::{idle_end, Effective};
use crate::bindings::limits::for_each_limit;
use crate::bindings::{Binding, Conditions, Direction, Normaliser, Zone};

/// Way an AXB binding may be used.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DirectionJson {
    /// Both ways.
    #[default]
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

// Bounds are `tt`: a `literal` fragment reaches utoipa's attribute parser
// wrapped in an invisible group, which it does not read.
macro_rules! conditions_model {
    ($($id:ident $name:ident: $ty:ty = $def:literal, $min:tt..=$max:tt,
       counts $counts:ident, refusal $refusal:ident, $doc:literal;)*) => {
        /// Call conditions as sent by the client. Absent fields take the
        /// defaults (on create) or stay as they are (on change); `null`
        /// clears a field.
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
            $(
                #[doc = $doc]
                #[serde(default, deserialize_with = "some")]
                #[schema(value_type = Option<i64>, minimum = $min, maximum = $max)]
                pub $name: Option<Option<JsonInt>>,
            )*
            /// Callers allowed on an identifier (AX); absent or null = anyone.
            #[serde(default, deserialize_with = "some")]
            #[schema(value_type = Option<Vec<Party>>, max_items = 1000)]
            pub allowed_callers: Option<Option<Vec<String>>>,
            /// Direction of an AXB binding.
            #[serde(default, deserialize_with = "some")]
            #[schema(value_type = Option<DirectionJson>)]
            pub direction: Option<Option<DirectionJson>>,
            /// Record answered calls: both parties to a stereo WAV, listed
            /// on the call record and downloadable
            /// (`GET /v1/calls/{id}/recording`).
            pub record: Option<bool>,
            /// Whether prompts (the announcement before bridging, the
            /// warning before the maximum call length) play on this
            /// binding's calls; null or absent: the server's default.
            #[serde(default, deserialize_with = "some")]
            pub announce: Option<Option<bool>>,
            /// IANA time zone where the binding's days begin (for
            /// `max_calls_per_day`); null or absent: UTC.
            #[serde(default, deserialize_with = "some")]
            #[schema(value_type = Option<String>, example = "Asia/Shanghai")]
            pub time_zone: Option<Option<String>>,
        }

        /// Conditions as shown, with defaults filled in and both clocks
        /// explicit. A limit of null is unlimited.
        #[derive(Debug, Default, Serialize, ToSchema)]
        pub struct ConditionsOut {
            /// Start of validity.
            pub not_before: Option<String>,
            /// Absolute end as set on the binding (or by the default lifetime).
            pub not_after: Option<String>,
            /// When the idle lifetime runs out unless a call is answered first.
            pub idle_expires_at: Option<String>,
            $(#[doc = $doc] pub $name: Option<$ty>,)*
            /// Callers allowed (null = anyone).
            pub allowed_callers: Option<Vec<String>>,
            /// Direction (AXB).
            pub direction: DirectionJson,
            /// Answered calls are recorded.
            pub record: bool,
            /// Prompts play (null: the server's default).
            pub announce: Option<bool>,
            /// Where the binding's days begin (null: UTC).
            pub time_zone: Option<String>,
        }

        impl ConditionsIn {
            fn limits(&self, old: &Conditions, c: &mut Conditions, prefix: &str)
                -> Result<(), ApiError> {
                $(c.$name = bounded(
                    &format!("{prefix}{}", stringify!($name)),
                    self.$name,
                    old.$name,
                    ($min, $max),
                )?;)*
                Ok(())
            }
        }

        impl ConditionsOut {
            fn limits(&mut self, eff: &Effective) {
                $(self.$name = zero_is_none(eff.$name);)*
            }
        }
    };
}

for_each_limit!(conditions_model);

// Tells `"field": null` (Some(None)) from an absent field (None).
pub fn some<'de, T: Deserialize<'de>, D: Deserializer<'de>>(d: D) -> Result<Option<T>, D::Error> {
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

/// A limit within `min..=max`, or the change's error naming its field.
fn bounded<T: TryFrom<i64>>(
    field: &str,
    v: Option<Option<JsonInt>>,
    old: Option<T>,
    (min, max): (i64, i64),
) -> Result<Option<T>, ApiError> {
    match v.map(|o| o.map(|n| n.0)) {
        None => Ok(old),
        Some(None) => Ok(None),
        Some(Some(n)) if n < min => Err(ApiError::invalid(
            field,
            format!("must be at least {min}, got {n}"),
        )),
        Some(Some(n)) if n > max => Err(ApiError::invalid(
            field,
            if max == crate::time::MAX_SECS as i64 {
                format!("must be at most {max} (100 years)")
            } else {
                format!("must be at most {max}")
            },
        )),
        Some(Some(n)) => T::try_from(n)
            .map(Some)
            .map_err(|_| ApiError::invalid(field, "too large")),
    }
}

fn zero_is_none<T: PartialEq + Default>(v: T) -> Option<T> {
    (v != T::default()).then_some(v)
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
        let mut c = Conditions {
            not_before: time(&f("not_before"), &self.not_before, old.not_before)?,
            not_after: time(&f("not_after"), &self.not_after, old.not_after)?,
            allowed_callers: self.allowed(old, norm, prefix)?,
            direction: match self.direction {
                None => old.direction,
                Some(d) => d.map(Into::into),
            },
            record: self.record.unwrap_or(old.record),
            announce: self.announce.unwrap_or(old.announce),
            time_zone: match &self.time_zone {
                None => old.time_zone.clone(),
                Some(None) => None,
                Some(Some(name)) => {
                    Some(Zone::parse(name).map_err(|e| ApiError::invalid(f("time_zone"), e))?)
                }
            },
            ..Default::default()
        };
        self.limits(old, &mut c, prefix)?;
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

    fn allowed(
        &self,
        old: &Conditions,
        norm: &Normaliser,
        prefix: &str,
    ) -> Result<Option<Vec<crate::bindings::Number>>, ApiError> {
        let f = |n: &str| format!("{prefix}{n}");
        Ok(match &self.allowed_callers {
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
        })
    }
}

impl ConditionsOut {
    /// A binding's conditions in force, with `eff` its effective values.
    pub fn of(b: &Binding, eff: &Effective) -> ConditionsOut {
        let c = &b.conditions;
        let mut out = ConditionsOut {
            not_before: eff.not_before.map(crate::time::format),
            not_after: eff.not_after.map(crate::time::format),
            idle_expires_at: idle_end(&b.usage, eff).map(crate::time::format),
            allowed_callers: c
                .allowed_callers
                .as_ref()
                .map(|v| v.iter().map(|n| n.as_str().to_string()).collect()),
            direction: c.direction.unwrap_or_default().into(),
            record: c.record,
            announce: c.announce,
            time_zone: c.time_zone.as_ref().map(|z| z.name().to_string()),
            ..Default::default()
        };
        out.limits(eff);
        out
    }
}
