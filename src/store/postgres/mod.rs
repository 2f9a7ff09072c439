//! PostgreSQL backend: the storage traits over one connection to a shared
//! database, for several sipmask nodes at once. Chosen by a
//! `postgresql://` (or `postgres://`) storage URL.
//!
//! The client is rust-postgres's blocking `postgres` crate: the store's
//! traits are synchronous and run on the writer thread or on blocking
//! tasks, as SQLite's do, so a blocking client fits them without a second
//! runtime of our own; it is tokio-postgres underneath, which the call
//! path can use directly where it must not block. Statements are prepared
//! once per connection and cached; SQL is written with SQLite's `?N` (or
//! bare `?`) placeholders and numbered `$N` here, so both backends read
//! alike.

mod accounts;
mod admin;
mod changes;
mod columns;
mod events;
mod flow;
mod holds;
mod live;
mod records;
mod schema;
mod webhooks;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use postgres::types::ToSql;
use postgres::{Client, NoTls, Row, Statement};

use super::StoreError;
use crate::bindings::Binding;
pub(crate) use columns::{read_row, SELECT};

impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> Self {
        StoreError::Db(Box::new(e))
    }
}

/// Parameters of one statement.
pub(crate) type Params<'a> = [&'a (dyn ToSql + Sync)];

/// The PostgreSQL store: one connection, its prepared statements, and how
/// deep the current unit of work is.
pub struct PgStore {
    // `None` only while dropping.
    client: RefCell<Option<Client>>,
    statements: RefCell<HashMap<String, Statement>>,
    depth: Cell<u32>,
    url: String,
    listening: Cell<bool>,
    /// Who logs changes through it (`Backend::set_origin`).
    pub(crate) origin: String,
}

impl PgStore {
    /// Connects to `url` and brings the schema up to date (one node at a
    /// time: the migration holds an advisory lock).
    pub fn open(url: &str) -> Result<PgStore, StoreError> {
        let client = connect(url)?;
        let store = PgStore {
            client: RefCell::new(Some(client)),
            statements: RefCell::new(HashMap::new()),
            depth: Cell::new(0),
            url: url.to_string(),
            listening: Cell::new(false),
            origin: crate::store::changes::origin().to_string(),
        };
        schema::migrate(&store)?;
        Ok(store)
    }

    /// `sql` prepared on this connection (once; then from the cache).
    fn statement(&self, sql: &str) -> Result<Statement, StoreError> {
        if let Some(s) = self.statements.borrow().get(sql) {
            return Ok(s.clone());
        }
        let stmt = self.with(|c| c.prepare(&numbered(sql)))?;
        self.statements
            .borrow_mut()
            .insert(sql.to_string(), stmt.clone());
        Ok(stmt)
    }

    /// Runs `f` on the connection (see [`blocking`]). A connection the
    /// server or the network closed is made again first, outside a unit
    /// of work (inside one, the unit is lost with it and fails): a node
    /// goes on by itself once the database is back.
    fn with<T>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T, postgres::Error>,
    ) -> Result<T, StoreError> {
        let mut slot = self.client.borrow_mut();
        if slot.as_ref().is_some_and(Client::is_closed) && self.depth.get() == 0 {
            let fresh = connect(&self.url)?;
            // Statements and LISTEN belonged to the old session.
            self.statements.borrow_mut().clear();
            self.listening.set(false);
            *slot = Some(fresh);
            tracing::info!("reconnected to the database");
        }
        let client = slot
            .as_mut()
            .ok_or_else(|| StoreError::Unavailable("connection closed".into()))?;
        blocking(|| f(client)).map_err(|e| {
            // The connection went with it: the database is out of reach,
            // not wrong.
            if e.is_closed() || client.is_closed() {
                StoreError::Unavailable(e.to_string())
            } else {
                StoreError::from(e)
            }
        })
    }

    /// Rows of a query.
    pub(crate) fn rows(&self, sql: &str, params: &Params<'_>) -> Result<Vec<Row>, StoreError> {
        let stmt = self.statement(sql)?;
        self.with(|c| c.query(&stmt, params))
    }

    /// The row of a query that finds at most one.
    pub(crate) fn row(&self, sql: &str, params: &Params<'_>) -> Result<Option<Row>, StoreError> {
        let stmt = self.statement(sql)?;
        self.with(|c| c.query_opt(&stmt, params))
    }

    /// The row of a query that always finds one.
    pub(crate) fn one(&self, sql: &str, params: &Params<'_>) -> Result<Row, StoreError> {
        let stmt = self.statement(sql)?;
        self.with(|c| c.query_one(&stmt, params))
    }

    /// Runs a statement; how many rows it changed.
    pub(crate) fn exec(&self, sql: &str, params: &Params<'_>) -> Result<u64, StoreError> {
        let stmt = self.statement(sql)?;
        self.with(|c| c.execute(&stmt, params))
    }

    /// Runs statements without parameters (schema, transaction control).
    pub(crate) fn batch(&self, sql: &str) -> Result<(), StoreError> {
        self.with(|c| c.batch_execute(sql))
    }

    /// Runs `f` as one unit: all its writes commit together or none does.
    /// Nested units are savepoints.
    pub fn atomically<T, E: From<StoreError>>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, E>,
    ) -> Result<T, E> {
        let depth = self.depth.get();
        let (begin, commit, rollback) = if depth == 0 {
            (
                "BEGIN".to_string(),
                "COMMIT".to_string(),
                "ROLLBACK".to_string(),
            )
        } else {
            (
                format!("SAVEPOINT unit{depth}"),
                format!("RELEASE SAVEPOINT unit{depth}"),
                format!("ROLLBACK TO SAVEPOINT unit{depth}; RELEASE SAVEPOINT unit{depth}"),
            )
        };
        self.batch(&begin)?;
        self.depth.set(depth + 1);
        let r = f(self);
        self.depth.set(depth);
        match r {
            Ok(v) => {
                self.batch(&commit)?;
                Ok(v)
            }
            Err(e) => {
                let _ = self.batch(&rollback);
                Err(e)
            }
        }
    }

    /// Waits at most `timeout` for a notice of the change log (LISTEN,
    /// from the first wait on); notices that came meanwhile count too.
    fn wait_for_notice(&self, timeout: std::time::Duration) -> Result<(), StoreError> {
        if !self.listening.get() {
            self.batch("LISTEN sipmask_changes")?;
            self.listening.set(true);
        }
        use postgres::fallible_iterator::FallibleIterator;
        self.with(|c| {
            let mut notices = c.notifications();
            notices.timeout_iter(timeout).next()?;
            // Others queued behind the first say nothing new.
            while notices.iter().next()?.is_some() {}
            Ok(())
        })
    }

    /// Bindings whose row matches `clause` (SQL after `WHERE`, or empty).
    pub(crate) fn bindings_where(
        &self,
        clause: &str,
        params: &Params<'_>,
    ) -> Result<Vec<Binding>, StoreError> {
        let sql = if clause.is_empty() {
            SELECT.to_string()
        } else {
            format!("{SELECT} WHERE {clause}")
        };
        let mut out = Vec::new();
        for r in self.rows(&sql, params)? {
            out.push(read_row(&r)?);
        }
        Ok(out)
    }
}

