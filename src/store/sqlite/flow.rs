//! SQLite: the flow area's statements (the neutral types are in
//! `store::flow`).

use crate::bindings::{BindingId, Number, TenantId};
use crate::store::flow::*;
use crate::store::prelude::*;
use crate::store::rows;
use crate::store::sqlite::via;
use crate::store::{SqliteStore, StoreError};
use rusqlite::{params, OptionalExtension, Row};

fn user_of(r: &Row<'_>) -> rusqlite::Result<User> {
    via(rows::user(r))
}

const USER: &str =
    "SELECT id, tenant_id, real, soft, ext_id, created_at, active_at, recycled_at FROM soft_users";

fn team_of(r: &Row<'_>) -> rusqlite::Result<Team> {
    via(rows::team(r))
}

fn agent_of(r: &Row<'_>) -> rusqlite::Result<Agent> {
    via(rows::agent(r))
}

const AGENT: &str = "SELECT id, tenant_id, real, team_id, name FROM agents";

impl FlowStore for SqliteStore {
    fn live_user(&self, tenant: TenantId, by: UserKey<'_>) -> Result<Option<User>, StoreError> {
        let (sql, key) = match by {
            UserKey::Real(n) => ("real = ?2 AND recycled_at IS NULL", n.as_str()),
            UserKey::Soft(s) => ("soft = ?2 AND recycled_at IS NULL", s),
            UserKey::Ext(e) => ("ext_id = ?2 AND recycled_at IS NULL", e),
            UserKey::LastWithSoft(s) => ("soft = ?2 ORDER BY id DESC LIMIT 1", s),
        };
        let q = format!("{USER} WHERE tenant_id = ?1 AND {sql}");
        Ok(self
            .conn
            .prepare_cached(&q)?
            .query_row(params![tenant, key], user_of)
            .optional()?)
    }

