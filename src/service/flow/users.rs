//! Users and their soft numbers: 11 digits, the tenant's flag and reserved
//! digits then 9 random ones; one live soft number per real number and per
//! tenant; recycled on request or when the user has been idle too long,
//! then resting `soft_quarantine_secs` before it is issued again.

use super::{dialled_form, settings_of, Error, Services, Settings};
use crate::bindings::{Number, TenantId};
use crate::store::flow::{User, UserKey};

/// Whether `s` is written like a soft number (11 digits); says nothing of
/// whether one is live.
pub fn looks_soft(s: &str) -> bool {
    s.len() == 11 && s.bytes().all(|b| b.is_ascii_digit())
}

/// A fresh candidate soft number for `settings`.
fn candidate(settings: &Settings) -> String {
    let tail: u32 = rand::random_range(0..1_000_000_000);
    format!("{}{}{tail:09}", settings.soft_flag, settings.soft_reserved)
}

impl Services {
    /// The user's live soft number, made if it has none: the same real
    /// number always gets the same live soft number. `true` when made now.
    pub async fn soft_number(
        &self,
        tenant: TenantId,
        real: Number,
        ext_id: Option<String>,
    ) -> Result<(User, bool), Error> {
        // A soft number is no real number: its acquisition would fail.
        super::refuse_soft(self, &real, "number")?;
        let me = self.clone();
        let (user, made) = self
            .unit(move |s, _| {
                if let Some(u) = s.live_user(tenant, UserKey::Real(&real))? {
                    // Never silently: a number's user keeps one id.
                    if ext_id.is_some() && ext_id != u.ext_id {
                        return Err(Error::Conflict(
                            "user_id: this number's user has another id".into(),
                        ));
                    }
                    return Ok::<_, Error>((u, false));
                }
                if let Some(e) = &ext_id {
                    if s.live_user(tenant, UserKey::Ext(e))?.is_some() {
                        return Err(Error::Conflict(
                            "user_id: another number's user has this id".into(),
                        ));
                    }
                }
                let settings = settings_of(s, &me.flow, tenant)?;
                let now = me.clock.now().unix();
                let since = now.saturating_sub(
                    i64::try_from(settings.soft_quarantine_secs).unwrap_or(i64::MAX),
                );
                for _ in 0..32 {
                    let soft = candidate(&settings);
                    let dialled = dialled_form(&me.normaliser, &soft);
                    // Never a number that serves as X, nor one still resting.
                    if me.table.tenant_of(&dialled).is_some()
                        || s.soft_resting(tenant, &soft, since)?
                    {
                        continue;
                    }
                    let id = s.add_user(tenant, &real, &soft, ext_id.as_deref(), now)?;
                    let u = User {
                        id,
                        tenant,
                        real: real.clone(),
                        soft,
                        ext_id: ext_id.clone(),
                        created_at: now,
                        active_at: now,
                        recycled_at: None,
                    };
                    return Ok((u, true));
                }
                Err(Error::Internal("no free soft number after 32 tries".into()))
            })
            .await?;
        if made {
            self.table
                .set_soft(dialled_form(&self.normaliser, &user.soft), true);
        }
        Ok((user, made))
    }

    /// A live user by soft number or by the tenant's own id.
    pub async fn user(
        &self,
        tenant: TenantId,
        soft: Option<String>,
        ext: Option<String>,
    ) -> Result<User, Error> {
        self.unit(move |s, _| {
            let u = match (&soft, &ext) {
                (Some(soft), _) => s.live_user(tenant, UserKey::Soft(soft))?,
                (None, Some(e)) => s.live_user(tenant, UserKey::Ext(e))?,
                (None, None) => None,
            };
            u.ok_or(Error::NotFound("user"))
        })
        .await
    }

    /// Recycles a user's soft number now: it no longer resolves, and rests
    /// before it is issued again.
    pub async fn recycle(&self, tenant: TenantId, soft: String) -> Result<(), Error> {
        let me = self.clone();
        let (u, ended) = self
            .unit(move |s, _| {
                let u = s
                    .live_user(tenant, UserKey::Soft(&soft))?
                    .ok_or(Error::NotFound("user"))?;
                let ended = me.recycle_in(s, tenant, u.id, me.clock.now().unix())?;
                Ok::<_, Error>((u, ended))
            })
            .await?;
        self.recycled(&u, &ended);
        Ok(())
    }

    /// Recycles the soft numbers of users idle past their tenant's
    /// `idle_recycle_secs`; returns how many.
    pub async fn recycle_idle(&self) -> Result<usize, Error> {
        let me = self.clone();
        let gone = self
            .unit(move |s, _| {
                let now = me.clock.now().unix();
                let mut out = Vec::new();
                for (tenant, _) in s.tenants()? {
                    let set = settings_of(s, &me.flow, tenant)?;
                    if set.idle_recycle_secs == 0 {
                        continue;
                    }
                    let idle = i64::try_from(set.idle_recycle_secs).unwrap_or(i64::MAX);
                    for u in s.idle_users(tenant, now.saturating_sub(idle) + 1, 10_000)? {
                        let ended = me.recycle_in(s, tenant, u.id, now)?;
                        out.push((u, ended));
                    }
                }
                Ok::<_, Error>(out)
            })
            .await?;
        for (u, ended) in &gone {
            self.recycled(u, ended);
        }
        Ok(gone.len())
    }

    /// Recycles `user`'s soft number in the unit of work `s` and ends
    /// every X acquired for it (the number no longer stands for anyone, and
    /// X must not reach them): the bindings are deleted (X rests for the
    /// pair); returns them, for [`Services::recycled`] once it commits.
    fn recycle_in(
        &self,
        s: &mut dyn crate::store::Backend,
        tenant: TenantId,
        user: i64,
        now: i64,
    ) -> Result<Vec<crate::bindings::BindingId>, Error> {
        s.recycle_user(tenant, user, now)?;
        let mut ended = Vec::new();
        for (agent, b) in s.acquired_for_user(user)? {
            if let Some(binding) = self.table.get(b) {
                s.delete(
                    std::slice::from_ref(&binding),
                    now + self.quarantine_secs as i64,
                )?;
                ended.push(b);
            }
            s.set_acquired(agent, user, None)?;
        }
        Ok(ended)
    }

    /// The live table after [`Services::recycle_in`] committed: the soft
    /// number is callable by nobody any more, its X are gone.
    fn recycled(&self, u: &User, ended: &[crate::bindings::BindingId]) {
        self.table
            .set_soft(dialled_form(&self.normaliser, &u.soft), false);
        for b in ended {
            self.table.remove(*b);
        }
    }
}

/// Recycles idle users' soft numbers every `every` until `cancel`.
pub async fn recycle_idle_every(
    svc: Services,
    every: std::time::Duration,
    cancel: tokio_util::sync::CancellationToken,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = cancel.cancelled() => return,
        }
        if !svc.sweeper.load(std::sync::atomic::Ordering::Relaxed) {
            continue;
        }
        match svc.recycle_idle().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(users = n, "idle users' soft numbers recycled"),
            Err(e) => tracing::error!(error = %e, "recycling idle soft numbers failed"),
        }
    }
}
