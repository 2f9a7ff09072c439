//! The operator's bindings, made on the command line while a server may be
//! running: each change claims its X for the operator (one owner per X),
//! writes the bindings and logs the change in one unit of work; a running
//! server applies the log to its live table (`watch`).

use crate::bindings::{Binding, BindingId, BindingTable, Defaults, OPERATOR};
use crate::store::prelude::*;
use crate::store::{NewBinding, StoreError};

/// Why an operator change was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OperatorError {
    /// X is a tenant's (pool, identifier).
    #[error("virtual number {0} belongs to an API tenant")]
    NotYours(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks new operator bindings against every stored binding, the numbers
/// tenants hold, and each other; returns (row index, why) for each row that
/// cannot be made, so one report can name every bad row.
pub fn clashes(
    store: &mut dyn Backend,
    defaults: Defaults,
    rows: &[NewBinding],
) -> Result<Vec<(usize, String)>, StoreError> {
    let table = BindingTable::new(defaults);
    for b in store.load_all()? {
        let _ = table.insert(b);
    }
    let mut bad = Vec::new();
    // Asked of the store once per X, not once per row (a pool's few
    // thousand X serve millions of rows).
    let mut foreign: std::collections::HashMap<&crate::bindings::Number, bool> =
        std::collections::HashMap::new();
    for (i, row) in rows.iter().enumerate() {
        // A stand-in with a unique negative id: the table finds clashes,
        // with the stored bindings and with the rows before it.
        let probe = Binding {
            id: -(i as i64) - 1,
            tenant: row.tenant,
            kind: row.kind,
            a: row.a.clone(),
            x: row.x.clone(),
            b: row.b.clone(),
            conditions: row.conditions.clone(),
            created_at: row.created_at,
            usage: Default::default(),
        };
        let theirs = match foreign.get(&row.x) {
            Some(t) => *t,
            None => {
                let t = store.owner(&row.x)?.is_some_and(|(t, _)| t != OPERATOR);
                foreign.insert(&row.x, t);
                t
            }
        };
        if let Err(e) = table.insert(probe) {
            bad.push((i, e.to_string()));
        } else if theirs {
            bad.push((
                i,
                OperatorError::NotYours(row.x.as_str().to_string()).to_string(),
            ));
        }
    }
    Ok(bad)
}

/// Creates the operator's bindings, all or none, calling `progress` with
/// the count written so far; returns their ids.
pub fn add_bindings(
    store: &mut dyn Backend,
    rows: &[NewBinding],
    now: i64,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<BindingId>, OperatorError> {
    store.atomically(|s| {
        let mut claimed = std::collections::HashSet::new();
        for n in rows.iter().filter(|n| claimed.insert(&n.x)) {
            if !s.claim(OPERATOR, &n.x, crate::bindings::Claim::Cli, now)? {
                return Err(OperatorError::NotYours(n.x.as_str().to_string()));
            }
        }
        // The store logs the change for running servers.
        Ok(s.insert_with_progress(rows, progress)?)
    })
}

/// Removes a binding; `false` if there was none. The operator's claim on
/// its X ends with the last binding on it.
pub fn remove_binding(store: &mut dyn Backend, id: BindingId) -> Result<bool, StoreError> {
    let Some(b) = store.get(id)? else {
        return Ok(false);
    };
    store.atomically(|s| {
        s.remove(id)?;
        s.release_cli_claim(&b.x)?;
        Ok(true)
    })
}
