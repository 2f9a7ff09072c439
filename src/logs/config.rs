//! `[log]`: what is logged, with the check of its filter.
use serde::Deserialize;

use crate::problems::Problems;

/// `[log]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// EnvFilter directive.
    pub level: String,
}
impl LogConfig {
    pub fn check(&self, p: &mut Problems<'_>) {
        if tracing_subscriber::EnvFilter::try_new(&self.level).is_err() {
            p.bad(
                "log.level",
                format!("{:?} is not a valid filter", self.level),
            );
        }
    }
}
