//! Media: what of a call's session descriptions and RTP/RTCP may cross
//! between its parties. Owns the SDP allow-list (`sdp.rs`), the packet
//! rewrites (`rtp.rs`) and the in-process relay (`relay.rs`) that anchors
//! every stream in sipmask, so that each party sees only sipmask's address,
//! SSRC and CNAME. The call engine talks to the relay through [`Anchor`],
//! so an external media engine (rtpengine's NG protocol) can stand in for
//! it later; this module knows nothing of SIP dialogs or bindings.

pub mod audio;
pub mod config;
mod ports;
mod pump;
pub mod record;
pub mod relay;
pub mod rtp;
pub mod sdp;
mod slot;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

pub use relay::{Relay, RelayConfig};

/// A call as the media layer knows it: the engine's call id.
pub type CallKey = u64;

/// Which party of a call a description came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Party {
    /// The caller.
    A,
    /// The callee.
    B,
}

impl Party {
    /// Index 0 for A, 1 for B.
    pub fn index(self) -> usize {
        match self {
            Party::A => 0,
            Party::B => 1,
        }
    }

    /// The other party.
    pub fn other(self) -> Party {
        match self {
            Party::A => Party::B,
            Party::B => Party::A,
        }
    }
}

/// The prompts the relay plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Sound {
    /// To the caller before the call is bridged ("this call is protected").
    Announcement,
    /// To both, shortly before the maximum call length.
    Warning,
    /// To a refused caller, before the final status.
    Refusal,
}

/// Why media could not be anchored.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    /// The port range has no free pair left.
    #[error("no free media ports in {0}-{1}")]
    NoPorts(u16, u16),
    /// Sockets cannot be opened at all (the open-files limit, most often).
    #[error("cannot open media sockets: {0}")]
    Sockets(String),
    /// No address to relay on for the leg's family.
    #[error("no media address for {0}")]
    NoFamily(&'static str),
}

/// Anchors a call's media: each party sends to sipmask and hears from
/// sipmask. Called under the engine's lock, so every method is quick.
pub trait Anchor: Send + Sync {
    /// `from` described its streams (`streams`, in `m=` order) in a
    /// message whose signalling came from `source`; returns, per stream,
    /// the address the other party is to send to (ours, of the family `v6`
    /// says), `None` for a declined stream. Media is taken from `from`
    /// only from `source`, the addresses the description names and its
    /// trunk's media networks.
    fn describe(
        &self,
        call: CallKey,
        from: Party,
        v6: bool,
        streams: &[sdp::Stream],
        source: IpAddr,
    ) -> Result<Vec<Option<SocketAddr>>, MediaError>;

    /// The call was answered: from now on the caller's media reaches the
    /// callee (before, only early media from the callee crosses), and
    /// silence counts toward the timeout.
    fn answered(&self, call: CallKey);

    /// Records the call's first stream, both parties, as `name`.wav in the
    /// recordings folder, until it is released.
    fn record(&self, call: CallKey, name: &str);

    /// Notes what `from` described (where it takes media, its codecs)
    /// without opening ports for the other party: a call refused with a
    /// prompt has no other party.
    fn note(&self, call: CallKey, from: Party, streams: &[sdp::Stream], source: IpAddr);

    /// Opens our ports facing `party` for every stream it described
    /// (before the other party answers: for early media of our own);
    /// returns them as [`Anchor::describe`] does.
    fn face(
        &self,
        call: CallKey,
        party: Party,
        v6: bool,
    ) -> Result<Vec<Option<SocketAddr>>, MediaError>;

    /// Plays `sound` to `party` on the call's first stream, in a G.711
    /// codec the party offered or chose (`Some(payload type)` per stream,
    /// for an SDP of our own); what the other party sends it is held back
    /// meanwhile. Returns how long it plays, `None` when it cannot (no
    /// such prompt configured, no G.711, no ports facing the party).
    fn play(&self, call: CallKey, party: Party, sound: Sound) -> Option<Duration>;

    /// The G.711 payload type the relay would play to `party` on each
    /// stream (`None` where it would not).
    fn playable(&self, call: CallKey, party: Party) -> Vec<Option<u8>>;

    /// The call is over: its ports are freed.
    fn release(&self, call: CallKey);

    /// Answered calls from which no packet came for `timeout` (calls on
    /// hold excepted); each is reported once.
    fn silent(&self, timeout: Duration) -> Vec<CallKey>;

    /// No new calls will come: ports kept for them are let go (a
    /// restarting sibling needs them); live calls keep theirs.
    fn quiesce(&self) {}

    /// Prometheus text of the anchor's counters.
    fn metrics(&self) -> String {
        String::new()
    }
}
