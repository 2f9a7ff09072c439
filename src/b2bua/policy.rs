//! The one interface between the call engine and whoever decides what calls
//! are: the engine asks [`Policy::decide`] what to do with a new INVITE and
//! gets back a [`Plan`] for the outgoing leg (where it goes, the From it
//! shows, the media policy, the limits), then tells the policy each of the
//! call's [`Milestone`]s. Like a Kamailio route block or pingora's
//! `ProxyHttp` phases: the engine owns SIP, the policy owns meaning
//! (bindings, records, events, counters). A registrar, a second trunk or a
//! media anchor is a field of the plan or work in a hook, never an edit of
//! the INVITE flow.

use std::time::Duration;

use crate::sip::message::Msg;
use crate::sip::Peer;
use crate::time::Now;

/// The engine's id of a call: unique within one process.
pub type CallId = u64;

/// A new INVITE, as the policy sees it.
pub struct Offer<'a> {
    /// The call's id if it is bridged.
    pub id: CallId,
    /// The caller's INVITE.
    pub request: &'a Msg,
    /// Where it came from (the network's word, not a header's).
    pub source: Peer,
    /// The account it authenticated as ([`Screen::Account`]), if any.
    pub account: Option<String>,
}

/// What to do with a new INVITE.
pub enum Decision<C> {
    /// Answer with this final status; nothing is called.
    Refuse {
        /// SIP status.
        status: u16,
        /// Reason phrase.
        reason: String,
        /// Why, for the log.
        why: &'static str,
    },
    /// Call out as the plan says; `C` is the policy's own state of the call,
    /// kept by the engine beside the call and handed back with each
    /// milestone.
    Bridge(Plan, C),
}

/// Where the outgoing leg goes and what it may carry.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Where the outgoing INVITE goes: one target (a trunk), or several
    /// called at once (an account's contacts): the first to answer wins,
    /// the others are cancelled.
    pub targets: Vec<Route>,
    /// Tried one after another when every target so far failed with 408
    /// or 503, or stayed silent past its `setup` (the next trunks).
    pub failover: Vec<Route>,
    /// User part of the From shown to the callee (the virtual number); the
    /// host is always ours.
    pub from_user: String,
    /// What happens to session descriptions between the legs.
    pub media: Media,
    /// How long the callee may ring.
    pub no_answer: Duration,
    /// Talk time allowed from the answer before [`Policy::limit`] is asked
    /// again; `None`: no limit.
    pub limit: Option<Duration>,
    /// Record the answered call under this name (relayed media only).
    pub record: Option<String>,
    /// Play the announcement to the caller before the call is bridged.
    pub announce: bool,
    /// Play the warning to both this long after the answer (the maximum
    /// call length less the warning's lead).
    pub warn_at: Option<Duration>,
    /// Send nothing to the callee until this ticket of the policy's
    /// storage is durable (a use reserved in a database that nodes
    /// share), then ask [`Policy::offer_released`].
    pub hold: Option<u64>,
}

/// A request the policy wants sent on its own: an OPTIONS ping to a next
/// hop, to learn whether it is up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probe {
    /// The policy's id of it, handed back with the answer.
    pub id: u64,
    /// Where it goes.
    pub route: Route,
    /// How long to wait for its answer before it counts as missed;
    /// `None`: until its transaction times out (Timer F, 64×T1).
    pub timeout: Option<Duration>,
}

/// How a trunk did on one of our INVITEs, told with [`Policy::trunk`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrunkOutcome {
    /// It answered an INVITE we had authenticated with something other
    /// than a challenge: its credentials are good.
    Accepted,
    /// It challenged the INVITE we had authenticated (wrong credentials),
    /// or challenged one we have no credentials for.
    AuthRejected,
    /// It said nothing within the setup time or the transaction's: as
    /// good as a missed ping.
    Silent,
}

/// A next hop: Request-URI and the address it is sent to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// Request-URI of the outgoing INVITE.
    pub uri: String,
    /// Where it is sent.
    pub peer: Peer,
    /// Credentials for the hop's digest challenge (a carrier's 401/407),
    /// if it has any.
    pub auth: Option<std::sync::Arc<Credentials>>,
    /// How long the hop may stay silent (not even 100 Trying) before it
    /// counts as failed (408); `None`: until its transaction times out.
    pub setup: Option<Duration>,
    /// The trunk it goes through (the policy's index), told back with
    /// [`Policy::trunk`] so that the trunk's health and the call's
    /// record learn how it went.
    pub trunk: Option<usize>,
    /// The hop as a Route entry (`<sip:host;lr>`) when it is an outbound
    /// proxy: in-dialog requests carry it when the far end did not
    /// record-route, so the proxy knows to pass them on.
    pub proxy: Option<String>,
    /// Route headers the INVITE itself carries (a registration's Path,
    /// RFC 3327): `peer` is then the first of them.
    pub preloaded: Vec<String>,
}

impl Route {
    /// A hop without credentials.
    pub fn to(uri: String, peer: Peer) -> Route {
        Route {
            uri,
            peer,
            auth: None,
            setup: None,
            trunk: None,
            proxy: None,
            preloaded: Vec::new(),
        }
    }
}

