//! Statements both backends run as they are: written once in SQL that
//! SQLite and PostgreSQL read alike (`CAST` rather than `::`, SQLite's
//! `?N` placeholders, which the PostgreSQL folder numbers `$N`).

/// The statement of [`super::HoldStore::charge`] for a call without a
/// hold, the same in both backends: reserved calls count.
pub(crate) const CHARGE: &str = "UPDATE bindings SET calls_used = calls_used + 1,
     last_call_at = CAST(?4 AS BIGINT),
     day_calls = CASE WHEN day = CAST(?3 AS BIGINT) THEN day_calls + 1 ELSE 1 END,
     day = CAST(?3 AS BIGINT)
     WHERE id = ?1 AND (CAST(?2 AS BIGINT) = 0 OR calls_used + calls_live < CAST(?2 AS BIGINT))
     AND (CAST(?5 AS BIGINT) = 0 OR day <> CAST(?3 AS BIGINT)
       OR day_calls + calls_live < CAST(?5 AS BIGINT))
     RETURNING calls_used, talk_secs_used, last_call_at, day, day_calls";

/// The statement of [`super::LiveStore::hold_node`], the same in both backends.
pub(crate) const HOLD_NODE: &str = "INSERT INTO nodes (node, instance, at) VALUES (?1, ?2, ?3)
     ON CONFLICT (node) DO UPDATE SET instance = excluded.instance, at = excluded.at
     WHERE ?5 OR nodes.instance = excluded.instance OR nodes.at < ?4";

/// The contacts of one account (`?1`), as [`super::rows`] reads them.
pub(crate) const CONTACTS_OF: &str =
    "SELECT account, uri, transport, addr, expires_ms, call_id, cseq, since_ms, path
     FROM contacts WHERE account = ?1 ORDER BY since_ms";
