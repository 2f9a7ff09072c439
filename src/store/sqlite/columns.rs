//! SQLite: a binding's columns. The limits' columns follow their one
//! definition (`bindings::limits`): each limit is a nullable INTEGER of its
//! own name, added at open when missing, and read, inserted and updated
//! from the same list. The other columns are spelled here once.

use rusqlite::types::ToSql;
use rusqlite::{Connection, Statement};

use crate::bindings::limits::for_each_limit;
use crate::bindings::{Binding, Conditions, Direction, Kind, Number, Usage, Zone};
use crate::store::{NewBinding, StoreError};

/// The columns every row has, before the limits' (their order is
/// `read_row`'s and `bind_row`'s).
macro_rules! fixed {
    () => {
        "id, caller, virtual, callee, not_before, not_after, allowed_callers, calls_used, \
         talk_secs_used, created_at, tenant_id, kind, direction, last_call_at, record, \
         announce, time_zone, day, day_calls"
    };
}

/// How many columns `fixed!` names.
const FIXED: usize = 19;

macro_rules! limit_columns {
    (@q $name:ident) => { ", ?" };
    ($($id:ident $name:ident: $ty:ty = $def:literal, $min:literal..=$max:literal,
       counts $counts:ident, refusal $refusal:ident, $doc:literal;)*) => {
        /// Every column of a binding.
        pub(crate) const SELECT: &str =
            concat!("SELECT ", fixed!(), $(", ", stringify!($name),)* " FROM bindings");

        /// Inserts a row: the set columns, then the limits'.
        pub(super) const INSERT: &str = concat!(
            "INSERT INTO bindings (caller, virtual, callee, not_before, not_after, \
             allowed_callers, created_at, updated_at, tenant_id, kind, direction, record, \
             announce, time_zone", $(", ", stringify!($name),)*
            ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?", $(limit_columns!(@q $name),)* ")"
        );

        /// Replaces a row's conditions; the id is the last parameter.
        pub(super) const UPDATE: &str = concat!(
            "UPDATE bindings SET not_before = ?, not_after = ?, allowed_callers = ?, \
             direction = ?, record = ?, announce = ?, time_zone = ?, updated_at = ?",
            $(", ", stringify!($name), " = ?",)* " WHERE id = ?"
        );

        /// The limits' names, to add a column that a database lacks.
        const LIMIT_NAMES: &[&str] = &[$(stringify!($name),)*];

        fn read_limits(r: &rusqlite::Row<'_>, c: &mut Conditions) -> rusqlite::Result<()> {
            let mut i = FIXED;
            $(
                // Stored values may predate the API's range checks.
                c.$name = r.get::<_, Option<i64>>(i)?
                    .map(|v| <$ty>::try_from(v.max(0)).unwrap_or(<$ty>::MAX));
                i += 1;
            )*
            let _ = i;
            Ok(())
        }

        fn limit_params(c: &Conditions) -> Vec<Option<i64>> {
            vec![$(c.$name.map(|v| i64::try_from(v).unwrap_or(i64::MAX)),)*]
        }
    };
}

for_each_limit!(limit_columns);

/// Adds the column of every limit the database does not have yet: a new
/// limit needs no migration of its own.
pub(super) fn ensure(conn: &Connection) -> Result<(), StoreError> {
    let mut have = Vec::new();
    {
        let mut stmt = conn.prepare("SELECT name FROM pragma_table_info('bindings')")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        for name in rows {
            have.push(name?);
        }
    }
    for name in LIMIT_NAMES {
        if !have.iter().any(|h| h == name) {
            conn.execute_batch(&format!("ALTER TABLE bindings ADD COLUMN {name} INTEGER"))?;
        }
    }
    Ok(())
}

/// Allowed callers as stored: comma-separated, `None` for anyone.
fn allowed_text(c: &Conditions) -> Option<String> {
    c.allowed_callers
        .as_ref()
        .map(|v| v.iter().map(Number::as_str).collect::<Vec<_>>().join(","))
}

