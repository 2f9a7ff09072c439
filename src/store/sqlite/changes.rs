//! SQLite: the changes area's statements (the neutral types are in
//! `store::changes`).

use crate::store::changes::*;
use crate::store::prelude::*;
use crate::store::{SqliteStore, StoreError};
use rusqlite::params;

/// Logs `c` on `conn` (a transaction in progress, or not).
pub(super) fn log_on(
    conn: &rusqlite::Connection,
    c: &Change,
    origin: &str,
) -> Result<(), StoreError> {
    let (kind, first, last) = c.to_row();
    conn.prepare_cached(
        "INSERT INTO operator_changes (kind, first, last, at, origin) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![kind, first, last, crate::time::now(), origin])?;
    Ok(())
}

impl ChangeLog for SqliteStore {
    /// Logs a change (call inside the unit of work that makes it).
    fn log_change(&mut self, c: &Change) -> Result<(), StoreError> {
        log_on(&self.conn, c, &self.origin)
    }

    fn last_change(&self) -> Result<i64, StoreError> {
        Ok(self.conn.query_row(
            "SELECT COALESCE(MAX(id), 0) FROM operator_changes",
            [],
            |r| r.get(0),
        )?)
    }

    fn serve_starts(&self) -> Result<Option<i64>, StoreError> {
        Ok(Some(self.conn.query_row(
            "SELECT n FROM serve_starts",
            [],
            |r| r.get(0),
        )?))
    }

    fn count_serve_start(&mut self) -> Result<Option<i64>, StoreError> {
        Ok(Some(self.conn.query_row(
            "UPDATE serve_starts SET n = n + 1 RETURNING n",
            [],
            |r| r.get(0),
        )?))
    }

    /// Changes after `after`, in order, with their ids.
    fn changes_since(&self, after: i64) -> Result<Vec<(i64, Change, bool)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, kind, first, last, origin FROM operator_changes WHERE id > ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([after], |r| {
            let kind: String = r.get(1)?;
            let c = Change::from_row(&kind, r.get(2)?, r.get(3)?);
            Ok((r.get(0)?, c, r.get::<_, String>(4)? == self.origin))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn wait_for_change(&mut self, timeout: std::time::Duration) -> Result<(), StoreError> {
        // One process writes a SQLite file: the log is read on a timer.
        std::thread::sleep(timeout);
        Ok(())
    }
}
