//! Domain services: the rules of changing what calls are decided on. Each
//! change runs in one unit of work on the store (database first), then
//! reaches the live binding table, then its events are published: the
//! order that makes a change durable before anyone sees it. The HTTP API
//! and the command line both call these; neither touches SQL or the table
//! itself.
//!
//! - [`bindings`]: AXB pairs and identifiers (allocation of X from the
//!   pool, quarantine), condition changes, deletions, availability.
//! - [`numbers`]: the pool and the blocklist.
//! - [`tenants`]: tenants and their API keys.
//! - [`accounts`]: app accounts (digest passwords) and their registrations.
//! - [`flow`]: soft numbers, agents and teams, interactions, acquisition.
//! - [`operator`]: the operator's bindings from the command line, which a
//!   running server applies through the change log.
//! - [`webhooks`]: tenants' webhooks and redelivery.
//! - [`expiry`]: the sweep that tells tenants a binding expired.

pub mod accounts;
pub mod bindings;
pub mod expiry;
pub mod flow;
pub mod numbers;
pub mod operator;
pub mod tenants;
pub mod webhooks;

use std::sync::Arc;

use crate::bindings::alloc::Availability;
use crate::bindings::{Binding, BindingTable, Defaults, TenantId};
use crate::events::Hub;
use crate::store::events::NewEvent;
use crate::store::{Backend, Shared, StoreError};
use crate::time::SharedClock;

/// Why a change was refused or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A value breaks a rule; `field` names it as the caller wrote it.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// No such thing of the tenant's.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The change clashes with what exists.
    #[error("{0}")]
    Conflict(String),
    /// No X left.
    #[error("{detail}")]
    Exhausted {
        /// Why, in words.
        detail: String,
        /// The counts.
        availability: Availability,
    },
    /// Several items of one request break rules; nothing was changed.
    #[error("{} item(s) refused: {}", .0.len(), .0.iter().map(|(f, r)| format!("{f}: {r}")).collect::<Vec<_>>().join("; "))]
    Items(Vec<(String, String)>),
    /// An acquisition was refused: `kind` is the problem type
    /// (`identity-check-failed`, `no-permission`, `unknown-soft-number`).
    #[error("{detail}")]
    Denied {
        /// Problem type.
        kind: &'static str,
        /// Why, in words.
        detail: String,
    },
    /// Something that cannot happen did.
    #[error("internal error: {0}")]
    Internal(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Error {
    /// An [`Error::Invalid`].
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Whether `name` is 1 to 64 ASCII letters, digits, `.`, `_` or `-`
/// whose first character passes `first` (names of tenants and accounts).
pub(crate) fn word(name: &str, first: fn(&char) -> bool) -> bool {
    (1..=64).contains(&name.len())
        && name.chars().next().as_ref().is_some_and(first)
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

/// How a binding is shown in events (the API's representation of it).
pub type View = fn(&Binding, &Defaults) -> serde_json::Value;

/// What the services work on: one store connection for changes (one at a
/// time, so each is atomic against the others), the live table, the event
/// hub and the clock.
#[derive(Clone)]
pub struct Services {
    /// The store connection changes go through.
    pub store: Shared,
    /// The live binding table (shared with the call policy).
    pub table: Arc<BindingTable>,
    /// Who hears of events.
    pub hub: Arc<Hub>,
    /// The clock.
    pub clock: SharedClock,
    /// Seconds a released (party, X) rests before X serves that party again.
    pub quarantine_secs: u64,
    /// How events show a binding.
    pub view: View,
    /// The registrar's live accounts and registrations.
    pub accounts: Arc<crate::registrar::Directory>,
    /// The digest realm passwords are hashed in.
    pub realm: String,
    /// How numbers are normalised (soft numbers as dialled).
    pub normaliser: crate::bindings::Normaliser,
    /// Flow 2's defaults (`[flow]`).
    pub flow: flow::config::FlowSection,
    /// Where acquired numbers come from.
    pub provider: Arc<dyn flow::provider::Provider>,
    /// Tenants' pools as last read (see `Services::pool_of`).
    pub pools: Arc<dashmap::DashMap<TenantId, Arc<Vec<crate::bindings::Number>>>>,
    /// Whether this node runs the sweeps (expiry notices, recycling idle
    /// soft numbers): always on a database of its own; on a shared one,
    /// the one node that holds the sweeps' lease, so each runs once.
    pub sweeper: Arc<std::sync::atomic::AtomicBool>,
}

impl Services {
    /// Runs `f` as one unit of work off the async threads; then publishes
    /// the events it stored.
    pub(crate) async fn unit<T: Send + 'static, E>(
        &self,
        f: impl FnOnce(&mut dyn Backend, &mut Outbox) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        E: From<StoreError> + Send + 'static,
    {
        let hub = self.hub.clone();
        let (v, told) = crate::store::off_thread(&self.store, move |s| {
            s.atomically(|s| -> Result<_, E> {
                let mut out = Outbox {
                    hub,
                    stored: Vec::new(),
                };
                let v = f(s, &mut out)?;
                Ok((v, out.stored))
            })
        })
        .await?;
        for (t, body) in told {
            self.hub.publish(t, body);
        }
        Ok(v)
    }

    /// Events about bindings, for the tenants someone listens to (a
    /// bulk request's thousand views are not made for no one).
    pub fn binding_events(&self, kind: &'static str, bs: &[Binding]) -> Vec<NewEvent> {
        bs.iter()
            .filter(|b| self.hub.wants(b.tenant))
            .map(|b| self.binding_event(kind, b))
            .collect()
    }

    /// An event about a binding, as events show it.
    pub fn binding_event(&self, kind: &'static str, b: &Binding) -> NewEvent {
        NewEvent {
            tenant: b.tenant,
            kind,
            binding: Some(b.id),
            data: (self.view)(&self.table.display(b), self.table.defaults()),
            at: self.clock.now().unix_ms,
        }
    }
}

/// Events of one unit of work: stored in it, published after it commits.
pub struct Outbox {
    hub: Arc<Hub>,
    stored: Vec<(TenantId, String)>,
}

impl Outbox {
    /// Stores the events someone wants, in the unit of work.
    pub fn store(&mut self, s: &mut dyn Backend, events: Vec<NewEvent>) -> Result<(), StoreError> {
        let wanted: Vec<_> = events
            .into_iter()
            .filter(|e| self.hub.wants(e.tenant))
            .collect();
        if !wanted.is_empty() {
            let hub = self.hub.clone();
            self.stored
                .extend(s.insert_events(&wanted, &|t| hub.hooked(t))?);
        }
        Ok(())
    }
}
