//! Tells tenants when a binding expires: a sweep every few seconds finds
//! bindings past their absolute end or idle lifetime and emits one
//! `binding.expired` event for each (remembered in the outbox, so a restart
//! does not repeat it). Expired bindings stay until deleted; calls to them
//! are refused with the `expired` status.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::model::BindingOut;
use super::ApiState;

/// Sweeps until `cancel`.
pub async fn run(st: Arc<ApiState>, every: Duration, cancel: CancellationToken) {
    let mut told: HashSet<i64> = match st.db(|s| Ok(s.expired_notified()?)).await {
        Ok(ids) => ids.into_iter().collect(),
        Err(e) => {
            tracing::error!(error = %e, "cannot read expiry notices; expiry events are off");
            return;
        }
    };
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = cancel.cancelled() => return,
        }
        if !st.hub.anyone() {
            continue; // nobody listens: spare the scan of the table
        }
        let now = crate::time::now();
        let fresh: Vec<_> = st
            .table
            .expired(now)
            .into_iter()
            .filter(|b| !told.contains(&b.id) && st.hub.wants(b.tenant))
            .collect();
        if fresh.is_empty() {
            continue;
        }
        let defaults = st.table.defaults().clone();
        let events = fresh
            .iter()
            .map(|b| {
                super::bindings::binding_event(
                    b.tenant,
                    "binding.expired",
                    &BindingOut::from(b, &defaults),
                )
            })
            .collect();
        match st.emit(events).await {
            Ok(()) => told.extend(fresh.iter().map(|b| b.id)),
            Err(e) => tracing::error!(error = %e, "expiry events not stored"),
        }
    }
}
