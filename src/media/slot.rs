//! The relay's sockets: a slot is a pair (RTP on an even port, RTCP on the
//! next) with a receiving task on each, kept open from call to call. A
//! call takes slots from the pool and gives them back when it ends; a slot
//! rests a while before it serves again (late packets of the last call
//! find nobody), and one unused for a minute is closed. Binding, polling
//! registration and task start happen once per slot instead of once per
//! call: the signalling path pays almost nothing for anchoring media.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock};

use tokio::net::UdpSocket;
use tokio::task::AbortHandle;

use super::ports::Ports;
use super::relay::StreamState;
use super::{MediaError, Party};

/// A released slot serves no call again before this many milliseconds.
const REST_MS: u64 = 1_000;
/// A slot unused this long is closed.
const IDLE_MS: u64 = 60_000;

/// A pair of our sockets and what they serve.
pub(super) struct Slot {
    pub rtp: Arc<UdpSocket>,
    pub rtcp: Arc<UdpSocket>,
    pub port: u16,
    /// The stream and the party these sockets face now; `None` in the pool.
    pub serving: Mutex<Option<(Arc<StreamState>, Party)>>,
    pumps: OnceLock<[AbortHandle; 2]>,
    /// The range the pair came from, and the address it is bound on.
    ports: Arc<Ports>,
    bind: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.ports.release(self.bind, self.port);
    }
}

impl Slot {
    /// Stops the pumps, which hold the sockets: the pair closes.
    fn stop(&self) {
        for p in self.pumps.get().into_iter().flatten() {
            p.abort();
        }
    }

    /// What the slot serves, locked for the packet at hand.
    pub fn serving(&self) -> std::sync::MutexGuard<'_, Option<(Arc<StreamState>, Party)>> {
        self.serving.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Per address bound (one or two: a list beats hashing), the slots at rest
/// with when each was given back, oldest first.
#[derive(Default)]
struct Resting(Vec<(IpAddr, Queue)>);

/// Slots at rest on one address, with when each may serve again (0: at
/// once, a pair opened ahead of the calls), soonest first.
type Queue = VecDeque<(u64, Arc<Slot>)>;

impl Resting {
    fn queue(&mut self, bind: IpAddr) -> &mut Queue {
        let i = match self.0.iter().position(|(ip, _)| *ip == bind) {
            Some(i) => i,
            None => {
                self.0.push((bind, VecDeque::new()));
                self.0.len() - 1
            }
        };
        &mut self.0[i].1
    }

    fn values(&self) -> impl Iterator<Item = &Queue> {
        self.0.iter().map(|(_, q)| q)
    }
}

/// Slots at rest, per address bound.
pub(super) struct Pool {
    ports: Arc<Ports>,
    /// Set when the server drains: pairs given back close.
    closing: std::sync::atomic::AtomicBool,
    /// Pairs kept open however long they rest.
    keep: std::sync::atomic::AtomicUsize,
    free: Mutex<Resting>,
}

impl Pool {
    pub fn new(lo: u16, hi: u16, keep: usize) -> Pool {
        Pool {
            keep: std::sync::atomic::AtomicUsize::new(keep),
            closing: std::sync::atomic::AtomicBool::new(false),
            ports: Arc::new(Ports::new(lo, hi)),
            free: Mutex::new(Resting::default()),
        }
    }

    fn free(&self) -> std::sync::MutexGuard<'_, Resting> {
        self.free.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Slots open, at rest and serving (for /metrics): the rest.
    pub fn resting(&self) -> usize {
        self.free().values().map(VecDeque::len).sum()
    }

    /// A slot on `bind` for a stream: a rested one, else a new pair whose
    /// pumps `spawn` starts.
    pub fn take(
        &self,
        bind: IpAddr,
        now: u64,
        handle: &tokio::runtime::Handle,
        spawn: impl FnOnce(&Arc<Slot>) -> [AbortHandle; 2],
    ) -> Result<Arc<Slot>, MediaError> {
        {
            let mut free = self.free();
            let q = free.queue(bind);
            // Any of the rested slots, not the oldest: the order calls give
            // ports back in must not tell which the next call gets.
            let rested = q.partition_point(|(at, _)| *at <= now);
            if rested > 0 {
                let i = rand::random::<u32>() as usize % rested;
                if let Some((_, slot)) = q.swap_remove_front(i) {
                    return Ok(slot);
                }
            }
        }
        match self.open(bind, handle, spawn) {
            Ok(slot) => Ok(slot),
            // The range is full, or no socket can be opened: the slot that
            // rested longest serves rather than the call failing.
            Err(e) => match self.free().queue(bind).pop_front() {
                Some((_, slot)) => Ok(slot),
                None => Err(e),
            },
        }
    }

    /// Slots on `bind` that have rested long enough to serve at `now`.
    pub fn ready(&self, bind: IpAddr, now: u64) -> usize {
        self.free()
            .queue(bind)
            .partition_point(|(at, _)| *at <= now)
    }

