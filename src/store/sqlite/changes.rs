//! SQLite: the changes area's statements (the neutral types are in
//! `store::changes`).

use crate::store::changes::*;
use crate::store::prelude::*;
use crate::store::{SqliteStore, StoreError};
use rusqlite::params;

impl SqliteStore {}

impl ChangeLog for SqliteStore {
    /// Logs a change (call inside the unit of work that makes it).
    fn log_change(&mut self, c: &Change) -> Result<(), StoreError> {
        let (kind, first, last) = match c {
            Change::BindingsAdded(a, b) => ("bindings_added", *a, *b),
            Change::BindingRemoved(id) => ("binding_removed", *id, *id),
            Change::Keys => ("keys", 0, 0),
            Change::Accounts => ("accounts", 0, 0),
        };
        self.conn.execute(
            "INSERT INTO operator_changes (kind, first, last, at) VALUES (?1, ?2, ?3, ?4)",
            params![kind, first, last, crate::time::now()],
        )?;
        Ok(())
    }

    /// Id of the latest change (0 if none): where a server starts reading.
    fn last_change(&self) -> Result<i64, StoreError> {
        Ok(self.conn.query_row(
            "SELECT COALESCE(MAX(id), 0) FROM operator_changes",
            [],
            |r| r.get(0),
        )?)
    }

    /// Changes after `after`, in order, with their ids.
    fn changes_since(&self, after: i64) -> Result<Vec<(i64, Change)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, kind, first, last FROM operator_changes WHERE id > ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([after], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, kind, first, last) = row?;
            let c = match kind.as_str() {
                "bindings_added" => Change::BindingsAdded(first, last),
                "binding_removed" => Change::BindingRemoved(first),
                "accounts" => Change::Accounts,
                _ => Change::Keys,
            };
            out.push((id, c));
        }
        Ok(out)
    }
}
