//! The SIP sockets' own thread: a current-thread runtime that runs the UDP
//! receive loops and the engine's timer tick, apart from the runtime of the
//! media pumps, the API and TCP.
//!
//! Why a thread of its own: on the shared two-worker runtime a datagram's
//! wake-up, its receive task and the tick hopped between workers (work
//! stealing, cross-thread wake-ups); one thread that owns the sockets'
//! readiness and the tasks waiting on it did the same calls for 8-16% less
//! CPU each at 1,000 calls/s (docs/benchmarks.md, issue 12, fourth round).
//! The media pumps keep both workers of the main runtime.

use std::thread::JoinHandle;

use tokio::runtime::{Builder, Handle};
use tokio_util::sync::CancellationToken;

/// The running thread; sockets registered through [`SipThread::handle`]
/// are woken by it, tasks spawned there run on it.
pub(super) struct SipThread {
    handle: Handle,
    stop: CancellationToken,
    thread: Option<JoinHandle<()>>,
}

impl SipThread {
    /// Starts the thread with its runtime.
    pub(super) fn start() -> std::io::Result<SipThread> {
        let rt = Builder::new_current_thread().enable_all().build()?;
        let handle = rt.handle().clone();
        let stop = CancellationToken::new();
        let until = stop.clone();
        // The runtime lives and is dropped on its thread: dropping one
        // inside another runtime's task would panic.
        let thread = std::thread::Builder::new()
            .name("sipmask-sip".into())
            .spawn(move || rt.block_on(until.cancelled()))?;
        Ok(SipThread {
            handle,
            stop,
            thread: Some(thread),
        })
    }

    /// Where the SIP sockets are registered and their tasks spawned.
    pub(super) fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Ends the thread once its tasks have ended (they are cancelled by
    /// the server first); what is left is dropped with the runtime.
    pub(super) async fn stop(mut self) {
        self.stop.cancel();
        if let Some(t) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}

impl Drop for SipThread {
    fn drop(&mut self) {
        // A server dropped without shutdown still lets its thread go.
        self.stop.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sockets_registered_on_the_thread_are_served_by_it() {
        let sip = SipThread::start().expect("thread");
        let sock = {
            let _on = sip.handle().enter();
            let std = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
            std.set_nonblocking(true).expect("nonblocking");
            tokio::net::UdpSocket::from_std(std).expect("register")
        };
        let addr = sock.local_addr().expect("addr");
        let echo = sip.handle().spawn(async move {
            let mut buf = [0u8; 64];
            let (n, from) = sock.recv_from(&mut buf).await.expect("recv");
            let name = std::thread::current().name().map(str::to_owned);
            sock.send_to(&buf[..n], from).await.expect("send");
            name
        });
        let client = tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("bind");
        client.send_to(b"ping", addr).await.expect("send");
        let mut buf = [0u8; 64];
        let n = client.recv(&mut buf).await.expect("echo");
        assert_eq!(&buf[..n], b"ping");
        let ran_on = echo.await.expect("task");
        assert_eq!(ran_on.as_deref(), Some("sipmask-sip"));
        sip.stop().await;
    }
}
