//! The table saved to a file at a clean stop and read back at the next
//! start (issue 32): rows with their parties' integers and the interned
//! names as they are, so that a restart neither reads the store's rows nor
//! parses a number. The file carries a [`Stamp`]: the server replays the
//! operator log after it and reads the store instead when another server
//! started since (`server::load`).
//!
//! Format (little-endian): the magic line, the stamp, the names (each its
//! references and its text), then the rows: id, tenant, A, X, B,
//! created_at, kind, flags, and the use and the conditions where the flags
//! say the row has any.

use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;

use super::row::Row;
use super::rows::Rows;
use super::{BindingTable, Defaults, Kind};
use crate::bindings::conditions::{Conditions, Direction, Usage};
use crate::bindings::limits::for_each_limit;
use crate::bindings::number::Number;
use crate::bindings::zone::Zone;

/// What a saved table is current with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    /// The last operator change its rows reflect.
    pub seen: i64,
    /// The number of the server's start that saved it, as the store
    /// counts starts.
    pub start: i64,
}

/// Why a saved table could not be written or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// The file could not be written or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What failed.
        #[source]
        source: io::Error,
    },
    /// The file is not a saved table this version reads.
    #[error("{path}: {why}")]
    Corrupt {
        /// The file.
        path: String,
        /// What is wrong.
        why: String,
    },
}

/// The first bytes of a saved table: what it is, and its format.
const MAGIC: &[u8; 16] = b"sipmask-table-1\n";
/// The fewest bytes a saved row takes: six integers, a kind's length and
/// its shortest name, the flags.
const ROW: u64 = 6 * 8 + 2 + 3 + 1;
/// Row flags: the row has a use, conditions of its own, a last call.
const USED: u8 = 1;
const OWN: u8 = 2;
const LAST_CALL: u8 = 4;

/// A format error found while reading (not an I/O one).
fn bad(why: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.into())
}

impl BindingTable {
    /// Saves the table to `path` (through a file beside it, renamed once
    /// whole, so a crash mid-way leaves no half table).
    pub fn save(&self, path: &Path, stamp: Stamp) -> Result<(), SnapshotError> {
        let err = |source| SnapshotError::Io {
            path: path.display().to_string(),
            source,
        };
        let part = path.with_extension("part");
        let write = || -> io::Result<()> {
            let mut file = std::fs::OpenOptions::new();
            file.write(true).create(true).truncate(true);
            // Parties' numbers: for sipmask's user alone, as the database.
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut file, 0o600);
            let mut o = BufWriter::with_capacity(1 << 20, file.open(&part)?);
            o.write_all(MAGIC)?;
            o.write_all(&stamp.seen.to_le_bytes())?;
            o.write_all(&stamp.start.to_le_bytes())?;
            let rows = self.read_rows();
            put_u64(&mut o, rows.names().len() as u64)?;
            for (name, refs) in rows.names() {
                o.write_all(&refs.to_le_bytes())?;
                put_str(&mut o, name.as_str())?;
            }
            put_u64(&mut o, rows.len() as u64)?;
            for r in rows.iter() {
                put_row(&mut o, r)?;
            }
            o.into_inner().map_err(|e| e.into_error())?.sync_all()
        };
        write().map_err(err)?;
        std::fs::rename(&part, path).map_err(err)
    }

    /// Reads a table saved by [`BindingTable::save`].
    pub fn restore(
        path: &Path,
        defaults: Defaults,
    ) -> Result<(BindingTable, Stamp), SnapshotError> {
        let file = std::fs::File::open(path).map_err(|source| SnapshotError::Io {
            path: path.display().to_string(),
            source,
        })?;
        // A row takes at least ROW bytes: a count the file cannot hold
        // is damage, not a reason to ask for memory.
        let most = file.metadata().map_or(0, |m| m.len()) / ROW;
        let mut i = BufReader::with_capacity(1 << 20, file);
        let read = |i: &mut BufReader<std::fs::File>| -> io::Result<(Rows, Stamp)> {
            if get::<16>(i)? != *MAGIC {
                return Err(bad("not a saved table of this version"));
            }
            let stamp = Stamp {
                seen: i64::from_le_bytes(get(i)?),
                start: i64::from_le_bytes(get(i)?),
            };
            let count = u64::from_le_bytes(get(i)?);
            let mut names = Vec::new();
            for _ in 0..count {
                let refs = u32::from_le_bytes(get(i)?);
                names.push((Number::from_normalised(get_str(i)?), refs));
            }
            let count = u64::from_le_bytes(get(i)?);
            if count > most {
                return Err(bad(format!("{count} rows cannot fit in the file")));
            }
            let mut rows = Vec::with_capacity(usize::try_from(count).map_err(|_| bad("count"))?);
            for _ in 0..count {
                rows.push(get_row(i, names.len())?);
            }
            Ok((Rows::rebuilt(rows, names), stamp))
        };
        let (rows, stamp) = read(&mut i).map_err(|e| match e.kind() {
            io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof => SnapshotError::Corrupt {
                path: path.display().to_string(),
                why: e.to_string(),
            },
            _ => SnapshotError::Io {
                path: path.display().to_string(),
                source: e,
            },
        })?;
        let table = BindingTable {
            rows: std::sync::RwLock::new(rows),
            defaults,
            ..Default::default()
        };
        Ok((table, stamp))
    }
}

