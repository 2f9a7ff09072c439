//! SQLite backend: one file `sipmask.db` in the data dir, WAL mode so `serve`
//! and the CLI can open it at the same time, versioned schema migrations.

mod accounts;
mod admin;
mod changes;
mod events;
mod flow;
mod holds;
mod live;
mod records;
mod webhooks;

mod columns;

use std::path::Path;

use rusqlite::Connection;
use rusqlite_migration::{Migrations, M};

use super::StoreError;
use crate::bindings::Binding;
pub(crate) use columns::{read_row, SELECT};

// The backend's errors reach callers as the neutral `StoreError::Db`.
impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Db(Box::new(e))
    }
}

impl crate::store::rows::Cells for rusqlite::Row<'_> {
    fn int(&self, i: usize) -> Result<i64, StoreError> {
        Ok(self.get(i)?)
    }
    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        Ok(self.get(i)?)
    }
    fn text(&self, i: usize) -> Result<String, StoreError> {
        Ok(self.get(i)?)
    }
    fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
        Ok(self.get(i)?)
    }
    fn flag(&self, i: usize) -> Result<bool, StoreError> {
        Ok(self.get::<_, i64>(i)? != 0)
    }
    fn opt_flag(&self, i: usize) -> Result<Option<bool>, StoreError> {
        Ok(self.get::<_, Option<i64>>(i)?.map(|v| v != 0))
    }
}

/// A shared row reader's result where rusqlite wants its own.
pub(super) fn via<T>(r: Result<T, StoreError>) -> rusqlite::Result<T> {
    r.map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Null, Box::new(e))
    })
}

