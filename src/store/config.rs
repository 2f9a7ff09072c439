//! `[storage]` (where the data lives) and `[records]` (how long call
//! records are kept).
use std::path::PathBuf;

use serde::Deserialize;

use super::Location;
use crate::problems::Problems;

/// `[storage]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// The node's own files: SQLite's database (when `url` is empty),
    /// recordings, the instance lock.
    pub data_dir: PathBuf,
    /// Where bindings and everything else live: empty for SQLite in
    /// `data_dir`, or `postgresql://user@host:5432/db` for a database
    /// that several nodes share.
    pub url: String,
    /// This node's name among the nodes of one database (empty: the
    /// host's name).
    pub node: String,
    /// What uncounted bindings do while a shared database is out of reach.
    pub offline: Offline,
}

/// `[storage] offline`.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Offline {
    /// Route them from the node's table.
    Route,
    /// Refuse them.
    Refuse,
}

impl StorageConfig {
    /// Where the data lives.
    pub fn location(&self) -> Location {
        Location {
            url: self.url.clone(),
            dir: self.data_dir.clone(),
            origin: String::new(),
        }
    }

    /// Checks the URL names a backend this build has.
    pub fn check(&self, p: &mut Problems<'_>) {
        let scheme = self
            .url
            .split_once(':')
            .map_or(self.url.as_str(), |(s, _)| s);
        if !matches!(scheme, "" | "sqlite" | "postgres" | "postgresql") {
            p.bad(
                "storage.url",
                format!("{scheme:?}: the backends are sqlite (empty) and postgresql://"),
            );
        }
        if self.node.len() > 64
            || !self
                .node
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            p.bad(
                "storage.node",
                "letters, digits, '-', '_' and '.', at most 64",
            );
        }
    }
}

/// `[records]`: call records.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordsConfig {
    /// Retention in days; 0 = forever.
    pub keep_days: u32,
}
