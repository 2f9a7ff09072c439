//! PostgreSQL: flow 2's soft numbers, teams, agents, interactions, pushes,
//! acquired X and acquisition decisions.

use postgres::Row;

use crate::bindings::{BindingId, Number, TenantId};
use crate::store::flow::*;
use crate::store::postgres::PgStore;
use crate::store::prelude::*;
use crate::store::rows;
use crate::store::StoreError;

const USER: &str =
    "SELECT id, tenant_id, real, soft, ext_id, created_at, active_at, recycled_at FROM soft_users";

const AGENT: &str = "SELECT id, tenant_id, real, team_id, name FROM agents";

/// The pairs of two ids a query returns.
fn pairs(rows: Vec<Row>) -> Result<Vec<(i64, i64)>, StoreError> {
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
}

impl FlowStore for PgStore {
    fn live_user(&self, tenant: TenantId, by: UserKey<'_>) -> Result<Option<User>, StoreError> {
        let (sql, key) = match by {
            UserKey::Real(n) => ("real = ?2 AND recycled_at IS NULL", n.as_str()),
            UserKey::Soft(s) => ("soft = ?2 AND recycled_at IS NULL", s),
            UserKey::Ext(e) => ("ext_id = ?2 AND recycled_at IS NULL", e),
            UserKey::LastWithSoft(s) => ("soft = ?2 ORDER BY id DESC LIMIT 1", s),
        };
        let q = format!("{USER} WHERE tenant_id = ?1 AND {sql}");
        self.row(&q, &[&tenant, &key])?
            .map(|r| rows::user(&r))
            .transpose()
    }