/// Each entry moves the schema one version up; never edit a shipped entry.
const MIGRATIONS: &[&str] = &["CREATE TABLE bindings (
        id INTEGER PRIMARY KEY,
        caller TEXT,
        virtual TEXT NOT NULL,
        callee TEXT NOT NULL,
        not_before INTEGER,
        not_after INTEGER,
        max_calls INTEGER,
        max_call_secs INTEGER,
        talk_budget_secs INTEGER,
        allowed_callers TEXT,
        calls_used INTEGER NOT NULL DEFAULT 0,
        talk_secs_used INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL
    );
    CREATE UNIQUE INDEX bindings_axb_a ON bindings(caller, virtual) WHERE caller IS NOT NULL;
    CREATE UNIQUE INDEX bindings_ax ON bindings(virtual) WHERE caller IS NULL;",
    "ALTER TABLE bindings ADD COLUMN tenant_id INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE bindings ADD COLUMN kind TEXT NOT NULL DEFAULT 'cli';
    ALTER TABLE bindings ADD COLUMN direction TEXT;
    ALTER TABLE bindings ADD COLUMN idle_secs INTEGER;
    ALTER TABLE bindings ADD COLUMN last_call_at INTEGER;
    ALTER TABLE bindings ADD COLUMN updated_at INTEGER;
    CREATE INDEX bindings_tenant ON bindings(tenant_id, id);
    CREATE TABLE tenants (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, created_at INTEGER NOT NULL);
    CREATE TABLE api_keys (hash TEXT PRIMARY KEY, tenant_id INTEGER NOT NULL, created_at INTEGER NOT NULL);
    CREATE TABLE numbers (number TEXT PRIMARY KEY, tenant_id INTEGER NOT NULL, created_at INTEGER NOT NULL);
    CREATE INDEX numbers_tenant ON numbers(tenant_id, number);
    CREATE TABLE quarantine (party TEXT NOT NULL, virtual TEXT NOT NULL, until INTEGER NOT NULL,
        PRIMARY KEY (party, virtual));
    CREATE TABLE blocklist (tenant_id INTEGER NOT NULL, number TEXT NOT NULL, created_at INTEGER NOT NULL,
        PRIMARY KEY (tenant_id, number));",
    "CREATE TABLE calls (
        id INTEGER PRIMARY KEY,
        tenant_id INTEGER NOT NULL,
        binding_id INTEGER,
        direction TEXT,
        caller TEXT NOT NULL,
        callee TEXT,
        virtual TEXT NOT NULL,
        invite_at INTEGER NOT NULL,
        ringing_at INTEGER,
        answer_at INTEGER,
        end_at INTEGER,
        duration_secs INTEGER NOT NULL DEFAULT 0,
        result INTEGER NOT NULL,
        ended_by TEXT,
        reason TEXT NOT NULL
    );
    CREATE INDEX calls_tenant ON calls(tenant_id, id);
    CREATE INDEX calls_time ON calls(invite_at);",
    "CREATE TABLE webhooks (tenant_id INTEGER PRIMARY KEY, url TEXT NOT NULL, secret TEXT NOT NULL,
        created_at INTEGER NOT NULL);
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        tenant_id INTEGER NOT NULL,
        event_id TEXT NOT NULL UNIQUE,
        type TEXT NOT NULL,
        binding_id INTEGER,
        seq INTEGER NOT NULL,
        body TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL,
        delivered_at INTEGER
    );
    CREATE INDEX events_due ON events(delivered_at, next_attempt_at);
    CREATE INDEX events_binding ON events(binding_id, seq);",
    // Every X has one owner, whatever made it: `numbers` becomes the claim
    // registry, and `source` tells pool numbers from token identifiers and
    // the operator's command-line X. Existing X are claimed by their first
    // binding's tenant.
    "ALTER TABLE numbers ADD COLUMN source TEXT NOT NULL DEFAULT 'pool';
    INSERT OR IGNORE INTO numbers (number, tenant_id, created_at, source)
        SELECT virtual, tenant_id, MIN(created_at),
               CASE kind WHEN 'token' THEN 'token' WHEN 'cli' THEN 'cli' ELSE 'pool' END
        FROM bindings GROUP BY virtual;",
    // Webhook deliveries end: an event is failed after its last attempt,
    // and a webhook failing long enough is disabled.
    "ALTER TABLE events ADD COLUMN failed_at INTEGER;
    ALTER TABLE events ADD COLUMN last_error TEXT;
    ALTER TABLE webhooks ADD COLUMN masked INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE webhooks ADD COLUMN failing_since INTEGER;
    ALTER TABLE webhooks ADD COLUMN disabled_at INTEGER;
    CREATE INDEX events_tenant_due ON events(tenant_id, delivered_at, failed_at, next_attempt_at);",
    // Keys get a public id to list and revoke them by; the operator's
    // command-line changes are logged for a running server to apply.
    "ALTER TABLE api_keys ADD COLUMN key_id TEXT;
    UPDATE api_keys SET key_id = 'key_' || substr(hash, 1, 12);
    CREATE UNIQUE INDEX api_keys_id ON api_keys(key_id);
    CREATE TABLE operator_changes (id INTEGER PRIMARY KEY, kind TEXT NOT NULL,
        first INTEGER NOT NULL DEFAULT 0, last INTEGER NOT NULL DEFAULT 0, at INTEGER NOT NULL);",
    // Checkpoints of live calls (store::live).
    "CREATE TABLE live_calls (key TEXT PRIMARY KEY, instance TEXT NOT NULL, tenant_id INTEGER NOT NULL,
        binding_id INTEGER, direction TEXT, caller TEXT NOT NULL, callee TEXT, virtual TEXT NOT NULL,
        invite_at INTEGER NOT NULL, ringing_at INTEGER, answer_at INTEGER, lease_secs INTEGER);
    CREATE TABLE live_instances (instance TEXT PRIMARY KEY, at INTEGER NOT NULL);",
    // App accounts (store::accounts) and where they are registered.
    "CREATE TABLE accounts (name TEXT PRIMARY KEY, tenant_id INTEGER NOT NULL, realm TEXT NOT NULL,
        ha1_md5 TEXT NOT NULL, ha1_sha256 TEXT NOT NULL, created_at INTEGER NOT NULL);
    CREATE INDEX accounts_tenant ON accounts(tenant_id, name);
    CREATE TABLE contacts (account TEXT NOT NULL, uri TEXT NOT NULL, transport TEXT NOT NULL,
        addr TEXT NOT NULL, expires_ms INTEGER NOT NULL, call_id TEXT NOT NULL, cseq INTEGER NOT NULL,
        since_ms INTEGER NOT NULL);
    CREATE INDEX contacts_account ON contacts(account);",
    // Flow 2 (store::flow): soft numbers, teams, agents, interactions,
    // pushes, acquired numbers and acquisition decisions.
    "CREATE TABLE soft_users (id INTEGER PRIMARY KEY, tenant_id INTEGER NOT NULL, real TEXT NOT NULL,
        soft TEXT NOT NULL, ext_id TEXT, created_at INTEGER NOT NULL, active_at INTEGER NOT NULL,
        recycled_at INTEGER);
    CREATE UNIQUE INDEX soft_users_real ON soft_users(tenant_id, real) WHERE recycled_at IS NULL;
    CREATE UNIQUE INDEX soft_users_soft ON soft_users(tenant_id, soft) WHERE recycled_at IS NULL;
    CREATE UNIQUE INDEX soft_users_ext ON soft_users(tenant_id, ext_id) WHERE recycled_at IS NULL;
    CREATE INDEX soft_users_recycled ON soft_users(tenant_id, soft, recycled_at);
    CREATE INDEX soft_users_idle ON soft_users(tenant_id, active_at) WHERE recycled_at IS NULL;
    CREATE TABLE teams (id INTEGER PRIMARY KEY, tenant_id INTEGER NOT NULL, name TEXT NOT NULL,
        shares INTEGER NOT NULL, created_at INTEGER NOT NULL);
    CREATE UNIQUE INDEX teams_name ON teams(tenant_id, name);
    CREATE TABLE agents (id INTEGER PRIMARY KEY, tenant_id INTEGER NOT NULL, real TEXT NOT NULL,
        team_id INTEGER NOT NULL, name TEXT, created_at INTEGER NOT NULL);
    CREATE UNIQUE INDEX agents_real ON agents(tenant_id, real);
    CREATE TABLE interactions (id INTEGER PRIMARY KEY, tenant_id INTEGER NOT NULL,
        user_id INTEGER NOT NULL, agent_id INTEGER NOT NULL, team_id INTEGER NOT NULL,
        kind TEXT NOT NULL, at INTEGER NOT NULL);
    CREATE INDEX interactions_agent ON interactions(user_id, agent_id, at);
    CREATE INDEX interactions_team ON interactions(user_id, team_id, at);
    CREATE TABLE pushes (user_id INTEGER NOT NULL, agent_id INTEGER NOT NULL, at INTEGER NOT NULL,
        PRIMARY KEY (user_id, agent_id));
    CREATE TABLE acquired (agent_id INTEGER NOT NULL, user_id INTEGER NOT NULL,
        binding_id INTEGER NOT NULL, PRIMARY KEY (agent_id, user_id));
    CREATE INDEX acquired_user ON acquired(user_id);
    CREATE INDEX acquired_binding ON acquired(binding_id);
    CREATE TABLE acquisitions (id INTEGER PRIMARY KEY, tenant_id INTEGER NOT NULL,
        agent_number TEXT NOT NULL, agent_id INTEGER, team_id INTEGER, soft TEXT NOT NULL,
        user_id INTEGER, result TEXT NOT NULL, reason TEXT NOT NULL, x TEXT, binding_id INTEGER,
        at INTEGER NOT NULL);
    CREATE INDEX acquisitions_tenant ON acquisitions(tenant_id, id);
    CREATE TABLE tenant_settings (tenant_id INTEGER PRIMARY KEY, body TEXT NOT NULL);",
    // Media: recorded bindings; a call's recording and whether a prompt
    // announced it.
    "ALTER TABLE bindings ADD COLUMN record INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE bindings ADD COLUMN announce INTEGER;
    ALTER TABLE calls ADD COLUMN recording TEXT;
    ALTER TABLE calls ADD COLUMN announced INTEGER NOT NULL DEFAULT 0;",
    // An account's identity beyond its name: a name removed and made again
    // is another account, which inherits no registration of the first.
    "ALTER TABLE accounts ADD COLUMN uid INTEGER NOT NULL DEFAULT 0;",
    // A contact registered through edge proxies keeps their Path (RFC 3327),
    // one entry per line.
    "ALTER TABLE contacts ADD COLUMN path TEXT NOT NULL DEFAULT '';",
    // Limits that count per day: where the binding's days begin, and the
    // day and count of its calls. (The limits' own columns come from their
    // definition: `columns::ensure`.)
    "ALTER TABLE bindings ADD COLUMN time_zone TEXT;
    ALTER TABLE bindings ADD COLUMN day INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE bindings ADD COLUMN day_calls INTEGER NOT NULL DEFAULT 0;",
    // Node names and who holds each (store::LiveStore::hold_node).
    "CREATE TABLE nodes (node TEXT PRIMARY KEY, instance TEXT NOT NULL, at INTEGER NOT NULL);",
    // Who logged a change (store::changes::origin).
    "ALTER TABLE operator_changes ADD COLUMN origin TEXT NOT NULL DEFAULT '';",
    // Calls' holds on their bindings (store::holds): reserved uses and
    // leased talk time, counted on the binding's row.
    "ALTER TABLE bindings ADD COLUMN calls_live INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE bindings ADD COLUMN talk_leased INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE bindings ADD COLUMN talk_granted INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE holds (key TEXT PRIMARY KEY, instance TEXT NOT NULL, binding INTEGER NOT NULL,
        at INTEGER NOT NULL, answered INTEGER NOT NULL DEFAULT 0, leased INTEGER NOT NULL DEFAULT 0);
    CREATE INDEX holds_instance ON holds(instance);",
    // Where each node's SIP is reached (store::LiveStore::node_addresses).
    "ALTER TABLE nodes ADD COLUMN sip TEXT NOT NULL DEFAULT '';",
    // How many servers have started on the database (store::ChangeLog::serve_starts):
    // a saved table is current only if no other has started since.
    "CREATE TABLE serve_starts (n INTEGER NOT NULL);
    INSERT INTO serve_starts VALUES (0);",
    // The API's list filters (store::binding_sql::list_where): by party
    // (the caller's is bindings_axb_a) and by X, tenants' rows alone.
    "CREATE INDEX bindings_callee ON bindings(callee) WHERE tenant_id <> 0;
    CREATE INDEX bindings_virtual ON bindings(virtual, id) WHERE tenant_id <> 0;"];

