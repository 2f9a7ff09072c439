//! SQLite: the accounts area's statements (the neutral types are in
//! `store::accounts`).

use crate::bindings::TenantId;
use crate::store::accounts::*;
use crate::store::prelude::*;
use crate::store::rows;
use crate::store::sqlite::via;
use crate::store::{SqliteStore, StoreError};
use rusqlite::{params, OptionalExtension};

impl AccountStore for SqliteStore {
    fn add_account(&mut self, a: &AccountRow) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "INSERT OR IGNORE INTO accounts (name, tenant_id, realm, ha1_md5, ha1_sha256, created_at, uid)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![a.name, a.tenant, a.realm, a.ha1_md5, a.ha1_sha256, a.created_at, a.uid],
        )?;
        Ok(n == 1)
    }

    fn accounts(&self, tenant: Option<TenantId>) -> Result<Vec<AccountRow>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT name, tenant_id, realm, ha1_md5, ha1_sha256, created_at, uid FROM accounts
             WHERE ?1 IS NULL OR tenant_id = ?1 ORDER BY name",
        )?;
        let rows = stmt.query_map([tenant], |r| via(rows::account(r)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn account_tenant(&self, name: &str) -> Result<Option<TenantId>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT tenant_id FROM accounts WHERE name = ?1",
                [name],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn remove_account(&mut self, tenant: TenantId, name: &str) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "DELETE FROM accounts WHERE name = ?1 AND tenant_id = ?2",
            params![name, tenant],
        )?;
        self.conn
            .execute("DELETE FROM contacts WHERE account = ?1", [name])?;
        Ok(n == 1)
    }

    fn set_password(
        &mut self,
        tenant: TenantId,
        name: &str,
        realm: &str,
        ha1_md5: &str,
        ha1_sha256: &str,
    ) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "UPDATE accounts SET realm = ?3, ha1_md5 = ?4, ha1_sha256 = ?5
             WHERE name = ?1 AND tenant_id = ?2",
            params![name, tenant, realm, ha1_md5, ha1_sha256],
        )?;
        Ok(n == 1)
    }

    fn save_contacts(&mut self, account: &str, rows: &[ContactRow]) -> Result<(), StoreError> {
        self.conn
            .execute("DELETE FROM contacts WHERE account = ?1", [account])?;
        let mut stmt = self.conn.prepare_cached(
            "INSERT INTO contacts (account, uri, transport, addr, expires_ms, call_id, cseq, since_ms, path)
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9 WHERE EXISTS (SELECT 1 FROM accounts WHERE name = ?1)",
        )?;
        for c in rows {
            stmt.execute(params![
                account,
                c.uri,
                c.transport,
                c.addr,
                c.expires_ms,
                c.call_id,
                c.cseq,
                c.since_ms,
                c.path
            ])?;
        }
        Ok(())
    }

    fn contacts(&self, after_ms: i64) -> Result<Vec<(String, ContactRow)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT account, uri, transport, addr, expires_ms, call_id, cseq, since_ms, path
             FROM contacts WHERE expires_ms > ?1 ORDER BY account, since_ms",
        )?;
        let rows = stmt.query_map([after_ms], |r| via(rows::contact(r)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn contacts_of(&self, uid: i64) -> Result<Option<(String, Vec<ContactRow>)>, StoreError> {
        let name: Option<String> = self
            .conn
            .prepare_cached("SELECT name FROM accounts WHERE uid = ?1")?
            .query_row([uid], |r| r.get(0))
            .optional()?;
        let Some(name) = name else { return Ok(None) };
        let mut stmt = self
            .conn
            .prepare_cached(crate::store::statements::CONTACTS_OF)?;
        let rows = stmt.query_map([&name], |r| via(rows::contact(r)))?;
        let rows: Vec<(String, ContactRow)> = rows.collect::<Result<_, _>>()?;
        Ok(Some((name, rows.into_iter().map(|(_, c)| c).collect())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, tenant: TenantId) -> AccountRow {
        AccountRow {
            name: name.into(),
            tenant,
            realm: "sipmask".into(),
            ha1_md5: "m".into(),
            ha1_sha256: "s".into(),
            created_at: 1,
            uid: 7,
        }
    }

    fn contact(expires_ms: i64) -> ContactRow {
        ContactRow {
            uri: "sip:alice@10.0.0.1:5060".into(),
            transport: "UDP".into(),
            addr: "10.0.0.1:5060".into(),
            expires_ms,
            call_id: "c".into(),
            cseq: 2,
            since_ms: 1,
            path: "<sip:edge.example;lr>".into(),
        }
    }

    #[test]
    fn accounts_are_unique_and_removed_with_their_contacts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = SqliteStore::open(dir.path()).expect("open");
        assert!(s.add_account(&row("alice", 1)).expect("add"));
        assert!(!s.add_account(&row("alice", 2)).expect("add"));
        assert_eq!(s.account_tenant("alice").expect("q"), Some(1));
        assert_eq!(s.accounts(Some(2)).expect("list"), Vec::new());
        s.save_contacts("alice", &[contact(5_000)]).expect("save");
        s.save_contacts("ghost", &[contact(5_000)]).expect("save");
        assert_eq!(s.contacts(1_000).expect("contacts").len(), 1);
        assert!(s.contacts(6_000).expect("contacts").is_empty());
        assert!(s.set_password(1, "alice", "r", "m2", "s2").expect("passwd"));
        assert!(!s.set_password(2, "alice", "r", "m2", "s2").expect("passwd"));
        assert_eq!(s.accounts(None).expect("list")[0].ha1_sha256, "s2");
        assert!(!s.remove_account(2, "alice").expect("rm"));
        assert!(s.remove_account(1, "alice").expect("rm"));
        assert!(s.contacts(0).expect("contacts").is_empty());
    }
}
