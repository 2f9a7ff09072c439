//! Tenants' webhooks: set (a new signing secret each time), remove (its
//! undelivered events go with it), and redeliver an event given up on. The
//! event hub learns at once which tenants have one.

use super::{Error, Services};
use crate::bindings::TenantId;
use crate::store::changes::Change;
use crate::store::webhooks::Webhook;

impl Services {
    /// Sets the tenant's webhook to `url` (already checked against the
    /// address policy) with a new secret.
    pub async fn set_webhook(
        &self,
        tenant: TenantId,
        url: String,
        masked: bool,
    ) -> Result<Webhook, Error> {
        let secret = crate::ids::secret("whsec_");
        let hook = self
            .unit(move |s, _| {
                s.set_webhook(tenant, &url, &secret, masked)?;
                s.log_change(&Change::Webhooks(tenant))?;
                s.webhook(tenant)?
                    .ok_or_else(|| Error::Internal("webhook vanished".into()))
            })
            .await?;
        self.hub.set_hooked(tenant, true);
        Ok(hook)
    }

    /// Removes the tenant's webhook.
    pub async fn delete_webhook(&self, tenant: TenantId) -> Result<(), Error> {
        let found = self
            .unit(move |s, _| {
                let found = s.delete_webhook(tenant)?;
                s.log_change(&Change::Webhooks(tenant))?;
                Ok::<_, Error>(found)
            })
            .await?;
        if !found {
            return Err(Error::NotFound("webhook"));
        }
        self.hub.set_hooked(tenant, false);
        Ok(())
    }

    /// Queues a failed event for delivery again.
    pub async fn redeliver(&self, tenant: TenantId, event_id: String) -> Result<(), Error> {
        let now = self.clock.now().unix_ms;
        let found = self
            .unit(move |s, _| Ok::<_, Error>(s.redeliver(tenant, &event_id, now)?))
            .await?;
        if found {
            // Due now: the dispatcher need not wait for its next look.
            self.hub.wake_delivery();
            Ok(())
        } else {
            Err(Error::NotFound("failed event"))
        }
    }
}
