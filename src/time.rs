//! Time: the [`Clock`] every running part reads (one, passed in, so tests
//! can move it), and wall-clock helpers: unix seconds and RFC 3339 (UTC)
//! text for the CLI and the store. Decisions take a [`Now`] as an argument;
//! only the edges read a clock.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// One reading of the clock: monotonic time for timers, wall time for
/// records and conditions. Read once per batch of work and passed down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Now {
    /// Monotonic: timers and durations.
    pub mono: Instant,
    /// Unix milliseconds: records, events, conditions.
    pub unix_ms: i64,
}

impl Now {
    /// Unix seconds.
    pub fn unix(&self) -> i64 {
        self.unix_ms.div_euclid(1000)
    }

    /// This reading moved `d` ahead.
    pub fn after(&self, d: Duration) -> Now {
        Now {
            mono: self.mono + d,
            unix_ms: self.unix_ms.saturating_add(d.as_millis() as i64),
        }
    }
}

/// A source of [`Now`]. The server reads [`SystemClock`]; tests hand it a
/// [`ManualClock`] and move time forward instead of waiting.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> Now;
}

/// A clock shared by the parts of a server.
pub type SharedClock = Arc<dyn Clock>;

/// The operating system's clocks.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Now {
        Now {
            mono: Instant::now(),
            unix_ms: now_ms(),
        }
    }
}

/// The system clock plus an offset that only grows: time flows as usual,
/// and [`ManualClock::advance`] jumps it ahead (both monotonic and wall
/// time), so a test of a one-hour timer takes milliseconds. Used by tests
/// of timers, limits and expiry.
#[derive(Debug, Default)]
pub struct ManualClock {
    offset: Mutex<Duration>,
}

impl ManualClock {
    /// A clock at the real time.
    pub fn new() -> Arc<ManualClock> {
        Arc::new(ManualClock::default())
    }

    /// Moves the clock `d` ahead.
    pub fn advance(&self, d: Duration) {
        if let Ok(mut o) = self.offset.lock() {
            *o += d;
        }
    }

    fn offset(&self) -> Duration {
        self.offset.lock().map(|o| *o).unwrap_or_default()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Now {
        SystemClock.now().after(self.offset())
    }
}

/// Seconds since the unix epoch.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Milliseconds since the unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Formats unix milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn format_ms(t: i64) -> String {
    let s = format(t.div_euclid(1000));
    format!("{}.{:03}Z", s.trim_end_matches('Z'), t.rem_euclid(1000))
}

/// Latest time accepted from outside: 9999-12-31T23:59:59Z. Keeps every
/// sum of a time and a duration far from `i64` overflow.
pub const MAX_TIME: i64 = 253_402_300_799;

/// Longest duration accepted from outside (idle lifetime, talk budget,
/// call length): 100 years in seconds.
pub const MAX_SECS: u64 = 3_155_760_000;

/// Parses an RFC 3339 timestamp (`2026-11-23T10:00:00Z`,
/// `2026-11-23T18:00:00+08:00`, optional fraction) into unix seconds, by
/// jiff. Impossible dates (Feb 31), leap seconds (`:60`), bare numbers and
/// years outside 0001-9999 are `None`.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let s = s.trim();
    // jiff reads a leap second as :59; we refuse it instead of moving it.
    if s.get(16..19) == Some(":60") {
        return None;
    }
    let ts: jiff::Timestamp = s.parse().ok()?;
    let t = ts.as_second();
    (-62_135_596_800..=MAX_TIME).contains(&t).then_some(t)
}

/// Parses what an operator types: unix seconds (0 to [`MAX_TIME`]) or
/// RFC 3339.
pub fn parse(s: &str) -> Option<i64> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse::<i64>().ok().filter(|t| *t <= MAX_TIME);
    }
    parse_rfc3339(s)
}

/// Formats a day counted from 1970-01-01 as `YYYY-MM-DD`.
pub fn day_to_date(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Formats unix seconds as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format(t: i64) -> String {
    let days = t.div_euclid(86400);
    let secs = t.rem_euclid(86400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

// Howard Hinnant's algorithm: exact for the proleptic Gregorian calendar.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_manual_clock_moves_both_times_ahead() {
        use super::Clock;
        let c = super::ManualClock::new();
        let t0 = c.now();
        c.advance(std::time::Duration::from_secs(3600));
        let t1 = c.now();
        assert!(t1.mono.duration_since(t0.mono).as_secs() >= 3600);
        assert!(t1.unix() - t0.unix() >= 3600);
    }

    #[test]
    fn rfc3339_round_trips() {
        let t = super::parse("2026-11-23T10:37:32Z").expect("valid");
        assert_eq!(t, 1795430252);
        assert_eq!(super::format(t), "2026-11-23T10:37:32Z");
        assert_eq!(super::parse("1795430252"), Some(t));
        assert_eq!(super::parse("2026-13-01T00:00:00Z"), None);
        assert_eq!(super::parse("yesterday"), None);
    }

    #[test]
    fn impossible_times_and_out_of_range_values_are_refused() {
        use super::{parse, parse_rfc3339};
        assert_eq!(parse_rfc3339("2026-02-31T00:00:00Z"), None);
        assert_eq!(parse_rfc3339("2026-11-23T23:59:60Z"), None);
        assert_eq!(parse_rfc3339("-1"), None);
        assert_eq!(parse_rfc3339("1795430252"), None);
        assert_eq!(parse("-1"), None);
        assert_eq!(parse("9223372036854775807"), None);
        assert_eq!(
            parse_rfc3339("2026-11-23T18:37:32+08:00"),
            parse_rfc3339("2026-11-23T10:37:32Z")
        );
        assert_eq!(parse_rfc3339("2026-11-23T10:37:32.250Z"), Some(1795430252));
    }
}
