//! Tenants and their API keys. A key is shown once, when issued; the store
//! keeps its SHA-256 hash and a public id (`key_...`) to list and revoke it
//! by. Used by the API (a tenant's own keys) and the command line (the
//! operator's tenants), which logs the change so a running server reloads
//! its key cache.

use sha2::{Digest, Sha256};

use super::{Error, Services};
use crate::bindings::TenantId;
use crate::store::changes::Change;
use crate::store::prelude::*;
use crate::store::StoreError;

/// Why a tenant or key operation was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TenantError {
    /// Empty or unusable tenant name.
    #[error("tenant name {0:?} is not 1 to 64 letters, digits, '.', '_' or '-' starting with a letter or digit")]
    BadName(String),
    /// A tenant of that name exists.
    #[error("tenant {0:?} exists already")]
    TenantExists(String),
    /// No tenant of that name.
    #[error("no tenant {0:?}")]
    NoTenant(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks a tenant name.
pub fn tenant_name(name: &str) -> Result<(), TenantError> {
    if super::word(name, char::is_ascii_alphanumeric) {
        Ok(())
    } else {
        Err(TenantError::BadName(name.to_string()))
    }
}

/// SHA-256 of a key, hex. Keys are random, so no salt or stretching is needed.
pub fn hash_key(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new random key: `smk_` and 32 characters.
pub fn new_key() -> String {
    crate::ids::secret("smk_")
}

/// Issues a new key for `tenant` at `now`: (public id, key).
pub fn issue(
    s: &mut dyn Backend,
    tenant: TenantId,
    now: i64,
) -> Result<(String, String), StoreError> {
    let key = new_key();
    let id = crate::ids::short("key_", 12);
    s.add_key(tenant, &id, &hash_key(&key), now)?;
    Ok((id, key))
}

/// Creates a tenant with a first key; returns the key (shown once).
pub fn add_tenant(store: &mut dyn Backend, name: &str, now: i64) -> Result<String, TenantError> {
    tenant_name(name)?;
    store.atomically(|s| {
        if s.tenant_by_name(name)?.is_some() {
            return Err(TenantError::TenantExists(name.to_string()));
        }
        let id = s.add_tenant(name, now)?;
        let (_, key) = issue(s, id, now)?;
        s.log_change(&Change::Keys)?;
        Ok(key)
    })
}

/// A tenant's id by name.
pub fn tenant_id(store: &dyn Backend, name: &str) -> Result<TenantId, TenantError> {
    store
        .tenant_by_name(name)?
        .ok_or_else(|| TenantError::NoTenant(name.to_string()))
}

/// Issues another key to the named tenant (command line); returns it.
pub fn add_key(
    store: &mut dyn Backend,
    tenant: &str,
    now: i64,
) -> Result<(String, String), TenantError> {
    let t = tenant_id(store, tenant)?;
    store.atomically(|s| {
        let k = issue(s, t, now)?;
        s.log_change(&Change::Keys)?;
        Ok(k)
    })
}

/// Revokes a key of the named tenant (command line); `false` if it has no
/// such key.
pub fn revoke_key(
    store: &mut dyn Backend,
    tenant: &str,
    key_id: &str,
) -> Result<bool, TenantError> {
    let t = tenant_id(store, tenant)?;
    store.atomically(|s| {
        let found = s.revoke_key(t, key_id)?;
        if found {
            s.log_change(&Change::Keys)?;
        }
        Ok(found)
    })
}

impl Services {
    /// A tenant's keys: (public id, issued at), oldest first.
    pub async fn keys_of(&self, tenant: TenantId) -> Result<Vec<(String, i64)>, Error> {
        self.unit(move |s, _| Ok::<_, Error>(s.tenant_keys(tenant)?))
            .await
    }

    /// Issues another key to `tenant`: (public id, key).
    pub async fn issue_key(&self, tenant: TenantId) -> Result<(String, String), Error> {
        let now = self.clock.now().unix();
        self.unit(move |s, _| Ok::<_, Error>(issue(s, tenant, now)?))
            .await
    }

    /// Revokes a key of `tenant`; returns every (key hash, tenant) left,
    /// for the key cache.
    pub async fn revoke(
        &self,
        tenant: TenantId,
        key_id: String,
    ) -> Result<Vec<(String, TenantId)>, Error> {
        self.unit(move |s, _| {
            if !s.revoke_key(tenant, &key_id)? {
                return Err(Error::NotFound("key"));
            }
            Ok(s.keys()?)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn tenant_names_are_checked() {
        for bad in ["", " ", "-x", "a b", "ä", &"x".repeat(65)] {
            assert!(super::tenant_name(bad).is_err(), "{bad:?}");
        }
        for good in ["acme", "acme-2.eu_west", "7eleven"] {
            assert!(super::tenant_name(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn keys_are_random_and_hashed() {
        let k = super::new_key();
        assert!(k.starts_with("smk_"));
        assert_ne!(k, super::new_key());
        assert_eq!(super::hash_key("abc").len(), 64);
    }
}
