//! The operator's changes made beside a running server: the command line
//! writes the database directly and logs what it changed here, in the same
//! transaction; a running server reads the log and applies each change to
//! its live state (binding table, key cache) within a moment.

use crate::bindings::BindingId;
/// One logged change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// Bindings `first..=last` were added.
    BindingsAdded(BindingId, BindingId),
    /// Binding removed.
    BindingRemoved(BindingId),
    /// A binding's conditions changed.
    BindingChanged(BindingId),
    /// API keys changed (a tenant or key added, a key revoked).
    Keys,
    /// Accounts changed (added, removed, a password changed).
    Accounts,
    /// A tenant's webhook was set or removed.
    Webhooks(crate::bindings::TenantId),
    /// The registered contacts of the account with this uid changed (on a
    /// database that nodes share, so that every node reaches the phone).
    Contacts(i64),
}

impl Change {
    /// As a row of the log: (kind, first, last).
    pub(crate) fn to_row(&self) -> (&'static str, i64, i64) {
        match self {
            Change::BindingsAdded(a, b) => ("bindings_added", *a, *b),
            Change::BindingRemoved(id) => ("binding_removed", *id, *id),
            Change::BindingChanged(id) => ("binding_changed", *id, *id),
            Change::Keys => ("keys", 0, 0),
            Change::Accounts => ("accounts", 0, 0),
            Change::Webhooks(t) => ("webhooks", *t, *t),
            Change::Contacts(uid) => ("contacts", *uid, *uid),
        }
    }

    /// From a row of the log.
    pub(crate) fn from_row(kind: &str, first: i64, last: i64) -> Change {
        match kind {
            "bindings_added" => Change::BindingsAdded(first, last),
            "binding_removed" => Change::BindingRemoved(first),
            "binding_changed" => Change::BindingChanged(first),
            "accounts" => Change::Accounts,
            "webhooks" => Change::Webhooks(first),
            "contacts" => Change::Contacts(first),
            _ => Change::Keys,
        }
    }
}

/// This process, as the change log names who logged a change: a process
/// applies its own changes to its live state as it makes them, and a
/// binding's id may be used again after its removal (SQLite), so its
/// watcher must not apply its own removal late to a newer binding.
pub(crate) fn origin() -> &'static str {
    static ORIGIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ORIGIN.get_or_init(|| crate::ids::short("p", 12))
}