fn put_u64(o: &mut impl Write, v: u64) -> io::Result<()> {
    o.write_all(&v.to_le_bytes())
}

fn put_str(o: &mut impl Write, s: &str) -> io::Result<()> {
    let len = u16::try_from(s.len()).map_err(|_| bad("name too long"))?;
    o.write_all(&len.to_le_bytes())?;
    o.write_all(s.as_bytes())
}

fn put_opt(o: &mut impl Write, v: Option<i64>) -> io::Result<()> {
    o.write_all(&[u8::from(v.is_some())])?;
    o.write_all(&v.unwrap_or(0).to_le_bytes())
}

fn get<const N: usize>(i: &mut impl Read) -> io::Result<[u8; N]> {
    let mut b = [0u8; N];
    i.read_exact(&mut b)?;
    Ok(b)
}

fn get_str(i: &mut impl Read) -> io::Result<String> {
    let len = u16::from_le_bytes(get(i)?);
    let mut b = vec![0u8; usize::from(len)];
    i.read_exact(&mut b)?;
    String::from_utf8(b).map_err(|_| bad("a name is not UTF-8"))
}

fn get_opt(i: &mut impl Read) -> io::Result<Option<i64>> {
    let [set] = get::<1>(i)?;
    let v = i64::from_le_bytes(get(i)?);
    Ok((set != 0).then_some(v))
}

fn put_row(o: &mut impl Write, r: &Row) -> io::Result<()> {
    let u = &r.usage;
    let used = u.calls_used != 0 || u.talk_secs_used != 0 || u.day != 0 || u.day_calls != 0;
    let flags = if used || u.last_call_at.is_some() {
        USED
    } else {
        0
    } | if r.sets_conditions() { OWN } else { 0 }
        | if u.last_call_at.is_some() {
            LAST_CALL
        } else {
            0
        };
    for v in [r.id, r.tenant] {
        o.write_all(&v.to_le_bytes())?;
    }
    for v in [r.a, r.x, r.b] {
        o.write_all(&v.to_le_bytes())?;
    }
    o.write_all(&r.created_at.to_le_bytes())?;
    put_str(o, r.kind.as_str())?;
    o.write_all(&[flags])?;
    if flags & USED != 0 {
        o.write_all(&u.calls_used.to_le_bytes())?;
        o.write_all(&u.talk_secs_used.to_le_bytes())?;
        o.write_all(&u.last_call_at.unwrap_or(0).to_le_bytes())?;
        o.write_all(&u.day.to_le_bytes())?;
        o.write_all(&u.day_calls.to_le_bytes())?;
    }
    if flags & OWN != 0 {
        put_conditions(o, r.conditions())?;
    }
    Ok(())
}

