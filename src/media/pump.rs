//! The relay's packet path: a pump per socket receives, finds the stream
//! and party its slot serves, checks the source against the party's latch,
//! rewrites the packet in its buffer and sends it from our socket facing
//! the other party. Prompts are played from here too.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::audio::{self, Prompt, FRAME};
use super::relay::{Coarse, Latch, Remote, Stats, StreamState};
use super::rtp::{self, RtcpMap, Shown};
use super::slot::Slot;
use super::Party;
use crate::datagrams::Inbox;
use crate::net::Network;

/// Receives on one of a slot's sockets and relays to the other party:
/// woken when the socket is readable, it takes every datagram waiting, a
/// batch per system call (`recvmmsg`).
/// The buffers are the worker thread's, not the task's, so a slot at rest
/// costs a few hundred bytes.
pub(super) struct Pump {
    pub slot: Arc<Slot>,
    /// The slot's RTCP socket (else its RTP socket).
    pub rtcp_port: bool,
    pub clock: Arc<Coarse>,
    pub stats: Arc<Stats>,
    /// Trunks' media networks (see `RelayConfig::media_networks`).
    pub networks: Arc<[(IpAddr, Vec<Network>)]>,
}

/// Larger than any RTP packet a path MTU lets through.
const MAX_PACKET: usize = 2048;

thread_local! {
    /// (receive, RTCP out) buffers of this worker thread.
    static BUFFERS: std::cell::RefCell<(Inbox, [u8; MAX_PACKET])> =
        std::cell::RefCell::new((Inbox::new(MAX_PACKET), [0; MAX_PACKET]));
}

impl Pump {
    pub async fn run(self) {
        let sock = if self.rtcp_port {
            Arc::clone(&self.slot.rtcp)
        } else {
            Arc::clone(&self.slot.rtp)
        };
        // One waker registration per wait, however many datagrams it finds.
        while sock.readable().await.is_ok() {
            if !self.drain(&sock, self.rtcp_port) {
                tracing::warn!("media socket failed");
                return;
            }
        }
    }

