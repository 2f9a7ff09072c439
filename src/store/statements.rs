//! Statements both backends run as they are: written once in SQL that
//! SQLite and PostgreSQL read alike (`CAST` rather than `::`, SQLite's
//! `?N` placeholders, which the PostgreSQL folder numbers `$N`).

/// The statement of [`super::LiveStore::hold_node`], the same in both backends.
pub(crate) const HOLD_NODE: &str = "INSERT INTO nodes (node, instance, at, sip)
     VALUES (?1, ?2, ?3, ?6)
     ON CONFLICT (node) DO UPDATE SET instance = excluded.instance, at = excluded.at,
     sip = excluded.sip
     WHERE ?5 OR nodes.instance = excluded.instance OR nodes.at < ?4";

/// The statement of [`super::LiveStore::node_addresses`].
pub(crate) const NODE_ADDRESSES: &str =
    "SELECT DISTINCT sip FROM nodes WHERE at >= ?1 AND sip <> '' ORDER BY sip";

/// The contacts of one account (`?1`), as [`super::rows`] reads them.
pub(crate) const CONTACTS_OF: &str =
    "SELECT account, uri, transport, addr, expires_ms, call_id, cseq, since_ms, path
     FROM contacts WHERE account = ?1 ORDER BY since_ms";
