//! The write-behind thread: takes usage updates, call records, events and
//! live-call checkpoints from the call path and commits whatever is queued
//! in one transaction, so the call path never waits on a disk, a burst of
//! calls costs one commit, and a call's end is written all or nothing.

use std::collections::HashMap;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::accounts::ContactRow;
use super::events::Listeners;
use super::events::NewEvent;
use super::live::Checkpoint;
use super::{Backend, Batch, CallRecord, UsageUpdate};
use crate::bindings::BindingId;

enum Msg {
    Usage(UsageUpdate),
    Call(Box<CallRecord>),
    /// A call's end: its record, its binding's counters and its
    /// checkpoint row go in one transaction.
    CallEnd(Box<CallRecord>, Option<UsageUpdate>, Option<String>),
    Live(Checkpoint),
    Event(Box<NewEvent>),
    /// An account's contacts, all of them as they are now.
    Contacts(String, Vec<ContactRow>),
    /// An answered call on a binding (an interaction if it was acquired).
    Answered(BindingId, i64),
    Flush(Sender<()>),
}

/// Handle to the writer thread. Cloning shares the thread.
#[derive(Clone)]
pub struct Writer {
    tx: Sender<Msg>,
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
        let (tx, rx) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("sipmask-store".into())
            .spawn(move || run(store, rx, i64::from(keep_days) * 86_400_000, hub))?;
        Ok((Writer { tx }, handle))
    }

    /// Queues an event. Never blocks.
    pub fn event(&self, e: NewEvent) {
        if self.tx.send(Msg::Event(Box::new(e))).is_err() {
            tracing::error!("store writer is gone; event not saved");
        }
    }

    /// Queues a call record. Never blocks.
    pub fn call(&self, record: CallRecord) {
        if self.tx.send(Msg::Call(Box::new(record))).is_err() {
            tracing::error!("store writer is gone; call record not saved");
        }
    }

    /// Queues the end of a checkpointed call. Never blocks.
    pub fn call_end(
        &self,
        record: CallRecord,
        usage: Option<UsageUpdate>,
        live_key: Option<String>,
    ) {
        if self
            .tx
            .send(Msg::CallEnd(Box::new(record), usage, live_key))
            .is_err()
        {
            tracing::error!("store writer is gone; call end not saved");
        }
    }

    /// Queues a checkpoint of the live calls. Never blocks.
    pub fn live(&self, c: Checkpoint) {
        if self.tx.send(Msg::Live(c)).is_err() {
            tracing::error!("store writer is gone; live calls not saved");
        }
    }

    /// Queues new counters of a binding. Never blocks.
    pub fn usage(&self, update: UsageUpdate) {
        if self.tx.send(Msg::Usage(update)).is_err() {
            tracing::error!(binding = update.id, "store writer is gone; usage not saved");
        }
    }

    /// Queues an account's contacts as they are now. Never blocks.
    pub fn contacts(&self, account: String, rows: Vec<ContactRow>) {
        if self.tx.send(Msg::Contacts(account, rows)).is_err() {
            tracing::error!("store writer is gone; registration not saved");
        }
    }

    /// Queues an answered call on `binding` at unix second `at`: an
    /// interaction of its agent and user if the binding was acquired.
    /// Never blocks.
    pub fn call_interaction(&self, binding: BindingId, at: i64) {
        if self.tx.send(Msg::Answered(binding, at)).is_err() {
            tracing::error!("store writer is gone; call interaction not saved");
        }
    }

    /// Waits until everything queued before this call is committed.
    pub fn flush(&self) {
        let (tx, rx) = mpsc::channel();
        if self.tx.send(Msg::Flush(tx)).is_ok() {
            let _ = rx.recv();
        }
    }
}

/// How long the writer lets work gather after the first message of a
/// batch. A burst of calls then costs one transaction (a handful of system
/// calls: locks, WAL writes) instead of one each, and while it sleeps the
/// call path's sends do not wake it, message by message. Bounded so a
/// crash loses a few milliseconds more of records, never more.
const GATHER: std::time::Duration = std::time::Duration::from_millis(20);

fn run(mut store: Box<dyn Backend>, rx: Receiver<Msg>, keep_ms: i64, hub: Arc<dyn Listeners>) {
    let mut last_purge: Option<std::time::Instant> = None;
    while let Ok(first) = rx.recv() {
        // Only the latest counters of each binding matter.
        let mut usage: HashMap<i64, UsageUpdate> = HashMap::new();
        let mut batch = Batch::default();
        let mut waiters = Vec::new();
        let mut take = |m: Msg| match m {
            Msg::Usage(u) => {
                usage.insert(u.id, u);
            }
            Msg::Call(c) => batch.calls.push(*c),
            Msg::CallEnd(c, u, key) => {
                batch.calls.push(*c);
                if let Some(u) = u {
                    usage.insert(u.id, u);
                }
                batch.ended.extend(key);
            }
            Msg::Live(c) => batch.live.push(c),
            Msg::Event(e) => batch.events.push(*e),
            Msg::Answered(b, at) => batch.answered.push((b, at)),
            Msg::Contacts(account, rows) => {
                // Only the latest state of each account matters.
                batch.contacts.retain(|(a, _)| *a != account);
                batch.contacts.push((account, rows));
            }
            Msg::Flush(w) => waiters.push(w),
        };
        // Someone waits on a flush: commit what is there now.
        let waited = matches!(first, Msg::Flush(_));
        take(first);
        if !waited {
            std::thread::sleep(GATHER);
        }
        while let Ok(m) = rx.try_recv() {
            take(m);
        }
        batch.usage = usage.into_values().collect();
        if !batch.is_empty() {
            match store.save_batch(&batch, &|t| hub.hooked(t)) {
                Ok(stored) => stored
                    .into_iter()
                    .for_each(|(t, body)| hub.publish(t, body)),
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
    }
}
