//! The policy's pings (OPTIONS to a next hop): sent, answered, or missed
//! at their own timeout rather than Timer F's 32 s.

use crate::sip::transaction::TxKey;
use crate::sip::Method;
use crate::time::Now;

use super::{CallTimer, Engine, Policy, Probe};

impl<P: Policy> Engine<P> {
    /// Sends the policy's ping: an OPTIONS of our own.
    pub(super) fn send_probe(&mut self, p: Probe, now: Now) {
        let me = self.me_for(&p.route.peer);
        let (via, b) = (crate::sip::branch(), crate::ids::token());
        let mut w = crate::sip::writer::Writer::request("OPTIONS", &p.route.uri);
        w.header(
            "Via",
            &format!(
                "SIP/2.0/{} {me};branch={via};rport",
                p.route.peer.transport.as_str()
            ),
        );
        w.header("Max-Forwards", "70");
        w.header("From", &format!("<sip:sipmask@{me}>;tag={b}"));
        w.header("To", &format!("<{}>", p.route.uri));
        w.header("Call-ID", &crate::ids::token());
        w.header("CSeq", "1 OPTIONS");
        let key = TxKey {
            branch: via.into(),
            method: Method::Options,
        };
        self.probes.insert(key.clone(), p.id);
        if let Some(wait) = p.timeout {
            let due = now.mono + wait;
            self.probes_due.insert(p.id, (key.clone(), due));
            self.timers.add(due, CallTimer::Probe(p.id));
        }
        self.tx
            .send_request(key, p.route.peer, w.finish(None, b""), 0, None, now.mono);
    }

    /// A probe got no answer within its own timeout: missed, whatever its
    /// transaction (64×T1) would say later.
    pub(super) fn on_probe_timeout(&mut self, id: u64, now: Now) {
        let Some((key, due)) = self.probes_due.get(&id).cloned() else {
            return;
        };
        if now.mono < due {
            return; // an older probe's timer
        }
        self.probes_due.remove(&id);
        if self.probes.remove(&key).is_some() {
            self.tx.forget_client(&key);
            self.policy.probed(id, None, now);
        }
    }
}
