//! SQLite backend: one file `sipmask.db` in the data dir, WAL mode so `serve`
//! and the CLI can open it at the same time, versioned schema migrations.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};

use super::{NewBinding, Store, StoreError, UsageUpdate};
use crate::bindings::{Binding, BindingId, Conditions, Number, Usage};

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
    CREATE UNIQUE INDEX bindings_ax ON bindings(virtual) WHERE caller IS NULL;"];

/// The SQLite store.
pub struct SqliteStore {
    conn: Connection,
}

impl SqliteStore {
    /// Opens (creating if needed) `sipmask.db` under `dir` and migrates it.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::DataDir {
            path: dir.display().to_string(),
            source,
        })?;
        let conn = Connection::open(dir.join("sipmask.db"))?;
        // WAL + NORMAL: a commit is in the WAL file before we go on, so it
        // survives a crash of the process; fsync happens at checkpoints.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        let mut store = SqliteStore { conn };
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
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = self.conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", i as i64 + 1)?;
            tx.commit()?;
        }
        Ok(())
    }

    /// One binding by id.
    pub fn get(&self, id: BindingId) -> Result<Option<Binding>, StoreError> {
        self.conn
            .query_row(&format!("{SELECT} WHERE id = ?1"), [id], read_row)
            .optional()?
            .transpose()
    }
}

const SELECT: &str = "SELECT id, caller, virtual, callee, not_before, not_after, max_calls,
    max_call_secs, talk_budget_secs, allowed_callers, calls_used, talk_secs_used, created_at
    FROM bindings";

fn read_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<Binding, StoreError>> {
    let id: i64 = r.get(0)?;
    let allowed: Option<String> = r.get(9)?;
    let conditions = Conditions {
        not_before: r.get(4)?,
        not_after: r.get(5)?,
        max_calls: r.get(6)?,
        max_call_secs: r.get(7)?,
        talk_budget_secs: r.get::<_, Option<i64>>(8)?.map(|v| v.max(0) as u64),
        allowed_callers: allowed.map(|s| {
            s.split(',')
                .filter(|p| !p.is_empty())
                .map(|p| Number::from_normalised(p.to_string()))
                .collect()
        }),
    };
    let calls_used: i64 = r.get(10)?;
    let talk: i64 = r.get(11)?;
    let Ok(calls_used) = u32::try_from(calls_used) else {
        return Ok(Err(StoreError::Corrupt {
            id,
            reason: "calls_used out of range".into(),
        }));
    };
    Ok(Ok(Binding {
        id,
        a: r.get::<_, Option<String>>(1)?.map(Number::from_normalised),
        x: Number::from_normalised(r.get(2)?),
        b: Number::from_normalised(r.get(3)?),
        conditions,
        created_at: r.get(12)?,
        usage: Usage {
            calls_used,
            reserved: 0,
            talk_secs_used: talk.max(0) as u64,
        },
    }))
}

impl Store for SqliteStore {
    fn load_all(&mut self) -> Result<Vec<Binding>, StoreError> {
        let mut stmt = self.conn.prepare(SELECT)?;
        let rows = stmt.query_map([], read_row)?;
        let mut out = Vec::new();
        for r in rows {
            out.push(r??);
        }
        Ok(out)
    }

    fn insert(&mut self, rows: &[NewBinding]) -> Result<Vec<BindingId>, StoreError> {
        self.insert_with_progress(rows, &mut |_| {})
    }

    fn remove(&mut self, id: BindingId) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .execute("DELETE FROM bindings WHERE id = ?1", [id])?
            > 0)
    }

    fn save_usage(&mut self, updates: &[UsageUpdate]) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "UPDATE bindings SET calls_used = ?2, talk_secs_used = ?3 WHERE id = ?1",
            )?;
            for u in updates {
                stmt.execute(params![
                    u.id,
                    u.usage.calls_used,
                    u.usage.talk_secs_used as i64
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}

impl SqliteStore {
    /// [`Store::insert`], calling `progress` with the count done so far.
    pub fn insert_with_progress(
        &mut self,
        rows: &[NewBinding],
        progress: &mut dyn FnMut(usize),
    ) -> Result<Vec<BindingId>, StoreError> {
        let tx = self.conn.transaction()?;
        let mut ids = Vec::with_capacity(rows.len());
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO bindings (caller, virtual, callee, not_before, not_after, max_calls,
                 max_call_secs, talk_budget_secs, allowed_callers, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?;
            for b in rows {
                let c = &b.conditions;
                let allowed = c
                    .allowed_callers
                    .as_ref()
                    .map(|v| v.iter().map(Number::as_str).collect::<Vec<_>>().join(","));
                stmt.execute(params![
                    b.a.as_ref().map(Number::as_str),
                    b.x.as_str(),
                    b.b.as_str(),
                    c.not_before,
                    c.not_after,
                    c.max_calls,
                    c.max_call_secs,
                    c.talk_budget_secs.map(|v| v as i64),
                    allowed,
                    b.created_at,
                ])?;
                ids.push(tx.last_insert_rowid());
                progress(ids.len());
            }
        }
        tx.commit()?;
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bindings_and_usage_survive_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        let n = |s: &str| Number::from_normalised(s.into());
        let id = {
            let mut s = SqliteStore::open(dir.path()).expect("open");
            let ids = s
                .insert(&[NewBinding {
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
        assert_eq!(all[0].conditions.max_calls, Some(3));
    }

    #[test]
    fn a_clashing_batch_is_not_half_inserted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let n = |s: &str| Number::from_normalised(s.into());
        let mut s = SqliteStore::open(dir.path()).expect("open");
        let row = NewBinding {
            a: None,
            x: n("+9"),
            b: n("+2"),
            conditions: Conditions::default(),
            created_at: 0,
        };
        assert!(s.insert(&[row.clone(), row]).is_err());
        assert!(s.load_all().expect("load").is_empty());
    }
}
