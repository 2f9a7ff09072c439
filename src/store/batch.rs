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

/// Records and events a writer keeps for a database out of reach, at
/// most: beyond, the oldest are let go (and the log says how many).
pub const KEEP_AT_MOST: usize = 100_000;

impl Batch {
    /// Adds the work of a later batch to this one, the later winning where
    /// only the latest matters (a binding's counters, an account's
    /// contacts); with `KEEP_AT_MOST` records and events at most, the
    /// oldest let go. How many were let go.
    pub fn absorb(&mut self, later: Batch) -> usize {
        // One pass each, not one per later entry: an outage keeps a batch
        // for every binding touched meanwhile.
        let newer: std::collections::HashSet<BindingId> =
            later.usage.iter().map(|u| u.id).collect();
        self.usage.retain(|k| !newer.contains(&k.id));
        self.usage.extend(later.usage);
        let newer: std::collections::HashSet<&str> =
            later.contacts.iter().map(|(a, _)| a.as_str()).collect();
        self.contacts.retain(|(a, _)| !newer.contains(a.as_str()));
        self.contacts.extend(later.contacts);
        self.calls.extend(later.calls);
        self.events.extend(later.events);
        self.live.extend(later.live);
        self.ended.extend(later.ended);
        self.answered.extend(later.answered);
        self.conditions.extend(later.conditions);
        self.settled.extend(later.settled);
        let over = |n: usize| n.saturating_sub(KEEP_AT_MOST);
        let (calls, events) = (over(self.calls.len()), over(self.events.len()));
        self.calls.drain(..calls);
        self.events.drain(..events);
        calls + events
    }

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::Usage;

    fn record(n: i64) -> CallRecord {
        CallRecord {
            invite_at: n,
            ..Default::default()
        }
    }

    #[test]
    fn a_later_batch_adds_its_work_and_wins_where_only_the_latest_counts() {
        let usage = |id, calls_used| UsageUpdate {
            id,
            usage: Usage {
                calls_used,
                ..Default::default()
            },
        };
        let mut kept = Batch {
            usage: vec![usage(1, 1), usage(2, 1)],
            calls: vec![record(1)],
            contacts: vec![("alice".into(), Vec::new())],
            ..Default::default()
        };
        let later = Batch {
            usage: vec![usage(1, 5)],
            calls: vec![record(2)],
            contacts: vec![("alice".into(), Vec::new()), ("bob".into(), Vec::new())],
            ended: vec!["k".into()],
            ..Default::default()
        };
        assert_eq!(kept.absorb(later), 0);
        let mut latest: Vec<_> = kept
            .usage
            .iter()
            .map(|u| (u.id, u.usage.calls_used))
            .collect();
        latest.sort();
        assert_eq!(latest, [(1, 5), (2, 1)]);
        let order: Vec<_> = kept.calls.iter().map(|c| c.invite_at).collect();
        assert_eq!(order, [1, 2]);
        assert_eq!(kept.contacts.len(), 2);
        assert_eq!(kept.ended, ["k"]);
    }

    #[test]
    fn kept_work_is_bounded_and_the_oldest_goes_first() {
        let mut kept = Batch {
            calls: (0..KEEP_AT_MOST as i64).map(record).collect(),
            ..Default::default()
        };
        let later = Batch {
            calls: vec![record(-1), record(-2)],
            ..Default::default()
        };
        assert_eq!(kept.absorb(later), 2);
        assert_eq!(kept.calls.len(), KEEP_AT_MOST);
        assert_eq!(kept.calls[0].invite_at, 2, "the two oldest went");
        assert_eq!(kept.calls.last().map(|c| c.invite_at), Some(-2));
    }
}
