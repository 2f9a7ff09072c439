//! The write-behind thread: takes usage updates from the call path and
//! commits whatever is queued in one transaction, so the call path never
//! waits on a disk and a burst of calls costs one commit.

use std::collections::HashMap;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::events::NewEvent;
use super::{CallRecord, Store, UsageUpdate};
use crate::events::Hub;

enum Msg {
    Usage(UsageUpdate),
    Call(Box<CallRecord>),
    Event(Box<NewEvent>),
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
        store: Box<dyn Store>,
        keep_days: u32,
        hub: Arc<Hub>,
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

    /// Queues new counters of a binding. Never blocks.
    pub fn usage(&self, update: UsageUpdate) {
        if self.tx.send(Msg::Usage(update)).is_err() {
            tracing::error!(binding = update.id, "store writer is gone; usage not saved");
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

fn run(mut store: Box<dyn Store>, rx: Receiver<Msg>, keep_ms: i64, hub: Arc<Hub>) {
    let mut last_purge: Option<std::time::Instant> = None;
    while let Ok(first) = rx.recv() {
        // Only the latest counters of each binding matter.
        let mut batch: HashMap<i64, UsageUpdate> = HashMap::new();
        let mut calls = Vec::new();
        let mut events = Vec::new();
        let mut waiters = Vec::new();
        let mut take = |m: Msg| match m {
            Msg::Usage(u) => {
                batch.insert(u.id, u);
            }
            Msg::Call(c) => calls.push(*c),
            Msg::Event(e) => events.push(*e),
            Msg::Flush(w) => waiters.push(w),
        };
        take(first);
        while let Ok(m) = rx.try_recv() {
            take(m);
        }
        if !batch.is_empty() {
            let updates: Vec<UsageUpdate> = batch.into_values().collect();
            if let Err(e) = store.save_usage(&updates) {
                tracing::error!(error = %e, count = updates.len(), "saving usage failed");
            }
        }
        if !calls.is_empty() {
            if let Err(e) = store.save_calls(&calls) {
                tracing::error!(error = %e, count = calls.len(), "saving call records failed");
            }
        }
        if !events.is_empty() {
            match store.save_events(&events, &|t| hub.hooked(t)) {
                Ok(stored) => stored
                    .into_iter()
                    .for_each(|(t, body)| hub.publish(t, body)),
                Err(e) => tracing::error!(error = %e, count = events.len(), "saving events failed"),
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
