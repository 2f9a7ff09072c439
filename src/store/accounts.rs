//! App accounts (name, tenant, digest HA1 hashes: never a password) and
//! their registered contacts, saved so registrations survive a restart.

use crate::bindings::TenantId;
/// An account as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountRow {
    /// Name: the user part of its address-of-record, unique on the server.
    pub name: String,
    /// Owner.
    pub tenant: TenantId,
    /// Realm the hashes were made for.
    pub realm: String,
    /// MD5(name:realm:password), hex.
    pub ha1_md5: String,
    /// SHA-256(name:realm:password), hex.
    pub ha1_sha256: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Random, set when it is made: tells it from an earlier account of
    /// the same name.
    pub uid: i64,
}

/// A registered contact as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContactRow {
    /// Contact URI.
    pub uri: String,
    /// `UDP` or `TCP`.
    pub transport: String,
    /// Where it registered from (`ip:port`).
    pub addr: String,
    /// Expiry, unix ms.
    pub expires_ms: i64,
    /// Call-ID of the REGISTER.
    pub call_id: String,
    /// Its CSeq.
    pub cseq: u32,
    /// First registered, unix ms.
    pub since_ms: i64,
    /// Path entries (RFC 3327) the calls to it are routed along, one per
    /// line; empty for none.
    pub path: String,
}
