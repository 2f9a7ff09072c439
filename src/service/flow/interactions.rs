//! Interactions between users and agents: recorded one at a time or in
//! bulk (all or nothing, every bad item named), each keeping its user's
//! soft number alive and renewing the X acquired for the pair; browsing,
//! favouriting and chatting push the user's soft number to the agent
//! (`soft_number.pushed`) at most once per window.

use super::{settings_of, Error, Services};
use crate::bindings::{Number, TenantId};
use crate::store::events::NewEvent;
use crate::store::flow::{AgentKey, NewInteraction, UserKey};

/// Kinds that push the user's soft number to the agent.
const PUSHING: &[&str] = &["browse", "favourite", "chat"];

/// Most items in one bulk request.
pub const MAX_BULK: usize = 10_000;

/// One interaction as a tenant sends it.
#[derive(Clone, Debug)]
pub struct InteractionIn {
    /// The user's soft number...
    pub soft_number: Option<String>,
    /// ...or the tenant's own id of the user.
    pub user_id: Option<String>,
    /// The agent's real number.
    pub agent: Number,
    /// browse, favourite, chat, call, or the tenant's own (1 to 32 of
    /// `a-z`, `0-9`, `_`, `-`).
    pub kind: String,
    /// Unix seconds; `None`: now.
    pub at: Option<i64>,
}

fn kind_ok(k: &str) -> bool {
    (1..=32).contains(&k.len())
        && k.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

impl Services {
    /// Records interactions, all or none; returns how many, and how many
    /// soft numbers were pushed.
    pub async fn record_interactions(
        &self,
        tenant: TenantId,
        items: Vec<InteractionIn>,
        field: &'static str,
    ) -> Result<(usize, usize), Error> {
        if items.is_empty() || items.len() > MAX_BULK {
            return Err(Error::invalid(field, format!("1 to {MAX_BULK} items")));
        }
        let me = self.clone();
        self.unit(move |s, out| {
            let now = me.clock.now().unix();
            let set = settings_of(s, &me.flow, tenant)?;
            let (rows, softs) = checked(s, tenant, &items, field, now)?;
            s.add_interactions(tenant, &rows)?;
            let users: Vec<i64> = rows.iter().map(|r| r.user).collect();
            s.touch_users(&users, now)?;
            let window = i64::try_from(set.push_window_secs).unwrap_or(i64::MAX);
            let life = i64::try_from(set.x_lifetime_secs).unwrap_or(i64::MAX);
            // Only an interaction that could permit an acquisition now (in
            // the look-back) renews an acquired X.
            let since = now.saturating_sub(i64::try_from(set.lookback_secs).unwrap_or(i64::MAX));
            let mut events = Vec::new();
            let mut renew = Vec::new();
            for (r, (soft, agent_number)) in rows.iter().zip(softs) {
                if r.at >= since {
                    if let Some(b) = s.acquired(r.agent, r.user)? {
                        renew.push(b);
                    }
                }
                if PUSHING.contains(&r.kind.as_str())
                    && s.push_due(
                        r.user,
                        r.agent,
                        now.saturating_sub(window).saturating_add(1),
                        now,
                    )?
                {
                    events.push(NewEvent {
                        tenant,
                        kind: "soft_number.pushed",
                        binding: None,
                        data: serde_json::json!({
                            "soft_number": soft,
                            "agent": { "id": r.agent, "number": agent_number.as_str() },
                            "interaction": r.kind,
                        }),
                        at: now * 1000,
                    });
                }
            }
            let pushed = events.len();
            out.store(s, events)?;
            for b in renew {
                me.extend_acquired(s, b, now.saturating_add(life))?;
            }
            Ok::<_, Error>((rows.len(), pushed))
        })
        .await
    }
}

/// Interactions to store, each with its user's soft number and its
/// agent's number (for the push events).
type Checked = (Vec<NewInteraction>, Vec<(String, Number)>);

/// The items checked against the tenant's users and agents: the rows to
/// store and, for each, the user's soft number and the agent's number;
/// else every bad item, named by its place (`field` is `items` for a
/// batch).
fn checked(
    s: &mut dyn crate::store::Backend,
    tenant: TenantId,
    items: &[InteractionIn],
    field: &'static str,
    now: i64,
) -> Result<Checked, Error> {
    let mut problems = Vec::new();
    let mut rows = Vec::with_capacity(items.len());
    let mut softs = Vec::with_capacity(items.len());
    let name = |i: usize, f: &str| {
        if field == "items" {
            format!("items[{i}].{f}")
        } else {
            f.to_string()
        }
    };
    for (i, it) in items.iter().enumerate() {
        if !kind_ok(&it.kind) {
            problems.push((name(i, "kind"), "1 to 32 of a-z, 0-9, '_', '-'".into()));
        }
        let user = match (&it.soft_number, &it.user_id) {
            (Some(soft), _) => s.live_user(tenant, UserKey::Soft(soft))?,
            (None, Some(e)) => s.live_user(tenant, UserKey::Ext(e))?,
            (None, None) => {
                problems.push((
                    name(i, "soft_number"),
                    "soft_number or user_id is required".into(),
                ));
                continue;
            }
        };
        let Some(user) = user else {
            let f = if it.soft_number.is_some() {
                "soft_number"
            } else {
                "user_id"
            };
            problems.push((name(i, f), "no live user of yours".into()));
            continue;
        };
        let Some(agent) = s.agent(tenant, AgentKey::Real(&it.agent))? else {
            problems.push((name(i, "agent"), "not a registered agent of yours".into()));
            continue;
        };
        let at = it.at.unwrap_or(now);
        if at > now + 300 {
            problems.push((name(i, "at"), "in the future".into()));
            continue;
        }
        rows.push(NewInteraction {
            user: user.id,
            agent: agent.id,
            team: agent.team,
            kind: it.kind.clone(),
            at,
        });
        softs.push((user.soft, agent.real));
    }
    if !problems.is_empty() {
        return Err(Error::Items(problems));
    }
    Ok((rows, softs))
}
