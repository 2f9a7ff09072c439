//! RFC 3261 section 17 transactions, client and server, INVITE and
//! non-INVITE, with RFC 6026's Accepted state for 2xx.
//!
//! ```text
//! server INVITE:  Proceeding --2xx--> Accepted  --ACK/Timer L--> gone
//!                     |--3xx-6xx--> Completed --ACK--> Confirmed --Timer I--> gone
//!                                       `--Timer H (no ACK)--> gone, TU told
//! client INVITE:  Calling --1xx--> Proceeding --2xx--> Accepted --Timer M--> gone
//!                    |  (Timer A resend, B timeout)  `--3xx-6xx: ACK--> Completed --Timer D--> gone
//! non-INVITE:     Trying --1xx--> Proceeding --final--> Completed --Timer J/K--> gone
//!                    (Timer E resend, F timeout)
//! ```
//!
//! The layer is synchronous and owns no socket: it queues what must be sent
//! in `out` and reports what the transaction user (the B2BUA) must act on.
//! Retransmissions of requests are absorbed here and answered with the last
//! response; ACKs for non-2xx finals are generated here (hop by hop).

use crate::ids::WireMap;
use std::time::{Duration, Instant};

use bytes::Bytes;

mod types;

pub use types::{AckBase, Incoming, TimerConfig, TxEvent, TxKey, TxKeyRef};

use super::message::{Method, Msg};
use super::piece::Piece;
use super::timer::Timers;
use super::writer::Writer;
use super::{Peer, Transport};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Calling,
    Proceeding,
    Accepted,
    Completed,
    Confirmed,
}

/// The headers a response to a request copies (RFC 3261 section 8.2.6.2).
#[derive(Clone, Debug)]
struct ResponseBase {
    // Pieces of the request's text: shared, not copied.
    vias: Vec<Piece>,
    from: Piece,
    to: Piece,
    has_to_tag: bool,
    call_id: Piece,
    cseq: String,
}

impl ResponseBase {
    /// What every response to `m` (from `src`) copies from it.
    fn of(m: &Msg, src: Peer) -> ResponseBase {
        ResponseBase {
            vias: stamped_vias(m, src),
            from: m.from.clone(),
            to: m.to.clone(),
            has_to_tag: m.to_tag.is_some(),
            call_id: m.call_id.clone(),
            cseq: crate::text::cat(&[
                crate::text::Digits::new(m.cseq.into()).as_str(),
                " ",
                &m.cseq_method,
            ]),
        }
    }

    /// Status line, Via, From, To (with `to_tag` added if the request had
    /// none and this is not a 100), Call-ID, CSeq.
    fn start(&self, code: u16, reason: &str, to_tag: Option<&str>) -> Writer {
        let mut w = Writer::response(code, reason);
        w.headers("Via", &self.vias);
        w.header("From", &self.from);
        match to_tag {
            Some(tag) if !self.has_to_tag && code > 100 => {
                w.header_parts("To", &[&self.to, ";tag=", tag])
            }
            _ => w.header("To", &self.to),
        };
        w.header("Call-ID", &self.call_id);
        w.header("CSeq", &self.cseq);
        w
    }
}

struct ServerTx {
    reply_to: Peer,
    invite: bool,
    state: State,
    last: Option<Bytes>,
    /// Dropped once the final response is sent: only `last` is needed then.
    base: Option<Box<ResponseBase>>,
    interval: Duration,
    owner: u64,
}

struct ClientTx {
    peer: Peer,
    invite: bool,
    state: State,
    request: Bytes,
    interval: Duration,
    owner: u64,
    ack: Option<AckBase>,
}

#[derive(Clone, Debug)]
enum TimerKind {
    ServerResend(TxKey),
    ServerTimeout(TxKey),
    ServerEnd(TxKey),
    ClientResend(TxKey),
    ClientTimeout(TxKey),
    ClientEnd(TxKey),
}

/// All transactions of the process.
pub struct Transactions {
    cfg: TimerConfig,
    servers: WireMap<TxKey, ServerTx>,
    clients: WireMap<TxKey, ClientTx>,
    timers: Timers<TimerKind>,
    /// Messages to send, drained by the transport.
    pub out: Vec<(Peer, Bytes)>,
    /// Retransmissions sent, for metrics.
    pub retransmissions: u64,
}

impl Transactions {
    /// An empty layer.
    pub fn new(cfg: TimerConfig) -> Self {
        Transactions {
            cfg,
            servers: Default::default(),
            clients: Default::default(),
            timers: Timers::default(),
            out: Vec::new(),
            retransmissions: 0,
        }
    }

    /// Live transactions (server, client).
    pub fn counts(&self) -> (usize, usize) {
        (self.servers.len(), self.clients.len())
    }

