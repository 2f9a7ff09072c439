//! Flow 2 of the product: users get soft numbers (non-callable stand-ins
//! for their real numbers), agents in teams interact with them, and an
//! agent acquires a callable X for a user only when it (or a sharing team
//! mate) really interacted with that user. Each change is one unit of work
//! on the store; the live binding table learns the soft numbers (calls to
//! them are refused) and the acquired bindings.
//!
//! - [`users`]: soft numbers: get-or-create, look up, recycle (on request
//!   or idle), quarantine.
//! - [`agents`]: teams and agents.
//! - [`interactions`]: records, one at a time or in bulk, and the pushes of
//!   soft numbers to agents.
//! - [`acquire`]: the acquisition decision and its records.
//! - [`provider`]: where an acquired X comes from (the tenant's pool by
//!   default).

pub mod acquire;
pub mod agents;
pub mod config;
pub mod interactions;
pub mod provider;
pub mod users;

use serde::{Deserialize, Serialize};

use super::{Error, Services};
use crate::bindings::{Normaliser, Number, TenantId};
use crate::store::prelude::*;
use crate::store::StoreError;
use config::FlowSection;

/// The longest span any flow setting may have: 100 years.
pub const MAX_SECS: u64 = 3_155_760_000;

/// A tenant's flow-2 settings: the config's `[flow]`, with what the tenant
/// set of its own.
pub type Settings = FlowSection;

/// What a tenant may set of its own (absent: the config's value).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SettingsPatch {
    /// See [`FlowSection::soft_flag`].
    pub soft_flag: Option<u8>,
    /// See [`FlowSection::soft_reserved`].
    pub soft_reserved: Option<u8>,
    /// See [`FlowSection::idle_recycle_secs`].
    pub idle_recycle_secs: Option<u64>,
    /// See [`FlowSection::soft_quarantine_secs`].
    pub soft_quarantine_secs: Option<u64>,
    /// See [`FlowSection::push_window_secs`].
    pub push_window_secs: Option<u64>,
    /// See [`FlowSection::lookback_secs`].
    pub lookback_secs: Option<u64>,
    /// See [`FlowSection::x_lifetime_secs`].
    pub x_lifetime_secs: Option<u64>,
    /// See [`FlowSection::x_max_call_secs`].
    pub x_max_call_secs: Option<u32>,
    /// See [`FlowSection::x_max_calls`].
    pub x_max_calls: Option<u32>,
}

impl SettingsPatch {
    /// `base` with this patch's values.
    pub fn over(&self, base: &Settings) -> Settings {
        Settings {
            soft_flag: self.soft_flag.unwrap_or(base.soft_flag),
            soft_reserved: self.soft_reserved.unwrap_or(base.soft_reserved),
            idle_recycle_secs: self.idle_recycle_secs.unwrap_or(base.idle_recycle_secs),
            soft_quarantine_secs: self
                .soft_quarantine_secs
                .unwrap_or(base.soft_quarantine_secs),
            push_window_secs: self.push_window_secs.unwrap_or(base.push_window_secs),
            lookback_secs: self.lookback_secs.unwrap_or(base.lookback_secs),
            x_lifetime_secs: self.x_lifetime_secs.unwrap_or(base.x_lifetime_secs),
            x_max_call_secs: self.x_max_call_secs.unwrap_or(base.x_max_call_secs),
            x_max_calls: self.x_max_calls.unwrap_or(base.x_max_calls),
        }
    }

    /// Checks values; the first bad one is the error.
    pub fn check(&self) -> Result<(), Error> {
        if self.soft_flag.is_some_and(|d| !(1..=9).contains(&d)) {
            return Err(Error::invalid("soft_flag", "a digit 1 to 9"));
        }
        if self.soft_reserved.is_some_and(|d| d > 9) {
            return Err(Error::invalid("soft_reserved", "a digit 0 to 9"));
        }
        for (name, v) in [
            ("push_window_secs", self.push_window_secs),
            ("lookback_secs", self.lookback_secs),
            ("x_lifetime_secs", self.x_lifetime_secs),
        ] {
            if v == Some(0) {
                return Err(Error::invalid(name, "at least 1"));
            }
        }
        if self
            .x_max_call_secs
            .is_some_and(|v| u64::from(v) > MAX_SECS)
        {
            return Err(Error::invalid("x_max_call_secs", "at most 100 years"));
        }
        for (name, v) in [
            ("idle_recycle_secs", self.idle_recycle_secs),
            ("soft_quarantine_secs", self.soft_quarantine_secs),
            ("push_window_secs", self.push_window_secs),
            ("lookback_secs", self.lookback_secs),
            ("x_lifetime_secs", self.x_lifetime_secs),
        ] {
            if v.is_some_and(|v| v > MAX_SECS) {
                return Err(Error::invalid(name, "at most 100 years"));
            }
        }
        Ok(())
    }
}