    /// A pair opened ahead of the calls: it may serve at once.
    pub fn rest_fresh(&self, bind: IpAddr, slot: Arc<Slot>) {
        if self.closing.load(std::sync::atomic::Ordering::Relaxed) {
            slot.stop();
            return;
        }
        self.free().queue(bind).push_front((0, slot));
    }

    /// A new pair on `bind` whose pumps `spawn` starts.
    pub fn open(
        &self,
        bind: IpAddr,
        handle: &tokio::runtime::Handle,
        spawn: impl FnOnce(&Arc<Slot>) -> [AbortHandle; 2],
    ) -> Result<Arc<Slot>, MediaError> {
        let (lo, hi) = self.ports.bounds();
        let (port, a, b) = match self.ports.pair(bind) {
            Ok(Some(pair)) => pair,
            Ok(None) => return Err(MediaError::NoPorts(lo, hi)),
            Err(e) => return Err(MediaError::Sockets(e.to_string())),
        };
        let _enter = handle.enter();
        let (Ok(a), Ok(b)) = (UdpSocket::from_std(a), UdpSocket::from_std(b)) else {
            return Err(MediaError::NoPorts(lo, hi));
        };
        let slot = Arc::new(Slot {
            rtp: Arc::new(a),
            rtcp: Arc::new(b),
            port,
            serving: Mutex::new(None),
            pumps: OnceLock::new(),
            ports: Arc::clone(&self.ports),
            bind,
        });
        let _ = slot.pumps.set(spawn(&slot));
        Ok(slot)
    }

    /// Closes every resting pair and keeps none from now on (the server
    /// drains; its sibling takes the ports).
    pub fn close_resting(&self) {
        self.keep.store(0, std::sync::atomic::Ordering::Relaxed);
        let mut free = self.free();
        for (_, slot) in free.0.iter_mut().flat_map(|(_, q)| std::mem::take(q)) {
            slot.stop();
        }
        // Slots given back from now on close at once.
        self.closing
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// A slot back from a call: it serves nothing and rests; slots unused
    /// for long are closed.
    pub fn give_back(&self, bind: IpAddr, slot: Arc<Slot>, now: u64) {
        *slot.serving() = None;
        if self.closing.load(std::sync::atomic::Ordering::Relaxed) {
            slot.stop();
            return;
        }
        let mut free = self.free();
        let q = free.queue(bind);
        q.push_back((now + REST_MS, slot));
        let keep = self.keep.load(std::sync::atomic::Ordering::Relaxed);
        while q.len() > keep
            && q.front()
                .is_some_and(|(at, _)| now.saturating_sub(*at) > IDLE_MS)
        {
            if let Some((_, old)) = q.pop_front() {
                old.stop();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_pumps(_: &Arc<Slot>) -> [AbortHandle; 2] {
        let h = tokio::spawn(async {}).abort_handle();
        [h.clone(), h]
    }

    #[tokio::test]
    async fn slots_rest_before_they_serve_again_unless_the_range_is_full() {
        let pool = Pool::new(41100, 41103, 0);
        let ip: IpAddr = [127, 0, 0, 1].into();
        let h = tokio::runtime::Handle::current();
        let a = pool.take(ip, 0, &h, no_pumps).expect("first pair");
        let b = pool.take(ip, 0, &h, no_pumps).expect("second pair");
        assert_ne!(a.port, b.port);
        pool.give_back(ip, Arc::clone(&a), 1_000);
        // Resting, and the range is full: the resting one serves anyway.
        let c = pool.take(ip, 1_500, &h, no_pumps).expect("taken over");
        assert_eq!(c.port, a.port);
        let b_port = b.port;
        pool.give_back(ip, c, 2_000);
        pool.give_back(ip, b, 2_000);
        // Rested: one of them reused, no new sockets.
        let d = pool.take(ip, 4_000, &h, no_pumps).expect("rested");
        assert!(d.port == a.port || d.port == b_port);
        assert_eq!(pool.resting(), 1);
        // Unused for a minute: closed.
        pool.give_back(ip, d, 4_000 + IDLE_MS + 1);
        assert_eq!(pool.resting(), 1);
    }

    #[tokio::test]
    async fn kept_pairs_stay_open_until_the_server_drains() {
        let pool = Pool::new(41200, 41207, 2);
        let ip: IpAddr = [127, 0, 0, 1].into();
        let h = tokio::runtime::Handle::current();
        let a = pool.take(ip, 0, &h, no_pumps).expect("pair");
        let b = pool.take(ip, 0, &h, no_pumps).expect("pair");
        let c = pool.take(ip, 0, &h, no_pumps).expect("pair");
        pool.give_back(ip, a, 0);
        pool.give_back(ip, b, 0);
        pool.give_back(ip, c, 10 * IDLE_MS);
        assert_eq!(pool.resting(), 2, "two kept however idle; the third closed");
        pool.close_resting();
        assert_eq!(pool.resting(), 0);
        let d = pool
            .take(ip, 20 * IDLE_MS, &h, no_pumps)
            .expect("a new pair");
        pool.give_back(ip, d, 20 * IDLE_MS);
        assert_eq!(pool.resting(), 0, "draining: given back is closed");
    }
}
