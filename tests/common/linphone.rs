//! Linphone 5.1 (Debian's linphone-cli), a second softphone whose SIP
//! stack (belle-sip) none of sipmask's own code shares: `linphone-daemon`
//! run headless with its own config, SIP on one loopback address, driven
//! by commands over its UNIX socket, its log (SIP messages included) kept
//! to look for leaks.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// A running linphone-daemon.
pub struct Linphone {
    child: Child,
    dir: tempfile::TempDir,
    pipe: UnixStream,
    /// What it sent on the pipe not yet taken as an answer.
    pending: String,
}

/// Whether linphone-daemon is installed (scripts/test.sh installs it).
pub fn installed() -> bool {
    Command::new("linphone-daemon")
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

impl Linphone {
    /// Starts linphone-daemon with SIP on `ip:port` (UDP only), RTP on
    /// `rtp` and no sound card (it plays and records files).
    pub async fn start(ip: &str, port: u16, rtp: u16) -> Linphone {
        assert!(
            installed(),
            "linphone-daemon is not installed: run the test command from README.md (it installs linphone-cli)"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let rc = format!(
            "[sip]\nsip_port={port}\nsip_tcp_port=-1\nsip_tls_port=-1\nbind_address={ip}\n\
             default_proxy=-1\n[rtp]\naudio_rtp_port={rtp}\naudio_jitt_comp=60\n\
             [sound]\nplayback_dev_id=\ncapture_dev_id=\n[net]\nipv6=0\n"
        );
        let config = dir.path().join("linphonerc");
        std::fs::write(&config, rc).expect("config");
        let pipe_name = format!(
            "sipmask-lp-{}-{}",
            std::process::id(),
            dir.path()
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("x")
        );
        let log = std::fs::File::create(dir.path().join("trace.log")).expect("log");
        // Its database under a home of its own: without one it never
        // finishes starting (no REGISTER goes out).
        let home = dir.path().join("home");
        std::fs::create_dir_all(home.join(".local/share/linphone")).expect("home");
        let child = Command::new("linphone-daemon")
            .env("HOME", &home)
            .arg("--pipe")
            .arg(&pipe_name)
            .arg("--config")
            .arg(&config)
            .arg("--log")
            .arg(dir.path().join("linphone.log"))
            .arg("--disable-stats-events")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("run linphone-daemon");
        let path = format!("/tmp/{pipe_name}");
        let deadline = Instant::now() + Duration::from_secs(10);
        let pipe = loop {
            match UnixStream::connect(&path).await {
                Ok(s) => break s,
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(e) => panic!("linphone-daemon's pipe never opened: {e}"),
            }
        };
        Linphone {
            child,
            dir,
            pipe,
            pending: String::new(),
        }
    }

    /// Its log: what linphone did, the SIP messages it received included.
    pub fn trace(&self) -> String {
        let read = |n: &str| std::fs::read_to_string(self.dir.path().join(n)).unwrap_or_default();
        read("linphone.log") + &read("trace.log")
    }

    /// Sends a command and returns its answer: `Status: ...`, then its
    /// fields (read until the daemon has said nothing for a moment).
    pub async fn command(&mut self, line: &str) -> String {
        self.pipe
            .write_all(format!("{line}\n").as_bytes())
            .await
            .expect("pipe write");
        self.until(|p| p.find("Status: ").map(|_| ()), Duration::from_secs(5))
            .await;
        let mut chunk = [0u8; 8192];
        while let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_millis(100), self.pipe.read(&mut chunk)).await
        {
            if n == 0 {
                break;
            }
            self.pending.push_str(&String::from_utf8_lossy(&chunk[..n]));
        }
        std::mem::take(&mut self.pending)
    }

    /// Waits until an event (taken with `pop-event`: the daemon queues
    /// them) carries `text` (`State: StreamsRunning`, say), within `wait`.
    pub async fn expect(&mut self, text: &str, wait: Duration) -> String {
        let deadline = Instant::now() + wait;
        let mut seen = String::new();
        loop {
            let event = self.command("pop-event").await;
            if event.contains(text) {
                return event;
            }
            seen.push_str(&event);
            assert!(
                Instant::now() < deadline,
                "linphone: no {text:?} in time; events:\n{seen}\n{}",
                self.trace()
            );
            if !event.contains("Event-type") {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    async fn until(&mut self, found: impl Fn(&str) -> Option<()>, wait: Duration) {
        let deadline = tokio::time::Instant::now() + wait;
        let mut chunk = [0u8; 8192];
        while found(&self.pending).is_none() {
            let n = tokio::time::timeout_at(deadline, self.pipe.read(&mut chunk))
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "linphone: nothing in time; pipe:\n{}\n{}",
                        self.pending,
                        self.trace()
                    )
                })
                .expect("pipe read");
            assert!(n > 0, "linphone-daemon closed its pipe:\n{}", self.trace());
            self.pending.push_str(&String::from_utf8_lossy(&chunk[..n]));
        }
    }
}

impl Drop for Linphone {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