/// Runs [`INSERT`] for one row.
pub(super) fn insert(stmt: &mut Statement<'_>, b: &NewBinding) -> Result<(), StoreError> {
    let c = &b.conditions;
    let allowed = allowed_text(c);
    let limits = limit_params(c);
    let (a, x, callee) = (b.a.as_ref().map(Number::as_str), b.x.as_str(), b.b.as_str());
    let mut params: Vec<&dyn ToSql> = vec![
        &a as &dyn ToSql,
        &x,
        &callee,
        &c.not_before,
        &c.not_after,
        &allowed,
        &b.created_at,
        &b.created_at,
        &b.tenant,
    ];
    let kind = b.kind.as_str();
    let direction = c.direction.map(Direction::as_str);
    let zone = c.time_zone.as_ref().map(Zone::name);
    params.extend([
        &kind as &dyn ToSql,
        &direction,
        &c.record,
        &c.announce,
        &zone,
    ]);
    params.extend(limits.iter().map(|l| l as &dyn ToSql));
    stmt.execute(params.as_slice())?;
    Ok(())
}

/// Runs [`UPDATE`] for one binding.
pub(super) fn update(
    conn: &Connection,
    id: i64,
    c: &Conditions,
    now: i64,
) -> Result<(), StoreError> {
    let allowed = allowed_text(c);
    let direction = c.direction.map(Direction::as_str);
    let zone = c.time_zone.as_ref().map(Zone::name);
    let limits = limit_params(c);
    let mut params: Vec<&dyn ToSql> = vec![
        &c.not_before as &dyn ToSql,
        &c.not_after,
        &allowed,
        &direction,
        &c.record,
        &c.announce,
        &zone,
        &now,
    ];
    params.extend(limits.iter().map(|l| l as &dyn ToSql));
    params.push(&id);
    conn.prepare_cached(UPDATE)?.execute(params.as_slice())?;
    Ok(())
}

/// A binding from a row of [`SELECT`]; a row that cannot be one is
/// `Corrupt`, named by its id.
pub(crate) fn read_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<Binding, StoreError>> {
    let id: i64 = r.get(0)?;
    let corrupt = |reason: String| Ok(Err(StoreError::Corrupt { id, reason }));
    let allowed: Option<String> = r.get(6)?;
    let zone = match r.get::<_, Option<String>>(16)? {
        None => None,
        Some(name) => match Zone::parse(&name) {
            Ok(z) => Some(z),
            Err(e) => return corrupt(format!("time_zone: {e}")),
        },
    };
    let mut conditions = Conditions {
        not_before: r.get(4)?,
        not_after: r.get(5)?,
        allowed_callers: allowed.map(|s| {
            s.split(',')
                .filter(|p| !p.is_empty())
                .map(|p| Number::from_normalised(p.to_string()))
                .collect()
        }),
        direction: r
            .get::<_, Option<String>>(12)?
            .and_then(|d| Direction::parse(&d)),
        record: r.get::<_, i64>(14)? != 0,
        announce: r.get::<_, Option<i64>>(15)?.map(|v| v != 0),
        time_zone: zone,
        ..Default::default()
    };
    read_limits(r, &mut conditions)?;
    let Ok(calls_used) = u32::try_from(r.get::<_, i64>(7)?) else {
        return corrupt("calls_used out of range".into());
    };
    let kind: String = r.get(11)?;
    let Some(kind) = Kind::parse(&kind) else {
        return corrupt(format!("unknown kind {kind:?}"));
    };
    Ok(Ok(Binding {
        id,
        tenant: r.get(10)?,
        kind,
        a: r.get::<_, Option<String>>(1)?.map(Number::from_normalised),
        x: Number::from_normalised(r.get(2)?),
        b: Number::from_normalised(r.get(3)?),
        conditions,
        created_at: r.get(9)?,
        usage: Usage {
            calls_used,
            reserved: 0,
            talk_secs_used: r.get::<_, i64>(8)?.max(0) as u64,
            last_call_at: r.get(13)?,
            talk_leased: 0,
            day: r.get(17)?,
            day_calls: u32::try_from(r.get::<_, i64>(18)?.max(0)).unwrap_or(u32::MAX),
        },
    }))
}
