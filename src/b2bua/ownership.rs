//! Which messages this engine can handle, for a restart that overlaps a
//! drain: a message for a call of the other instance (or a new call while
//! this one drains) is handed to the sibling instead of answered here.

use super::Engine;
use crate::sip::message::Method;
use crate::sip::transaction::{TxKey, TxKeyRef};
use crate::sip::Msg;

impl<P: super::Policy> Engine<P> {
    /// Whether `m` belongs here: a response to our request, a request in
    /// one of our dialogs or transactions, a new call while we take calls,
    /// or anything out of dialog that any instance answers alike.
    pub fn handles(&self, m: &Msg) -> bool {
        let Some(method) = m.method() else {
            return self.tx.has_client(&TxKeyRef::of_response(m));
        };
        let key = TxKey::of_request(m);
        if self.tx.exists(&key) {
            return true; // a retransmission, or the ACK of our final response
        }
        if let Some(tag) = &m.to_tag {
            return self
                .dialogs
                .contains_key(&super::DialogRef(&m.call_id, tag));
        }
        match method {
            Method::Invite => self.accepting,
            Method::Cancel => {
                let invite = TxKey {
                    branch: key.branch,
                    method: Method::Invite,
                };
                self.by_invite.contains_key(&invite)
            }
            Method::Ack => false,
            _ => true,
        }
    }
}
