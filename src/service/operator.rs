//! The operator's bindings, made on the command line while a server may be
//! running: each change claims its X for the operator (one owner per X),
//! writes the bindings and logs the change in one unit of work; a running
//! server applies the log to its live table (`watch`).

use crate::bindings::{BindingId, BindingTable, Defaults, OPERATOR};
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
    /// The rows stopped coming before every one was checked good.
    #[error("the import was abandoned: nothing was written")]
    Abandoned,
}

/// Checks new operator bindings against every stored binding, the numbers
/// tenants hold, and each other; returns (row index, why) for each row that
/// cannot be made, so one report can name every bad row.
pub fn clashes(
    store: &mut dyn Backend,
    defaults: Defaults,
    rows: &[NewBinding],
) -> Result<Vec<(usize, String)>, StoreError> {
    let mut check = Clashes::new(store, defaults, rows.len())?;
    check.check(store, rows)
}

/// [`clashes`] a chunk at a time: an import checks one chunk while the
/// rows before it are written.
pub struct Clashes {
    table: BindingTable,
    // Whether X is a tenant's, asked of the store once per X, not once
    // per row (a pool's few thousand X serve millions of rows).
    foreign: hashbrown::HashMap<crate::bindings::Number, bool, crate::ids::Keyed>,
    checked: i64,
}

impl Clashes {
    /// A check against every stored binding, with room for `expected`
    /// new ones.
    pub fn new(
        store: &mut dyn Backend,
        defaults: Defaults,
        expected: usize,
    ) -> Result<Clashes, StoreError> {
        let table = BindingTable::new(defaults);
        let stored = store.load_all()?;
        table.reserve(stored.len() + expected);
        for b in stored {
            let _ = table.insert(b);
        }
        Ok(Clashes {
            table,
            foreign: Default::default(),
            checked: 0,
        })
    }

    /// (index in `rows`, why) for each of `rows` that clashes with what
    /// is stored, with a tenant's X, or with a row checked before.
    pub fn check(
        &mut self,
        store: &mut dyn Backend,
        rows: &[NewBinding],
    ) -> Result<Vec<(usize, String)>, StoreError> {
        let mut bad = Vec::new();
        for (i, row) in rows.iter().enumerate() {
            // A stand-in with a unique negative id: the table finds
            // clashes, with the stored bindings and with the rows before.
            self.checked += 1;
            let probe = row.stored_as(-self.checked);
            let theirs = match self.foreign.get(&row.x) {
                Some(t) => *t,
                None => {
                    let t = store.owner(&row.x)?.is_some_and(|(t, _)| t != OPERATOR);
                    self.foreign.insert(row.x.clone(), t);
                    t
                }
            };
            if let Err(e) = self.table.insert(probe) {
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
}

/// What an import hands the thread that writes its rows.
pub enum Feed {
    /// Rows checked, to write.
    Rows(Vec<NewBinding>),
    /// Every row was good: commit.
    Commit,
}

/// Creates the operator's bindings as they arrive on `feed`, in one unit
/// of work that commits on [`Feed::Commit`] alone: a feed that ends
/// without it (a bad row found after the first were written) leaves
/// nothing. Calls `progress` with the count written so far; returns it.
pub fn add_fed(
    store: &mut dyn Backend,
    feed: std::sync::mpsc::Receiver<Feed>,
    now: i64,
    progress: &mut dyn FnMut(usize),
) -> Result<usize, OperatorError> {
    store.atomically(|s| {
        let mut claimed = std::collections::HashSet::new();
        let mut written = 0;
        for message in feed {
            let rows = match message {
                Feed::Rows(rows) => rows,
                Feed::Commit => return Ok(written),
            };
            claim_new(s, &rows, &mut claimed, now)?;
            // The store logs each chunk's change for running servers.
            s.insert_with_progress(&rows, &mut |k| progress(written + k))?;
            written += rows.len();
        }
        Err(OperatorError::Abandoned)
    })
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
        claim_new(s, rows, &mut Default::default(), now)?;
        // The store logs the change for running servers.
        Ok(s.insert_with_progress(rows, progress)?)
    })
}

/// Claims for the operator each X of `rows` not in `claimed` (then
/// added to it): one owner per X.
fn claim_new(
    s: &mut dyn Backend,
    rows: &[NewBinding],
    claimed: &mut std::collections::HashSet<crate::bindings::Number>,
    now: i64,
) -> Result<(), OperatorError> {
    for n in rows.iter().filter(|n| claimed.insert(n.x.clone())) {
        if !s.claim(OPERATOR, &n.x, crate::bindings::Claim::Cli, now)? {
            return Err(OperatorError::NotYours(n.x.as_str().to_string()));
        }
    }
    Ok(())
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
