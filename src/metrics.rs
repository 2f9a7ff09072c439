//! Metrics primitives shared by the layers that count things (the call
//! engine, the call policy, the API): a lock-free Prometheus histogram and
//! the text format's small helpers. Imports nothing from the rest of
//! sipmask.

use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds of the latency buckets, in seconds.
pub const BUCKETS: [f64; 10] = [
    0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 1.0,
];

/// A Prometheus histogram with fixed buckets, lock-free.
#[derive(Default)]
pub struct Histogram {
    counts: [AtomicU64; 11],
    sum_us: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, secs: f64) {
        let i = BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(BUCKETS.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum_us
            .fetch_add((secs * 1e6) as u64, Ordering::Relaxed);
    }

    /// Writes the histogram as `name`.
    pub fn render(&self, name: &str, help: &str, out: &mut String) {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} histogram\n"));
        let mut total = 0;
        for (i, b) in BUCKETS.iter().enumerate() {
            total += self.counts[i].load(Ordering::Relaxed);
            out.push_str(&format!("{name}_bucket{{le=\"{b}\"}} {total}\n"));
        }
        total += self.counts[BUCKETS.len()].load(Ordering::Relaxed);
        out.push_str(&format!("{name}_bucket{{le=\"+Inf\"}} {total}\n"));
        out.push_str(&format!(
            "{name}_sum {}\n{name}_count {total}\n",
            self.sum_us.load(Ordering::Relaxed) as f64 / 1e6
        ));
    }
}

/// Appends one counter or gauge with its HELP and TYPE lines.
pub fn metric(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(&str, u64)]) {
    out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
    for (labels, v) in samples {
        if labels.is_empty() {
            out.push_str(&format!("{name} {v}\n"));
        } else {
            out.push_str(&format!("{name}{{{labels}}} {v}\n"));
        }
    }
}