/// The SQLite store.
pub struct SqliteStore {
    pub(super) conn: Connection,
    // Where it lives, for another connection to the same database.
    dir: std::path::PathBuf,
    /// Who logs changes through it (`Backend::set_origin`).
    pub(super) origin: String,
}

impl SqliteStore {
    /// Opens (creating if needed) `sipmask.db` under `dir` and migrates it.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        private_files(dir).map_err(|source| StoreError::DataDir {
            path: dir.display().to_string(),
            source,
        })?;
        let conn = Connection::open(dir.join("sipmask.db"))?;
        // WAL + NORMAL: a commit is in the WAL file before we go on, so it
        // survives a crash of the process; fsync happens at checkpoints.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        // Checkpoints are the server's checkpointer's (`Backend::checkpoint`
        // every second), never a request's: one that copies the WAL into
        // the database would stall whichever commit crossed the threshold.
        // (A command-line process checkpoints when it closes.)
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        // Room for every statement the store caches (about 40), so the
        // writer's few never fall out of the cache and get parsed again.
        conn.set_prepared_statement_cache_capacity(64);
        let mut store = SqliteStore {
            conn,
            dir: dir.to_path_buf(),
            origin: crate::store::changes::origin().to_string(),
        };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let supported = MIGRATIONS.len() as i64;
        if version > supported {
            return Err(StoreError::TooNew {
                found: version,
                supported,
            });
        }
        // rusqlite_migration keeps the version in `user_version` as this
        // store always did (the number of entries applied), each entry in
        // a transaction of its own: a database of any earlier sipmask
        // goes on from where it is.
        let steps = MIGRATIONS.iter().map(|sql| M::up(sql)).collect();
        Migrations::new(steps)
            .to_latest(&mut self.conn)
            .map_err(|e| StoreError::Db(Box::new(e)))?;
        columns::ensure(&self.conn)
    }

    /// Bindings whose row matches `clause` (SQL after `WHERE`, or empty).
    pub(super) fn bindings_where(
        &self,
        clause: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<Binding>, StoreError> {
        let sql = if clause.is_empty() {
            SELECT.to_string()
        } else {
            format!("{SELECT} WHERE {clause}")
        };
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map(params, read_row)?;
        let mut out = Vec::new();
        for r in rows {
            out.push(r??);
        }
        Ok(out)
    }
}