/// The tenant's settings as they apply, read in a unit of work.
pub(crate) fn settings_of(
    s: &dyn Backend,
    base: &Settings,
    tenant: TenantId,
) -> Result<Settings, StoreError> {
    let patch = s
        .flow_settings(tenant)?
        .and_then(|b| serde_json::from_str::<SettingsPatch>(&b).ok())
        .unwrap_or_default();
    Ok(patch.over(base))
}

/// The form calls and bindings see a soft number in: normalised like any
/// dialled number, so a call to it is recognised.
pub fn dialled_form(norm: &Normaliser, soft: &str) -> Number {
    norm.phone(soft)
        .unwrap_or_else(|_| Number::from_normalised(soft.to_string()))
}

/// Refuses a number shaped like a soft number (the flag digit, the
/// reserved digit, nine more, in the default country): never an X, a
/// party, an agent, a user's real number or a number of a pool. Judged by
/// shape alone, the same for every tenant: whether some tenant's user
/// holds it is nobody else's to learn.
pub(crate) fn refuse_soft(svc: &Services, n: &Number, field: &str) -> Result<(), Error> {
    if soft_shaped(&svc.normaliser, &svc.flow, n) {
        return Err(Error::invalid(
            field,
            "shaped like a soft number (flag and reserved digit), which is never callable",
        ));
    }
    Ok(())
}

/// Whether `n` has the shape of the server's soft numbers.
fn soft_shaped(norm: &Normaliser, flow: &FlowSection, n: &Number) -> bool {
    let cc = &norm.default_country_code;
    let national = n
        .as_str()
        .strip_prefix('+')
        .and_then(|d| d.strip_prefix(cc.as_str()))
        .filter(|_| !cc.is_empty());
    let prefix = [b'0' + flow.soft_flag, b'0' + flow.soft_reserved];
    national.is_some_and(|d| {
        d.len() == 11 && d.as_bytes().starts_with(&prefix) && d.bytes().all(|b| b.is_ascii_digit())
    })
}

impl Services {
    /// The tenant's settings as they apply.
    pub async fn flow_settings(&self, tenant: TenantId) -> Result<Settings, Error> {
        let base = self.flow.clone();
        self.unit(move |s, _| Ok::<_, Error>(settings_of(s, &base, tenant)?))
            .await
    }

    /// Changes the tenant's own settings (absent fields keep theirs; those
    /// named in `reset` go back to the server's default).
    pub async fn set_flow_settings(
        &self,
        tenant: TenantId,
        patch: SettingsPatch,
        reset: Vec<&'static str>,
    ) -> Result<Settings, Error> {
        patch.check()?;
        let cc = &self.normaliser.default_country_code;
        if let Some(f) = patch.soft_flag {
            if crate::bindings::number::mobile_first_digits(cc).contains(&f) {
                return Err(Error::invalid(
                    "soft_flag",
                    format!("{f} starts real mobile numbers of +{cc}: soft numbers must not look like them"),
                ));
            }
        }
        let base = self.flow.clone();
        self.unit(move |s, _| {
            let mut mine = s
                .flow_settings(tenant)?
                .and_then(|b| serde_json::from_str::<SettingsPatch>(&b).ok())
                .unwrap_or_default();
            macro_rules! take {
                ($($f:ident),*) => { $(
                    if patch.$f.is_some() { mine.$f = patch.$f; }
                    if reset.contains(&stringify!($f)) { mine.$f = None; }
                )* };
            }
            take!(
                soft_flag,
                soft_reserved,
                idle_recycle_secs,
                soft_quarantine_secs,
                push_window_secs,
                lookback_secs,
                x_lifetime_secs,
                x_max_call_secs,
                x_max_calls
            );
            let body = serde_json::to_string(&mine).map_err(|e| Error::Internal(e.to_string()))?;
            s.set_flow_settings(tenant, &body)?;
            Ok::<_, Error>(mine.over(&base))
        })
        .await
    }
}
