//! Flow 2's records: users with their soft numbers (one-to-one with a real
//! number while live, kept after recycling so a soft number rests before
//! reuse), teams, agents, interactions, the pushes of soft numbers to
//! agents, the X acquired per (agent, user) and every acquisition decision.

use crate::bindings::{BindingId, Number, TenantId};
/// A user of a tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// Row id.
    pub id: i64,
    /// Owner.
    pub tenant: TenantId,
    /// The real number, normalised. Never shown to agents.
    pub real: Number,
    /// The soft number (11 digits).
    pub soft: String,
    /// The tenant's own id of the user.
    pub ext_id: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Last interaction that kept it alive, unix seconds.
    pub active_at: i64,
    /// When its soft number was recycled (it no longer resolves).
    pub recycled_at: Option<i64>,
}

/// A team of agents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Team {
    /// Row id.
    pub id: i64,
    /// Owner.
    pub tenant: TenantId,
    /// Name, unique in the tenant.
    pub name: String,
    /// Whether its agents share interactions.
    pub shares: bool,
}

/// An agent: a business terminal with a real number, in one team.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Agent {
    /// Row id.
    pub id: i64,
    /// Owner.
    pub tenant: TenantId,
    /// Its real number.
    pub real: Number,
    /// Its team.
    pub team: i64,
    /// A name, if given.
    pub name: Option<String>,
}

/// An interaction to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewInteraction {
    /// User row id.
    pub user: i64,
    /// Agent row id.
    pub agent: i64,
    /// The agent's team when it happened.
    pub team: i64,
    /// browse, favourite, chat, call or the tenant's own.
    pub kind: String,
    /// Unix seconds.
    pub at: i64,
}

/// One acquisition decision.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AcquisitionRecord {
    /// Row id (0 before it is stored).
    pub id: i64,
    /// Owner.
    pub tenant: TenantId,
    /// The agent's number as sent.
    pub agent_number: String,
    /// The agent, if registered.
    pub agent: Option<i64>,
    /// Its team, if registered.
    pub team: Option<i64>,
    /// The soft number as sent.
    pub soft: String,
    /// The user, if the soft number is live.
    pub user: Option<i64>,
    /// `granted`, `renewed`, `identity-check-failed`, `no-permission`,
    /// `unknown-soft-number`.
    pub result: String,
    /// Why, in words.
    pub reason: String,
    /// X, when granted.
    pub x: Option<String>,
    /// Its binding.
    pub binding: Option<BindingId>,
    /// Unix ms.
    pub at: i64,
}

/// Which decisions to list.
#[derive(Clone, Debug, Default)]
pub struct AcquisitionFilter {
    /// Only ids above this.
    pub after: i64,
    /// Page size.
    pub limit: u32,
    /// Of this agent.
    pub agent: Option<i64>,
    /// Of this user.
    pub user: Option<i64>,
    /// About this soft number as sent (with `user`: that user's, and the
    /// decisions that never came to a user, such as identity-check
    /// failures).
    pub soft: Option<String>,
    /// Of this team.
    pub team: Option<i64>,
}

/// How a user is looked up.
#[derive(Clone, Copy, Debug)]
pub enum UserKey<'a> {
    /// By real number.
    Real(&'a Number),
    /// By soft number.
    Soft(&'a str),
    /// By the tenant's own id.
    Ext(&'a str),
    /// The last user that had this soft number, live or recycled.
    LastWithSoft(&'a str),
}

/// How an agent is looked up.
#[derive(Clone, Copy, Debug)]
pub enum AgentKey<'a> {
    /// By row id.
    Id(i64),
    /// By real number.
    Real(&'a Number),
}

/// Whose interactions count.
#[derive(Clone, Copy, Debug)]
pub enum Interacted {
    /// This agent's.
    Agent(i64),
    /// Any agent's of this team (as the team was when it happened).
    Team(i64),
}