    /// Client transactions still waiting for a final response.
    pub fn awaiting_final(&self) -> usize {
        self.clients
            .values()
            .filter(|t| !matches!(t.state, State::Completed | State::Accepted))
            .count()
    }

    /// When the earliest pending timer is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// Pending timers (including ones that will find nothing to do).
    pub fn timer_count(&self) -> usize {
        self.timers.len()
    }

    /// Answers a request outside any transaction: one response, never
    /// resent, nothing kept (a refusal of a source that may be spoofed
    /// costs one packet, not eleven). A retransmitted request is simply
    /// answered again.
    pub fn reply_stateless(
        &mut self,
        m: &Msg,
        src: Peer,
        code: u16,
        reason: &str,
        to_tag: &str,
        headers: &[(&str, String)],
    ) {
        let mut w = ResponseBase::of(m, src).start(code, reason, Some(to_tag));
        for (name, value) in headers {
            w.header(name, value);
        }
        self.out.push((reply_address(m, src), w.finish(None, b"")));
    }

    /// Matches a request to a server transaction, creating one if new.
    /// A new INVITE is answered 100 Trying at once.
    pub fn on_request(&mut self, m: &Msg, src: Peer, owner: u64, now: Instant) -> Incoming {
        let key = TxKey::of_request(m);
        let is_ack = m.method() == Some(&Method::Ack);
        if let Some(tx) = self.servers.get_mut(&key) {
            if is_ack {
                return match tx.state {
                    State::Completed => {
                        tx.state = State::Confirmed;
                        let wait = if tx.reply_to.transport == Transport::Udp {
                            self.cfg.t4
                        } else {
                            Duration::ZERO
                        };
                        self.timers.add(now + wait, TimerKind::ServerEnd(key));
                        Incoming::AckAbsorbed
                    }
                    State::Confirmed => Incoming::AckAbsorbed,
                    _ => Incoming::AckForTu,
                };
            }
            if let Some(last) = &tx.last {
                self.out.push((tx.reply_to, last.clone()));
                self.retransmissions += 1;
            }
            return Incoming::Retransmission;
        }
        if is_ack {
            return Incoming::AckForTu;
        }
        let invite = m.method() == Some(&Method::Invite);
        let tx = ServerTx {
            reply_to: reply_address(m, src),
            invite,
            state: State::Proceeding,
            last: None,
            base: Some(Box::new(ResponseBase::of(m, src))),
            interval: self.cfg.t1,
            owner,
        };
        self.servers.insert(key.clone(), tx);
        if invite {
            if let Some(w) = self.response(&key, 100, "Trying", None) {
                let bytes = w.finish(None, b"");
                self.respond(&key, 100, bytes, now);
            }
        }
        Incoming::New(key)
    }

    /// Sets the owner of a server transaction (once the TU has a call for it).
    pub fn set_owner(&mut self, key: &TxKey, owner: u64) {
        if let Some(tx) = self.servers.get_mut(key) {
            tx.owner = owner;
        }
    }

    /// Starts a response to a server transaction: status line, Via, From,
    /// To (with `to_tag` added if the request had none), Call-ID, CSeq.
    pub fn response(
        &self,
        key: &TxKey,
        code: u16,
        reason: &str,
        to_tag: Option<&str>,
    ) -> Option<Writer> {
        let b = self.servers.get(key)?.base.as_deref()?;
        Some(b.start(code, reason, to_tag))
    }

    /// Whether a server transaction is known (in any state).
    pub fn exists(&self, key: &TxKey) -> bool {
        self.servers.contains_key(key)
    }

    /// Whether a client transaction has this key.
    pub fn has_client(&self, key: &TxKeyRef<'_>) -> bool {
        self.clients.contains_key(key)
    }

    /// Whether a server transaction still waits for its final response.
    pub fn is_pending(&self, key: &TxKey) -> bool {
        self.servers
            .get(key)
            .is_some_and(|t| t.state == State::Proceeding)
    }

    /// Sends a response on a server transaction and moves its state.
    pub fn respond(&mut self, key: &TxKey, code: u16, bytes: Bytes, now: Instant) {
        let cfg = self.cfg;
        let Some(tx) = self.servers.get_mut(key) else {
            return;
        };
        if tx.state != State::Proceeding {
            return;
        }
        self.out.push((tx.reply_to, bytes.clone()));
        tx.last = Some(bytes);
        if code < 200 {
            return;
        }
        tx.base = None;
        let udp = tx.reply_to.transport == Transport::Udp;
        let k = key.clone();
        if !tx.invite {
            tx.state = State::Completed;
            let wait = if udp { cfg.t1 * 64 } else { Duration::ZERO };
            self.timers.add(now + wait, TimerKind::ServerEnd(k));
            return;
        }
        // INVITE: 2xx -> Accepted (RFC 6026), others -> Completed; both are
        // retransmitted over UDP until the ACK comes or 64*T1 passes.
        tx.state = if code < 300 {
            State::Accepted
        } else {
            State::Completed
        };
        if udp {
            self.timers
                .add(now + tx.interval, TimerKind::ServerResend(k.clone()));
        }
        self.timers
            .add(now + cfg.t1 * 64, TimerKind::ServerTimeout(k));
    }

