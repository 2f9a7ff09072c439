//! PostgreSQL: the operator's change log.

use crate::store::changes::*;
use crate::store::postgres::PgStore;
use crate::store::prelude::*;
use crate::store::StoreError;

impl ChangeLog for PgStore {
    fn log_change(&mut self, c: &Change) -> Result<(), StoreError> {
        let (kind, first, last) = c.to_row();
        self.exec(
            "INSERT INTO operator_changes (kind, first, last, at, origin)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            &[&kind, &first, &last, &crate::time::now(), &self.origin],
        )?;
        // Delivered to every listening node when this commits.
        self.one("SELECT pg_notify('sipmask_changes', '')", &[])?;
        Ok(())
    }

    fn last_change(&self) -> Result<i64, StoreError> {
        Ok(self
            .one("SELECT COALESCE(MAX(id), 0) FROM operator_changes", &[])?
            .try_get(0)?)
    }

    /// Nodes write uses all the time: a saved table is never current.
    fn serve_starts(&self) -> Result<Option<i64>, StoreError> {
        Ok(None)
    }

    fn count_serve_start(&mut self) -> Result<Option<i64>, StoreError> {
        Ok(None)
    }

    fn changes_since(&self, after: i64) -> Result<Vec<(i64, Change, bool)>, StoreError> {
        let mut out = Vec::new();
        for r in self.rows(
            "SELECT id, kind, first, last, origin FROM operator_changes WHERE id > ?1 ORDER BY id",
            &[&after],
        )? {
            let kind: String = r.try_get(1)?;
            let c = Change::from_row(&kind, r.try_get(2)?, r.try_get(3)?);
            out.push((r.try_get(0)?, c, r.try_get::<_, String>(4)? == self.origin));
        }
        Ok(out)
    }

    fn wait_for_change(&mut self, timeout: std::time::Duration) -> Result<(), StoreError> {
        self.wait_for_notice(timeout)
    }
}
