//! The binding model's sections: `[numbers]` (how numbers are read),
//! `[defaults]` (a binding's limits where it sets none, one key per limit
//! of `limits.rs`) and `[refusals]` (the SIP status of each refusal), with
//! the checks of their values.
use serde::Deserialize;

use super::conditions::Defaults;
use super::limits::{for_each_limit, for_each_refusal};
use super::Refusal;
use crate::problems::Problems;

/// `[numbers]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumbersConfig {
    /// Digits, no `+`; empty = none.
    pub default_country_code: String,
}

macro_rules! defaults_section {
    ($($id:ident $name:ident: $ty:ty = $def:literal, $min:literal..=$max:literal,
       counts $counts:ident, refusal $refusal:ident, $doc:literal;)*) => {
        /// `[defaults]`: default call conditions, one per limit (0 =
        /// unlimited), and the default lifetime.
        #[derive(Clone, Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct DefaultsConfig {
            $(#[doc = $doc] pub $name: $ty,)*
            /// A binding without its own end is valid this long after
            /// creation; 0 = unlimited.
            pub lifetime_secs: u64,
        }

        impl DefaultsConfig {
            /// Default conditions for the binding table.
            pub fn binding_defaults(&self) -> Defaults {
                Defaults {
                    $($name: self.$name,)*
                    lifetime_secs: self.lifetime_secs,
                }
            }
        }
    };
}

for_each_limit!(defaults_section);

/// A SIP status with its reason phrase.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Status {
    /// 400..=699.
    pub status: u16,
    /// Reason phrase.
    pub reason: String,
}

macro_rules! refusals_section {
    ($($id:ident $name:ident, $doc:literal;)*) => {
        /// `[refusals]`: a status per refusal.
        #[derive(Clone, Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct Refusals {
            $(#[doc = $doc] pub $name: Status,)*
            /// No trunk, or shutting down.
            pub no_route: Status,
            /// The callee is an account with no registered contact.
            pub not_registered: Status,
        }

        impl Refusals {
            /// The status for a refusal; the one place refusals become SIP.
            pub fn status(&self, r: Refusal) -> &Status {
                match r {
                    $(Refusal::$id => &self.$name,)*
                }
            }

            /// Every status with its key.
            pub fn all(&self) -> Vec<(&'static str, &Status)> {
                vec![
                    $((stringify!($name), &self.$name),)*
                    ("no_route", &self.no_route),
                    ("not_registered", &self.not_registered),
                ]
            }
        }
    };
}

for_each_refusal!(refusals_section);

impl NumbersConfig {
    pub fn check(&self, p: &mut Problems<'_>) {
        let cc = &self.default_country_code;
        if cc.len() > 3 || !cc.bytes().all(|b| b.is_ascii_digit()) {
            p.bad(
                "numbers.default_country_code",
                "must be 1 to 3 digits, or empty",
            );
        }
    }
}

impl Refusals {
    pub fn check(&self, p: &mut Problems<'_>) {
        for (name, st) in self.all() {
            let key = format!("refusals.{name}");
            if !(400..=699).contains(&st.status) {
                p.bad(&key, format!("status {} is not 400..699", st.status));
            }
            if st.reason.is_empty() || st.reason.contains(['\r', '\n']) {
                p.bad(&key, "reason must be one non-empty line");
            }
        }
    }
}