/// A user name and password to answer a next hop's challenge with.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name.
    pub user: String,
    /// Password.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never in a log.
        write!(f, "Credentials({}, ***)", self.user)
    }
}

/// What crosses between the legs' session descriptions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Media {
    /// SDP rebuilt from the allow-list; the parties' media addresses pass
    /// (`[media] mode = "off"`: they learn each other's address).
    Mask,
    /// SDP rebuilt and every stream anchored in the engine's
    /// [`Anchor`](crate::media::Anchor): each party sees only sipmask's
    /// address, SSRC and CNAME.
    Relay,
}

/// Why a call ended. Records and events use [`EndReason::as_str`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndReason {
    /// The caller sent BYE.
    CallerHungUp,
    /// The callee sent BYE.
    CalleeHungUp,
    /// The caller cancelled, or the engine gave up before an answer.
    Cancelled,
    /// The callee answered with a failure.
    CalleeFailed,
    /// The callee never answered our INVITE (Timer B).
    CalleeUnreachable,
    /// The call reached its maximum length.
    MaxLength,
    /// The binding's talk-time budget ran out.
    TalkTimeUsedUp,
    /// The caller never acknowledged the answer.
    NoAck,
    /// The server shut down.
    Shutdown,
    /// No RTP came from either party for the media timeout.
    NoMedia,
    /// The relay had no ports for the call: refused (503) before it rang.
    NoMediaPorts,
    /// Every trunk tried refused our credentials (a challenge to an
    /// authenticated INVITE): the operator's configuration, not the callee.
    TrunkAuthFailed,
    /// The callee answered but the use could not be counted (a limit
    /// reached meanwhile on another node, or the store out of reach): the
    /// caller was refused, the callee hung up.
    NotCounted,
}

impl EndReason {
    /// The reason as call records and events write it.
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::CallerHungUp => "caller hung up",
            EndReason::CalleeHungUp => "callee hung up",
            EndReason::Cancelled => "cancelled",
            EndReason::CalleeFailed => "callee failed",
            EndReason::CalleeUnreachable => "callee unreachable",
            EndReason::MaxLength => "maximum call length",
            EndReason::TalkTimeUsedUp => "talk time used up",
            EndReason::NoAck => "no ACK from caller",
            EndReason::Shutdown => "shutdown",
            EndReason::NoMedia => "no media",
            EndReason::NoMediaPorts => "no media ports",
            EndReason::TrunkAuthFailed => "trunk refused our credentials",
            EndReason::NotCounted => "limit reached at the answer",
        }
    }

    /// Who ended an answered call: `caller`, `callee` or `system`.
    pub fn ended_by(self) -> &'static str {
        match self {
            EndReason::CallerHungUp => "caller",
            EndReason::CalleeHungUp => "callee",
            _ => "system",
        }
    }
}

/// A step in a bridged call's life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Milestone {
    /// The INVITE went out to the callee.
    Offered,
    /// The callee's first provisional response other than 100.
    Ringing {
        /// Its status.
        status: u16,
    },
    /// The callee answered (2xx relayed to the caller).
    Answered,
    /// The caller acknowledged the answer: now it is a call.
    Confirmed,
    /// The caller heard the announcement before the call was bridged.
    Announced,
    /// The call is over.
    Ended(Ending),
}

/// How a call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ending {
    /// Why.
    pub reason: EndReason,
    /// The call's result: 200 for a confirmed answer, 408 for an answer the
    /// caller never acknowledged, else the final status the caller got.
    pub status: u16,
    /// Time from the answer to the end, for confirmed calls only.
    pub talk: Option<Duration>,
}

/// Whether a request from outside any dialog may be taken at all, judged
/// before anything else by who sent it (where it came from) or by the
/// credentials it carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Screen {
    /// Go on.
    Accept,
    /// Go on: the request authenticated as this account, which is then
    /// the caller whatever its From says.
    Account(String),
    /// Answer this, once and statelessly, and take it no further (403, or
    /// a 407 challenge).
    Refuse(Answer),
    /// Take it no further and answer nothing (a banned source).
    Drop,
}

/// A final answer the policy gives a request: status, reason phrase and
/// the headers it needs (a challenge, Min-Expires, Contact).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// SIP status.
    pub status: u16,
    /// Reason phrase.
    pub reason: String,
    /// Extra headers, in order.
    pub headers: Vec<(&'static str, String)>,
}

impl Answer {
    /// An answer with the standard reason phrase and no headers.
    pub fn status(status: u16) -> Answer {
        Answer {
            status,
            reason: crate::sip::writer::reason(status).to_string(),
            headers: Vec::new(),
        }
    }
}

/// The answer to [`Policy::limit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// The call may go on until this long after the answer.
    Until(Duration),
    /// End it now, for this reason.
    End(EndReason),
    /// Ask again once this ticket of the policy's storage is durable
    /// (more time asked of a database that nodes share); the call goes
    /// on meanwhile.
    Wait(u64),
}

/// Decides on calls and hears how they go. One instance serves every call
/// of an engine, under the engine's lock: no hook may block.
pub trait Policy: Send {
    /// What the policy keeps for each bridged call.
    type Call: Send;

