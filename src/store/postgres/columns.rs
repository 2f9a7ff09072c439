//! PostgreSQL: a binding's rows. The statements and the values they bind
//! are both backends' (`store::binding_sql`); here they are run, and a
//! limit's column (a nullable BIGINT of its own name) is added when missing.

use postgres::types::ToSql;
use postgres::Row;

use super::PgStore;
use crate::bindings::{Binding, Conditions, Direction, Number, Zone};
pub(crate) use crate::store::binding_sql::SELECT;
use crate::store::binding_sql::{allowed_text, limit_params, LIMIT_NAMES};
use crate::store::{NewBinding, StoreError};

/// Adds the column of every limit the database does not have yet.
pub(super) fn ensure(s: &PgStore) -> Result<(), StoreError> {
    let have: Vec<String> = s
        .rows(
            "SELECT column_name::TEXT FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = 'bindings'",
            &[],
        )?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
    for name in LIMIT_NAMES {
        if !have.iter().any(|h| h == name) {
            s.batch(&format!("ALTER TABLE bindings ADD COLUMN {name} BIGINT"))?;
        }
    }
    Ok(())
}

/// Inserts `rows` in one statement (a column each, unnested), their ids
/// drawn from the column's sequence first so they come back in the rows'
/// order: a chunk of an import costs two round trips, not one a row.
pub(super) fn insert_many(s: &PgStore, rows: &[NewBinding]) -> Result<Vec<i64>, StoreError> {
    let n = i64::try_from(rows.len()).unwrap_or(i64::MAX);
    let ids = s
        .rows(
            "SELECT nextval(pg_get_serial_sequence('bindings', 'id')) FROM generate_series(1, ?1::BIGINT)",
            &[&n],
        )?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<Vec<i64>, _>>()?;
    fn c(b: &NewBinding) -> &Conditions {
        &b.conditions
    }
    let a: Vec<Option<&str>> = rows
        .iter()
        .map(|b| b.a.as_ref().map(Number::as_str))
        .collect();
    let x: Vec<&str> = rows.iter().map(|b| b.x.as_str()).collect();
    let callee: Vec<&str> = rows.iter().map(|b| b.b.as_str()).collect();
    let not_before: Vec<Option<i64>> = rows.iter().map(|b| c(b).not_before).collect();
    let not_after: Vec<Option<i64>> = rows.iter().map(|b| c(b).not_after).collect();
    let allowed: Vec<Option<String>> = rows.iter().map(|b| allowed_text(c(b))).collect();
    let created: Vec<i64> = rows.iter().map(|b| b.created_at).collect();
    let tenant: Vec<i64> = rows.iter().map(|b| b.tenant).collect();
    let kind: Vec<&str> = rows.iter().map(|b| b.kind.as_str()).collect();
    let direction: Vec<Option<&str>> = rows
        .iter()
        .map(|b| c(b).direction.map(Direction::as_str))
        .collect();
    let record: Vec<bool> = rows.iter().map(|b| c(b).record).collect();
    let announce: Vec<Option<bool>> = rows.iter().map(|b| c(b).announce).collect();
    let zone: Vec<Option<&str>> = rows
        .iter()
        .map(|b| c(b).time_zone.as_ref().map(Zone::name))
        .collect();
    let each: Vec<_> = rows.iter().map(|b| limit_params(c(b))).collect();
    let limits: Vec<Vec<Option<i64>>> = (0..LIMIT_NAMES.len())
        .map(|i| each.iter().map(|l| l.get(i).copied().flatten()).collect())
        .collect();
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![
        &ids,
        &a,
        &x,
        &callee,
        &not_before,
        &not_after,
        &allowed,
        &created,
        &created,
        &tenant,
        &kind,
        &direction,
        &record,
        &announce,
        &zone,
    ];
    params.extend(limits.iter().map(|l| l as &(dyn ToSql + Sync)));
    let types = [
        "BIGINT", "TEXT", "TEXT", "TEXT", "BIGINT", "BIGINT", "TEXT", "BIGINT", "BIGINT", "BIGINT",
        "TEXT", "TEXT", "BOOLEAN", "BOOLEAN", "TEXT",
    ];
    let arrays = types
        .iter()
        .chain(LIMIT_NAMES.iter().map(|_| &"BIGINT"))
        .enumerate()
        .map(|(i, t)| format!("?{}::{t}[]", i + 1))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "INSERT INTO bindings (id, caller, virtual, callee, not_before, not_after, \
         allowed_callers, created_at, updated_at, tenant_id, kind, direction, record, announce, \
         time_zone, {}) SELECT * FROM UNNEST({arrays})",
        LIMIT_NAMES.join(", ")
    );
    s.exec(&sql, &params)?;
    Ok(ids)
}

/// Runs [`crate::store::binding_sql::UPDATE`] for one binding.
pub(super) fn update(s: &PgStore, id: i64, c: &Conditions, now: i64) -> Result<(), StoreError> {
    let allowed = allowed_text(c);
    let direction = c.direction.map(Direction::as_str);
    let zone = c.time_zone.as_ref().map(Zone::name);
    let limits = limit_params(c);
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![
        &c.not_before,
        &c.not_after,
        &allowed,
        &direction,
        &c.record,
        &c.announce,
        &zone,
        &now,
    ];
    params.extend(limits.iter().map(|l| l as &(dyn ToSql + Sync)));
    params.push(&id);
    s.exec(crate::store::binding_sql::UPDATE, &params)?;
    Ok(())
}

/// A binding from a row of [`SELECT`] (`Corrupt` if it cannot be one).
pub(crate) fn read_row(r: &Row) -> Result<Binding, StoreError> {
    crate::store::rows::binding(r)
}
