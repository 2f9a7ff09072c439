//! SQLite: a binding's rows. The statements and the values they bind are
//! both backends' (`store::binding_sql`); here they are run, and a limit's
//! column (a nullable INTEGER of its own name) is added when missing.

use rusqlite::types::ToSql;
use rusqlite::{Connection, Statement};

use crate::bindings::{Binding, Conditions, Direction, Number, Zone};
pub(crate) use crate::store::binding_sql::SELECT;
use crate::store::binding_sql::{allowed_text, limit_params, LIMIT_NAMES};
use crate::store::{NewBinding, StoreError};

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

/// Runs [`crate::store::binding_sql::INSERT`] for one row, its values
/// bound one by one (nothing allocated but the allowed callers' text).
pub(super) fn insert(stmt: &mut Statement<'_>, b: &NewBinding) -> Result<(), StoreError> {
    let c = &b.conditions;
    let allowed = allowed_text(c);
    let limits = limit_params(c);
    let (a, x, callee) = (b.a.as_ref().map(Number::as_str), b.x.as_str(), b.b.as_str());
    let kind = b.kind.as_str();
    let direction = c.direction.map(Direction::as_str);
    let zone = c.time_zone.as_ref().map(Zone::name);
    let set: [&dyn ToSql; 14] = [
        &a,
        &x,
        &callee,
        &c.not_before,
        &c.not_after,
        &allowed,
        &b.created_at,
        &b.created_at,
        &b.tenant,
        &kind,
        &direction,
        &c.record,
        &c.announce,
        &zone,
    ];
    let values = set
        .into_iter()
        .chain(limits.iter().map(|l| l as &dyn ToSql));
    for (i, v) in values.enumerate() {
        stmt.raw_bind_parameter(i + 1, v)?;
    }
    stmt.raw_execute()?;
    Ok(())
}

/// Runs [`crate::store::binding_sql::UPDATE`] for one binding.
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
    conn.prepare_cached(crate::store::binding_sql::UPDATE)?
        .execute(params.as_slice())?;
    Ok(())
}

/// A binding from a row of [`SELECT`] (`Corrupt` if it cannot be one).
pub(crate) fn read_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<Binding, StoreError>> {
    Ok(crate::store::rows::binding(r))
}