/// Creates `dir` and its parents, for the owner only (0700).
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Opens `path` for writing, created for the owner only (0600); what it
/// holds is kept.
pub fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(path)
}

/// Makes the data dir (0700) and the database files (0600) private: they
/// hold real numbers. SQLite gives its -wal and -shm files the database
/// file's mode, so creating that one 0600 covers them too.
fn private_files(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    private_dir(dir)?;
    private_file(&dir.join("sipmask.db"))?;
    for name in ["sipmask.db", "sipmask.db-wal", "sipmask.db-shm"] {
        let f = dir.join(name);
        if f.exists() {
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600))?;
        }
    }
    Ok(())
}

impl super::Backend for SqliteStore {
    fn unit(
        &mut self,
        f: &mut dyn FnMut(&mut dyn super::Backend) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.atomically(|s| f(s))
    }

    fn reopen(&self) -> Result<Box<dyn super::Backend>, StoreError> {
        let mut s = SqliteStore::open(&self.dir)?;
        s.origin = self.origin.clone();
        Ok(Box::new(s))
    }

    fn set_origin(&mut self, origin: &str) {
        self.origin = origin.to_string();
    }

    fn checkpoint(&mut self) -> Result<(), StoreError> {
        let log: i64 = self
            .conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1))?;
        // Under writes that never pause the log is never started over by
        // itself: past 64 MiB, wait for the writers once and empty it.
        if log > 16_384 {
            self.conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::{Conditions, Kind, Number, Usage};
    use crate::store::prelude::*;
    use crate::store::{NewBinding, UsageUpdate};

    #[test]
    fn bindings_and_usage_survive_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        let n = |s: &str| Number::from_normalised(s.into());
        let id = {
            let mut s = SqliteStore::open(dir.path()).expect("open");
            let ids = s
                .insert(&[NewBinding {
                    tenant: 0,
                    kind: Kind::Cli,
                    a: Some(n("+1")),
                    x: n("+9"),
                    b: n("+2"),
                    conditions: Conditions {
                        max_calls: Some(3),
                        ..Default::default()
                    },
                    created_at: 5,
                }])
                .expect("insert");
            let usage = Usage {
                calls_used: 2,
                reserved: 0,
                talk_secs_used: 40,
                last_call_at: Some(9),
                talk_leased: 0,
                day: 20_000,
                day_calls: 2,
            };
            s.save_usage(&[UsageUpdate { id: ids[0], usage }])
                .expect("usage");
            ids[0]
        };
        let mut s = SqliteStore::open(dir.path()).expect("reopen");
        let all = s.load_all().expect("load");
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].id, id);
        assert_eq!(all[0].usage.calls_used, 2);
        assert_eq!(all[0].usage.talk_secs_used, 40);
        assert_eq!(all[0].usage.last_call_at, Some(9));
        assert_eq!((all[0].usage.day, all[0].usage.day_calls), (20_000, 2));
        assert_eq!(all[0].conditions.max_calls, Some(3));
    }

    #[test]
    fn an_older_database_goes_on_and_a_newer_one_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            // A database as an earlier sipmask left it: the first
            // migrations applied by the former runner, version in
            // user_version.
            let conn = Connection::open(dir.path().join("sipmask.db")).expect("db");
            for sql in &MIGRATIONS[..2] {
                conn.execute_batch(sql).expect("early migration");
            }
            conn.pragma_update(None, "user_version", 2)
                .expect("version");
        }
        let s = SqliteStore::open(dir.path()).expect("migrated");
        let v: i64 = s
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .expect("version");
        assert_eq!(v, MIGRATIONS.len() as i64);
        s.conn
            .pragma_update(None, "user_version", v + 1)
            .expect("bump");
        drop(s);
        match SqliteStore::open(dir.path()) {
            Err(StoreError::TooNew { found, supported }) => {
                assert_eq!((found, supported), (v + 1, v));
            }
            other => panic!("expected TooNew, got {:?}", other.err()),
        }
    }

    #[test]
    fn a_clashing_batch_is_not_half_inserted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let n = |s: &str| Number::from_normalised(s.into());
        let mut s = SqliteStore::open(dir.path()).expect("open");
        let row = NewBinding {
            tenant: 0,
            kind: Kind::Cli,
            a: None,
            x: n("+9"),
            b: n("+2"),
            conditions: Conditions::default(),
            created_at: 0,
        };
        assert!(s.insert(&[row.clone(), row]).is_err());
        assert!(s.load_all().expect("load").is_empty());
    }

    #[test]
    fn a_failed_unit_of_work_leaves_nothing_behind() {
        let dir = tempfile::tempdir().expect("tempdir");
        let n = |s: &str| Number::from_normalised(s.into());
        let mut s = SqliteStore::open(dir.path()).expect("open");
        let row = NewBinding {
            tenant: 1,
            kind: Kind::Axb,
            a: Some(n("+1")),
            x: n("+9"),
            b: n("+2"),
            conditions: Conditions::default(),
            created_at: 0,
        };
        let r: Result<(), StoreError> = s.atomically(|s| {
            s.create(std::slice::from_ref(&row))?;
            Err(StoreError::Corrupt {
                id: 0,
                reason: "later step failed".into(),
            })
        });
        assert!(r.is_err());
        assert!(
            s.load_all().expect("load").is_empty(),
            "the insert was rolled back"
        );
        s.atomically(|s| s.create(&[row]).map(|_| ()))
            .expect("commits");
        assert_eq!(s.load_all().expect("load").len(), 1);
    }
}