fn get_row(i: &mut impl Read, names: usize) -> io::Result<Row> {
    let mut r = Row::vacant();
    r.id = i64::from_le_bytes(get(i)?);
    r.tenant = i64::from_le_bytes(get(i)?);
    let [a, x, b] = [0; 3].map(|_| get::<8>(i).map(u64::from_le_bytes));
    (r.a, r.x, r.b) = (a?, x?, b?);
    if [r.a, r.x, r.b]
        .iter()
        .any(|&c| c & Rows::NAMED != 0 && (c & !Rows::NAMED) as usize >= names)
    {
        return Err(bad(format!("binding {} names no saved party", r.id)));
    }
    r.created_at = i64::from_le_bytes(get(i)?);
    let kind = get_str(i)?;
    r.kind = Kind::parse(&kind).ok_or_else(|| bad(format!("unknown kind {kind:?}")))?;
    let [flags] = get::<1>(i)?;
    if flags & USED != 0 {
        r.usage = Usage {
            calls_used: u32::from_le_bytes(get(i)?),
            talk_secs_used: u64::from_le_bytes(get(i)?),
            last_call_at: Some(i64::from_le_bytes(get(i)?)).filter(|_| flags & LAST_CALL != 0),
            day: i64::from_le_bytes(get(i)?),
            day_calls: u32::from_le_bytes(get(i)?),
            ..Usage::default()
        };
    }
    if flags & OWN != 0 {
        r.set_conditions(get_conditions(i)?);
    }
    Ok(r)
}

macro_rules! conditions_io {
    ($($id:ident $name:ident: $ty:ty = $def:literal, $min:literal..=$max:literal,
       counts $counts:ident, refusal $refusal:ident, $doc:literal;)*) => {
        /// Every field, named: a field added to [`Conditions`] does not
        /// compile here until it is saved too.
        fn put_conditions(o: &mut impl Write, c: &Conditions) -> io::Result<()> {
            let Conditions {
                not_before, not_after, $($name,)* allowed_callers, direction, record,
                announce, time_zone,
            } = c;
            put_opt(o, *not_before)?;
            put_opt(o, *not_after)?;
            $(put_opt(o, $name.map(|v| i64::try_from(v).unwrap_or(i64::MAX)))?;)*
            put_opt(o, allowed_callers.as_ref().map(|l| l.len() as i64))?;
            for n in allowed_callers.iter().flatten() {
                put_str(o, n.as_str())?;
            }
            put_str(o, direction.map_or("", Direction::as_str))?;
            o.write_all(&[u8::from(*record), announce.map_or(0, |a| 1 + u8::from(a))])?;
            put_str(o, time_zone.as_ref().map_or("", Zone::name))
        }

        fn get_conditions(i: &mut impl Read) -> io::Result<Conditions> {
            let not_before = get_opt(i)?;
            let not_after = get_opt(i)?;
            $(let $name = get_opt(i)?.map(|v| <$ty>::try_from(v.max(0)).unwrap_or(<$ty>::MAX));)*
            let allowed_callers = match get_opt(i)? {
                None => None,
                Some(n) => Some(
                    (0..n)
                        .map(|_| get_str(i).map(Number::from_normalised))
                        .collect::<io::Result<Vec<_>>>()?,
                ),
            };
            let direction = get_str(i)?;
            let direction = (!direction.is_empty())
                .then(|| Direction::parse(&direction).ok_or_else(|| bad("unknown direction")))
                .transpose()?;
            let [record, announce] = get::<2>(i)?;
            let zone = get_str(i)?;
            let time_zone = (!zone.is_empty())
                .then(|| Zone::parse(&zone).map_err(bad))
                .transpose()?;
            Ok(Conditions {
                not_before, not_after, $($name,)* allowed_callers, direction,
                record: record != 0,
                announce: (announce != 0).then_some(announce == 2),
                time_zone,
            })
        }
    };
}

