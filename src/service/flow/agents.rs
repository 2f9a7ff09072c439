//! Teams and agents. An agent is a business terminal registered with its
//! real number in one team of its tenant; a team says whether its agents
//! share interactions. A number that is not registered is no agent.

use super::{refuse_soft, Error, Services};
use crate::bindings::{Number, TenantId};
use crate::store::flow::{Agent, AgentKey, Team};
use crate::store::prelude::*;

/// Checks a team belongs to the tenant.
fn team_of(s: &dyn Backend, tenant: TenantId, team: i64) -> Result<Team, Error> {
    s.team(tenant, team)?
        .ok_or_else(|| Error::invalid("team", "no such team of yours"))
}

impl Services {
    /// Creates a team.
    pub async fn add_team(
        &self,
        tenant: TenantId,
        name: String,
        shares: bool,
    ) -> Result<Team, Error> {
        if !super::super::word(&name, char::is_ascii_alphanumeric) {
            return Err(Error::invalid(
                "name",
                "1 to 64 letters, digits, '.', '_' or '-' starting with a letter or digit",
            ));
        }
        let now = self.clock.now().unix();
        self.unit(move |s, _| {
            let id = s
                .add_team(tenant, &name, shares, now)?
                .ok_or_else(|| Error::Conflict(format!("team {name:?} exists already")))?;
            Ok::<_, Error>(Team {
                id,
                tenant,
                name,
                shares,
            })
        })
        .await
    }

    /// The tenant's teams.
    pub async fn teams(&self, tenant: TenantId) -> Result<Vec<Team>, Error> {
        self.unit(move |s, _| Ok::<_, Error>(s.teams(tenant)?))
            .await
    }

    /// Sets whether a team shares interactions.
    pub async fn set_team_shares(
        &self,
        tenant: TenantId,
        id: i64,
        shares: bool,
    ) -> Result<Team, Error> {
        self.unit(move |s, _| {
            if !s.set_team_shares(tenant, id, shares)? {
                return Err(Error::NotFound("team"));
            }
            team_of(s, tenant, id)
        })
        .await
    }

    /// Registers an agent in a team.
    pub async fn add_agent(
        &self,
        tenant: TenantId,
        real: Number,
        team: i64,
        name: Option<String>,
    ) -> Result<Agent, Error> {
        refuse_soft(self, &real, "number")?;
        let now = self.clock.now().unix();
        self.unit(move |s, _| {
            team_of(s, tenant, team)?;
            let id = s
                .add_agent(tenant, &real, team, name.as_deref(), now)?
                .ok_or_else(|| Error::Conflict("number: already an agent of yours".into()))?;
            Ok::<_, Error>(Agent {
                id,
                tenant,
                real,
                team,
                name,
            })
        })
        .await
    }

    /// The tenant's agents, of one team or all.
    pub async fn agents(&self, tenant: TenantId, team: Option<i64>) -> Result<Vec<Agent>, Error> {
        self.unit(move |s, _| Ok::<_, Error>(s.agents(tenant, team)?))
            .await
    }

    /// One agent.
    pub async fn agent(&self, tenant: TenantId, id: i64) -> Result<Agent, Error> {
        self.unit(move |s, _| {
            s.agent(tenant, AgentKey::Id(id))?
                .ok_or(Error::NotFound("agent"))
        })
        .await
    }

    /// Moves an agent to another team of the tenant. Its interactions so
    /// far stay its own; for team sharing they count with the team they
    /// were made in.
    pub async fn move_agent(&self, tenant: TenantId, id: i64, team: i64) -> Result<Agent, Error> {
        self.unit(move |s, _| {
            // Whose agent first: another tenant's is not found (404),
            // whatever the body says.
            s.agent(tenant, AgentKey::Id(id))?
                .ok_or(Error::NotFound("agent"))?;
            team_of(s, tenant, team)?;
            if !s.move_agent(tenant, id, team)? {
                return Err(Error::NotFound("agent"));
            }
            s.agent(tenant, AgentKey::Id(id))?
                .ok_or(Error::NotFound("agent"))
        })
        .await
    }

    /// Removes an agent: it can no longer acquire numbers.
    pub async fn remove_agent(&self, tenant: TenantId, id: i64) -> Result<(), Error> {
        self.unit(move |s, _| {
            if !s.remove_agent(tenant, id)? {
                return Err(Error::NotFound("agent"));
            }
            Ok::<_, Error>(())
        })
        .await
    }
}
