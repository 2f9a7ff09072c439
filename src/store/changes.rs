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
    /// API keys changed (a tenant or key added, a key revoked).
    Keys,
    /// Accounts changed (added, removed, a password changed).
    Accounts,
}
