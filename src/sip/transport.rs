//! Sockets: UDP and TCP on each listen address (RFC 3261 section 18).
//! Socket code turns bytes into parsed messages for a [`Sink`] (answering
//! what cannot be parsed itself, from the raw header lines) and sends what
//! it is given; all SIP state lives above it.
//!
//! TCP connections are keyed by remote address and reused both ways: a
//! response goes back over the connection its request came on, a request to
//! a TCP peer reuses an open connection or opens one.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use dashmap::DashMap;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::framing::{next_frame, Frame};
use super::guard::{Closed, Guard, Slot, TcpLimits};
use super::{Msg, Peer, SipError, Transport};
use crate::datagrams::{self, Inbox};

/// Where what a handler sends goes: straight out, or, while a UDP
/// receive loop handles a batch of datagrams, into that batch's answers,
/// which leave together (one system call) at its end. Handed down
/// explicitly, so whether a send is batched is the caller's choice.
pub struct Out<'a> {
    net: &'a Arc<Net>,
    batch: Option<&'a mut Vec<(SocketAddr, Bytes)>>,
}

impl<'a> Out<'a> {
    /// Sends at once.
    pub fn now(net: &'a Arc<Net>) -> Out<'a> {
        Out { net, batch: None }
    }

    /// UDP goes into `batch`, sent when the batch is done; TCP at once.
    fn batched(net: &'a Arc<Net>, batch: &'a mut Vec<(SocketAddr, Bytes)>) -> Out<'a> {
        Out {
            net,
            batch: Some(batch),
        }
    }

    /// Sends one message (or queues it with the batch's answers).
    pub fn send(&mut self, peer: Peer, data: Bytes) {
        match (&mut self.batch, peer.transport) {
            (Some(batch), Transport::Udp) => batch.push((peer.addr, data)),
            _ => self.net.send(peer, data),
        }
    }
}

