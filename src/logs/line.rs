//! The shape of a log line for files and journals: the same text as
//! `tracing_subscriber`'s default format without colour (`2026-12-05T08:
//! 33:21.195397Z  INFO message key=value ...`), written for less.
//!
//! Why not the default: a call writes one line as it ends, and the default
//! format spent a third of that line's 10,500 instructions on the clock's
//! calendar arithmetic and on colour wrappers around plain text (issue 12,
//! ninth round). Here the date and time to the second are worked out once
//! a second per thread and the rest is copied; fields are formatted as the
//! default does.

use std::cell::RefCell;
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The event format: UTC timestamp to the microsecond, level, fields.
pub struct Line;

thread_local! {
    /// The last second formatted on this thread, and its text.
    static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

impl<S, N> FormatEvent<S, N> for Line
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        stamp(&mut writer, now.as_secs(), now.subsec_micros())?;
        writer.write_str(level(event.metadata().level()))?;
        ctx.format_fields(writer.by_ref(), event)?;
        writer.write_char('\n')
    }
}

/// The fields of a line as the default format writes them without colour:
/// the message, then ` name=value` with values as `Debug` shows them
/// (strings quoted, `%` values displayed).
pub struct Fields;

impl<'w> FormatFields<'w> for Fields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut v = Visitor {
            w: writer,
            empty: true,
            result: Ok(()),
        };
        fields.record(&mut v);
        v.result
    }
}

struct Visitor<'w> {
    w: Writer<'w>,
    empty: bool,
    result: fmt::Result,
}

impl Visitor<'_> {
    /// Starts a field: a space unless it is the first, then `name=`; the
    /// message has no name.
    fn name(&mut self, field: &Field) -> fmt::Result {
        if field.name() == "message" {
            if !self.empty {
                self.w.write_str(" ")?;
            }
        } else {
            if !self.empty {
                self.w.write_str(" ")?;
            }
            let name = field.name();
            self.w.write_str(name.strip_prefix("r#").unwrap_or(name))?;
            self.w.write_str("=")?;
        }
        self.empty = false;
        Ok(())
    }

    fn put(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        // What `log` bridges carry as fields the default format leaves out.
        if self.result.is_err() || field.name().starts_with("log.") {
            return;
        }
        self.result = self.name(field).and_then(|()| value(&mut self.w));
    }
}

impl Visit for Visitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        let message = field.name() == "message";
        self.put(field, |w| {
            if message {
                w.write_str(value)
            } else {
                write!(w, "{value:?}")
            }
        });
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, |w| write!(w, "{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, |w| write!(w, "{value:?}"));
    }
}

/// `YYYY-MM-DDTHH:MM:SS.uuuuuuZ ` for `secs` and `micros` past the epoch.
fn stamp(w: &mut impl fmt::Write, secs: u64, micros: u32) -> fmt::Result {
    SECOND.with(|s| {
        let mut s = s.borrow_mut();
        if s.0 != secs {
            let text = i64::try_from(secs)
                .ok()
                .and_then(|t| jiff::Timestamp::from_second(t).ok())
                .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S").to_string())
                .unwrap_or_else(|| "????-??-??T??:??:??".into());
            *s = (secs, text);
        }
        w.write_str(&s.1)
    })?;
    let mut frac = *b".000000Z ";
    let mut n = micros.min(999_999);
    for d in frac[1..7].iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
    // Only ASCII digits and punctuation went in.
    w.write_str(std::str::from_utf8(&frac).map_err(|_| fmt::Error)?)
}

/// The level as the default format shows it: right-aligned in five, then
/// a space.
fn level(l: &Level) -> &'static str {
    match *l {
        Level::ERROR => "ERROR ",
        Level::WARN => " WARN ",
        Level::INFO => " INFO ",
        Level::DEBUG => "DEBUG ",
        Level::TRACE => "TRACE ",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64, micros: u32) -> String {
        let mut s = String::new();
        stamp(&mut s, secs, micros).expect("format");
        s
    }

    #[test]
    fn the_timestamp_is_utc_to_the_microsecond() {
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000000Z ");
        assert_eq!(at(1_796_547_207, 290_124), "2026-12-06T08:53:27.290124Z ");
        // A leap day, and the next second on the same thread.
        assert_eq!(at(1_709_164_799, 999_999), "2024-02-28T23:59:59.999999Z ");
        assert_eq!(at(1_709_164_800, 7), "2024-02-29T00:00:00.000007Z ");
    }

    /// A subscriber writing into a buffer, in `Line` or the default format.
    fn lines(ours: bool, emit: impl Fn()) -> String {
        use std::sync::{Arc, Mutex};
        #[derive(Clone, Default)]
        struct Buf(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().expect("lock").extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let out = buf.clone();
        let fmt = tracing_subscriber::fmt()
            .with_target(false)
            .with_ansi(false)
            .with_max_level(Level::DEBUG)
            .with_writer(move || out.clone());
        if ours {
            let fmt = fmt.fmt_fields(Fields).event_format(Line);
            tracing::subscriber::with_default(fmt.finish(), emit);
        } else {
            tracing::subscriber::with_default(fmt.finish(), emit);
        }
        let text = String::from_utf8(buf.0.lock().expect("lock").clone()).expect("utf8");
        text
    }

    #[test]
    fn lines_read_as_the_default_format_writes_them() {
        let emit = || {
            let masked = "+86138****0000";
            tracing::info!(call = 7, caller = %masked, why = "caller hung up", "call ended");
            tracing::warn!(error = ?"boom", r#type = "x", n = -3i64, ok = true, "saving a batch failed");
            tracing::debug!("no fields");
            tracing::info!(sizes = "calls=1 dialogs=2", at = 2.5f64, "engine tables");
            tracing::error!(message = "named message", u = u64::MAX);
        };
        let (ours, theirs) = (lines(true, emit), lines(false, emit));
        assert_eq!(ours.lines().count(), 5, "{ours}");
        for (a, b) in ours.lines().zip(theirs.lines()) {
            // The same shape of timestamp, then the same text.
            assert_eq!(a.len(), b.len(), "{a}\n{b}");
            assert_eq!(a[27..], b[27..]);
            assert!(a[..27].ends_with('Z') && a.as_bytes()[10] == b'T', "{a}");
        }
        assert!(
            ours.contains(" INFO call ended call=7 caller=+86138****0000 why=\"caller hung up\"")
        );
    }

    #[test]
    fn the_level_is_padded_as_the_default_format_pads_it() {
        for l in [
            Level::ERROR,
            Level::WARN,
            Level::INFO,
            Level::DEBUG,
            Level::TRACE,
        ] {
            assert_eq!(level(&l), format!("{:>5} ", l.as_str()));
        }
    }
}
