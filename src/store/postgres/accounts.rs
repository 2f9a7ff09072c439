//! PostgreSQL: app accounts and where they are registered.

use crate::bindings::TenantId;
use crate::store::accounts::*;
use crate::store::postgres::PgStore;
use crate::store::prelude::*;
use crate::store::rows;
use crate::store::StoreError;

impl AccountStore for PgStore {
    fn add_account(&mut self, a: &AccountRow) -> Result<bool, StoreError> {
        let n = self.exec(
            "INSERT INTO accounts (name, tenant_id, realm, ha1_md5, ha1_sha256, created_at, uid)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
            &[
                &a.name,
                &a.tenant,
                &a.realm,
                &a.ha1_md5,
                &a.ha1_sha256,
                &a.created_at,
                &a.uid,
            ],
        )?;
        Ok(n == 1)
    }

    fn accounts(&self, tenant: Option<TenantId>) -> Result<Vec<AccountRow>, StoreError> {
        self.rows(
            "SELECT name, tenant_id, realm, ha1_md5, ha1_sha256, created_at, uid FROM accounts
             WHERE ?1::BIGINT IS NULL OR tenant_id = ?1 ORDER BY name",
            &[&tenant],
        )?
        .iter()
        .map(rows::account)
        .collect()
    }

    fn account_tenant(&self, name: &str) -> Result<Option<TenantId>, StoreError> {
        self.row("SELECT tenant_id FROM accounts WHERE name = ?1", &[&name])?
            .map(|r| Ok(r.try_get(0)?))
            .transpose()
    }

    fn remove_account(&mut self, tenant: TenantId, name: &str) -> Result<bool, StoreError> {
        self.atomically(|s| {
            let n = s.exec(
                "DELETE FROM accounts WHERE name = ?1 AND tenant_id = ?2",
                &[&name, &tenant],
            )?;
            s.exec("DELETE FROM contacts WHERE account = ?1", &[&name])?;
            Ok(n == 1)
        })
    }

    fn set_password(
        &mut self,
        tenant: TenantId,
        name: &str,
        realm: &str,
        ha1_md5: &str,
        ha1_sha256: &str,
    ) -> Result<bool, StoreError> {
        let n = self.exec(
            "UPDATE accounts SET realm = ?3, ha1_md5 = ?4, ha1_sha256 = ?5
             WHERE name = ?1 AND tenant_id = ?2",
            &[&name, &tenant, &realm, &ha1_md5, &ha1_sha256],
        )?;
        Ok(n == 1)
    }

    fn save_contacts(&mut self, account: &str, rows: &[ContactRow]) -> Result<(), StoreError> {
        self.atomically(|s| {
            s.exec("DELETE FROM contacts WHERE account = ?1", &[&account])?;
            for c in rows {
                s.exec(
                    "INSERT INTO contacts (account, uri, transport, addr, expires_ms, call_id,
                     cseq, since_ms, path)
                     SELECT ?1::TEXT, ?2::TEXT, ?3::TEXT, ?4::TEXT, ?5::BIGINT, ?6::TEXT,
                     ?7::BIGINT, ?8::BIGINT, ?9::TEXT
                     WHERE EXISTS (SELECT 1 FROM accounts WHERE name = ?1)",
                    &[
                        &account,
                        &c.uri,
                        &c.transport,
                        &c.addr,
                        &c.expires_ms,
                        &c.call_id,
                        &i64::from(c.cseq),
                        &c.since_ms,
                        &c.path,
                    ],
                )?;
            }
            // Every node reaches the phone: the others take the change.
            if let Some(r) = s.row("SELECT uid FROM accounts WHERE name = ?1", &[&account])? {
                s.log_change(&crate::store::changes::Change::Contacts(r.try_get(0)?))?;
            }
            Ok(())
        })
    }

    fn contacts(&self, after_ms: i64) -> Result<Vec<(String, ContactRow)>, StoreError> {
        self.rows(
            "SELECT account, uri, transport, addr, expires_ms, call_id, cseq, since_ms, path
             FROM contacts WHERE expires_ms > ?1 ORDER BY account, since_ms",
            &[&after_ms],
        )?
        .iter()
        .map(rows::contact)
        .collect()
    }

    fn contacts_of(&self, uid: i64) -> Result<Option<(String, Vec<ContactRow>)>, StoreError> {
        let Some(r) = self.row("SELECT name FROM accounts WHERE uid = ?1", &[&uid])? else {
            return Ok(None);
        };
        let name: String = r.try_get(0)?;
        let rows = self
            .rows(crate::store::statements::CONTACTS_OF, &[&name])?
            .iter()
            .map(|r| crate::store::rows::contact(r).map(|(_, c)| c))
            .collect::<Result<_, _>>()?;
        Ok(Some((name, rows)))
    }
}
