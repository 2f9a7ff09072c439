//! `sipmask serve` as a process of its own, for tests that kill it.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{unique, Ua};

/// A server process, killed (SIGKILL: nothing flushed) when dropped.
pub struct Proc(pub Child);

impl Proc {
    /// Stops it as an operator does (SIGTERM: drains, flushes and saves
    /// its table) and waits for it to end.
    pub fn stop(&mut self) {
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        unsafe {
            libc::kill(self.0.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("sipmask did not stop within 30 s of SIGTERM");
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `bin serve` with `args` on 127.0.0.1:`port`, calls to real
/// numbers out through `trunk`, the API on a free port, and 127.0.0.1 and
/// 127.0.0.2 trusted; returns once it answers OPTIONS.
pub async fn serve_process(
    bin: &str,
    args: Vec<String>,
    port: u16,
    trunk: std::net::SocketAddr,
) -> Proc {
    // SIPMASK_TEST_LOGS=DIR keeps each process's log there.
    let log = std::env::var_os("SIPMASK_TEST_LOGS")
        .map(|d| std::path::Path::new(&d).join(format!("sipmask-{port}-{}.log", unique("p"))));
    serve_logged(bin, args, port, trunk, log.as_deref()).await
}

/// [`serve_process`], its output written to `log`.
pub async fn serve_logged(
    bin: &str,
    args: Vec<String>,
    port: u16,
    trunk: std::net::SocketAddr,
    log: Option<&std::path::Path>,
) -> Proc {
    let mut cmd = Command::new(bin);
    cmd.arg("serve").args(&args);
    let listen = format!("127.0.0.1:{port}");
    let trunk = trunk.to_string();
    cmd.args([
        "--listen",
        &listen,
        "--trunk",
        &trunk,
        "--api-listen",
        "127.0.0.1:0",
        // The probe and the callers (repeatable flag).
        "--trust",
        "127.0.0.1/32",
        "--trust",
        "127.0.0.2/32",
    ]);
    let log = log.and_then(|p| std::fs::File::create(p).ok());
    let err = log
        .as_ref()
        .and_then(|f| f.try_clone().ok())
        .map_or_else(Stdio::null, Stdio::from);
    let out = log.map_or_else(Stdio::null, Stdio::from);
    let child = Proc(cmd.stdout(out).stderr(err).spawn().expect("spawn sipmask"));
    // Ready when it answers OPTIONS.
    let mut probe = Ua::bind("127.0.0.1").await;
    let sut: std::net::SocketAddr = listen.parse().expect("addr");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let opt = format!(
            "OPTIONS sip:{sut} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{b}\r\nFrom: <sip:probe@{me}>;tag=p\r\n\
             To: <sip:{sut}>\r\nCall-ID: {b}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
            me = probe.addr,
            b = unique("probe"),
        );
        probe.send(sut, &opt).await;
        if probe
            .recv_within(Duration::from_millis(200))
            .await
            .is_some_and(|m| m.code() == 200)
        {
            return child;
        }
        assert!(Instant::now() < deadline, "sipmask did not come up");
    }
}
