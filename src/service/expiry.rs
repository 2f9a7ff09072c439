//! Tells tenants when a binding expires: a sweep every few seconds finds
//! bindings past their absolute end or idle lifetime and emits one
//! `binding.expired` event for each (remembered in the outbox, so a restart
//! does not repeat it). Expired bindings stay until deleted; calls to them
//! are refused with the `expired` status.

use std::collections::HashSet;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{Error, Services};

/// Sweeps until `cancel`.
pub async fn run(svc: Services, every: Duration, cancel: CancellationToken) {
    let notified = svc.unit(|s, _| Ok::<_, Error>(s.expired_notified()?)).await;
    let mut told: HashSet<i64> = match notified {
        Ok(ids) => ids.into_iter().collect(),
        Err(e) => {
            tracing::error!(error = %e, "cannot read expiry notices; expiry events are off");
            return;
        }
    };
    let mut sweeping = true;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = cancel.cancelled() => return,
        }
        // On a shared database one node sweeps; one that takes over reads
        // what the others already told.
        let now_sweeping = svc.sweeper.load(std::sync::atomic::Ordering::Relaxed);
        let took_over = now_sweeping && !sweeping;
        sweeping = now_sweeping;
        if !sweeping {
            continue;
        }
        if took_over {
            match svc.unit(|s, _| Ok::<_, Error>(s.expired_notified()?)).await {
                Ok(ids) => told.extend(ids),
                Err(e) => {
                    tracing::error!(error = %e, "cannot read expiry notices");
                    continue;
                }
            }
        }
        match svc.sweep(&told).await {
            Ok(fresh) => told.extend(fresh),
            Err(e) => tracing::error!(error = %e, "expiry events not stored"),
        }
    }
}

impl Services {
    /// Emits `binding.expired` for bindings expired by now and not in
    /// `told`; returns their ids.
    pub async fn sweep(&self, told: &HashSet<i64>) -> Result<Vec<i64>, Error> {
        if !self.hub.anyone() {
            return Ok(Vec::new()); // nobody listens: spare the scan of the table
        }
        let now = self.clock.now().unix();
        let fresh: Vec<_> = self
            .table
            .expired(now)
            .into_iter()
            .filter(|b| !told.contains(&b.id) && self.hub.wants(b.tenant))
            .collect();
        if fresh.is_empty() {
            return Ok(Vec::new());
        }
        let events = self.binding_events("binding.expired", &fresh);
        self.unit(move |s, out| Ok::<_, Error>(out.store(s, events)?))
            .await?;
        Ok(fresh.iter().map(|b| b.id).collect())
    }
}
