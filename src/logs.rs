//! Where `serve`'s log lines go: standard output, in batches. A line is
//! appended to a buffer; a thread writes what gathered a moment after the
//! first line of a batch, so the call path (which logs under the engine
//! lock) never waits on a pipe or a disk and a busy server makes one system
//! call per batch, not one per line. Idle, the thread sleeps on a condition
//! and costs no wake-ups.

pub mod config;
mod line;

pub use line::{Fields, Line};

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// How long a batch gathers after its first line. Bounds what a crash (a
/// kill, not a panic or a signal: those flush) can take from the log.
const GATHER: Duration = Duration::from_millis(50);

/// Past this, a writer writes the batch itself instead of letting it grow.
const FULL: usize = 256 * 1024;

#[derive(Default)]
struct Shared {
    buf: Mutex<Vec<u8>>,
    ready: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Vec<u8>> {
        // A writer that panicked mid-line leaves bytes, never a broken
        // buffer: go on with it.
        self.buf.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes out what gathered.
    fn flush(&self) {
        self.flush_into(&mut Vec::new());
    }

    /// Writes out what gathered, swapping in `spare` (left empty, its
    /// capacity kept) so that the next batch does not grow a buffer again.
    fn flush_into(&self, spare: &mut Vec<u8>) {
        std::mem::swap(&mut *self.lock(), spare);
        if !spare.is_empty() {
            let mut out = std::io::stdout().lock();
            // Nowhere to report a failed log write: drop the batch.
            let _ = out.write_all(spare).and_then(|()| out.flush());
        }
        spare.clear();
    }
}

/// The batching writer: hand it to `tracing_subscriber::fmt().with_writer`.
#[derive(Clone)]
pub struct Batched(Arc<Shared>);

impl Batched {
    /// Starts the thread that writes the batches.
    pub fn start() -> std::io::Result<Batched> {
        let shared = Arc::new(Shared::default());
        let s = shared.clone();
        std::thread::Builder::new()
            .name("sipmask-logs".into())
            .spawn(move || {
                let mut spare = Vec::new();
                loop {
                    {
                        let mut buf = s.lock();
                        while buf.is_empty() {
                            buf = s.ready.wait(buf).unwrap_or_else(|e| e.into_inner());
                        }
                    }
                    std::thread::sleep(GATHER);
                    s.flush_into(&mut spare);
                }
            })?;
        Ok(Batched(shared))
    }

    /// Writes out what gathered now (at exit, before a panic's message).
    pub fn flush(&self) {
        self.0.flush();
    }
}

impl Write for Batched {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let mut buf = self.0.lock();
        let first = buf.is_empty();
        buf.extend_from_slice(data);
        let full = buf.len() >= FULL;
        drop(buf);
        if full {
            self.0.flush();
        } else if first {
            self.0.ready.notify_one();
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Batched {
    type Writer = Batched;

    fn make_writer(&'a self) -> Batched {
        self.clone()
    }
}
