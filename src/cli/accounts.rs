//! The `accounts` commands: the operator's app accounts (of the operator
//! or of a named tenant), each change logged for a running server.

use crate::store::Location;

use super::CliError;
use crate::bindings::{TenantId, OPERATOR};
use crate::service::accounts;
use crate::service::tenants::tenant_id;
use crate::store::prelude::*;

/// An account as `accounts list` shows it: name, tenant name, contacts
/// registered now.
pub type AccountLine = (String, String, usize);

/// The tenant an account is made for: a named tenant, or the operator.
fn owner(store: &dyn Backend, tenant: Option<&str>) -> Result<TenantId, CliError> {
    match tenant {
        Some(t) => Ok(tenant_id(store, t)?),
        None => Ok(OPERATOR),
    }
}

/// The tenant holding account `name`.
fn holder(store: &dyn Backend, name: &str) -> Result<TenantId, CliError> {
    store
        .account_tenant(name)?
        .ok_or_else(|| accounts::AccountError::NoAccount(name.to_string()).into())
}

/// Creates an account for `tenant` (the operator when `None`).
pub fn add_account(
    at: impl Into<Location>,
    realm: &str,
    tenant: Option<&str>,
    name: &str,
    password: &str,
) -> Result<(), CliError> {
    let mut store = at.into().open()?;
    let t = owner(store.as_ref(), tenant)?;
    accounts::add(store.as_mut(), t, name, password, realm, crate::time::now())?;
    Ok(())
}

/// Every account with its tenant's name and its live registrations.
pub fn list_accounts(at: impl Into<Location>) -> Result<Vec<AccountLine>, CliError> {
    let store = super::open_existing(at.into())?;
    let names: std::collections::HashMap<TenantId, String> = store.tenants()?.into_iter().collect();
    let contacts = store.contacts(crate::time::now_ms())?;
    Ok(store
        .accounts(None)?
        .into_iter()
        .map(|a| {
            let n = contacts.iter().filter(|(c, _)| *c == a.name).count();
            let t = names
                .get(&a.tenant)
                .cloned()
                .unwrap_or_else(|| "(operator)".into());
            (a.name, t, n)
        })
        .collect())
}

/// Removes an account and its registrations.
pub fn remove_account(at: impl Into<Location>, name: &str) -> Result<(), CliError> {
    let mut store = super::open_existing(at.into())?;
    let t = holder(store.as_ref(), name)?;
    accounts::remove(store.as_mut(), t, name)?;
    Ok(())
}

/// Gives an account a new password.
pub fn set_password(
    at: impl Into<Location>,
    realm: &str,
    name: &str,
    password: &str,
) -> Result<(), CliError> {
    let mut store = super::open_existing(at.into())?;
    let t = holder(store.as_ref(), name)?;
    accounts::passwd(store.as_mut(), t, name, password, realm)?;
    Ok(())
}
