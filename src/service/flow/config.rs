//! `[flow]`: the defaults of flow 2 that each tenant may override, with
//! the checks of their values.
use serde::Deserialize;

use crate::problems::Problems;

/// `[flow]`: the defaults of flow 2, which each tenant may override.
#[derive(Clone, Debug, Deserialize, serde::Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FlowSection {
    /// First digit of soft numbers.
    pub soft_flag: u8,
    /// Second digit of soft numbers.
    pub soft_reserved: u8,
    /// A user idle this long loses its soft number (0: never).
    pub idle_recycle_secs: u64,
    /// A recycled soft number rests this long before it is issued again.
    pub soft_quarantine_secs: u64,
    /// A soft number is pushed to an agent at most once in this long.
    pub push_window_secs: u64,
    /// Interactions older than this do not permit an acquisition.
    pub lookback_secs: u64,
    /// How long an acquired X lives after the last request or interaction.
    pub x_lifetime_secs: u64,
    /// Longest call through an acquired X, seconds (0: `[defaults]`).
    pub x_max_call_secs: u32,
    /// Answered calls an acquired X allows (0: `[defaults]`).
    pub x_max_calls: u32,
}

impl FlowSection {
    /// `country` is `numbers.default_country_code`: soft numbers must not
    /// look like its mobile numbers.
    pub fn check(&self, country: &str, p: &mut Problems<'_>) {
        if self.soft_flag > 9 || self.soft_reserved > 9 || self.soft_flag == 0 {
            p.bad(
                "flow.soft_flag",
                "soft_flag 1 to 9 and soft_reserved 0 to 9",
            );
        } else if crate::bindings::number::mobile_first_digits(country).contains(&self.soft_flag) {
            p.bad(
                "flow.soft_flag",
                format!(
                    "{} starts real mobile numbers of +{country}: soft numbers must not look like them",
                    self.soft_flag
                ),
            );
        }
        let spans = [
            self.lookback_secs,
            self.x_lifetime_secs,
            self.push_window_secs,
            self.idle_recycle_secs,
            self.soft_quarantine_secs,
        ];
        if spans.iter().any(|s| *s > 3_155_760_000) {
            p.bad(
                "flow.x_lifetime_secs",
                "spans of [flow] are at most 100 years",
            );
        }
        if self.lookback_secs == 0 || self.x_lifetime_secs == 0 || self.push_window_secs == 0 {
            p.bad(
                "flow.x_lifetime_secs",
                "lookback_secs, x_lifetime_secs and push_window_secs must be at least 1",
            );
        }
    }
}
