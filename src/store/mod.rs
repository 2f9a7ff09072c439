//! Persistence, behind the traits of [`Backend`] (one per area: tenants,
//! numbers, bindings, records, events, webhooks, the change log, live
//! calls), so a PostgreSQL backend is an implementation of them. SQLite
//! ([`SqliteStore`]) is the embedded default; [`open`] picks it.
//!
//! The call path never waits on a disk: it hands [`UsageUpdate`]s to a
//! [`Writer`], a thread that commits everything queued in one transaction
//! (group commit), so a burst of answered calls costs one commit.

pub mod accounts;
mod admin;
mod backend;
mod batch;
mod binding_sql;
pub mod changes;
pub mod config;
mod durable;
pub mod events;
pub mod flow;
pub mod holds;
pub mod live;
mod postgres;
mod records;
mod rows;
mod sqlite;
mod statements;
pub mod webhooks;
mod writer;

pub use admin::{Filter, Page};
pub use backend::{
    AccountStore, Backend, BindingStore, ChangeLog, EventStore, FlowStore, LiveStore, NumberStore,
    RecordStore, TenantStore, WebhookStore,
};
pub use batch::Batch;
pub use holds::{Answered, HoldStore, Reserve, Settle};

/// The storage traits, for code that calls a backend's methods.
pub mod prelude {
    pub use super::backend::{
        AccountStore, Backend, BindingStore, ChangeLog, EventStore, FlowStore, LiveStore,
        NumberStore, RecordStore, TenantStore, WebhookStore,
    };
}
pub use postgres::PgStore;
pub use records::{CallFilter, CallRecord};

pub use durable::{Durable, Outcome};
pub use sqlite::{private_dir, private_file, SqliteStore};
pub use writer::{Ask, CallEnd, Writer};

