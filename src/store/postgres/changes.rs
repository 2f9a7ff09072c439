//! PostgreSQL: the operator's change log.

use crate::store::changes::*;
use crate::store::postgres::PgStore;
use crate::store::prelude::*;
use crate::store::StoreError;

impl ChangeLog for PgStore {
    fn log_change(&mut self, c: &Change) -> Result<(), StoreError> {
        let (kind, first, last) = match c {
            Change::BindingsAdded(a, b) => ("bindings_added", *a, *b),
            Change::BindingRemoved(id) => ("binding_removed", *id, *id),
            Change::Keys => ("keys", 0, 0),
            Change::Accounts => ("accounts", 0, 0),
        };
        self.exec(
            "INSERT INTO operator_changes (kind, first, last, at) VALUES (?1, ?2, ?3, ?4)",
            &[&kind, &first, &last, &crate::time::now()],
        )?;
        Ok(())
    }

    fn last_change(&self) -> Result<i64, StoreError> {
        Ok(self
            .one("SELECT COALESCE(MAX(id), 0) FROM operator_changes", &[])?
            .try_get(0)?)
    }

    fn changes_since(&self, after: i64) -> Result<Vec<(i64, Change)>, StoreError> {
        let mut out = Vec::new();
        for r in self.rows(
            "SELECT id, kind, first, last FROM operator_changes WHERE id > ?1 ORDER BY id",
            &[&after],
        )? {
            let (id, kind, first, last): (i64, String, i64, i64) =
                (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?);
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
