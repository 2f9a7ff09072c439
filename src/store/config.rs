//! `[storage]` (where the data lives) and `[records]` (how long call
//! records are kept).
use std::path::PathBuf;

use serde::Deserialize;

/// `[storage]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// SQLite directory.
    pub data_dir: PathBuf,
}

/// `[records]`: call records.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordsConfig {
    /// Retention in days; 0 = forever.
    pub keep_days: u32,
}
