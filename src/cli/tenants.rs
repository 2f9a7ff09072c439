//! The `tenants`, `keys` and `calls` commands: tenants and their API keys
//! (each change logged for a running server), and the call records of the
//! operator's own bindings.

use crate::store::Location;
use std::io::Write;

use super::CliError;
use crate::service::tenants;

/// Creates a tenant; returns its first key.
pub fn add_tenant(at: impl Into<Location>, name: &str) -> Result<String, CliError> {
    let mut store = at.into().open()?;
    Ok(tenants::add_tenant(
        store.as_mut(),
        name,
        crate::time::now(),
    )?)
}

/// A tenant's name and its keys: (key id, created at).
pub type TenantKeys = (String, Vec<(String, i64)>);

/// Every tenant with its keys' ids.
pub fn list_tenants(at: impl Into<Location>) -> Result<Vec<TenantKeys>, CliError> {
    let store = super::open_existing(at.into())?;
    let mut out = Vec::new();
    for (id, name) in store.tenants()? {
        out.push((name, store.tenant_keys(id)?));
    }
    Ok(out)
}

/// Issues another key for a tenant: (key id, key).
pub fn add_key(at: impl Into<Location>, tenant: &str) -> Result<(String, String), CliError> {
    let mut store = super::open_existing(at.into())?;
    Ok(tenants::add_key(
        store.as_mut(),
        tenant,
        crate::time::now(),
    )?)
}

/// Revokes a tenant's key; `false` if it has no such key.
pub fn revoke_key(at: impl Into<Location>, tenant: &str, key_id: &str) -> Result<bool, CliError> {
    let mut store = super::open_existing(at.into())?;
    Ok(tenants::revoke_key(store.as_mut(), tenant, key_id)?)
}

/// Writes the call records of the operator's (command-line) bindings,
/// oldest first, as a table; `binding` narrows to one binding.
pub fn list_calls(
    at: impl Into<Location>,
    binding: Option<i64>,
    limit: u32,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let store = super::open_existing(at.into())?;
    let io = |source| CliError::Io {
        path: "stdout".into(),
        source,
    };
    let f = crate::store::CallFilter {
        limit: limit.clamp(1, 100_000),
        binding,
        ..Default::default()
    };
    let (calls, _) = store.calls(crate::bindings::OPERATOR, &f)?;
    writeln!(
        out,
        "id\tbinding\tcaller\tvirtual\tcallee\tinvite_at\tresult\ttalk_secs\treason"
    )
    .map_err(io)?;
    for c in calls {
        writeln!(
            out,
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            c.id,
            c.binding.map_or("-".to_string(), |b| b.to_string()),
            c.caller,
            c.x,
            c.callee.as_deref().unwrap_or("-"),
            crate::time::format_ms(c.invite_at),
            c.result,
            c.duration_secs,
            c.reason,
        )
        .map_err(io)?;
    }
    Ok(())
}
