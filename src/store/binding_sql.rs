//! A binding's statements and the values they bind, the same for both
//! backends: the limits' columns follow their one definition
//! (`bindings::limits`), the other columns are spelled here once (and read
//! in `rows::binding`, in `rows::binding_columns!`'s order).

use crate::bindings::limits::for_each_limit;
use crate::bindings::{Conditions, Number};

macro_rules! binding_sql {
    (@q $name:ident) => { ", ?" };
    ($($id:ident $name:ident: $ty:ty = $def:literal, $min:literal..=$max:literal,
       counts $counts:ident, refusal $refusal:ident, $doc:literal;)*) => {
        /// Every column of a binding.
        pub(crate) const SELECT: &str = concat!(
            "SELECT ", crate::store::rows::binding_columns!(), $(", ", stringify!($name),)*
            " FROM bindings"
        );

        /// Inserts a row: the set columns, then the limits'.
        pub(crate) const INSERT: &str = concat!(
            "INSERT INTO bindings (caller, virtual, callee, not_before, not_after, \
             allowed_callers, created_at, updated_at, tenant_id, kind, direction, record, \
             announce, time_zone", $(", ", stringify!($name),)*
            ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?", $(binding_sql!(@q $name),)* ")"
        );

        /// Replaces a row's conditions; the id is the last parameter.
        pub(crate) const UPDATE: &str = concat!(
            "UPDATE bindings SET not_before = ?, not_after = ?, allowed_callers = ?, \
             direction = ?, record = ?, announce = ?, time_zone = ?, updated_at = ?",
            $(", ", stringify!($name), " = ?",)* " WHERE id = ?"
        );

        /// The limits' names: a database that lacks one's column gets it
        /// at open (a new limit needs no migration of its own).
        pub(crate) const LIMIT_NAMES: &[&str] = &[$(stringify!($name),)*];

        /// The limits' values, in [`LIMIT_NAMES`]' order (an array: an
        /// import binds millions of them).
        pub(crate) fn limit_params(c: &Conditions) -> [Option<i64>; LIMIT_NAMES.len()] {
            [$(c.$name.map(|v| i64::try_from(v).unwrap_or(i64::MAX)),)*]
        }
    };
}

for_each_limit!(binding_sql);

/// Allowed callers as stored: comma-separated, `None` for anyone.
pub(crate) fn allowed_text(c: &Conditions) -> Option<String> {
    c.allowed_callers
        .as_ref()
        .map(|v| v.iter().map(Number::as_str).collect::<Vec<_>>().join(","))
}

/// The WHERE, ORDER and LIMIT of a page of `tenant`'s bindings under `f`,
/// the same for both backends: each filter set is a term an index serves
/// (a party: the caller's and the callee's; an X: `bindings_virtual`), not
/// a `?n IS NULL OR ...` that no plan can use. Parameters: ?1 the tenant,
/// ?2 the cursor, ?3 the limit, then the party and the X that are set.
pub(crate) fn list_where(tenant: crate::bindings::TenantId, f: &crate::store::Filter) -> String {
    let kinds = f
        .kinds
        .iter()
        .map(|k| format!("'{}'", k.as_str()))
        .collect::<Vec<_>>()
        .join(",");
    // The filters' indexes leave out the operator's rows (an import of
    // millions pays nothing for them): each term says so to use them.
    let theirs = if tenant == crate::bindings::OPERATOR {
        ""
    } else {
        " AND tenant_id <> 0"
    };
    // With a party, the tenant's index (which keeps id order) must not
    // win over the party's two: `+` takes its terms out of the choice.
    let mut sql = if f.party.is_some() {
        format!(" WHERE +tenant_id = ?1 AND +id > ?2 AND kind IN ({kinds})")
    } else {
        format!(" WHERE tenant_id = ?1 AND id > ?2 AND kind IN ({kinds})")
    };
    let mut n = 3;
    if f.party.is_some() {
        n += 1;
        sql.push_str(&format!(
            " AND (caller = ?{n}{theirs} OR callee = ?{n}{theirs})"
        ));
    }
    if f.x.is_some() {
        n += 1;
        sql.push_str(&format!(" AND virtual = ?{n}{theirs}"));
    }
    sql.push_str(" ORDER BY id LIMIT ?3");
    sql
}
