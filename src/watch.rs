//! Applies the operator's command-line changes to a running server: polls
//! the change log (`store::changes`) and adds or removes bindings in the
//! live table and reloads the API key cache. Changes made over the HTTP API
//! apply directly; this covers `sipmask bindings ...`, `tenants add`,
//! `keys ...` and `accounts ...` run beside a live `serve`.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::api::ApiState;
use crate::bindings::BindingTable;
use crate::registrar::Directory;
use crate::service::accounts::account_of;
use crate::store::changes::Change;
use crate::store::prelude::*;
use crate::store::StoreError;

/// How often the log is read: the bound on how late a change applies.
pub const EVERY: Duration = Duration::from_millis(250);

/// Applies changes logged after `applied` until `cancel`, keeping
/// `applied` at the last one applied (a table saved at the stop is current
/// with it).
pub async fn run(
    store: Box<dyn Backend>,
    applied: Arc<std::sync::atomic::AtomicI64>,
    table: Arc<BindingTable>,
    accounts: Arc<Directory>,
    api: Option<Arc<ApiState>>,
    cancel: CancellationToken,
) {
    let store = Arc::new(std::sync::Mutex::new(store));
    let mut after = applied.load(std::sync::atomic::Ordering::Acquire);
    loop {
        if cancel.is_cancelled() {
            return;
        }
        let (t, d, a) = (table.clone(), accounts.clone(), api.clone());
        // Waits for the next change (a notice where the backend gives
        // one, else EVERY), then applies what the log holds.
        let r = crate::store::off_thread(&store, move |s| {
            s.wait_for_change(EVERY)?;
            apply(s, after, &t, &d, a.as_deref())
        });
        match r.await {
            Ok(last) => {
                after = last;
                applied.store(last, std::sync::atomic::Ordering::Release);
            }
            Err(e) => tracing::error!(error = %e, "applying operator changes failed"),
        }
    }
}

/// Applies every change after `after`; returns the last id applied.
pub(crate) fn apply(
    s: &dyn Backend,
    after: i64,
    table: &BindingTable,
    accounts: &Directory,
    api: Option<&ApiState>,
) -> Result<i64, StoreError> {
    let mut last = after;
    for (id, change, mine) in s.changes_since(after)? {
        match change {
            // This process changed its table as it made these; a removal
            // applied late could take a newer binding that reused the id.
            Change::BindingsAdded(..) | Change::BindingRemoved(_) | Change::BindingChanged(_)
                if mine => {}
            Change::BindingsAdded(first, end) => {
                let mut n = 0usize;
                for b in s.bindings_between(first, end)? {
                    if table.get(b.id).is_none() {
                        if let Err(e) = table.insert(b) {
                            tracing::warn!(error = %e, "operator binding not applied");
                        } else {
                            n += 1;
                        }
                    }
                }
                tracing::info!(bindings = n, "applied bindings added from the command line");
            }
            Change::BindingChanged(id) => {
                if let Some(b) = s.get(id)? {
                    table.set_conditions(id, b.conditions);
                }
            }
            Change::BindingRemoved(b) => {
                if table.remove(b).is_some() {
                    tracing::info!(
                        binding = b,
                        "applied a binding removed from the command line"
                    );
                }
            }
            Change::Accounts => {
                let all = s.accounts(None)?;
                accounts.load_accounts(all.into_iter().map(account_of).collect());
            }
            // This process saved them: its directory has them.
            Change::Contacts(_) if mine => {}
            Change::Contacts(uid) => {
                if let Some((name, rows)) = s.contacts_of(uid)? {
                    let stored = rows
                        .into_iter()
                        .filter_map(crate::registrar::contact_of)
                        .collect();
                    accounts.adopt_contacts(&name, stored);
                }
            }
            Change::Webhooks(t) => {
                if let Some(api) = api {
                    api.svc.hub.set_hooked(t, s.webhook(t)?.is_some());
                }
            }
            Change::Keys => {
                if let Some(api) = api {
                    api.reload_keys(s.keys()?);
                }
            }
        }
        last = id;
    }
    Ok(last)
}
