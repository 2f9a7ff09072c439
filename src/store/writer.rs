//! The write-behind thread: takes usage updates from the call path and
//! commits whatever is queued in one transaction, so the call path never
//! waits on a disk and a burst of calls costs one commit.

use std::collections::HashMap;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;

use super::{Store, UsageUpdate};

enum Msg {
    Usage(UsageUpdate),
    Flush(Sender<()>),
}

/// Handle to the writer thread. Cloning shares the thread.
#[derive(Clone)]
pub struct Writer {
    tx: Sender<Msg>,
}

impl Writer {
    /// Starts the thread over `store`.
    pub fn start(store: Box<dyn Store>) -> std::io::Result<(Writer, JoinHandle<()>)> {
        let (tx, rx) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("sipmask-store".into())
            .spawn(move || run(store, rx))?;
        Ok((Writer { tx }, handle))
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

fn run(mut store: Box<dyn Store>, rx: Receiver<Msg>) {
    while let Ok(first) = rx.recv() {
        // Only the latest counters of each binding matter.
        let mut batch: HashMap<i64, UsageUpdate> = HashMap::new();
        let mut waiters = Vec::new();
        let mut take = |m: Msg| match m {
            Msg::Usage(u) => {
                batch.insert(u.id, u);
            }
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
        for w in waiters {
            let _ = w.send(());
        }
    }
}