    fn soft_resting(&self, tenant: TenantId, soft: &str, since: i64) -> Result<bool, StoreError> {
        Ok(self
            .row(
                "SELECT 1 FROM soft_users WHERE tenant_id = ?1 AND soft = ?2
                 AND (recycled_at IS NULL OR recycled_at >= ?3) LIMIT 1",
                &[&tenant, &soft, &since],
            )?
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
        Ok(self
            .one(
                "INSERT INTO soft_users (tenant_id, real, soft, ext_id, created_at, active_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5) RETURNING id",
                &[&tenant, &real.as_str(), &soft, &ext_id, &now],
            )?
            .try_get(0)?)
    }

    fn touch_users(&mut self, ids: &[i64], now: i64) -> Result<(), StoreError> {
        for id in ids {
            self.exec(
                "UPDATE soft_users SET active_at = ?2 WHERE id = ?1 AND active_at < ?2",
                &[id, &now],
            )?;
        }
        Ok(())
    }

    fn recycle_user(&mut self, tenant: TenantId, id: i64, now: i64) -> Result<bool, StoreError> {
        Ok(self.exec(
            "UPDATE soft_users SET recycled_at = ?3
             WHERE tenant_id = ?1 AND id = ?2 AND recycled_at IS NULL",
            &[&tenant, &id, &now],
        )? == 1)
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
        self.rows(&q, &[&tenant, &before, &i64::from(limit)])?
            .iter()
            .map(rows::user)
            .collect()
    }

    fn live_softs(&self) -> Result<Vec<(TenantId, String)>, StoreError> {
        self.rows(
            "SELECT tenant_id, soft FROM soft_users WHERE recycled_at IS NULL",
            &[],
        )?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
    }

    fn acquired_softs(&self) -> Result<Vec<(BindingId, String)>, StoreError> {
        self.rows(
            "SELECT a.binding_id, u.soft FROM acquired a JOIN soft_users u ON u.id = a.user_id",
            &[],
        )?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
    }

    fn add_team(
        &mut self,
        tenant: TenantId,
        name: &str,
        shares: bool,
        now: i64,
    ) -> Result<Option<i64>, StoreError> {
        self.row(
            "INSERT INTO teams (tenant_id, name, shares, created_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT DO NOTHING RETURNING id",
            &[&tenant, &name, &shares, &now],
        )?
        .map(|r| Ok(r.try_get(0)?))
        .transpose()
    }

    fn teams(&self, tenant: TenantId) -> Result<Vec<Team>, StoreError> {
        self.rows(
            "SELECT id, tenant_id, name, shares FROM teams WHERE tenant_id = ?1 ORDER BY id",
            &[&tenant],
        )?
        .iter()
        .map(rows::team)
        .collect()
    }

    fn team(&self, tenant: TenantId, id: i64) -> Result<Option<Team>, StoreError> {
        self.row(
            "SELECT id, tenant_id, name, shares FROM teams WHERE tenant_id = ?1 AND id = ?2",
            &[&tenant, &id],
        )?
        .map(|r| rows::team(&r))
        .transpose()
    }

    fn set_team_shares(
        &mut self,
        tenant: TenantId,
        id: i64,
        shares: bool,
    ) -> Result<bool, StoreError> {
        Ok(self.exec(
            "UPDATE teams SET shares = ?3 WHERE tenant_id = ?1 AND id = ?2",
            &[&tenant, &id, &shares],
        )? == 1)
    }

    fn add_agent(
        &mut self,
        tenant: TenantId,
        real: &Number,
        team: i64,
        name: Option<&str>,
        now: i64,
    ) -> Result<Option<i64>, StoreError> {
        self.row(
            "INSERT INTO agents (tenant_id, real, team_id, name, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING RETURNING id",
            &[&tenant, &real.as_str(), &team, &name, &now],
        )?
        .map(|r| Ok(r.try_get(0)?))
        .transpose()
    }

    fn agent(&self, tenant: TenantId, by: AgentKey<'_>) -> Result<Option<Agent>, StoreError> {
        let row = match by {
            AgentKey::Id(id) => self.row(
                &format!("{AGENT} WHERE tenant_id = ?1 AND id = ?2"),
                &[&tenant, &id],
            )?,
            AgentKey::Real(n) => self.row(
                &format!("{AGENT} WHERE tenant_id = ?1 AND real = ?2"),
                &[&tenant, &n.as_str()],
            )?,
        };
        row.map(|r| rows::agent(&r)).transpose()
    }

    fn agents(&self, tenant: TenantId, team: Option<i64>) -> Result<Vec<Agent>, StoreError> {
        let q = format!(
            "{AGENT} WHERE tenant_id = ?1 AND (?2::BIGINT IS NULL OR team_id = ?2) ORDER BY id"
        );
        self.rows(&q, &[&tenant, &team])?
            .iter()
            .map(rows::agent)
            .collect()
    }

    fn move_agent(&mut self, tenant: TenantId, id: i64, team: i64) -> Result<bool, StoreError> {
        Ok(self.exec(
            "UPDATE agents SET team_id = ?3 WHERE tenant_id = ?1 AND id = ?2",
            &[&tenant, &id, &team],
        )? == 1)
    }

    fn remove_agent(&mut self, tenant: TenantId, id: i64) -> Result<bool, StoreError> {
        Ok(self.exec(
            "DELETE FROM agents WHERE tenant_id = ?1 AND id = ?2",
            &[&tenant, &id],
        )? == 1)
    }

    fn add_interactions(
        &mut self,
        tenant: TenantId,
        items: &[NewInteraction],
    ) -> Result<(), StoreError> {
        for i in items {
            self.exec(
                "INSERT INTO interactions (tenant_id, user_id, agent_id, team_id, kind, at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                &[&tenant, &i.user, &i.agent, &i.team, &i.kind, &i.at],
            )?;
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
                "SELECT 1 FROM interactions WHERE tenant_id = ?1 AND user_id = ?2
                 AND agent_id = ?3 AND at >= ?4 LIMIT 1",
                a,
            ),
            Interacted::Team(t) => (
                "SELECT 1 FROM interactions WHERE tenant_id = ?1 AND user_id = ?2
                 AND team_id = ?3 AND at >= ?4 LIMIT 1",
                t,
            ),
        };
        Ok(self.row(sql, &[&tenant, &user, &id, &since])?.is_some())
    }

    fn push_due(
        &mut self,
        user: i64,
        agent: i64,
        window_start: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        Ok(self.exec(
            "INSERT INTO pushes (user_id, agent_id, at) VALUES (?1, ?2, ?4)
             ON CONFLICT (user_id, agent_id) DO UPDATE SET at = ?4 WHERE pushes.at < ?3",
            &[&user, &agent, &window_start, &now],
        )? == 1)
    }

