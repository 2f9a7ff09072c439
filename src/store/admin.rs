//! SQLite's tenants and their keys, the registry of numbers (pools and
//! claims), the quarantine of released (party, X) pairs, bindings and their
//! counters, and blocklists: the `TenantStore`, `NumberStore` and
//! `BindingStore` implementations, and the page and filter types of
//! binding lists. Every call commits before it returns (or with its unit of
//! work).

use crate::bindings::{Binding, BindingId, Kind};
/// A page of bindings.
pub struct Page {
    /// Bindings in id order.
    pub items: Vec<Binding>,
    /// Id to continue after, if there may be more.
    pub next: Option<BindingId>,
}

/// Filters of a binding list.
#[derive(Default)]
pub struct Filter {
    /// Only ids above this.
    pub after: BindingId,
    /// Page size.
    pub limit: u32,
    /// Party (A, B or owner) equals.
    pub party: Option<String>,
    /// X equals.
    pub x: Option<String>,
    /// Kinds to include.
    pub kinds: Vec<Kind>,
}