    /// The ACK for a 2xx arrived: stop retransmitting it.
    pub fn acked_2xx(&mut self, key: &TxKey) {
        if self
            .servers
            .get(key)
            .is_some_and(|t| t.state == State::Accepted)
        {
            self.servers.remove(key);
        }
    }

    /// Sends a request on a new client transaction keyed by its branch.
    pub fn send_request(
        &mut self,
        key: TxKey,
        peer: Peer,
        bytes: Bytes,
        owner: u64,
        ack: Option<AckBase>,
        now: Instant,
    ) {
        let invite = key.method == Method::Invite;
        self.out.push((peer, bytes.clone()));
        if peer.transport == Transport::Udp {
            self.timers
                .add(now + self.cfg.t1, TimerKind::ClientResend(key.clone()));
        }
        self.timers.add(
            now + self.cfg.t1 * 64,
            TimerKind::ClientTimeout(key.clone()),
        );
        let state = if invite {
            State::Calling
        } else {
            State::Proceeding
        };
        let tx = ClientTx {
            peer,
            invite,
            state,
            request: bytes,
            interval: self.cfg.t1,
            owner,
            ack,
        };
        self.clients.insert(key, tx);
    }

    /// Sends a message outside any transaction (ACK for 2xx, stateless replies).
    pub fn send_stateless(&mut self, peer: Peer, bytes: Bytes) {
        self.out.push((peer, bytes));
    }

    /// Matches a response to its client transaction. Returns the owner if the
    /// TU must see it; retransmitted finals and non-2xx ACKs are handled here.
    pub fn on_response(&mut self, m: &Msg, now: Instant) -> Option<u64> {
        let code = m.code()?;
        let key = TxKeyRef::of_response(m);
        let tx = self.clients.get_mut(&key)?;
        let udp = tx.peer.transport == Transport::Udp;
        match (tx.state, code) {
            (State::Calling | State::Proceeding, 100..=199) => {
                if tx.invite {
                    // No more retransmissions of an INVITE once it is answered.
                    tx.request = Bytes::new();
                }
                tx.state = State::Proceeding;
                if !tx.invite {
                    // Timer E continues at T2 once a provisional came.
                    tx.interval = self.cfg.t2;
                }
                Some(tx.owner)
            }
            (State::Calling | State::Proceeding, 200..=299) if tx.invite => {
                tx.state = State::Accepted;
                tx.request = Bytes::new();
                tx.ack = None;
                let owner = tx.owner;
                self.timers
                    .add(now + self.cfg.t1 * 64, TimerKind::ClientEnd(key.to_owned()));
                Some(owner)
            }
            (State::Accepted, 200..=299) => Some(tx.owner),
            (State::Calling | State::Proceeding, _) => {
                tx.state = State::Completed;
                let owner = tx.owner;
                let wait = match (udp, tx.invite) {
                    (false, _) => Duration::ZERO,
                    (true, true) => Duration::from_secs(32),
                    (true, false) => self.cfg.t4,
                };
                tx.request = Bytes::new();
                if tx.invite {
                    self.send_ack(&key, m);
                }
                self.timers
                    .add(now + wait, TimerKind::ClientEnd(key.to_owned()));
                Some(owner)
            }
            (State::Completed, 300..) if tx.invite => {
                self.send_ack(&key, m);
                None
            }
            _ => None,
        }
    }

    fn send_ack(&mut self, key: &TxKeyRef<'_>, resp: &Msg) {
        let Some(tx) = self.clients.get(key) else {
            return;
        };
        let Some(a) = &tx.ack else { return };
        let mut w = Writer::request("ACK", &a.uri);
        w.header("Via", &a.via);
        w.headers("Route", &a.route);
        w.header("Max-Forwards", "70");
        w.header("From", &a.from);
        w.header("To", &resp.to);
        w.header("Call-ID", &a.call_id);
        w.cseq(a.cseq, "ACK");
        let peer = tx.peer;
        self.out.push((peer, w.finish(None, b"")));
    }

    /// Whether a client INVITE got a provisional and no final yet (CANCEL may go).
    pub fn is_proceeding(&self, key: &TxKey) -> bool {
        self.clients
            .get(key)
            .is_some_and(|t| t.state == State::Proceeding)
    }

    /// Gives up on a client transaction that heard nothing: no more
    /// retransmissions, and a late response is dropped.
    pub fn forget_client(&mut self, key: &TxKey) {
        self.clients.remove(key);
    }