use crate::bindings::{BindingId, Conditions, Kind, Number, TenantId, Usage};

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database said no (the backend's own error, as its source).
    #[error("database error: {0}")]
    Db(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The data dir could not be created or opened.
    #[error("cannot use data dir {path}: {source}")]
    DataDir {
        /// The directory.
        path: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A row no longer satisfies what the code expects.
    #[error("corrupt row {id}: {reason}")]
    Corrupt {
        /// Row id.
        id: i64,
        /// What is wrong.
        reason: String,
    },
    /// A shared connection could not be used (its lock was poisoned, or
    /// the blocking task failed).
    #[error("store connection unavailable: {0}")]
    Unavailable(String),
    /// A unit of work was rolled back because its work failed (the
    /// failure itself is returned to the caller).
    #[error("unit of work rolled back")]
    RolledBack,
    /// A storage URL whose scheme names no backend built into this
    /// sipmask.
    #[error("no storage backend for URL scheme \"{0}\" (this build has: sqlite, postgresql)")]
    Unsupported(String),
    /// The schema is newer than this program.
    #[error("database schema version {found} is newer than this sipmask ({supported})")]
    TooNew {
        /// In the file.
        found: i64,
        /// Known here.
        supported: i64,
    },
}

/// A connection shared by async tasks.
pub type Shared = std::sync::Arc<std::sync::Mutex<Box<dyn Backend>>>;

/// Where the data lives: the storage URL (empty: SQLite in the data dir)
/// and the node's data dir (SQLite's file, recordings, the instance lock).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Location {
    /// `postgresql://...`, `sqlite:PATH` or empty.
    pub url: String,
    /// The data dir.
    pub dir: std::path::PathBuf,
    /// Who logs changes through its connections (a server's instance;
    /// empty: this process).
    pub origin: String,
}

impl Location {
    /// Opens the backend this names.
    pub fn open(&self) -> Result<Box<dyn Backend>, StoreError> {
        let mut b = open_url(&self.url, &self.dir)?;
        if !self.origin.is_empty() {
            b.set_origin(&self.origin);
        }
        Ok(b)
    }

    /// Whether several nodes may share this database (so another host's
    /// instances are alive by their heartbeats, not by what this host
    /// sees).
    pub fn shared(&self) -> bool {
        self.sqlite_file().is_none()
    }

    /// The unix ms from which an instance's heartbeat says it is alive
    /// (`now` minus [`NODE_LEASE_MS`]), or `i64::MAX` for a database only
    /// this host uses.
    pub fn fresh_since(&self, now: i64) -> i64 {
        if self.shared() {
            now - NODE_LEASE_MS
        } else {
            i64::MAX
        }
    }

    /// Whether this is SQLite in the data dir's `sipmask.db` (the file
    /// exists only once something was stored).
    pub fn sqlite_file(&self) -> Option<std::path::PathBuf> {
        match self
            .url
            .split_once(':')
            .map_or(self.url.as_str(), |(s, _)| s)
        {
            "" => Some(self.dir.join("sipmask.db")),
            "sqlite" => {
                let rest = self
                    .url
                    .trim_start_matches("sqlite:")
                    .trim_start_matches("//");
                let dir = if rest.is_empty() {
                    self.dir.clone()
                } else {
                    rest.into()
                };
                Some(dir.join("sipmask.db"))
            }
            _ => None,
        }
    }
}

impl From<&std::path::Path> for Location {
    fn from(dir: &std::path::Path) -> Location {
        Location {
            url: String::new(),
            dir: dir.to_path_buf(),
            origin: String::new(),
        }
    }
}

impl From<&std::path::PathBuf> for Location {
    fn from(dir: &std::path::PathBuf) -> Location {
        Location::from(dir.as_path())
    }
}

impl From<&Location> for Location {
    fn from(at: &Location) -> Location {
        at.clone()
    }
}

/// How long a node's or an instance's heartbeat keeps it alive for the
/// others: ten beats of a second.
pub const NODE_LEASE_MS: i64 = 10_000;

/// Opens the embedded default backend (SQLite) under the data dir.
pub fn open(dir: &std::path::Path) -> Result<Box<dyn Backend>, StoreError> {
    open_url("", dir)
}

/// Opens the backend a URL names: empty or `sqlite:` is SQLite in
/// `data_dir`, `sqlite:PATH` SQLite in that directory,
/// `postgresql://user@host:port/db` (or `postgres://`) PostgreSQL. A
/// backend is a folder under `store/` and an arm here; a scheme without
/// one is an error that names it.
pub fn open_url(url: &str, data_dir: &std::path::Path) -> Result<Box<dyn Backend>, StoreError> {
    let (scheme, rest) = url.split_once(':').unwrap_or((url, ""));
    match scheme {
        "" | "sqlite" => {
            let dir = match rest.trim_start_matches("//") {
                "" => data_dir.to_path_buf(),
                path => std::path::PathBuf::from(path),
            };
            Ok(Box::new(SqliteStore::open(&dir)?))
        }
        "postgres" | "postgresql" => Ok(Box::new(PgStore::open(url)?)),
        other => Err(StoreError::Unsupported(other.to_string())),
    }
}

/// Runs `f` on a shared connection off the async threads: SQLite blocks.
pub async fn off_thread<T, E>(
    store: &Shared,
    f: impl FnOnce(&mut dyn Backend) -> Result<T, E> + Send + 'static,
) -> Result<T, E>
where
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
{
    let s = store.clone();
    let task = tokio::task::spawn_blocking(move || {
        let mut conn = s
            .lock()
            .map_err(|_| StoreError::Unavailable("connection lock poisoned".into()))?;
        f(conn.as_mut())
    });
    match task.await {
        Ok(r) => r,
        Err(e) => Err(StoreError::Unavailable(e.to_string()).into()),
    }
}

/// Cuts a page fetched with `limit + 1` rows to `limit`, returning the id to
/// continue after when there are more.
pub(crate) fn paginate<T>(
    mut items: Vec<T>,
    limit: u32,
    id: impl Fn(&T) -> i64,
) -> (Vec<T>, Option<i64>) {
    if items.len() > limit as usize {
        items.truncate(limit as usize);
        let next = items.last().map(&id);
        (items, next)
    } else {
        (items, None)
    }
}

/// A binding to create (no id yet).
#[derive(Clone, Debug)]
pub struct NewBinding {
    /// Owner ([`crate::bindings::OPERATOR`] for the CLI).
    pub tenant: TenantId,
    /// How it is made.
    pub kind: Kind,
    /// A of AXB, `None` for AX.
    pub a: Option<Number>,
    /// X.
    pub x: Number,
    /// B or AX owner.
    pub b: Number,
    /// Conditions set at creation.
    pub conditions: Conditions,
    /// Unix seconds.
    pub created_at: i64,
}

impl NewBinding {
    /// The binding it is once stored as `id`: nothing of a new row is the
    /// store's but its id.
    pub fn stored_as(&self, id: crate::bindings::BindingId) -> crate::bindings::Binding {
        crate::bindings::Binding {
            id,
            tenant: self.tenant,
            kind: self.kind,
            a: self.a.clone(),
            x: self.x.clone(),
            b: self.b.clone(),
            conditions: self.conditions.clone(),
            created_at: self.created_at,
            usage: Default::default(),
        }
    }
}

/// New counters of one binding.
#[derive(Clone, Copy, Debug)]
pub struct UsageUpdate {
    /// Which binding.
    pub id: BindingId,
    /// Its usage after the change.
    pub usage: Usage,
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_url_chooses_the_backend() {
        let dir = tempfile::tempdir().expect("tempdir");
        let other = dir.path().join("elsewhere");
        assert!(super::open_url("", dir.path()).is_ok());
        assert!(dir.path().join("sipmask.db").exists());
        let url = format!("sqlite://{}", other.display());
        assert!(super::open_url(&url, dir.path()).is_ok());
        assert!(other.join("sipmask.db").exists());
        let err = super::open_url("mysql://u@h/db", dir.path()).err();
        assert!(
            matches!(&err, Some(super::StoreError::Unsupported(s)) if s == "mysql"),
            "{err:?}"
        );
        // PostgreSQL: tests/storage.rs, on a database of its own.
    }
}
