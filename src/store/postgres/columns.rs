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

/// Runs [`crate::store::binding_sql::INSERT_RETURNING_ID`] for one row; its id.
pub(super) fn insert(s: &PgStore, b: &NewBinding) -> Result<i64, StoreError> {
    let c = &b.conditions;
    let allowed = allowed_text(c);
    let limits = limit_params(c);
    let (a, x, callee) = (b.a.as_ref().map(Number::as_str), b.x.as_str(), b.b.as_str());
    let kind = b.kind.as_str();
    let direction = c.direction.map(Direction::as_str);
    let zone = c.time_zone.as_ref().map(Zone::name);
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![
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
    params.extend(limits.iter().map(|l| l as &(dyn ToSql + Sync)));
    Ok(
        s.one(crate::store::binding_sql::INSERT_RETURNING_ID, &params)?
            .try_get(0)?,
    )
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
