//! The write-behind thread: takes usage updates, call records, events and
//! live-call checkpoints from the call path and commits whatever is queued
//! in one transaction, so the call path never waits on a disk, a burst of
//! calls costs one commit, and a call's end is written all or nothing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use super::accounts::ContactRow;
use super::durable::{Durable, Outcome};
use super::events::Listeners;
use super::events::NewEvent;
use super::live::Checkpoint;
use super::{Backend, Batch, CallRecord, Reserve, UsageUpdate};
use crate::bindings::BindingId;

enum Msg {
    Usage(UsageUpdate),
    /// Counters that must be on disk before the call path goes on: the
    /// batch holding them is committed at once, and `Durable` then says
    /// that `u64` (their ticket) is safe.
    UsageNow(UsageUpdate, u64),
    /// A question for the database's counts, answered at once; `Durable`
    /// says how (a reservation, a lease).
    Ask(Ask, u64),
    Call(Box<CallRecord>),
    /// A call's end: its record, its binding's counters and its
    /// checkpoint row go in one transaction.
    CallEnd(Box<CallEnd>),
    Live(Checkpoint),
    Event(Box<NewEvent>),
    /// An account's contacts, all of them as they are now.
    Contacts(String, Vec<ContactRow>),
    /// An answered call on a binding (an interaction if it was acquired).
    Answered(BindingId, i64),
    /// A binding's new conditions at a unix second.
    Conditions(BindingId, Box<crate::bindings::Conditions>, i64),
    Flush(Sender<()>),
}

/// A call's end: its record, its binding's counters (as this node
/// counts them, or as a hold settled on a shared database) and its
/// checkpoint row.
pub struct CallEnd {
    /// The call's record.
    pub record: CallRecord,
    /// Its binding's counters now (a database of this node's own).
    pub usage: Option<UsageUpdate>,
    /// Its hold ended and its talk booked (a shared database).
    pub settle: Option<super::Settle>,
    /// Its checkpoint row, if it has one.
    pub live_key: Option<String>,
}

/// What the call path asks of the counts that nodes share.
#[derive(Debug)]
pub enum Ask {
    /// A new call's hold ([`super::HoldStore::reserve`]).
    Reserve(Reserve),
    /// More talk time for a hold ([`super::HoldStore::lease`]).
    Lease {
        /// Which binding.
        id: BindingId,
        /// The call's hold.
        hold: String,
        /// `talk_budget_secs` in force.
        budget: u64,
        /// Seconds asked for.
        want: u64,
    },
}

