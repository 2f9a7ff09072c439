//! PostgreSQL: a binding's columns. As in SQLite, the limits' columns
//! follow their one definition (`bindings::limits`): a nullable BIGINT
//! each, added when missing, read, inserted and updated from that list.

use postgres::types::ToSql;
use postgres::Row;

use super::PgStore;
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

        /// Inserts a row and returns its id.
        pub(super) const INSERT: &str = concat!(
            "INSERT INTO bindings (caller, virtual, callee, not_before, not_after, \
             allowed_callers, created_at, updated_at, tenant_id, kind, direction, record, \
             announce, time_zone", $(", ", stringify!($name),)*
            ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?", $(limit_columns!(@q $name),)*
            ") RETURNING id"
        );

        /// Replaces a row's conditions; the id is the last parameter.
        pub(super) const UPDATE: &str = concat!(
            "UPDATE bindings SET not_before = ?, not_after = ?, allowed_callers = ?, \
             direction = ?, record = ?, announce = ?, time_zone = ?, updated_at = ?",
            $(", ", stringify!($name), " = ?",)* " WHERE id = ?"
        );

        const LIMIT_NAMES: &[&str] = &[$(stringify!($name),)*];

        fn limit_params(c: &Conditions) -> Vec<Option<i64>> {
            vec![$(c.$name.map(|v| i64::try_from(v).unwrap_or(i64::MAX)),)*]
        }
    };
}

for_each_limit!(limit_columns);

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

fn allowed_text(c: &Conditions) -> Option<String> {
    c.allowed_callers
        .as_ref()
        .map(|v| v.iter().map(Number::as_str).collect::<Vec<_>>().join(","))
}

/// Runs [`INSERT`] for one row; its id.
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
    Ok(s.one(INSERT, &params)?.try_get(0)?)
}

/// Runs [`UPDATE`] for one binding.
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
    s.exec(UPDATE, &params)?;
    Ok(())
}

/// A binding from a row of [`SELECT`] (`Corrupt` if it cannot be one).
pub(crate) fn read_row(r: &Row) -> Result<Binding, StoreError> {
    crate::store::rows::binding(r)
}
