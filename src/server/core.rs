//! The engine behind its lock and what feeds it: parsed socket messages,
//! messages a sibling instance hands over, and its timers (run as
//! [`super::ticks`] plans), each with a reading of the one clock.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use crate::b2bua::Engine;
use crate::calls::Masking;
use crate::handover::FromSibling;
use crate::sip::message::Msg;
use crate::sip::transport::{Net, Out, Sink};
use crate::sip::Peer;
use crate::time::SharedClock;

use super::ticks::Ticks;

thread_local! {
    /// What the engine queued, between its lock and the sockets.
    static SPARE: std::cell::RefCell<Vec<(Peer, Bytes)>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The engine behind its lock; the sockets deliver into it.
pub(super) struct Core {
    pub(super) engine: Mutex<Engine<Masking>>,
    /// The one clock every reading of the engine's comes from.
    pub(super) clock: SharedClock,
    // Where messages for a sibling instance go (restart overlap).
    pub(super) handover: Arc<crate::handover::Handover>,
    /// When the engine's timers run.
    pub(super) ticks: Ticks,
}

impl Core {
    /// Runs `f` on the engine under its lock, then sends what it queued
    /// to `out` (after the lock is let go).
    pub(super) fn with_engine(&self, out: &mut Out<'_>, f: impl FnOnce(&mut Engine<Masking>)) {
        // The thread's spare vector, not a new one per message: sending
        // happens after the lock is let go, so what goes out is moved here.
        let mut queued = SPARE.with(|s| std::mem::take(&mut *s.borrow_mut()));
        {
            let Ok(mut e) = self.engine.lock() else {
                return;
            };
            f(&mut e);
            e.drain(&mut queued);
            // A timer set sooner than the timers' wake-up is planned.
            self.ticks.deadline(e.next_due());
        }
        for (peer, bytes) in queued.drain(..) {
            out.send(peer, bytes);
        }
        SPARE.with(|s| *s.borrow_mut() = queued);
    }

    /// Runs the engine's timers if they are due.
    pub(super) fn run_timers_if_due(&self, out: &mut Out<'_>) {
        let now = self.clock.now();
        let (due, sizes) = self.ticks.take_due(now.mono);
        if due {
            self.with_engine(out, |e| {
                e.on_timer(now);
                if sizes {
                    tracing::debug!(sizes = %e.sizes(), "engine tables");
                }
            });
        }
    }
}

impl Sink for Core {
    fn deliver(&self, m: Msg, data: &[u8], peer: Peer, out: &mut Out<'_>) {
        self.take(m, data, peer, out, false);
    }

    fn closed(&self, peer: Peer, out: &mut Out<'_>) {
        let now = self.clock.now();
        self.with_engine(out, |e| e.on_closed(peer, now));
    }

    fn batch_done(&self, out: &mut Out<'_>) {
        self.run_timers_if_due(out);
    }
}

impl Core {
    /// Handles a parsed message, or hands it to the sibling instances when
    /// it is not this one's (a UDP message, never one handed over
    /// already). A handed-over message that is not this one's either is
    /// another sibling's: dropped here.
    fn take(&self, m: Msg, data: &[u8], peer: Peer, out: &mut Out<'_>, handed: bool) {
        let udp = peer.transport == crate::sip::Transport::Udp;
        let siblings = (udp && !handed)
            .then(|| self.handover.siblings())
            .filter(|s| !s.is_empty());
        let mut m = Some(m);
        let mut theirs = false;
        self.with_engine(out, |e| {
            let Some(msg) = m.take() else { return };
            if (siblings.is_some() || handed) && !e.handles(&msg) {
                theirs = true;
                return;
            }
            e.on_message(msg, peer, self.clock.now());
        });
        if let (true, Some(siblings)) = (theirs, siblings) {
            for s in siblings.iter() {
                self.handover.forward(s, peer.addr, data);
            }
        }
    }

    /// A message a sibling handed over, with its original source.
    fn take_handed(&self, data: &[u8], peer: SocketAddr, net: &Arc<Net>) {
        let peer = Peer {
            transport: crate::sip::Transport::Udp,
            addr: peer,
        };
        let parsed = std::panic::catch_unwind(|| Msg::parse(data, true));
        if let Ok(Ok(m)) = parsed {
            self.take(m, data, peer, &mut Out::now(net), true);
        }
    }
}

/// Receives what sibling instances hand over.
pub(super) async fn handed(core: Arc<Core>, net: Arc<Net>, cancel: CancellationToken) {
    let sock = core.handover.sock.clone();
    let mut buf = vec![0u8; 65536 + 256];
    let mut look = tokio::time::interval(crate::handover::FRESH);
    look.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let (n, from) = tokio::select! {
            r = sock.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(_) => continue,
            },
            _ = look.tick() => {
                look_up(&core).await;
                continue;
            }
            _ = cancel.cancelled() => return,
        };
        match core.handover.read(from, &buf[..n]) {
            Some(FromSibling::Message(peer, data)) => core.take_handed(data, peer, &net),
            // A sibling started or stopped.
            Some(FromSibling::Look) => look_up(&core).await,
            None => {}
        }
    }
}

/// Looks the sibling up again, off the message path (a directory scan).
async fn look_up(core: &Core) {
    let h = core.handover.clone();
    let _ = tokio::task::spawn_blocking(move || h.refresh()).await;
}
