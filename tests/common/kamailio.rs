//! Debian's Kamailio as a carrier's proxy in front of sipmask (the config
//! is tests/carrier/carrier.cfg): started on its own loopback port with
//! its own runtime dir, stopped when dropped.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What the proxy does beside relaying.
#[derive(Clone, Copy, Default)]
pub struct Behaviour {
    /// Record-routes every initial request.
    pub record_route: bool,
    /// Challenges sipmask's INVITEs for this password.
    pub password: Option<&'static str>,
}

/// A running Kamailio.
pub struct Kamailio {
    child: Child,
    dir: tempfile::TempDir,
    pub addr: SocketAddr,
}

impl Kamailio {
    /// Starts it on `addr` (a free port on a loopback address), relaying
    /// sipmask's requests to `switch` and everyone else's to `sipmask`.
    pub fn start(addr: SocketAddr, sipmask: SocketAddr, switch: SocketAddr, b: Behaviour) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = include_str!("../carrier/carrier.cfg")
            .replace("@LISTEN@", &addr.to_string())
            .replace("@SIPMASK_IP@", &sipmask.ip().to_string())
            .replace("@SIPMASK@", &sipmask.to_string())
            .replace("@SWITCH@", &switch.to_string())
            .replace("@PASSWORD@", b.password.unwrap_or("none"));
        let path = dir.path().join("kamailio.cfg");
        std::fs::write(&path, cfg).expect("config");
        let log = std::fs::File::create(dir.path().join("kamailio.log")).expect("log");
        let mut cmd = Command::new("kamailio");
        cmd.arg("-f")
            .arg(&path)
            .args(["-DD", "-E", "-m", "64", "-M", "8", "-Y"])
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        if b.record_route {
            cmd.args(["-A", "RR"]);
        }
        if b.password.is_some() {
            cmd.args(["-A", "AUTH"]);
        }
        let child = cmd
            .spawn()
            .expect("kamailio runs: the test command from README.md installs it");
        let k = Kamailio { child, dir, addr };
        k.wait_listening();
        k
    }

    /// Waits until its UDP port is taken (it binds before its workers run;
    /// a few ms more for them).
    fn wait_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if std::net::UdpSocket::bind(self.addr).is_err() {
                std::thread::sleep(Duration::from_millis(200));
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("kamailio did not start:\n{}", self.log());
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("kamailio.log")).unwrap_or_default()
    }

    /// Kills it (a carrier gone), keeping its files.
    pub fn kill(&mut self) {
        // SAFETY: kill(2) on the pid of a child this struct owns.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        self.kill();
    }
}