/// Connects to `url`, with bounds the URL may override: a connection
/// attempt gives up after 2 s and a server that stops answering is given
/// up after 5 s, so a node cut from its database says so in seconds rather
/// than hanging its callers on TCP's own timeouts.
fn connect(url: &str) -> Result<Client, StoreError> {
    let mut config: postgres::Config = url.parse()?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(std::time::Duration::from_secs(2));
    }
    if config.get_tcp_user_timeout().is_none() {
        config.tcp_user_timeout(std::time::Duration::from_secs(5));
    }
    if config.get_application_name().is_none() {
        config.application_name("sipmask");
    }
    // A URL that does not parse is the operator's to fix (above); one
    // that does not connect is a database out of reach.
    blocking(|| config.connect(NoTls)).map_err(|e| StoreError::Unavailable(e.to_string()))
}

/// Runs a call of the blocking client. It drives a runtime of its own,
/// which tokio forbids on an async worker thread: there the call moves the
/// worker's other tasks away first (`block_in_place`); on the writer's
/// thread and blocking tasks it simply runs.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// SQLite-style placeholders as PostgreSQL's: `?N` becomes `$N` and each
/// bare `?` the next number.
fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut next = 0;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '?' {
            out.push(c);
            continue;
        }
        out.push('$');
        if chars.peek().is_some_and(char::is_ascii_digit) {
            while let Some(d) = chars.next_if(char::is_ascii_digit) {
                out.push(d);
            }
        } else {
            next += 1;
            out.push_str(&next.to_string());
        }
    }
    out
}

impl crate::store::rows::Cells for Row {
    fn int(&self, i: usize) -> Result<i64, StoreError> {
        Ok(self.try_get(i)?)
    }
    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        Ok(self.try_get(i)?)
    }
    fn text(&self, i: usize) -> Result<String, StoreError> {
        Ok(self.try_get(i)?)
    }
    fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
        Ok(self.try_get(i)?)
    }
    fn flag(&self, i: usize) -> Result<bool, StoreError> {
        Ok(self.try_get(i)?)
    }
    fn opt_flag(&self, i: usize) -> Result<Option<bool>, StoreError> {
        Ok(self.try_get(i)?)
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        // Closing says goodbye to the server: a blocking call too.
        if let Some(c) = self.client.get_mut().take() {
            blocking(|| drop(c));
        }
    }
}

impl super::Backend for PgStore {
    fn unit(
        &mut self,
        f: &mut dyn FnMut(&mut dyn super::Backend) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.atomically(|s| f(s))
    }

    fn reopen(&self) -> Result<Box<dyn super::Backend>, StoreError> {
        let mut s = PgStore::open(&self.url)?;
        s.origin = self.origin.clone();
        Ok(Box::new(s))
    }

    fn set_origin(&mut self, origin: &str) {
        self.origin = origin.to_string();
    }

    fn checkpoint(&mut self) -> Result<(), StoreError> {
        // PostgreSQL checkpoints by itself.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered() {
        assert_eq!(numbered("a = ?1 AND b = ?12"), "a = $1 AND b = $12");
        assert_eq!(numbered("VALUES (?, ?, ?)"), "VALUES ($1, $2, $3)");
    }
}