    /// A request from outside any dialog (not ACK or CANCEL), before
    /// anything else looks at it: is its source one we take requests from?
    fn screen(&mut self, _request: &Msg, _source: Peer, _now: Now) -> Screen {
        Screen::Accept
    }

    /// A request from outside any dialog other than INVITE, REGISTER, ACK
    /// and CANCEL (OPTIONS, MESSAGE, SUBSCRIBE, ...), in place of
    /// [`Policy::screen`]: whether it is taken at all. Refused (403) by
    /// default; text messages and other services plug in here, and in
    /// [`Policy::request`] for the answer, without the engine changing.
    fn out_of_dialog(&mut self, _request: &Msg, _source: Peer, _now: Now) -> Screen {
        Screen::Refuse(Answer::status(403))
    }

    /// A request from outside any dialog other than INVITE, ACK and CANCEL
    /// (REGISTER, OPTIONS, ...), once screened: the policy's answer, or
    /// `None` for the engine's own (200 to OPTIONS, 405 ...).
    fn request(&mut self, _request: &Msg, _source: Peer, _now: Now) -> Option<Answer> {
        None
    }

    /// A connection-oriented flow (TCP) to `peer` closed: whatever was to
    /// be reached over it cannot be.
    fn closed(&mut self, _peer: Peer, _now: Now) {}

    /// Whether `ip` is a node of this node's cluster: the relay
    /// (`b2bua::relay`) takes requests for its phones from nodes only.
    fn is_node(&self, _ip: std::net::IpAddr) -> bool {
        false
    }

    /// Whether this node holds `flow` for a registration of `account`.
    fn holds_flow(&self, _account: &str, _flow: Peer) -> bool {
        false
    }

    /// A new INVITE: refuse it, or plan the outgoing leg.
    fn decide(&mut self, offer: &Offer<'_>, now: Now) -> Decision<Self::Call>;

    /// The engine refused a new INVITE by itself (shutting down, a loop)
    /// without asking [`Policy::decide`].
    fn refused(&mut self, _offer: &Offer<'_>, _status: u16, _why: &'static str, _now: Now) {}

    /// A milestone of a bridged call.
    fn milestone(&mut self, id: CallId, call: &mut Self::Call, m: Milestone, now: Now);

    /// The callee answered (after [`Milestone::Answered`]): `Some(ticket)`
    /// holds its 2xx back from the caller until the engine is told, with
    /// [`super::Engine::release_answers`], that the ticket is durable (a
    /// counted use must survive a crash once the caller has its answer).
    fn hold_answer(&mut self, _id: CallId, _call: &mut Self::Call, _now: Now) -> Option<u64> {
        None
    }

    /// A held answer's ticket was refused (the use could not be counted:
    /// a limit reached on another node, or the store out of reach): the
    /// status and reason phrase the caller gets instead of the answer,
    /// whose callee is hung up.
    fn answer_refused(&mut self, _id: CallId, _call: &mut Self::Call, _now: Now) -> (u16, String) {
        (503, "Service Unavailable".into())
    }

    /// A held offer's ticket ([`Plan::hold`]) is durable: `Ok(limit)`
    /// bridges the call, with `limit` as its first limit if `Some`;
    /// `Err((status, reason))` refuses it (the policy has recorded the
    /// refusal).
    #[allow(clippy::type_complexity)]
    fn offer_released(
        &mut self,
        _id: CallId,
        _call: &mut Self::Call,
        _now: Now,
    ) -> Result<Option<Duration>, (u16, String)> {
        Ok(None)
    }

    /// The plan's limit was reached: `held` is the time allowed so far.
    fn limit(&mut self, id: CallId, call: &mut Self::Call, held: Duration, now: Now) -> Limit;

    /// Called on every timer tick with the calls not yet ended.
    fn tick(&mut self, _live: &mut dyn Iterator<Item = (CallId, &Self::Call)>, _now: Now) {}

    /// Pings to send now (OPTIONS), asked after every tick.
    fn probes(&mut self, _now: Now) -> Vec<Probe> {
        Vec::new()
    }

    /// The final status a probe got, or `None` when it got none in time.
    fn probed(&mut self, _id: u64, _status: Option<u16>, _now: Now) {}

    /// How the trunk `trunk` (a [`Route::trunk`]) did on call `call`'s
    /// INVITE.
    fn trunk(&mut self, _call: &mut Self::Call, _trunk: usize, _outcome: TrunkOutcome, _now: Now) {}

    /// Appends the policy's metrics in Prometheus text format.
    fn metrics(&self, _out: &mut String) {}
}

#[cfg(test)]
mod tests {
    use super::EndReason;

    #[test]
    fn only_hang_ups_are_ended_by_a_party() {
        assert_eq!(EndReason::CallerHungUp.ended_by(), "caller");
        assert_eq!(EndReason::CalleeHungUp.ended_by(), "callee");
        assert_eq!(EndReason::MaxLength.ended_by(), "system");
        assert_eq!(EndReason::NoAck.as_str(), "no ACK from caller");
    }
}
