//! A binding's time zone: where its days begin, for the limits that count
//! per day. IANA names (`Asia/Shanghai`), read from the system's zoneinfo
//! or, on a host without one, the copy built into the binary.

use std::sync::Arc;

use jiff::tz::TimeZone;

/// An IANA time zone, compared by name.
#[derive(Clone, Debug)]
pub struct Zone {
    name: Arc<str>,
    tz: TimeZone,
}

impl Zone {
    /// Looks up an IANA name; the error says why it is not one.
    pub fn parse(name: &str) -> Result<Zone, String> {
        if name.is_empty() || name.len() > 64 {
            return Err("must be an IANA time zone name such as Europe/Berlin".into());
        }
        let tz =
            TimeZone::get(name).map_err(|_| format!("{name:?} is not a known IANA time zone"))?;
        Ok(Zone {
            name: name.into(),
            tz,
        })
    }

    /// The IANA name as given.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Days since 1970-01-01 in this zone at unix second `now`: the number
    /// changes at local midnight, whatever the offset that day.
    pub fn day(&self, now: i64) -> i64 {
        let offset = jiff::Timestamp::from_second(now)
            .map(|t| i64::from(self.tz.to_offset(t).seconds()))
            .unwrap_or(0);
        now.saturating_add(offset).div_euclid(86_400)
    }
}

impl PartialEq for Zone {
    fn eq(&self, other: &Zone) -> bool {
        self.name == other.name
    }
}

impl Eq for Zone {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_begin_at_local_midnight() {
        let sh = Zone::parse("Asia/Shanghai").expect("zone");
        // 2026-12-06T15:59:59Z is 23:59:59 in Shanghai; a second later the
        // local day turns while UTC's does not.
        let before = 1_796_572_799;
        assert_eq!(sh.day(before) + 1, sh.day(before + 1));
        assert_eq!(before.div_euclid(86_400), (before + 1).div_euclid(86_400));
        // New York's midnight moves with daylight saving time: 04:00Z in
        // summer, 05:00Z in winter.
        let ny = Zone::parse("America/New_York").expect("zone");
        let summer_midnight = 1_783_137_600; // 2026-07-04T04:00:00Z
        assert_eq!(ny.day(summer_midnight - 1) + 1, ny.day(summer_midnight));
        let winter_midnight = 1_796_360_400; // 2026-12-04T05:00:00Z
        assert_eq!(ny.day(winter_midnight - 1) + 1, ny.day(winter_midnight));
        assert!(Zone::parse("Mars/Olympus").is_err());
        assert!(Zone::parse("").is_err());
    }
}
