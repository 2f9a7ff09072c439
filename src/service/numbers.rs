//! The number pool (one owner per X; a number serving bindings stays) and
//! the blocklist (callers refused on every binding of a tenant).

use std::collections::HashMap;

use super::{Error, Services};
use crate::bindings::{Number, TenantId};

/// Where a pool number stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolEntry {
    /// The number.
    pub number: Number,
    /// Bindings it serves.
    pub bindings: u32,
    /// Until when it rests in quarantine (unix seconds), if it does.
    pub quarantined_until: Option<i64>,
}

impl Services {
    /// Adds numbers to a tenant's pool, all or none.
    pub async fn add_numbers(&self, tenant: TenantId, nums: Vec<Number>) -> Result<(), Error> {
        for (i, n) in nums.iter().enumerate() {
            super::flow::refuse_soft(self, n, &format!("numbers[{i}]"))?;
        }
        let now = self.clock.now().unix();
        let pools = self.pools.clone();
        self.unit(move |s, _| {
            // Forgotten under the store's lock: the next unit reads afresh.
            pools.remove(&tenant);
            match s.add_numbers(tenant, &nums, now)? {
                Ok(()) => Ok(()),
                // Whose it is stays unsaid: no oracle of other tenants' numbers.
                Err((n, true)) => Err(Error::Conflict(format!("{} is already yours", n.as_str()))),
                Err((n, false)) => Err(Error::Conflict(format!("{} is not available", n.as_str()))),
            }
        })
        .await
    }

    /// The tenant's pool with each number's use and rest.
    pub async fn pool(&self, tenant: TenantId) -> Result<Vec<PoolEntry>, Error> {
        let me = self.clone();
        self.unit(move |s, _| {
            let now = me.clock.now().unix();
            let resting: HashMap<Number, i64> = s.quarantined(&[], now)?.into_iter().collect();
            Ok(s.numbers(tenant)?
                .into_iter()
                .map(|n| PoolEntry {
                    bindings: me.table.uses_of(&n),
                    quarantined_until: resting.get(&n).copied(),
                    number: n,
                })
                .collect())
        })
        .await
    }

    /// Removes a number that serves no binding.
    pub async fn remove_number(&self, tenant: TenantId, n: Number) -> Result<(), Error> {
        let table = self.table.clone();
        let pools = self.pools.clone();
        self.unit(move |s, _| {
            if !s.numbers(tenant)?.contains(&n) {
                return Err(Error::NotFound("number"));
            }
            if table.uses_of(&n) > 0 {
                return Err(Error::Conflict(format!(
                    "{} still serves bindings; delete them first",
                    n.as_str()
                )));
            }
            s.remove_number(tenant, &n)?;
            pools.remove(&tenant);
            Ok(())
        })
        .await
    }

    /// The tenant's blocked callers.
    pub async fn blocklist(&self, tenant: TenantId) -> Result<Vec<Number>, Error> {
        let all = self.unit(|s, _| Ok::<_, Error>(s.blocklist()?)).await?;
        Ok(all
            .into_iter()
            .filter(|(t, _)| *t == tenant)
            .map(|(_, n)| n)
            .collect())
    }

    /// Blocks or unblocks a caller on every binding of the tenant.
    /// Unblocking one that is not blocked is [`Error::NotFound`].
    pub async fn set_blocked(
        &self,
        tenant: TenantId,
        n: Number,
        blocked: bool,
    ) -> Result<(), Error> {
        let me = self.clone();
        self.unit(move |s, _| {
            let changed = s.set_blocked(tenant, &n, blocked, me.clock.now().unix())?;
            if !blocked && !changed {
                return Err(Error::NotFound("blocked number"));
            }
            me.table.set_blocked(tenant, n, blocked);
            Ok(())
        })
        .await
    }
}