for_each_limit!(conditions_io);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::{Binding, OPERATOR};

    fn binding(id: i64, a: Option<&str>, x: &str, b: &str) -> Binding {
        Binding {
            id,
            tenant: OPERATOR,
            kind: Kind::Cli,
            a: a.map(|a| Number::from_normalised(a.into())),
            x: Number::from_normalised(x.into()),
            b: Number::from_normalised(b.into()),
            conditions: Conditions::default(),
            created_at: 1_700_000_000 + id,
            usage: Usage::default(),
        }
    }

    #[test]
    fn a_saved_table_reads_back_the_same() {
        let t = BindingTable::new(Defaults::default());
        let mut all = vec![
            binding(
                1,
                Some("+8613800000001"),
                "+8617000000001",
                "+8615000000001",
            ),
            binding(2, None, "+8617000000002", "alice"),
            binding(3, Some("bob"), "+8617000000001", "carol"),
            binding(
                9,
                Some("+8613800000009"),
                "+8617000000009",
                "+8615000000009",
            ),
        ];
        all[0].conditions = Conditions {
            not_before: Some(5),
            not_after: Some(-7),
            max_calls: Some(3),
            idle_secs: Some(60),
            allowed_callers: Some(vec![Number::from_normalised("+861".into())]),
            direction: Direction::parse("a_to_b"),
            record: true,
            announce: Some(false),
            time_zone: Zone::parse("Asia/Shanghai").ok(),
            ..Default::default()
        };
        all[1].tenant = 4;
        all[1].kind = Kind::Digits;
        all[2].usage = Usage {
            calls_used: 2,
            talk_secs_used: 90,
            last_call_at: Some(1_700_000_100),
            day: 19_000,
            day_calls: 1,
            ..Usage::default()
        };
        for b in &all {
            t.insert(b.clone()).expect("insert");
        }
        // A name freed by a removal keeps its place: later names' integers
        // stay what the rows say.
        t.insert(binding(5, Some("dave"), "+8617000000005", "erin"))
            .expect("insert");
        t.remove(5);
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("table");
        let stamp = Stamp { seen: 42, start: 7 };
        t.save(&path, stamp).expect("save");
        let (back, got) = BindingTable::restore(&path, Defaults::default()).expect("restore");
        assert_eq!(got, stamp);
        assert_eq!(back.len(), all.len());
        for b in &all {
            assert_eq!(back.get(b.id).as_ref(), Some(b));
        }
        let caller = Number::from_normalised("bob".into());
        let x = Number::from_normalised("+8617000000001".into());
        assert_eq!(
            back.admit(&caller, &x, 1_700_000_200).map(|a| a.binding),
            Ok(3)
        );
        assert_eq!(back.uses_of(&x), 2);
        assert_eq!(
            back.tenant_of(&Number::from_normalised("+8617000000002".into())),
            Some(4)
        );
        // The new table takes new rows, and a freed name's place again.
        back.insert(binding(6, Some("frank"), "+8617000000006", "gina"))
            .expect("insert after restore");
        assert!(back
            .insert(binding(7, Some("bob"), "+8617000000001", "hal"))
            .is_err());
    }

    #[test]
    fn a_damaged_file_is_an_error_not_a_table() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("table");
        let t = BindingTable::new(Defaults::default());
        t.insert(binding(
            1,
            Some("+8613800000001"),
            "+8617000000001",
            "+8615000000001",
        ))
        .expect("insert");
        t.save(&path, Stamp { seen: 1, start: 1 }).expect("save");
        let whole = std::fs::read(&path).expect("read");
        for cut in [3, 40, whole.len() - 1] {
            std::fs::write(&path, &whole[..cut]).expect("write");
            let got = BindingTable::restore(&path, Defaults::default());
            assert!(
                matches!(got, Err(SnapshotError::Corrupt { .. })),
                "cut at {cut}"
            );
        }
    }
}