    /// Whether a client transaction has its final response (or is gone).
    pub fn client_done(&self, key: &TxKey) -> bool {
        self.clients
            .get(key)
            .is_none_or(|t| matches!(t.state, State::Completed | State::Accepted))
    }

    /// Fires due timers; returns what the TU must handle.
    pub fn on_timer(&mut self, now: Instant) -> Vec<TxEvent> {
        let mut events = Vec::new();
        while let Some(t) = self.timers.pop_due(now) {
            match t {
                TimerKind::ServerResend(k) => self.server_resend(k, now),
                TimerKind::ServerTimeout(k) => {
                    if let Some(tx) = self.servers.get(&k) {
                        if matches!(tx.state, State::Completed | State::Accepted) {
                            let owner = tx.owner;
                            self.servers.remove(&k);
                            events.push(TxEvent::NoAck { owner, key: k });
                        }
                    }
                }
                TimerKind::ServerEnd(k) => {
                    if self
                        .servers
                        .get(&k)
                        .is_some_and(|t| matches!(t.state, State::Completed | State::Confirmed))
                    {
                        self.servers.remove(&k);
                    }
                }
                TimerKind::ClientResend(k) => self.client_resend(k, now),
                TimerKind::ClientTimeout(k) => {
                    if let Some(tx) = self.clients.get(&k) {
                        if matches!(tx.state, State::Calling | State::Proceeding)
                            && !(tx.invite && tx.state == State::Proceeding)
                        {
                            let owner = tx.owner;
                            self.clients.remove(&k);
                            events.push(TxEvent::ClientTimeout { owner, key: k });
                        }
                    }
                }
                TimerKind::ClientEnd(k) => {
                    self.clients.remove(&k);
                }
            }
        }
        events
    }

    fn server_resend(&mut self, k: TxKey, now: Instant) {
        let t2 = self.cfg.t2;
        let Some(tx) = self.servers.get_mut(&k) else {
            return;
        };
        if !matches!(tx.state, State::Completed | State::Accepted) {
            return;
        }
        if let Some(last) = &tx.last {
            self.out.push((tx.reply_to, last.clone()));
            self.retransmissions += 1;
        }
        tx.interval = (tx.interval * 2).min(t2);
        self.timers
            .add(now + tx.interval, TimerKind::ServerResend(k));
    }

    fn client_resend(&mut self, k: TxKey, now: Instant) {
        let t2 = self.cfg.t2;
        let Some(tx) = self.clients.get_mut(&k) else {
            return;
        };
        let resend = match (tx.invite, tx.state) {
            (true, State::Calling) => {
                tx.interval *= 2;
                true
            }
            (false, State::Calling | State::Proceeding) => {
                tx.interval = (tx.interval * 2).min(t2);
                true
            }
            _ => false,
        };
        if resend {
            self.out.push((tx.peer, tx.request.clone()));
            self.retransmissions += 1;
            self.timers
                .add(now + tx.interval, TimerKind::ClientResend(k));
        }
    }
}

/// Where responses to a request go (RFC 3261 section 18.2.2, RFC 3581):
/// back over the same connection for TCP; for UDP to the source address,
/// and to the source port only when `rport` asked for it.
/// The request's Vias with the top one stamped as RFC 3261 18.2.1 and RFC
/// 3581 say: `received` with the address the request came from when it
/// differs from sent-by or `rport` was asked for, and `rport` filled with
/// the port it came from.
fn stamped_vias(m: &Msg, src: Peer) -> Vec<Piece> {
    let mut vias = m.vias.clone();
    let Some(top) = vias.first_mut() else {
        return vias;
    };
    let ip = src.addr.ip();
    let host = m.top_via.host.trim_start_matches('[').trim_end_matches(']');
    let differs = host.parse::<std::net::IpAddr>().ok() != Some(ip);
    if !(differs || m.top_via.rport) {
        return vias;
    }
    let mut parts: Vec<String> = top
        .split(';')
        .enumerate()
        .filter(|(i, p)| {
            // Ours replace any the sender wrote.
            let name = p.split('=').next().unwrap_or("").trim();
            *i == 0
                || !(name.eq_ignore_ascii_case("received") || name.eq_ignore_ascii_case("rport"))
        })
        .map(|(_, p)| p.trim().to_string())
        .collect();
    parts.push(format!("received={ip}"));
    if m.top_via.rport {
        parts.push(format!("rport={}", src.addr.port()));
    }
    *top = Piece::from(parts.join(";"));
    vias
}

fn reply_address(m: &Msg, src: Peer) -> Peer {
    if src.transport == Transport::Tcp || m.top_via.rport {
        return src;
    }
    let mut addr = src.addr;
    addr.set_port(m.top_via.port.unwrap_or(5060));
    Peer {
        transport: src.transport,
        addr,
    }
}

#[cfg(test)]
mod tests;
