//! App accounts: created, listed, removed and given new passwords, by a
//! tenant over the API or by the operator on the command line (whose
//! changes are logged so a running server reloads its accounts). Only the
//! digest hashes of a password are stored. Account names are unique on the
//! server (they are the user part of the address-of-record phones register
//! with), so taking a name another tenant holds is a conflict that does not
//! say who holds it.

use super::{Error, Services};
use crate::bindings::TenantId;
use crate::registrar::{Account, Contact};
use crate::sip::digest::Ha1;
use crate::store::accounts::AccountRow;
use crate::store::changes::Change;
use crate::store::prelude::*;
use crate::store::StoreError;

/// Why an account change was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccountError {
    /// The name breaks the rules.
    #[error(
        "account name {0:?} is not 1 to 64 letters, digits, '.', '_' or '-' starting with a letter"
    )]
    BadName(String),
    /// The password breaks the rules.
    #[error("a password must be 8 to 128 characters without control characters")]
    BadPassword,
    /// Someone holds the name.
    #[error("account name {0:?} is not available")]
    Taken(String),
    /// No such account of the tenant's.
    #[error("no account {0:?}")]
    NoAccount(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<AccountError> for Error {
    fn from(e: AccountError) -> Error {
        match e {
            AccountError::BadName(_) => Error::invalid("name", e.to_string()),
            AccountError::BadPassword => Error::invalid("password", e.to_string()),
            AccountError::Taken(_) => Error::Conflict(e.to_string()),
            AccountError::NoAccount(_) => Error::NotFound("account"),
            AccountError::Store(s) => Error::Store(s),
        }
    }
}

/// Checks an account name: it starts with a letter, so it can never be
/// mistaken for a phone number.
pub fn check_name(name: &str) -> Result<(), AccountError> {
    if super::word(name, char::is_ascii_alphabetic) {
        Ok(())
    } else {
        Err(AccountError::BadName(name.to_string()))
    }
}

fn check_password(pw: &str) -> Result<(), AccountError> {
    let n = pw.chars().count();
    if (8..=128).contains(&n) && !pw.chars().any(char::is_control) {
        Ok(())
    } else {
        Err(AccountError::BadPassword)
    }
}

/// The live form of a stored account.
pub fn account_of(r: AccountRow) -> Account {
    Account {
        name: r.name,
        tenant: r.tenant,
        uid: r.uid,
        ha1: Ha1 {
            realm: r.realm,
            md5: r.ha1_md5,
            sha256: r.ha1_sha256,
        },
    }
}

/// Creates an account. Every change is logged: a running server beside
/// the command line (or a sibling during a restart) reloads its accounts.
pub fn add(
    s: &mut dyn Backend,
    tenant: TenantId,
    name: &str,
    password: &str,
    realm: &str,
    now: i64,
) -> Result<Account, AccountError> {
    check_name(name)?;
    check_password(password)?;
    let ha1 = Ha1::new(name, realm, password);
    let row = AccountRow {
        name: name.to_string(),
        tenant,
        realm: realm.to_string(),
        ha1_md5: ha1.md5,
        ha1_sha256: ha1.sha256,
        created_at: now,
        uid: rand::random::<i64>() & i64::MAX,
    };
    s.atomically(|s| {
        if !s.add_account(&row)? {
            return Err(AccountError::Taken(name.to_string()));
        }
        s.log_change(&Change::Accounts)?;
        Ok(account_of(row.clone()))
    })
}

/// Removes a tenant's account and its registrations.
pub fn remove(s: &mut dyn Backend, tenant: TenantId, name: &str) -> Result<(), AccountError> {
    s.atomically(|s| {
        if !s.remove_account(tenant, name)? {
            return Err(AccountError::NoAccount(name.to_string()));
        }
        s.log_change(&Change::Accounts)?;
        Ok(())
    })
}

/// Gives a tenant's account a new password.
pub fn passwd(
    s: &mut dyn Backend,
    tenant: TenantId,
    name: &str,
    password: &str,
    realm: &str,
) -> Result<Account, AccountError> {
    check_password(password)?;
    let ha1 = Ha1::new(name, realm, password);
    s.atomically(|s| {
        if !s.set_password(tenant, name, realm, &ha1.md5, &ha1.sha256)? {
            return Err(AccountError::NoAccount(name.to_string()));
        }
        s.log_change(&Change::Accounts)?;
        let row = s
            .accounts(Some(tenant))?
            .into_iter()
            .find(|a| a.name == name);
        row.map(account_of)
            .ok_or_else(|| AccountError::NoAccount(name.to_string()))
    })
}

impl Services {
    /// A tenant creates an account.
    pub async fn add_account(
        &self,
        tenant: TenantId,
        name: String,
        password: String,
    ) -> Result<Account, Error> {
        let (realm, now) = (self.realm.clone(), self.clock.now().unix());
        let a = self
            .unit(move |s, _| Ok::<_, Error>(add(s, tenant, &name, &password, &realm, now)?))
            .await?;
        self.accounts.put_account(a.clone());
        Ok(a)
    }

    /// A tenant removes an account: its phones are unregistered at once.
    pub async fn remove_account(&self, tenant: TenantId, name: String) -> Result<(), Error> {
        let n = name.clone();
        self.unit(move |s, _| Ok::<_, Error>(remove(s, tenant, &n)?))
            .await?;
        self.accounts.remove_account(&name);
        Ok(())
    }

    /// A tenant sets a new password; registrations stay until they expire.
    pub async fn set_password(
        &self,
        tenant: TenantId,
        name: String,
        password: String,
    ) -> Result<(), Error> {
        let realm = self.realm.clone();
        let a = self
            .unit(move |s, _| Ok::<_, Error>(passwd(s, tenant, &name, &password, &realm)?))
            .await?;
        self.accounts.put_account(a);
        Ok(())
    }

    /// A tenant's accounts with their live registrations.
    pub fn accounts_of(&self, tenant: TenantId) -> Vec<(Account, Vec<Contact>)> {
        self.accounts.of_tenant(tenant, self.clock.now().unix_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_start_with_a_letter_and_passwords_are_not_trivial() {
        assert!(check_name("alice").is_ok());
        assert!(check_name("a.b-c_1").is_ok());
        assert!(check_name("13800000000").is_err());
        assert!(check_name("").is_err());
        assert!(check_name("al ice").is_err());
        assert!(check_name(&"a".repeat(65)).is_err());
        assert!(check_password("secret-pw").is_ok());
        assert!(check_password("short").is_err());
        assert!(check_password("tab\tinside").is_err());
    }

    #[test]
    fn only_hashes_are_stored_and_names_are_unique() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = crate::store::open(dir.path()).expect("open");
        let a = add(s.as_mut(), 1, "alice", "password1", "sipmask", 0).expect("add");
        assert_eq!(a.ha1, Ha1::new("alice", "sipmask", "password1"));
        let stored = s.accounts(None).expect("list");
        assert!(!format!("{stored:?}").contains("password1"));
        assert!(matches!(
            add(s.as_mut(), 2, "alice", "password2", "sipmask", 0),
            Err(AccountError::Taken(_))
        ));
        assert!(matches!(
            remove(s.as_mut(), 2, "alice"),
            Err(AccountError::NoAccount(_))
        ));
        passwd(s.as_mut(), 1, "alice", "password3", "sipmask").expect("passwd");
        assert_eq!(
            s.accounts(Some(1)).expect("list")[0].ha1_md5,
            Ha1::new("alice", "sipmask", "password3").md5
        );
        assert_eq!(s.changes_since(0).expect("log").len(), 2);
        remove(s.as_mut(), 1, "alice").expect("remove");
        assert!(s.accounts(None).expect("list").is_empty());
    }
}
