//! Acquisition: an agent sends its real number and a user's soft number
//! and gets an X that reaches that user from that agent only. Checked in
//! order: the agent is registered (`identity-check-failed`); it, or a mate
//! of its team when the team shares, interacted with the user within the
//! look-back (`no-permission`; other teams never count); the soft number
//! is live (`unknown-soft-number`). A pair keeps its X while it lives: a
//! new request or interaction renews it. Every decision is recorded and
//! emitted (`acquisition.decided`), granted or not; none carries the
//! user's real number.

use super::{settings_of, Error, Services};
use crate::bindings::{BindingId, Conditions, Number, TenantId};
use crate::store::events::NewEvent;
use crate::store::flow::{AcquisitionFilter, AcquisitionRecord, AgentKey, Interacted, UserKey};
use crate::store::prelude::*;

/// A granted acquisition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Acquired {
    /// The number to call.
    pub x: Number,
    /// Its binding.
    pub binding: BindingId,
    /// Until when it works unless renewed (unix seconds).
    pub expires_at: i64,
    /// Whether the pair already had it (renewed) or got it now.
    pub renewed: bool,
}

/// A decision as the unit of work ends it: the refusal is returned only
/// after its record is committed.
enum Outcome {
    /// The grant, the bindings it made, and the user's soft number.
    Granted(Acquired, Vec<crate::bindings::Binding>, String),
    Refused(&'static str, String),
}

impl Services {
    /// Decides an agent's request for a callable number for a user.
    pub async fn acquire(
        &self,
        tenant: TenantId,
        agent_number: Number,
        soft: String,
    ) -> Result<Acquired, Error> {
        let me = self.clone();
        let outcome = self
            .unit(move |s, out| {
                let now_ms = me.clock.now().unix_ms;
                let now = now_ms / 1000;
                let set = settings_of(s, &me.flow, tenant)?;
                let mut rec = AcquisitionRecord {
                    tenant,
                    agent_number: agent_number.as_str().to_string(),
                    soft: soft.clone(),
                    at: now_ms,
                    ..Default::default()
                };
                let outcome = me.decide(s, &mut rec, &set, now)?;
                let (result, reason) = match &outcome {
                    Outcome::Granted(a, ..) if a.renewed => {
                        ("renewed", "the pair's number lives on".to_string())
                    }
                    Outcome::Granted(..) => ("granted", "interaction found".to_string()),
                    Outcome::Refused(kind, why) => (*kind, why.clone()),
                };
                rec.result = result.to_string();
                rec.reason = reason;
                if let Outcome::Granted(a, ..) = &outcome {
                    rec.x = Some(a.x.as_str().to_string());
                    rec.binding = Some(a.binding);
                }
                s.add_acquisition(&rec)?;
                let mut data = serde_json::json!({
                    "agent": { "id": rec.agent, "number": rec.agent_number },
                    "team": rec.team,
                    "soft_number": rec.soft,
                    "result": rec.result,
                    "reason": rec.reason,
                });
                if let Outcome::Granted(a, ..) = &outcome {
                    data["x"] = a.x.as_str().into();
                    data["expires_at"] = crate::time::format(a.expires_at).into();
                }
                out.store(
                    s,
                    vec![NewEvent {
                        tenant,
                        kind: "acquisition.decided",
                        binding: rec.binding,
                        data,
                        at: now_ms,
                    }],
                )?;
                if let Outcome::Granted(a, fresh, soft) = &outcome {
                    me.go_live(fresh)?;
                    // The tenant sees the user as the soft number, never
                    // the real one, wherever this binding shows.
                    me.table.set_shown(
                        a.binding,
                        Number::from_normalised(soft.clone()),
                        set.x_lifetime_secs,
                    );
                }
                Ok::<_, Error>(outcome)
            })
            .await?;
        match outcome {
            Outcome::Granted(a, ..) => Ok(a),
            Outcome::Refused(kind, detail) => Err(Error::Denied { kind, detail }),
        }
    }

