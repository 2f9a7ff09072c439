//! When the engine's timers run. A busy server runs them at the end of a
//! batch of datagrams, when they are due: the thread is awake then, and
//! what they send leaves with the batch. Only when no batch comes does a
//! wake-up of their own run them, planned for the engine's earliest
//! deadline. A fixed 10 ms tick used to wake the SIP thread a hundred
//! times a second, busy or idle; at 1,000 calls/s that was one wake-up in
//! nine, and each costs the thread tens of microseconds on a virtual
//! machine (docs/benchmarks.md, issue 12, sixth round).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::core::Core;
use crate::sip::transport::Net;

/// Timers run at most this often. SIP's shortest timer is T1 (500 ms):
/// this is far finer than any needs.
pub(super) const TICK: Duration = Duration::from_millis(10);

/// How long the timers' own wake-up waits for a batch to run them first.
const SLACK: Duration = Duration::from_millis(20);

/// With nothing due sooner, timers still run this often: housekeeping
/// that keeps no deadline in the engine (trunk pings, silent media, the
/// policy's sweeps and checkpoints) needs no finer.
const IDLE: Duration = Duration::from_millis(100);

/// How often the engine's table sizes are logged (at debug level).
const SIZES: Duration = Duration::from_secs(10);

/// The plan of the timers' own wake-up, on the engine's clock.
pub(super) struct Ticks {
    state: Mutex<State>,
    /// Tells the tick task to plan again: the timers ran, or a deadline
    /// came sooner than its plan.
    replan: Notify,
}

struct State {
    /// When the timers last ran.
    last: Instant,
    /// When the tick task means to wake.
    planned: Instant,
    /// When the table sizes were last logged.
    sized: Instant,
}

impl Ticks {
    pub(super) fn new(now: Instant) -> Ticks {
        Ticks {
            state: Mutex::new(State {
                last: now,
                planned: now + SLACK,
                sized: now,
            }),
            replan: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Instants only: a panic elsewhere cannot leave them half-set.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the timers are due at `now`; if so they count as run now
    /// (and the tick task plans again from here). The second value says
    /// whether to log the table sizes too.
    pub(super) fn take_due(&self, now: Instant) -> (bool, bool) {
        let mut s = self.lock();
        if now < s.last + TICK {
            return (false, false);
        }
        s.last = now;
        let sizes = now >= s.sized + SIZES;
        if sizes {
            s.sized = now;
        }
        drop(s);
        self.replan.notify_one();
        (true, sizes)
    }

    /// The engine's earliest deadline is `due` now: the tick task plans
    /// again if it would sleep past it (and could wake sooner).
    pub(super) fn deadline(&self, due: Option<Instant>) {
        let Some(due) = due else { return };
        let s = self.lock();
        let sooner = due.max(s.last + SLACK) < s.planned;
        drop(s);
        if sooner {
            self.replan.notify_one();
        }
    }

    /// Plans the next wake-up for the earliest deadline `due`: not before
    /// a batch has had its chance to run the timers, not after `IDLE`.
    fn plan(&self, due: Option<Instant>) -> Instant {
        let mut s = self.lock();
        let latest = s.last + IDLE;
        s.planned = due.map_or(latest, |d| d.clamp(s.last + SLACK, latest));
        s.planned
    }
}

/// Runs the engine's timers whenever no batch of datagrams ran them in
/// time, until cancelled.
pub(super) async fn tick(core: Arc<Core>, net: Arc<Net>, cancel: CancellationToken) {
    loop {
        let due = match core.engine.lock() {
            Ok(e) => e.next_due(),
            Err(_) => return,
        };
        let now = core.clock.now().mono;
        let at = core.ticks.plan(due);
        let sleep = tokio::time::Instant::now() + at.saturating_duration_since(now);
        tokio::select! {
            _ = tokio::time::sleep_until(sleep) => core.run_timers_if_due(&mut crate::sip::transport::Out::now(&net)),
            _ = core.ticks.replan.notified() => {}
            _ = cancel.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_run_at_most_once_a_tick() {
        let t0 = Instant::now();
        let ticks = Ticks::new(t0);
        assert_eq!(ticks.take_due(t0 + TICK / 2), (false, false));
        assert_eq!(ticks.take_due(t0 + TICK), (true, false));
        assert_eq!(ticks.take_due(t0 + TICK + TICK / 2), (false, false));
        assert_eq!(ticks.take_due(t0 + SIZES + TICK), (true, true));
    }

    #[test]
    fn the_wake_up_leaves_batches_their_chance_and_never_sleeps_past_idle() {
        let t0 = Instant::now();
        let ticks = Ticks::new(t0);
        assert_eq!(ticks.plan(Some(t0)), t0 + SLACK);
        assert_eq!(ticks.plan(Some(t0 + IDLE / 2)), t0 + IDLE / 2);
        assert_eq!(ticks.plan(Some(t0 + IDLE * 5)), t0 + IDLE);
        assert_eq!(ticks.plan(None), t0 + IDLE);
    }

    #[tokio::test]
    async fn a_sooner_deadline_wakes_the_planner_and_a_later_one_does_not() {
        let t0 = Instant::now();
        let ticks = Ticks::new(t0);
        ticks.plan(None);
        ticks.deadline(Some(t0 + IDLE * 2));
        ticks.deadline(None);
        let woken = tokio::time::timeout(Duration::from_millis(50), ticks.replan.notified());
        assert!(woken.await.is_err(), "nothing sooner: no new plan");
        ticks.deadline(Some(t0 + IDLE / 2));
        let woken = tokio::time::timeout(Duration::from_millis(50), ticks.replan.notified());
        assert!(woken.await.is_ok(), "a sooner deadline: a new plan");
    }
}