    fn acquired(&self, agent: i64, user: i64) -> Result<Option<BindingId>, StoreError> {
        self.row(
            "SELECT binding_id FROM acquired WHERE agent_id = ?1 AND user_id = ?2",
            &[&agent, &user],
        )?
        .map(|r| Ok(r.try_get(0)?))
        .transpose()
    }

    fn acquired_for_user(&self, user: i64) -> Result<Vec<(i64, BindingId)>, StoreError> {
        pairs(self.rows(
            "SELECT agent_id, binding_id FROM acquired WHERE user_id = ?1",
            &[&user],
        )?)
    }

    fn set_acquired(
        &mut self,
        agent: i64,
        user: i64,
        binding: Option<BindingId>,
    ) -> Result<(), StoreError> {
        match binding {
            Some(b) => self.exec(
                "INSERT INTO acquired (agent_id, user_id, binding_id) VALUES (?1, ?2, ?3)
                 ON CONFLICT (agent_id, user_id) DO UPDATE SET binding_id = ?3",
                &[&agent, &user, &b],
            )?,
            None => self.exec(
                "DELETE FROM acquired WHERE agent_id = ?1 AND user_id = ?2",
                &[&agent, &user],
            )?,
        };
        Ok(())
    }

    fn pair_of_binding(
        &self,
        binding: BindingId,
    ) -> Result<Option<(TenantId, i64, i64, i64)>, StoreError> {
        self.row(
            "SELECT a.tenant_id, q.agent_id, a.team_id, q.user_id FROM acquired q
             JOIN agents a ON a.id = q.agent_id WHERE q.binding_id = ?1",
            &[&binding],
        )?
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)))
        .transpose()
    }

    fn add_acquisition(&mut self, a: &AcquisitionRecord) -> Result<i64, StoreError> {
        Ok(self
            .one(
                "INSERT INTO acquisitions (tenant_id, agent_number, agent_id, team_id, soft,
                 user_id, result, reason, x, binding_id, at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) RETURNING id",
                &[
                    &a.tenant,
                    &a.agent_number,
                    &a.agent,
                    &a.team,
                    &a.soft,
                    &a.user,
                    &a.result,
                    &a.reason,
                    &a.x,
                    &a.binding,
                    &a.at,
                ],
            )?
            .try_get(0)?)
    }

    fn flow_settings(&self, tenant: TenantId) -> Result<Option<String>, StoreError> {
        self.row(
            "SELECT body FROM tenant_settings WHERE tenant_id = ?1",
            &[&tenant],
        )?
        .map(|r| Ok(r.try_get(0)?))
        .transpose()
    }

    fn set_flow_settings(&mut self, tenant: TenantId, body: &str) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO tenant_settings (tenant_id, body) VALUES (?1, ?2)
             ON CONFLICT (tenant_id) DO UPDATE SET body = ?2",
            &[&tenant, &body],
        )?;
        Ok(())
    }

    fn acquisitions(
        &self,
        tenant: TenantId,
        f: &AcquisitionFilter,
    ) -> Result<Vec<AcquisitionRecord>, StoreError> {
        self.rows(
            "SELECT id, tenant_id, agent_number, agent_id, team_id, soft, user_id, result, reason,
             x, binding_id, at FROM acquisitions WHERE tenant_id = ?1 AND id > ?2
             AND (?3::BIGINT IS NULL OR agent_id = ?3)
             AND (?7::TEXT IS NULL AND (?4::BIGINT IS NULL OR user_id = ?4)
                  OR soft = ?7 AND (user_id IS NULL OR ?4::BIGINT IS NULL OR user_id = ?4))
             AND (?5::BIGINT IS NULL OR team_id = ?5) ORDER BY id LIMIT ?6",
            &[
                &tenant,
                &f.after,
                &f.agent,
                &f.user,
                &f.team,
                &(i64::from(f.limit) + 1),
                &f.soft,
            ],
        )?
        .iter()
        .map(rows::acquisition)
        .collect()
    }
}