    fn soft_resting(&self, tenant: TenantId, soft: &str, since: i64) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT 1 FROM soft_users WHERE tenant_id = ?1 AND soft = ?2
                 AND (recycled_at IS NULL OR recycled_at >= ?3) LIMIT 1",
            )?
            .query_row(params![tenant, soft, since], |_| Ok(()))
            .optional()?
            .is_some())
    }

    fn add_user(
        &mut self,
        tenant: TenantId,
        real: &Number,
        soft: &str,
        ext_id: Option<&str>,
        now: i64,
    ) -> Result<i64, StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO soft_users (tenant_id, real, soft, ext_id, created_at, active_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
            )?
            .execute(params![tenant, real.as_str(), soft, ext_id, now])?;
        Ok(self.conn.last_insert_rowid())
    }

    fn touch_users(&mut self, ids: &[i64], now: i64) -> Result<(), StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "UPDATE soft_users SET active_at = ?2 WHERE id = ?1 AND active_at < ?2",
        )?;
        for id in ids {
            stmt.execute(params![id, now])?;
        }
        Ok(())
    }

    fn recycle_user(&mut self, tenant: TenantId, id: i64, now: i64) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "UPDATE soft_users SET recycled_at = ?3 WHERE tenant_id = ?1 AND id = ?2 AND recycled_at IS NULL",
            params![tenant, id, now],
        )?;
        Ok(n == 1)
    }

    fn idle_users(
        &self,
        tenant: TenantId,
        before: i64,
        limit: u32,
    ) -> Result<Vec<User>, StoreError> {
        let q = format!(
            "{USER} WHERE recycled_at IS NULL AND active_at < ?2 AND tenant_id = ?1 LIMIT ?3"
        );
        let mut stmt = self.conn.prepare_cached(&q)?;
        let rows = stmt.query_map(params![tenant, before, limit], user_of)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn live_softs(&self) -> Result<Vec<(TenantId, String)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT tenant_id, soft FROM soft_users WHERE recycled_at IS NULL")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn acquired_softs(&self) -> Result<Vec<(BindingId, String)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT a.binding_id, u.soft FROM acquired a JOIN soft_users u ON u.id = a.user_id",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn add_team(
        &mut self,
        tenant: TenantId,
        name: &str,
        shares: bool,
        now: i64,
    ) -> Result<Option<i64>, StoreError> {
        let n = self.conn.execute(
            "INSERT OR IGNORE INTO teams (tenant_id, name, shares, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![tenant, name, shares, now],
        )?;
        Ok((n == 1).then(|| self.conn.last_insert_rowid()))
    }

    fn teams(&self, tenant: TenantId) -> Result<Vec<Team>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, tenant_id, name, shares FROM teams WHERE tenant_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([tenant], team_of)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn team(&self, tenant: TenantId, id: i64) -> Result<Option<Team>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT id, tenant_id, name, shares FROM teams WHERE tenant_id = ?1 AND id = ?2",
            )?
            .query_row(params![tenant, id], team_of)
            .optional()?)
    }

    fn set_team_shares(
        &mut self,
        tenant: TenantId,
        id: i64,
        shares: bool,
    ) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "UPDATE teams SET shares = ?3 WHERE tenant_id = ?1 AND id = ?2",
            params![tenant, id, shares],
        )?;
        Ok(n == 1)
    }

    fn add_agent(
        &mut self,
        tenant: TenantId,
        real: &Number,
        team: i64,
        name: Option<&str>,
        now: i64,
    ) -> Result<Option<i64>, StoreError> {
        let n = self.conn.execute(
            "INSERT OR IGNORE INTO agents (tenant_id, real, team_id, name, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![tenant, real.as_str(), team, name, now],
        )?;
        Ok((n == 1).then(|| self.conn.last_insert_rowid()))
    }

    fn agent(&self, tenant: TenantId, by: AgentKey<'_>) -> Result<Option<Agent>, StoreError> {
        let q = match by {
            AgentKey::Id(_) => format!("{AGENT} WHERE tenant_id = ?1 AND id = ?2"),
            AgentKey::Real(_) => format!("{AGENT} WHERE tenant_id = ?1 AND real = ?2"),
        };
        let mut stmt = self.conn.prepare_cached(&q)?;
        Ok(match by {
            AgentKey::Id(id) => stmt.query_row(params![tenant, id], agent_of),
            AgentKey::Real(n) => stmt.query_row(params![tenant, n.as_str()], agent_of),
        }
        .optional()?)
    }

    fn agents(&self, tenant: TenantId, team: Option<i64>) -> Result<Vec<Agent>, StoreError> {
        let q =
            format!("{AGENT} WHERE tenant_id = ?1 AND (?2 IS NULL OR team_id = ?2) ORDER BY id");
        let mut stmt = self.conn.prepare_cached(&q)?;
        let rows = stmt.query_map(params![tenant, team], agent_of)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn move_agent(&mut self, tenant: TenantId, id: i64, team: i64) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "UPDATE agents SET team_id = ?3 WHERE tenant_id = ?1 AND id = ?2",
            params![tenant, id, team],
        )?;
        Ok(n == 1)
    }

    fn remove_agent(&mut self, tenant: TenantId, id: i64) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "DELETE FROM agents WHERE tenant_id = ?1 AND id = ?2",
            params![tenant, id],
        )?;
        Ok(n == 1)
    }

    fn add_interactions(
        &mut self,
        tenant: TenantId,
        items: &[NewInteraction],
    ) -> Result<(), StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "INSERT INTO interactions (tenant_id, user_id, agent_id, team_id, kind, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for i in items {
            stmt.execute(params![tenant, i.user, i.agent, i.team, i.kind, i.at])?;
        }
        Ok(())
    }

    fn interacted(
        &self,
        tenant: TenantId,
        user: i64,
        with: Interacted,
        since: i64,
    ) -> Result<bool, StoreError> {
        let (sql, id) = match with {
            Interacted::Agent(a) => (
                "SELECT 1 FROM interactions WHERE tenant_id = ?1 AND user_id = ?2 AND agent_id = ?3 AND at >= ?4 LIMIT 1",
                a,
            ),
            Interacted::Team(t) => (
                "SELECT 1 FROM interactions WHERE tenant_id = ?1 AND user_id = ?2 AND team_id = ?3 AND at >= ?4 LIMIT 1",
                t,
            ),
        };
        Ok(self
            .conn
            .prepare_cached(sql)?
            .query_row(params![tenant, user, id, since], |_| Ok(()))
            .optional()?
            .is_some())
    }

    fn push_due(
        &mut self,
        user: i64,
        agent: i64,
        window_start: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let n = self
            .conn
            .prepare_cached(
                "INSERT INTO pushes (user_id, agent_id, at) VALUES (?1, ?2, ?4)
             ON CONFLICT (user_id, agent_id) DO UPDATE SET at = ?4 WHERE pushes.at < ?3",
            )?
            .execute(params![user, agent, window_start, now])?;
        Ok(n == 1)
    }

    fn acquired(&self, agent: i64, user: i64) -> Result<Option<BindingId>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT binding_id FROM acquired WHERE agent_id = ?1 AND user_id = ?2")?
            .query_row(params![agent, user], |r| r.get(0))
            .optional()?)
    }

    fn acquired_for_user(&self, user: i64) -> Result<Vec<(i64, BindingId)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT agent_id, binding_id FROM acquired WHERE user_id = ?1")?;
        let rows = stmt.query_map([user], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn set_acquired(
        &mut self,
        agent: i64,
        user: i64,
        binding: Option<BindingId>,
    ) -> Result<(), StoreError> {
        match binding {
            Some(b) => self.conn.execute(
                "INSERT INTO acquired (agent_id, user_id, binding_id) VALUES (?1, ?2, ?3)
                 ON CONFLICT (agent_id, user_id) DO UPDATE SET binding_id = ?3",
                params![agent, user, b],
            )?,
            None => self.conn.execute(
                "DELETE FROM acquired WHERE agent_id = ?1 AND user_id = ?2",
                params![agent, user],
            )?,
        };
        Ok(())
    }

    fn pair_of_binding(
        &self,
        binding: BindingId,
    ) -> Result<Option<(TenantId, i64, i64, i64)>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT a.tenant_id, q.agent_id, a.team_id, q.user_id FROM acquired q
                 JOIN agents a ON a.id = q.agent_id WHERE q.binding_id = ?1",
            )?
            .query_row([binding], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .optional()?)
    }

    fn add_acquisition(&mut self, a: &AcquisitionRecord) -> Result<i64, StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO acquisitions (tenant_id, agent_number, agent_id, team_id, soft, user_id,
                 result, reason, x, binding_id, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?
            .execute(params![
                a.tenant,
                a.agent_number,
                a.agent,
                a.team,
                a.soft,
                a.user,
                a.result,
                a.reason,
                a.x,
                a.binding,
                a.at
            ])?;
        Ok(self.conn.last_insert_rowid())
    }

    fn flow_settings(&self, tenant: TenantId) -> Result<Option<String>, StoreError> {
        self.settings_row(tenant)
    }

    fn set_flow_settings(&mut self, tenant: TenantId, body: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO tenant_settings (tenant_id, body) VALUES (?1, ?2)
             ON CONFLICT (tenant_id) DO UPDATE SET body = ?2",
            params![tenant, body],
        )?;
        Ok(())
    }

    fn acquisitions(
        &self,
        tenant: TenantId,
        f: &AcquisitionFilter,
    ) -> Result<Vec<AcquisitionRecord>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, tenant_id, agent_number, agent_id, team_id, soft, user_id, result, reason, x,
             binding_id, at FROM acquisitions WHERE tenant_id = ?1 AND id > ?2
             AND (?3 IS NULL OR agent_id = ?3)
             AND (?7 IS NULL AND (?4 IS NULL OR user_id = ?4)
                  OR soft = ?7 AND (user_id IS NULL OR ?4 IS NULL OR user_id = ?4))
             AND (?5 IS NULL OR team_id = ?5) ORDER BY id LIMIT ?6",
        )?;
        let rows = stmt.query_map(
            params![
                tenant,
                f.after,
                f.agent,
                f.user,
                f.team,
                f.limit + 1,
                f.soft
            ],
            |r| via(rows::acquisition(r)),
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

impl SqliteStore {
    fn settings_row(&self, tenant: TenantId) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT body FROM tenant_settings WHERE tenant_id = ?1")?
            .query_row([tenant], |r| r.get(0))
            .optional()?)
    }
}
