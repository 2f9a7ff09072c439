//! The transaction layer's vocabulary: its timer values, how a
//! transaction is keyed (RFC 3261 17.1.3 and 17.2.3), what an ACK copies
//! from its INVITE, and what the layer reports to its user.

use std::sync::Arc;
use std::time::Duration;

use crate::sip::message::{Method, Msg};

/// RFC 3261 timer values.
#[derive(Clone, Copy, Debug)]
pub struct TimerConfig {
    /// Round-trip estimate.
    pub t1: Duration,
    /// Longest retransmit interval for non-INVITE requests and responses.
    pub t2: Duration,
    /// Longest time a message stays in the network.
    pub t4: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

/// Identifies a transaction: branch plus method (ACK counts as INVITE).
/// The branch is shared, not copied, by the key's clones: a transaction's
/// timers, the call that owns it and the engine's tables each hold one.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TxKey {
    /// Via branch.
    pub branch: Arc<str>,
    /// Method the transaction was created by.
    pub method: Method,
}

impl TxKey {
    /// Key of a request (ACK maps to its INVITE).
    pub fn of_request(m: &Msg) -> TxKey {
        let method = match m.method() {
            Some(Method::Ack) => Method::Invite,
            Some(x) => x.clone(),
            None => Method::from_token(&m.cseq_method),
        };
        TxKey {
            branch: branch_or_fallback(m),
            method,
        }
    }
}

/// A [`TxKey`] borrowed from a message: looks up the tables that own
/// keys without copying the branch (a response is matched three or four
/// times on its way through).
#[derive(Debug, PartialEq, Eq)]
pub struct TxKeyRef<'a> {
    /// Via branch.
    pub branch: &'a str,
    /// Method the transaction was created by.
    pub method: Method,
}

impl<'a> TxKeyRef<'a> {
    /// Key of a response: branch plus CSeq method.
    pub fn of_response(m: &'a Msg) -> TxKeyRef<'a> {
        TxKeyRef {
            branch: &m.top_via.branch,
            method: Method::from_token(&m.cseq_method),
        }
    }

    /// The owned key.
    pub fn to_owned(&self) -> TxKey {
        TxKey {
            branch: Arc::from(self.branch),
            method: self.method.clone(),
        }
    }

    /// Whether `key` is this one.
    pub fn is(&self, key: &TxKey) -> bool {
        &*key.branch == self.branch && key.method == self.method
    }
}

// Hashes as the derived `Hash` of `TxKey` does (a `String` hashes as its
// `str`), so that tables of `TxKey` find their entries by it.
impl std::hash::Hash for TxKeyRef<'_> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.branch.hash(state);
        self.method.hash(state);
    }
}

impl hashbrown::Equivalent<TxKey> for TxKeyRef<'_> {
    fn equivalent(&self, key: &TxKey) -> bool {
        self.is(key)
    }
}

// RFC 3261 §17.2.3: a request's transaction is its branch *and* the
// sent-by of its top Via: two clients may pick one branch (or copy
// someone's), and must not get each other's transaction. RFC 2543 peers
// send no magic-cookie branch; Call-ID + CSeq + From tag + sent-by
// identify their transactions well enough.
fn branch_or_fallback(m: &Msg) -> Arc<str> {
    use std::fmt::Write;
    let v = &m.top_via;
    let mut key = String::with_capacity(v.branch.len() + v.host.len() + 8);
    if v.branch.starts_with("z9hG4bK") {
        key.push_str(&v.branch);
    } else {
        let tag = m.from_tag.as_deref().unwrap_or("");
        let _ = write!(key, "2543:{}:{}:{tag}", &*m.call_id, m.cseq);
    }
    key.push(' ');
    key.extend(v.host.chars().map(|c| c.to_ascii_lowercase()));
    key.push(':');
    // Digits by hand: the formatter costs more than the rest of the key.
    key.push_str(crate::text::Digits::new(v.port.unwrap_or(0).into()).as_str());
    Arc::from(key)
}

/// What an ACK for a non-2xx final copies from its INVITE.
#[derive(Clone, Debug)]
pub struct AckBase {
    /// Request-URI of the INVITE.
    pub uri: String,
    /// Our Via of the INVITE.
    pub via: String,
    /// From of the INVITE.
    pub from: String,
    /// To of the INVITE (the response's tag is added).
    pub to: String,
    /// Call-ID.
    pub call_id: String,
    /// CSeq number.
    pub cseq: u32,
    /// Route headers of the INVITE.
    pub route: Vec<String>,
}

/// How an incoming request was handled.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    /// A new transaction: the TU must answer it through [`Transactions::respond`].
    New(TxKey),
    /// A retransmission, answered with the last response if any.
    Retransmission,
    /// ACK for a non-2xx final: absorbed.
    AckAbsorbed,
    /// ACK for a 2xx (or for no known transaction): the TU's business.
    AckForTu,
}

/// Something the TU must act on after a timer.
#[derive(Debug, PartialEq, Eq)]
pub enum TxEvent {
    /// A client transaction got no final response (Timer B/F).
    ClientTimeout {
        /// Owner given when sending.
        owner: u64,
        /// The transaction.
        key: TxKey,
    },
    /// A server transaction's final response was never ACKed (Timer H/L).
    NoAck {
        /// Owner given when creating.
        owner: u64,
        /// The transaction.
        key: TxKey,
    },
}