    /// Relays every datagram waiting on `sock`; false if it failed for good.
    fn drain(&self, sock: &tokio::net::UdpSocket, rtcp_port: bool) -> bool {
        BUFFERS.with(|b| {
            let Ok(mut b) = b.try_borrow_mut() else {
                return true;
            };
            let (inbox, out) = &mut *b;
            loop {
                match inbox.recv(sock) {
                    Ok(got) => {
                        let serving = self.slot.serving();
                        for i in 0..got {
                            match (serving.as_ref(), inbox.get_mut(i)) {
                                (Some((st, party)), Some((buf, n, Some(src), false))) => {
                                    self.relay(st, *party, rtcp_port, buf, n, src, out)
                                }
                                // At rest (a late packet of the last call),
                                // or no RTP (too long).
                                _ => {
                                    self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                        }
                        if inbox.drained() {
                            return true;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
                    // ICMP errors from earlier sends surface here on some
                    // systems; the socket is still good.
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::ConnectionRefused
                                | std::io::ErrorKind::ConnectionReset
                                | std::io::ErrorKind::Interrupted
                        ) => {}
                    Err(_) => return false,
                }
            }
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn relay(
        &self,
        s: &StreamState,
        party: Party,
        rtcp_port: bool,
        buf: &mut [u8],
        n: usize,
        src: SocketAddr,
        out: &mut [u8],
    ) {
        let (x, y) = (party.index(), party.other().index());
        let rtcp = rtcp_port || rtp::is_rtcp(&buf[..n]);
        let ssrc = buf
            .get(8..12)
            .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
        if !latch(&s.remote[x], src, rtcp, ssrc, &self.networks) {
            self.stats.foreign.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if party == Party::A && !s.answered.load(Ordering::Relaxed) {
            // Ringing: the callee hears nothing of the caller until it
            // answers (early media goes the other way only).
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let (Some(from), Some(to)) = (s.facing[x].get(), s.facing[y].get()) else {
            return;
        };
        let dest = *s.remote[y].lock().unwrap_or_else(|e| e.into_inner());
        if rtcp {
            let heard = to.heard_ssrc.load(Ordering::Relaxed);
            let map = RtcpMap {
                to: &to.shown,
                from: &from.shown,
                their_ssrc: u32::try_from(heard).ok(),
                ntp: rtp::ntp_now(),
                to_sr: to.sr.load(Ordering::Relaxed),
                from_sr: &from.sr,
            };
            let len = rtp::rewrite_rtcp(&buf[..n], out, &map);
            let Some(addr) = dest.rtcp.or(dest.rtp) else {
                return;
            };
            if len == 0 {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
            // A multiplexing party takes RTCP on the RTP port.
            let sock = if Some(addr) == dest.rtp {
                &to.slot.rtp
            } else {
                &to.slot.rtcp
            };
            let _ = sock.try_send_to(&out[..len], addr);
            self.stats.rtcp.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let Some((len, heard)) = rtp::rewrite_rtp(buf, n, &to.shown) else {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        from.heard_ssrc
            .store(u64::from(heard.ssrc), Ordering::Relaxed);
        let now = self.clock.now().max(1);
        from.last.store(now, Ordering::Relaxed);
        if let Some(r) = s.recorder.get() {
            r.write(x, heard.pt, heard.ts, &buf[heard.payload..len], now);
        }
        if s.playing[y].load(Ordering::Relaxed) {
            // A prompt is speaking to them: this waits its turn (dropped).
            return;
        }
        if let Some(addr) = dest.rtp {
            // Media is late rather than never: a full socket buffer drops.
            let _ = to.slot.rtp.try_send_to(&buf[..len], addr);
            self.stats.rtp.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Plays `prompt` to party `to` from our port facing it, one G.711 packet
/// each 20 ms, as a stream of its own (its own SSRC), then lets the other
/// party's media through again.
pub(super) async fn speak(st: Arc<StreamState>, to: usize, pt: u8, prompt: Prompt) {
    // Our own 183 goes out as this starts: let it arrive first.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let Some(f) = st.facing[to].get() else {
        return;
    };
    let shown = Shown::new();
    let mut every = tokio::time::interval(Duration::from_millis(20));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pkt = [0u8; 12 + FRAME];
    for (i, chunk) in prompt.0.chunks(FRAME).enumerate() {
        every.tick().await;
        let n = i as u32;
        pkt[0] = 0x80;
        pkt[1] = if i == 0 { pt | 0x80 } else { pt };
        pkt[2..4].copy_from_slice(&shown.seq.wrapping_add(n as u16).to_be_bytes());
        pkt[4..8].copy_from_slice(&shown.ts.wrapping_add(n * FRAME as u32).to_be_bytes());
        pkt[8..12].copy_from_slice(&shown.ssrc.to_be_bytes());
        for (j, b) in pkt[12..].iter_mut().enumerate() {
            *b = audio::encode(pt, chunk.get(j).copied().unwrap_or(0));
        }
        let dest = st.remote[to].lock().unwrap_or_else(|e| e.into_inner()).rtp;
        if let Some(dest) = dest {
            let _ = f.slot.rtp.try_send_to(&pkt, dest);
        }
    }
    st.playing[to].store(false, Ordering::Relaxed);
}

/// Where a party takes RTP (or RTCP) and how far that is latched: the two
/// are latched apart.
fn fields(r: &mut Remote, rtcp: bool) -> (&mut Option<SocketAddr>, &mut Latch) {
    if rtcp {
        (&mut r.rtcp, &mut r.rtcp_latch)
    } else {
        (&mut r.rtp, &mut r.rtp_latch)
    }
}

/// RTP packets with one SSRC from one source that latch it for good.
const STABLE: u8 = 3;

/// Whether a packet from `src` (RTP with `ssrc`, or RTCP) is the party's.
/// Only the party's own addresses ([`Remote::owns`]) are heard at all;
/// the first of them to send is tried, and kept once its SSRC has held
/// for [`STABLE`] packets (RTCP: at once) until the party describes its
/// media again. Before that, another of its addresses may take over (a
/// phone whose first packets leave from a second interface).
fn latch(
    remote: &Mutex<Remote>,
    src: SocketAddr,
    rtcp: bool,
    ssrc: u32,
    networks: &[(IpAddr, Vec<Network>)],
) -> bool {
    let mut guard = remote.lock().unwrap_or_else(|e| e.into_inner());
    let r = &mut *guard;
    let (addr, state) = fields(r, rtcp);
    match *state {
        Latch::Fixed => return *addr == Some(src),
        Latch::Trying { ssrc: was, seen } if *addr == Some(src) => {
            *state = match (was == ssrc, seen + 1) {
                (true, n) if n >= STABLE => Latch::Fixed,
                (true, n) => Latch::Trying { ssrc, seen: n },
                (false, _) => Latch::Trying { ssrc, seen: 1 },
            };
            return true;
        }
        _ => {}
    }
    if !r.owns(src.ip(), networks) {
        return false;
    }
    let (addr, state) = fields(r, rtcp);
    *addr = Some(src);
    *state = if rtcp {
        Latch::Fixed
    } else {
        Latch::Trying { ssrc, seen: 1 }
    };
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_partys_addresses_latch_and_a_stable_latch_holds_until_the_next_description() {
        let said: SocketAddr = "192.0.2.1:4000".parse().expect("addr");
        let nat: SocketAddr = "198.51.100.7:31000".parse().expect("addr");
        let nat2: SocketAddr = "198.51.100.7:31002".parse().expect("addr");
        let stranger: SocketAddr = "203.0.113.9:5000".parse().expect("addr");
        let gateway: SocketAddr = "10.9.0.20:7000".parse().expect("addr");
        let r = Mutex::new(Remote {
            rtp: Some(said),
            said_rtp: Some(said),
            signalling: Some(nat.ip()),
            ..Default::default()
        });
        let none: &[(IpAddr, Vec<Network>)] = &[];
        assert!(
            !latch(&r, stranger, false, 1, none),
            "a stranger first: nothing"
        );
        assert_eq!(r.lock().map(|g| g.rtp).ok().flatten(), Some(said));
        assert!(
            latch(&r, nat, false, 7, none),
            "behind NAT: the signalling address"
        );
        assert!(!latch(&r, stranger, false, 7, none));
        // Before the SSRC held, another of the party's sources may take over.
        assert!(latch(&r, nat2, false, 8, none));
        for _ in 0..STABLE {
            assert!(latch(&r, nat2, false, 8, none));
        }
        assert!(
            !latch(&r, nat, false, 8, none),
            "latched: its own other port too"
        );
        assert!(
            !latch(&r, said, false, 8, none),
            "even the described address"
        );
        assert_eq!(r.lock().map(|g| g.rtp).ok().flatten(), Some(nat2));
        // A trunk's media gateway, in a network configured for it.
        let trunk: IpAddr = "198.51.100.7".parse().expect("ip");
        let nets = vec![(trunk, vec![Network::parse("10.9.0.0/16").expect("net")])];
        let t = Mutex::new(Remote {
            said_rtp: Some(said),
            signalling: Some(trunk),
            ..Default::default()
        });
        assert!(!latch(&t, gateway, false, 1, none));
        assert!(latch(&t, gateway, false, 1, &nets));
        // The networks are the trunk's alone.
        let other = Mutex::new(Remote {
            signalling: Some("192.0.2.99".parse().expect("ip")),
            ..Default::default()
        });
        assert!(!latch(&other, gateway, false, 1, &nets));
    }
}
