//! SQLite: a binding's columns. The limits' columns follow their one
//! definition (`bindings::limits`): each limit is a nullable INTEGER of its
//! own name, added at open when missing, and read, inserted and updated
//! from the same list. The other columns are spelled here once.

use rusqlite::types::ToSql;
use rusqlite::{Connection, Statement};

use crate::bindings::limits::for_each_limit;
use crate::bindings::{Binding, Conditions, Direction, Number, Zone};
use crate::store::{NewBinding, StoreError};

macro_rules! limit_columns {
    (@q $name:ident) => { ", ?" };
    ($($id:ident $name:ident: $ty:ty = $def:literal, $min:literal..=$max:literal,
       counts $counts:ident, refusal $refusal:ident, $doc:literal;)*) => {
        /// Every column of a binding.
        pub(crate) const SELECT: &str =
            concat!("SELECT ", crate::store::rows::binding_columns!(), $(", ", stringify!($name),)* " FROM bindings");

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

/// A binding from a row of [`SELECT`] (`Corrupt` if it cannot be one).
pub(crate) fn read_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<Binding, StoreError>> {
    Ok(crate::store::rows::binding(r))
}