    /// The checks, in order, and the grant.
    fn decide(
        &self,
        s: &mut dyn Backend,
        rec: &mut AcquisitionRecord,
        set: &super::Settings,
        now: i64,
    ) -> Result<Outcome, Error> {
        let tenant = rec.tenant;
        let agent_number = Number::from_normalised(rec.agent_number.clone());
        let Some(agent) = s.agent(tenant, AgentKey::Real(&agent_number))? else {
            return Ok(Outcome::Refused(
                "identity-check-failed",
                "the number is not a registered agent".into(),
            ));
        };
        rec.agent = Some(agent.id);
        rec.team = Some(agent.team);
        let user = match permitted(s, rec, &agent, set, now)? {
            Ok(u) => u,
            Err(refused) => return Ok(refused),
        };
        if user.recycled_at.is_some() {
            return Ok(Outcome::Refused(
                "unknown-soft-number",
                "the soft number is no longer live".into(),
            ));
        }
        let until = now.saturating_add(i64::try_from(set.x_lifetime_secs).unwrap_or(i64::MAX));
        if let Some(b) = s.acquired(agent.id, user.id)? {
            if let Some(live) = self.extend_acquired(s, b, until)? {
                return Ok(Outcome::Granted(
                    Acquired {
                        x: live,
                        binding: b,
                        expires_at: until,
                        renewed: true,
                    },
                    Vec::new(),
                    user.soft.clone(),
                ));
            }
            // Expired (or gone): let it go; X rests for the pair.
            if let Some(old) = self.table.get(b) {
                s.delete(
                    std::slice::from_ref(&old),
                    now + self.quarantine_secs as i64,
                )?;
                self.table.remove(b);
            }
        }
        let conditions = Conditions {
            not_after: Some(until),
            max_call_secs: (set.x_max_call_secs > 0).then_some(set.x_max_call_secs),
            max_calls: (set.x_max_calls > 0).then_some(set.x_max_calls),
            ..Default::default()
        };
        let bound = self
            .provider
            .bind(self, s, tenant, &agent.real, &user.real, conditions)?;
        s.set_acquired(agent.id, user.id, Some(bound.id))?;
        Ok(Outcome::Granted(
            Acquired {
                x: bound.x.clone(),
                binding: bound.id,
                expires_at: until,
                renewed: false,
            },
            vec![bound],
            user.soft.clone(),
        ))
    }

    /// Renews an acquired binding to last until `until` if it still works;
    /// its X, or `None` when it expired or is gone.
    pub(crate) fn extend_acquired(
        &self,
        s: &mut dyn Backend,
        binding: BindingId,
        until: i64,
    ) -> Result<Option<Number>, Error> {
        let now = self.clock.now().unix();
        let Some(b) = self.table.get(binding) else {
            return Ok(None);
        };
        if b.conditions.not_after.is_some_and(|t| t <= now) {
            return Ok(None);
        }
        let mut c = b.conditions.clone();
        c.not_after = Some(c.not_after.map_or(until, |t| t.max(until)));
        s.set_conditions(binding, &c, now)?;
        self.table.set_conditions(binding, c);
        Ok(Some(b.x))
    }

    /// A page of decisions, of one agent, user (by soft number) or team.
    pub async fn acquisitions(
        &self,
        tenant: TenantId,
        mut f: AcquisitionFilter,
        soft: Option<String>,
    ) -> Result<(Vec<AcquisitionRecord>, Option<i64>), Error> {
        self.unit(move |s, _| {
            if let Some(soft) = soft {
                f.user = s
                    .live_user(tenant, UserKey::LastWithSoft(&soft))?
                    .map(|u| u.id);
                f.soft = Some(soft);
            }
            let rows = s.acquisitions(tenant, &f)?;
            Ok(crate::store::paginate(rows, f.limit, |r| r.id))
        })
        .await
    }
}

/// The user behind the record's soft number (noted in the record), when
/// the agent, or a team of its that shares, interacted with it in the
/// look-back; else the refusal. The last user that had the number counts:
/// a recycled one still has its interactions, so its refusal says the
/// number is gone.
fn permitted(
    s: &mut dyn Backend,
    rec: &mut AcquisitionRecord,
    agent: &crate::store::flow::Agent,
    set: &super::Settings,
    now: i64,
) -> Result<Result<crate::store::flow::User, Outcome>, Error> {
    let tenant = rec.tenant;
    let user = s.live_user(tenant, UserKey::LastWithSoft(&rec.soft))?;
    rec.user = user.as_ref().map(|u| u.id);
    let since = now.saturating_sub(i64::try_from(set.lookback_secs).unwrap_or(i64::MAX));
    let shares = s.team(tenant, agent.team)?.is_some_and(|t| t.shares);
    let allowed = match &user {
        None => false,
        Some(u) => {
            s.interacted(tenant, u.id, Interacted::Agent(agent.id), since)?
                || (shares && s.interacted(tenant, u.id, Interacted::Team(agent.team), since)?)
        }
    };
    Ok(match user {
        Some(u) if allowed => Ok(u),
        _ => Err(Outcome::Refused(
            "no-permission",
            "no interaction with the user in the look-back, by the agent or a sharing team".into(),
        )),
    })
}