/// Receives whole, parsed messages from the sockets.
pub trait Sink: Send + Sync + 'static {
    /// One message (datagram or framed TCP message) from `peer`, parsed,
    /// with the bytes it was parsed from; what it causes goes to `out`.
    fn deliver(&self, m: Msg, data: &[u8], peer: Peer, out: &mut Out<'_>);

    /// A TCP connection with `peer` closed.
    fn closed(&self, _peer: Peer, _out: &mut Out<'_>) {}

    /// A batch of datagrams was delivered; what the sink sends now leaves
    /// with the batch's answers. The thread is awake anyway: work that is
    /// due soon costs no wake-up of its own here.
    fn batch_done(&self, _out: &mut Out<'_>) {}
}

/// The sockets, shared by every task.
pub struct Net {
    /// Each socket with whether it is IPv6 (looked up per send).
    udp: Vec<(bool, Arc<UdpSocket>)>,
    tcp: DashMap<SocketAddr, mpsc::Sender<Bytes>>,
    /// TCP connection pools and their counters.
    pub guard: Arc<Guard>,
    max_message: usize,
    cancel: CancellationToken,
    sink: Arc<dyn Sink>,
    // The runtime TCP connections run on: the one `new` was called on,
    // not the SIP thread's, where a UDP message may ask for a connection.
    tcp_runtime: tokio::runtime::Handle,
}

impl Net {
    /// How many UDP sockets it serves (one receive loop each).
    pub fn udp_count(&self) -> usize {
        self.udp.len()
    }

    /// Wraps already-bound sockets (tests bind port 0). Called within the
    /// runtime that is to run TCP connections.
    pub fn new(
        udp: Vec<UdpSocket>,
        max_message: usize,
        tcp_limits: TcpLimits,
        cancel: CancellationToken,
        sink: Arc<dyn Sink>,
    ) -> Arc<Net> {
        Arc::new(Net {
            sink,
            udp: udp
                .into_iter()
                .map(|s| (s.local_addr().is_ok_and(|a| a.is_ipv6()), Arc::new(s)))
                .collect(),
            tcp: DashMap::new(),
            guard: Guard::new(tcp_limits),
            max_message,
            cancel,
            tcp_runtime: tokio::runtime::Handle::current(),
        })
    }

    /// Sends one message; failures are logged, never fatal (SIP retransmits).
    pub fn send(self: &Arc<Self>, peer: Peer, data: Bytes) {
        match peer.transport {
            Transport::Udp => self.send_udp(peer.addr, data),
            Transport::Tcp => self.send_tcp(peer.addr, data),
        }
    }

    fn send_udp(&self, to: SocketAddr, data: Bytes) {
        if let Some(s) = self.udp_for(to) {
            if let Err(e) = s.try_send_to(&data, to) {
                tracing::debug!(error = %e, "udp send failed");
            }
        }
    }

    /// Our UDP socket of `to`'s family (else the first).
    fn udp_for(&self, to: SocketAddr) -> Option<&Arc<UdpSocket>> {
        self.udp
            .iter()
            .find(|(v6, _)| *v6 == to.is_ipv6())
            .or_else(|| self.udp.first())
            .map(|(_, s)| s)
    }

    /// Sends what a batch queued: one system call per socket (none for a
    /// socket with nothing to send).
    fn flush(&self, out: &[(SocketAddr, Bytes)]) {
        for (v6, sock) in &self.udp {
            let failed = if self.udp.len() == 1 {
                // Every destination is this socket's: no sorting, no copy.
                datagrams::send_all(sock, out)
            } else {
                let mine: Vec<(SocketAddr, &[u8])> = out
                    .iter()
                    .filter(|(to, _)| self.udp_for(*to).is_some_and(|s| Arc::ptr_eq(s, sock)))
                    .map(|(to, b)| (*to, b.as_ref()))
                    .collect();
                datagrams::send_all(sock, &mine)
            };
            if failed > 0 {
                tracing::debug!(failed, v6, "udp sends failed");
            }
        }
    }

    fn send_tcp(self: &Arc<Self>, to: SocketAddr, data: Bytes) {
        let tx = self.tcp.get(&to).map(|e| e.value().clone());
        let tx = match tx {
            Some(tx) => tx,
            None => {
                let Some(slot) = self.guard.outbound() else {
                    self.guard.count(Closed::Full);
                    return;
                };
                let (tx, rx) = mpsc::channel(256);
                self.tcp.insert(to, tx.clone());
                let net = self.clone();
                self.tcp_runtime.spawn(async move {
                    match TcpStream::connect(to).await {
                        Ok(stream) => net.run_conn(stream, to, rx, slot).await,
                        Err(e) => {
                            tracing::debug!(error = %e, "tcp connect failed");
                            net.tcp.remove(&to);
                        }
                    }
                });
                tx
            }
        };
        if tx.try_send(data).is_err() {
            tracing::debug!("tcp connection busy or closed; message dropped");
        }
    }

    /// Runs the receive loop of UDP socket `i` until cancelled.
    pub async fn run_udp(self: Arc<Self>, i: usize) {
        let Some(sock) = self.udp.get(i).map(|(_, s)| s.clone()) else {
            return;
        };
        // A datagram longer than a message may be comes in cut, and marked.
        let mut inbox = Inbox::new(self.max_message);
        let mut out = Vec::with_capacity(datagrams::BATCH * 2);
        loop {
            tokio::select! {
                r = sock.readable() => if let Err(e) = r {
                    tracing::warn!(error = %e, "udp socket failed");
                    return;
                },
                _ = self.cancel.cancelled() => return,
            }
            // Everything waiting, a batch per system call, until the socket
            // would block (which re-arms the wake-up); every few batches the
            // other tasks get their turn.
            let mut rounds = 0;
            loop {
                match inbox.recv(&sock) {
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => {
                        // ICMP port unreachable and the like: keep going.
                        tracing::debug!(error = %e, "udp receive error");
                        continue;
                    }
                }
                {
                    let mut batch = Out::batched(&self, &mut out);
                    for i in 0..inbox.len() {
                        match inbox.get(i) {
                            Some((data, Some(from), false)) => {
                                self.take_datagram(data, from, &mut batch)
                            }
                            Some((_, _, true)) => {
                                tracing::debug!(
                                    limit = self.max_message,
                                    "oversized datagram dropped"
                                )
                            }
                            // A source of an address family we do not speak.
                            _ => {}
                        }
                    }
                    self.sink.batch_done(&mut batch);
                }
                self.flush(&out);
                out.clear();
                if inbox.drained() {
                    break;
                }
                rounds += 1;
                if rounds % 8 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        }
    }

    /// One received datagram: a message for the sink, or a keep-alive.
    fn take_datagram(self: &Arc<Self>, data: &[u8], from: SocketAddr, out: &mut Out<'_>) {
        if data.iter().all(|b| matches!(b, b'\r' | b'\n' | 0)) {
            return; // keep-alive
        }
        let peer = Peer {
            transport: Transport::Udp,
            addr: from,
        };
        self.parse_and_deliver(data, peer, out);
    }

    /// Accepts TCP connections until `stop` (connections already open go
    /// on until the whole transport is cancelled).
    pub async fn run_tcp_listener(self: Arc<Self>, listener: TcpListener, stop: CancellationToken) {
        loop {
            let accepted = tokio::select! {
                r = listener.accept() => r,
                _ = stop.cancelled() => return,
            };
            let (stream, from) = match accepted {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "tcp accept failed; backing off");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            let slot = match self.guard.inbound(from.ip()) {
                Ok(s) => s,
                Err(Closed::Full) if self.guard.evict_one() => {
                    // The newcomer waits (off the accept loop) for the
                    // evicted connection's place.
                    self.guard.count(Closed::Evicted);
                    let net = self.clone();
                    tokio::spawn(async move {
                        let wait = std::time::Duration::from_secs(1);
                        match net.guard.inbound_within(from.ip(), wait).await {
                            Ok(slot) => net.serve_inbound(stream, from, slot).await,
                            Err(why) => net.guard.count(why),
                        }
                    });
                    continue;
                }
                Err(why) => {
                    // Dropped at once: the client sees the connection close.
                    self.guard.count(why);
                    continue;
                }
            };
            tokio::spawn(self.clone().serve_inbound(stream, from, slot));
        }
    }

    /// Serves an accepted connection from `from` in its `slot`: replies to
    /// `from` go out on it.
    async fn serve_inbound(self: Arc<Self>, stream: TcpStream, from: SocketAddr, slot: Slot) {
        let (tx, rx) = mpsc::channel(256);
        self.tcp.insert(from, tx);
        self.run_conn(stream, from, rx, slot).await;
    }

    /// Reads and writes one TCP connection until either side closes it.
    async fn run_conn(
        self: Arc<Self>,
        stream: TcpStream,
        peer_addr: SocketAddr,
        mut rx: mpsc::Receiver<Bytes>,
        slot: Slot,
    ) {
        let _ = stream.set_nodelay(true);
        let (mut rd, mut wr) = stream.into_split();
        let writer = tokio::spawn(async move {
            while let Some(b) = rx.recv().await {
                if wr.write_all(&b).await.is_err() {
                    break;
                }
            }
        });
        let peer = Peer {
            transport: Transport::Tcp,
            addr: peer_addr,
        };
        let mut buf = BytesMut::with_capacity(8192);
        let limits = self.guard.limits();
        let mut heard = tokio::time::Instant::now();
        // When the first byte of a message still incomplete arrived.
        let mut partial: Option<tokio::time::Instant> = None;
        'read: loop {
            let deadline = match partial {
                Some(t) => t + limits.message,
                None => heard + limits.idle,
            };
            let n = tokio::select! {
                r = tokio::time::timeout_at(deadline, rd.read_buf(&mut buf)) => match r {
                    Ok(r) => r.unwrap_or(0),
                    Err(_) => {
                        self.guard.count(if partial.is_some() { Closed::Slow } else { Closed::Idle });
                        break;
                    }
                },
                _ = self.cancel.cancelled() => 0,
                _ = slot.evicted() => 0,
            };
            if n == 0 {
                break;
            }
            heard = tokio::time::Instant::now();
            slot.heard();
            let Some(progressed) = self.frames(&mut buf, peer, &slot) else {
                break 'read;
            };
            // The clock of a message starts with its first byte: a read that
            // completed a message starts the next one's clock afresh.
            partial = match (buf.is_empty(), progressed) {
                (true, _) => None,
                (false, true) => Some(heard),
                (false, false) => partial.or(Some(heard)),
            };
        }
        // Let a final error reply go out before the writer is dropped.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        self.tcp.remove(&peer_addr);
        writer.abort();
        self.sink.closed(peer, &mut Out::now(&self));
    }
}

impl Net {
    /// Takes every whole frame in `buf` (messages to the sink, keep-alives
    /// answered) from connection `peer`: whether any was taken, or `None`
    /// when the stream is broken (answered 400 or 513, to be closed).
    fn frames(self: &Arc<Self>, buf: &mut BytesMut, peer: Peer, slot: &Slot) -> Option<bool> {
        let mut progressed = false;
        loop {
            match next_frame(buf, self.max_message) {
                Ok(Frame::Incomplete) => return Some(progressed),
                Ok(Frame::KeepAlive { len, ping }) => {
                    progressed = true;
                    let _ = buf.split_to(len);
                    if ping {
                        self.send_tcp(peer.addr, Bytes::from_static(b"\r\n"));
                    }
                }
                Ok(Frame::Message(len)) => {
                    progressed = true;
                    let msg = buf.split_to(len);
                    if msg.starts_with(b"REGISTER ") || msg.starts_with(b"INVITE ") {
                        slot.keep();
                    }
                    self.parse_and_deliver(&msg, peer, &mut Out::now(self));
                }
                Err(e) => {
                    let code = if matches!(e, SipError::TooLarge { .. }) {
                        513
                    } else {
                        400
                    };
                    tracing::debug!(error = %e, "closing tcp connection");
                    if let Some(reply) = raw_error_reply(buf, code) {
                        self.send_tcp(peer.addr, reply);
                    }
                    return None;
                }
            }
        }
    }

    /// Parses one whole message and hands it up; one that cannot be parsed
    /// is answered here (400, or 501 for an unknown method) and goes no
    /// further.
    fn parse_and_deliver(self: &Arc<Self>, data: &[u8], peer: Peer, out: &mut Out<'_>) {
        // A parser bug must cost one message, not the socket's receive task.
        let udp = peer.transport == Transport::Udp;
        let parsed = std::panic::catch_unwind(|| Msg::parse(data, udp))
            .unwrap_or_else(|_| Err(SipError::Parse("parser panicked".into())));
        match parsed {
            Ok(m) => self.sink.deliver(m, data, peer, out),
            Err(err) => {
                tracing::debug!(error = %err, %peer, "bad message");
                let code = match err {
                    SipError::Status(code, _) => code,
                    _ => 400,
                };
                if let Some(reply) = raw_error_reply(data, code) {
                    out.send(peer, reply);
                }
            }
        }
    }
}

/// An error response built from the raw header lines of a request that
/// could not be parsed or framed. `None` for responses and for requests
/// whose Via, From, To, Call-ID or CSeq cannot be found.
pub fn raw_error_reply(data: &[u8], code: u16) -> Option<Bytes> {
    let head_end = super::message::head_end(data).unwrap_or(data.len().min(8192));
    let text = String::from_utf8_lossy(&data[..head_end]);
    let mut lines = text.split("\r\n");
    let start = lines.next()?;
    // A request (of any SIP version: a 505 names the one we speak).
    let version = start.rsplit(' ').next().unwrap_or("");
    if start.starts_with("SIP/") || !version.starts_with("SIP/") {
        return None;
    }
    let mut w = super::writer::Writer::response(code, super::writer::reason(code));
    let mut found = 0;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let canon = match name.trim().to_ascii_lowercase().as_str() {
            "via" | "v" => "Via",
            "from" | "f" => "From",
            "to" | "t" => "To",
            "call-id" | "i" => "Call-ID",
            "cseq" => "CSeq",
            _ => continue,
        };
        found += 1;
        w.header(canon, value.trim());
    }
    (found >= 5).then(|| w.finish(None, b""))
}
