//! What the store writer commits at once, and how: one unit of work, so
//! a call's end (record, talk time, hold, checkpoint row) is all or
//! nothing.

use super::flow::NewInteraction;
use super::{accounts, events, live, Backend, CallRecord, Settle, StoreError, UsageUpdate};
use crate::bindings::{BindingId, TenantId};

/// What the writer commits at once.
#[derive(Default)]
pub struct Batch {
    /// Latest counters per binding.
    pub usage: Vec<UsageUpdate>,
    /// Call records.
    pub calls: Vec<CallRecord>,
    /// Events.
    pub events: Vec<events::NewEvent>,
    /// Checkpoints of live calls, in order.
    pub live: Vec<live::Checkpoint>,
    /// Checkpoint rows of calls that ended after it.
    pub ended: Vec<String>,
    /// Accounts whose contacts changed, with all they have now.
    pub contacts: Vec<(String, Vec<accounts::ContactRow>)>,
    /// Answered calls: (binding, unix second).
    pub answered: Vec<(BindingId, i64)>,
    /// New conditions of bindings (an acquired X renewed by a call), with
    /// the unix second of the change.
    pub conditions: Vec<(BindingId, crate::bindings::Conditions, i64)>,
    /// Holds ended and talk booked, on a shared database.
    pub settled: Vec<Settle>,
}

impl Batch {
    /// Nothing to write.
    pub fn is_empty(&self) -> bool {
        self.usage.is_empty()
            && self.calls.is_empty()
            && self.events.is_empty()
            && self.live.is_empty()
            && self.ended.is_empty()
            && self.contacts.is_empty()
            && self.conditions.is_empty()
            && self.answered.is_empty()
            && self.settled.is_empty()
    }
}

impl<'a> dyn Backend + 'a {
    /// Writes everything the writer gathered in one unit of work, so a
    /// call's end (record, talk time, checkpoint row gone) is all or
    /// nothing. Events are numbered per binding; returns (tenant, JSON
    /// body) of each. `hooked` says which tenants have webhooks.
    pub fn save_batch(
        &mut self,
        b: &Batch,
        hooked: &dyn Fn(TenantId) -> bool,
    ) -> Result<Vec<(TenantId, String)>, StoreError> {
        self.atomically(|s| {
            if !b.usage.is_empty() {
                s.save_usage(&b.usage)?;
            }
            if !b.calls.is_empty() {
                s.insert_calls(&b.calls)?;
            }
            for c in &b.live {
                s.save_checkpoint(c)?;
            }
            if !b.ended.is_empty() {
                s.end_live(&b.ended)?;
            }
            for (account, rows) in &b.contacts {
                s.save_contacts(account, rows)?;
            }
            if !b.settled.is_empty() {
                s.settle_holds(&b.settled)?;
            }
            for (binding, c, at) in &b.conditions {
                s.set_conditions(*binding, c, *at)?;
            }
            for (binding, at) in &b.answered {
                if let Some((tenant, agent, team, user)) = s.pair_of_binding(*binding)? {
                    let kind = "call".to_string();
                    let i = NewInteraction {
                        user,
                        agent,
                        team,
                        kind,
                        at: *at,
                    };
                    s.add_interactions(tenant, &[i])?;
                    s.touch_users(&[user], *at)?;
                }
            }
            if b.events.is_empty() {
                Ok(Vec::new())
            } else {
                s.insert_events(&b.events, hooked)
            }
        })
    }
}