/// What the call path hands the writer thread. A plain vector behind a
/// lock rather than a channel: the thread takes the lot every batch and
/// hands back the emptied vector, so queueing allocates nothing once warm
/// (std's channel allocated a block every 31 messages, each a large
/// calloc that made glibc consolidate its free lists).
#[derive(Default)]
struct Queue {
    items: Mutex<Vec<Msg>>,
    ready: Condvar,
    /// Every `Writer` is gone: drain and stop.
    closed: AtomicBool,
    /// The thread stopped (or died): nothing more will be saved.
    gone: AtomicBool,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, Vec<Msg>> {
        // Pushing and swapping cannot leave the vector half-done.
        self.items.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Closes the queue when the last `Writer` is dropped.
struct Open(Arc<Queue>);

impl Drop for Open {
    fn drop(&mut self) {
        // Under the lock, so the thread cannot miss it between its look at
        // `closed` and its wait.
        let _items = self.0.lock();
        self.0.closed.store(true, Ordering::Release);
        self.0.ready.notify_all();
    }
}

/// Marks the queue gone when the thread ends, by return or by panic.
struct Gone(Arc<Queue>);

impl Drop for Gone {
    fn drop(&mut self) {
        self.0.gone.store(true, Ordering::Release);
    }
}

/// Handle to the writer thread. Cloning shares the thread.
#[derive(Clone)]
pub struct Writer {
    queue: Arc<Queue>,
    _open: Arc<Open>,
    durable: Arc<Durable>,
}

impl Writer {
    /// Starts the thread over `store`; call records older than `keep_days`
    /// are purged as it goes. Stored events are published on `hub` once
    /// committed.
    pub fn start(
        store: Box<dyn Backend>,
        keep_days: u32,
        hub: Arc<dyn Listeners>,
    ) -> std::io::Result<(Writer, JoinHandle<()>)> {
        let queue = Arc::new(Queue::default());
        let durable = Arc::new(Durable::default());
        let (q, d) = (queue.clone(), durable.clone());
        let handle = std::thread::Builder::new()
            .name("sipmask-store".into())
            .spawn(move || {
                let _gone = Gone(q.clone());
                run(store, &q, i64::from(keep_days) * 86_400_000, hub, &d)
            })?;
        let open = Arc::new(Open(queue.clone()));
        Ok((
            Writer {
                queue,
                _open: open,
                durable,
            },
            handle,
        ))
    }

    /// Queues `m`; false when the thread is gone. Never blocks beyond the
    /// queue's lock.
    fn send(&self, m: Msg) -> bool {
        if self.queue.gone.load(Ordering::Acquire) {
            return false;
        }
        let mut items = self.queue.lock();
        let first = items.is_empty();
        items.push(m);
        drop(items);
        // The thread sleeps only on an empty queue: wake it for the first.
        if first {
            self.queue.ready.notify_one();
        }
        true
    }

    /// Queues an event. Never blocks.
    pub fn event(&self, e: NewEvent) {
        if !self.send(Msg::Event(Box::new(e))) {
            tracing::error!("store writer is gone; event not saved");
        }
    }

    /// Queues a call record. Never blocks.
    pub fn call(&self, record: CallRecord) {
        if !self.send(Msg::Call(Box::new(record))) {
            tracing::error!("store writer is gone; call record not saved");
        }
    }

    /// Queues the end of a call. Never blocks.
    pub fn call_end(&self, end: CallEnd) {
        if !self.send(Msg::CallEnd(Box::new(end))) {
            tracing::error!("store writer is gone; call end not saved");
        }
    }

    /// Queues a checkpoint of the live calls. Never blocks.
    pub fn live(&self, c: Checkpoint) {
        if !self.send(Msg::Live(c)) {
            tracing::error!("store writer is gone; live calls not saved");
        }
    }

    /// Queues new counters of a binding to be committed at once (group
    /// commit: whatever else is queued goes in the same transaction), and
    /// returns the ticket [`Durable::committed`] reaches when they are on
    /// disk. Never blocks; the caller waits (or not) through [`Writer::durable`].
    pub fn usage_now(&self, update: UsageUpdate) -> u64 {
        let ticket = self.durable.issued.fetch_add(1, Ordering::AcqRel) + 1;
        if !self.send(Msg::UsageNow(update, ticket)) {
            tracing::error!(binding = update.id, "store writer is gone; usage not saved");
            // Nothing will be saved: nobody should wait for it either.
            self.durable.committed.fetch_max(ticket, Ordering::AcqRel);
            self.durable.wake.notify_one();
        }
        ticket
    }

    /// Queues a question for the counts that nodes share (nodes never
    /// overrun a limit between them), asked at once; returns the ticket
    /// that [`Durable::committed`] reaches when it is answered, and that
    /// [`Durable::take_outcome`] tells the answer of. Never blocks.
    pub fn ask_now(&self, ask: Ask) -> u64 {
        let ticket = self.durable.issued.fetch_add(1, Ordering::AcqRel) + 1;
        if !self.send(Msg::Ask(ask, ticket)) {
            tracing::error!("store writer is gone; a count could not be asked");
            // No answer, no call.
            self.durable.tell(ticket, Outcome::Unavailable);
            self.durable.committed.fetch_max(ticket, Ordering::AcqRel);
            self.durable.wake.notify_one();
        }
        ticket
    }

    /// What the writer has made durable.
    pub fn durable(&self) -> Arc<Durable> {
        self.durable.clone()
    }

    /// Queues new counters of a binding. Never blocks.
    pub fn usage(&self, update: UsageUpdate) {
        if !self.send(Msg::Usage(update)) {
            tracing::error!(binding = update.id, "store writer is gone; usage not saved");
        }
    }

    /// Queues an account's contacts as they are now. Never blocks.
    pub fn contacts(&self, account: String, rows: Vec<ContactRow>) {
        if !self.send(Msg::Contacts(account, rows)) {
            tracing::error!("store writer is gone; registration not saved");
        }
    }

    /// Queues an answered call on `binding` at unix second `at`: an
    /// interaction of its agent and user if the binding was acquired.
    /// Never blocks.
    pub fn call_interaction(&self, binding: BindingId, at: i64) {
        if !self.send(Msg::Answered(binding, at)) {
            tracing::error!("store writer is gone; call interaction not saved");
        }
    }

    /// Queues a binding's new conditions (at unix second `at`). Never
    /// blocks.
    pub fn conditions(&self, binding: BindingId, c: crate::bindings::Conditions, at: i64) {
        if !self.send(Msg::Conditions(binding, Box::new(c), at)) {
            tracing::error!(binding, "store writer is gone; conditions not saved");
        }
    }

    /// Waits until everything queued before this call is committed.
    pub fn flush(&self) {
        let (tx, rx) = mpsc::channel();
        if self.send(Msg::Flush(tx)) {
            let _ = rx.recv();
        }
    }
}

/// How long the writer lets work gather after the first message of a
/// batch. A burst of calls then costs one transaction (a handful of system
/// calls: locks, WAL writes) instead of one each, and while it sleeps the
/// call path's messages do not wake it, one by one. A commit costs about
/// 130 us whatever it holds and a call about 8 us, so at 1,000 calls/s
/// 50 ms (as the log thread gathers) instead of 20 saves a quarter of the
/// writer's time (docs/benchmarks.md, issue 12, sixth round). Bounded so a
/// crash loses a few tens of milliseconds more of records, never more;
/// live calls' talk time is checkpointed apart.
const GATHER: std::time::Duration = std::time::Duration::from_millis(50);

fn run(
    mut store: Box<dyn Backend>,
    queue: &Queue,
    keep_ms: i64,
    hub: Arc<dyn Listeners>,
    durable: &Durable,
) {
    let mut last_purge: Option<std::time::Instant> = None;
    let mut taken: Vec<Msg> = Vec::new();
    // Work a database out of reach could not take, saved with the next.
    let mut kept: Option<Batch> = None;
    loop {
        if !gather(queue, &mut taken, kept.is_some()) {
            if let Some(k) = kept {
                tracing::error!(
                    calls = k.calls.len(),
                    events = k.events.len(),
                    "stopping with work the database never took: not saved"
                );
            }
            return;
        }
        let (mut batch, waiters, mut ticket, asks) = batch_of(&mut taken);
        if let Some(mut k) = kept.take() {
            let dropped = k.absorb(batch);
            if dropped > 0 {
                tracing::error!(
                    dropped,
                    "the database is away too long: oldest records and events let go"
                );
            }
            batch = k;
        }
        for (a, t) in asks {
            durable.tell(t, answer(store.as_mut(), &a));
            ticket = ticket.max(t);
        }
        if !batch.is_empty() {
            match store.save_batch(&batch, &|t| hub.hooked(t)) {
                Ok(stored) => stored
                    .into_iter()
                    .for_each(|(t, body)| hub.publish(t, body)),
                // Rolled back whole: kept, and tried again with the next.
                Err(super::StoreError::Unavailable(why)) => {
                    tracing::warn!(
                        why,
                        calls = batch.calls.len(),
                        events = batch.events.len(),
                        "the database is out of reach: records and events kept until it answers"
                    );
                    kept = Some(batch);
                }
                Err(e) => tracing::error!(
                    error = %e,
                    usage = batch.usage.len(),
                    calls = batch.calls.len(),
                    events = batch.events.len(),
                    "saving a batch failed"
                ),
            }
        }
        if keep_ms > 0 && last_purge.is_none_or(|t| t.elapsed().as_secs() >= 3600) {
            last_purge = Some(std::time::Instant::now());
            let before = crate::time::now_ms() - keep_ms;
            match store.purge_calls(before) {
                Ok(0) => {}
                Ok(n) => tracing::info!(purged = n, "old call records deleted"),
                Err(e) => tracing::error!(error = %e, "purging call records failed"),
            }
        }
        for w in waiters {
            let _ = w.send(());
        }
        if ticket > 0 {
            // Tickets are committed in order: a later batch never holds an
            // earlier ticket than this one's.
            durable.committed.fetch_max(ticket, Ordering::AcqRel);
            durable.wake.notify_one();
        }
    }
}

/// Asks the database; an error is never a free call.
fn answer(store: &mut dyn Backend, a: &Ask) -> Outcome {
    let (r, what) = match a {
        Ask::Reserve(r) => match store.reserve(r) {
            Ok(Err(why)) => return Outcome::Refused(Some(why)),
            other => (other.map(Result::ok), "reserving a call"),
        },
        Ask::Lease {
            id,
            hold,
            budget,
            want,
        } => (
            store
                .lease(*id, hold, *budget, *want)
                .map(|g| (g > 0).then_some(g)),
            "leasing talk time",
        ),
    };
    match r {
        Ok(Some(0)) => Outcome::Done,
        Ok(Some(g)) => Outcome::Granted(g),
        Ok(None) => Outcome::Refused(None),
        Err(e) => {
            tracing::error!(error = %e, ask = ?a, "{what} failed");
            Outcome::Unavailable
        }
    }
}

/// How often kept work is tried again while nothing new comes.
const RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// Waits for work and moves it into `taken`: at once when someone waits
/// on it (a flush, a call's answer on its use), else after gathering for
/// [`GATHER`]; with work kept to `retry`, after [`RETRY`] at most, even
/// with nothing new. `false` when the queue is closed and empty.
fn gather(queue: &Queue, taken: &mut Vec<Msg>, retry: bool) -> bool {
    let mut items = queue.lock();
    while items.is_empty() {
        if queue.closed.load(Ordering::Acquire) {
            return false;
        }
        if retry {
            let (held, waited) = queue
                .ready
                .wait_timeout(items, RETRY)
                .unwrap_or_else(|e| e.into_inner());
            items = held;
            if waited.timed_out() {
                return true;
            }
            continue;
        }
        items = queue.ready.wait(items).unwrap_or_else(|e| e.into_inner());
    }
    let waited = items
        .iter()
        .any(|m| matches!(m, Msg::Flush(_) | Msg::UsageNow(..) | Msg::Ask(..)));
    if !waited {
        drop(items);
        std::thread::sleep(GATHER);
        items = queue.lock();
    }
    std::mem::swap(&mut *items, taken);
    true
}

/// What a batch of work does: one unit of storage work, the flushes to
/// tell when it is committed, and the highest durability ticket in it.
/// Asks to answer at once, each with its ticket.
type Asks = Vec<(Ask, u64)>;

fn batch_of(taken: &mut Vec<Msg>) -> (Batch, Vec<Sender<()>>, u64, Asks) {
    // Only the latest counters of each binding matter.
    let mut usage: HashMap<i64, UsageUpdate> = HashMap::new();
    let mut batch = Batch::default();
    let mut waiters = Vec::new();
    let mut ticket = 0;
    let mut asks = Vec::new();
    {
        let mut take = |m: Msg| match m {
            Msg::Ask(a, t) => asks.push((a, t)),
            Msg::Usage(u) => {
                usage.insert(u.id, u);
            }
            Msg::UsageNow(u, t) => {
                usage.insert(u.id, u);
                ticket = ticket.max(t);
            }
            Msg::Call(c) => batch.calls.push(*c),
            Msg::CallEnd(end) => {
                let end = *end;
                batch.calls.push(end.record);
                if let Some(u) = end.usage {
                    usage.insert(u.id, u);
                }
                batch.settled.extend(end.settle);
                batch.ended.extend(end.live_key);
            }
            Msg::Live(c) => batch.live.push(c),
            Msg::Event(e) => batch.events.push(*e),
            Msg::Answered(b, at) => batch.answered.push((b, at)),
            Msg::Conditions(b, c, at) => batch.conditions.push((b, *c, at)),
            Msg::Contacts(account, rows) => {
                // Only the latest state of each account matters.
                batch.contacts.retain(|(a, _)| *a != account);
                batch.contacts.push((account, rows));
            }
            Msg::Flush(w) => waiters.push(w),
        };
        taken.drain(..).for_each(&mut take);
    }
    batch.usage = usage.into_values().collect();
    (batch, waiters, ticket, asks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::TenantId;
    use crate::store::{CallFilter, CallRecord};

    /// No webhooks, no live streams.
    struct Nobody;

    impl Listeners for Nobody {
        fn hooked(&self, _: TenantId) -> bool {
            false
        }
        fn publish(&self, _: TenantId, _: String) {}
    }

    #[test]
    fn what_any_handle_queues_is_committed_and_the_thread_ends_with_the_last_handle() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = crate::store::open(dir.path()).expect("store");
        let (writer, thread) = Writer::start(store, 0, Arc::new(Nobody)).expect("writer");
        let other = writer.clone();
        let records = (0..500).map(|i| CallRecord {
            tenant: crate::bindings::OPERATOR,
            caller: "+8613800000000".into(),
            x: "+8617000000000".into(),
            invite_at: 1_795_430_000_000 + i,
            result: 200,
            reason: "caller hung up".into(),
            ..Default::default()
        });
        // Two handles, two threads: nothing is lost between them.
        std::thread::scope(|s| {
            let (even, odd): (Vec<_>, Vec<_>) = records.partition(|r| r.invite_at % 2 == 0);
            s.spawn(|| even.into_iter().for_each(|r| writer.call(r)));
            s.spawn(|| odd.into_iter().for_each(|r| other.call(r)));
        });
        writer.flush();
        let reader = crate::store::open(dir.path()).expect("reader");
        let filter = CallFilter {
            limit: 1000,
            ..Default::default()
        };
        let (saved, _) = reader
            .calls(crate::bindings::OPERATOR, &filter)
            .expect("calls");
        assert_eq!(saved.len(), 500);
        drop(writer);
        assert!(!thread.is_finished(), "a handle is still out");
        drop(other);
        thread.join().expect("the thread ends cleanly");
    }
}
