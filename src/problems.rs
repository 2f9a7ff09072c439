//! What a config section's check finds wrong with it: each problem by its
//! dotted key (`sip.t1_ms`) and reason. Each module checks its own section
//! with this; `config` assembles the sections, finds each key's line in the
//! file and says every problem at once.

use std::fmt::Display;

/// The problems found so far, and which keys the operator's file sets.
pub struct Problems<'t> {
    set: &'t dyn Fn(&str) -> bool,
    found: Vec<(String, String)>,
}

impl<'t> Problems<'t> {
    /// `set` says whether the file itself sets a key (rather than the
    /// defaults).
    pub fn new(set: &'t dyn Fn(&str) -> bool) -> Self {
        Problems {
            set,
            found: Vec::new(),
        }
    }

    /// `key` is wrong, for `reason`.
    pub fn bad(&mut self, key: &str, reason: impl Into<String>) {
        self.found.push((key.to_string(), reason.into()));
    }

    /// Whether the file itself sets `key`: of two keys that disagree, the
    /// one the operator wrote is the one to name.
    pub fn set(&self, key: &str) -> bool {
        (self.set)(key)
    }

    /// Every `(key, value)` that is 0 said to need at least 1.
    pub fn at_least_one(&mut self, values: &[(&str, u64)]) {
        for (key, v) in values {
            if *v == 0 {
                self.bad(key, "must be at least 1");
            }
        }
    }

    /// Every failed result of `key`'s values, with its error.
    pub fn each<T, E: Display>(
        &mut self,
        key: &str,
        results: impl IntoIterator<Item = Result<T, E>>,
    ) {
        for r in results {
            if let Err(e) = r {
                self.bad(key, e.to_string());
            }
        }
    }

    /// `v` must be an `IP:port` address.
    pub fn address(&mut self, key: &str, v: &str) {
        if v.parse::<std::net::SocketAddr>().is_err() {
            self.bad(key, format!("{v:?} is not an IP:port address"));
        }
    }

    /// Every problem found: (key, reason).
    pub fn done(self) -> Vec<(String, String)> {
        self.found
    }
}
