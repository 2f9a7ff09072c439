//! baresip, a real softphone from Debian's packages, run headless as an
//! app account's phone: its own config dir, SIP on one loopback address,
//! commands and events as netstring JSON over its ctrl_tcp module, and its
//! SIP trace (-s) kept to look for leaks in every byte it received.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::free_port;

/// A running baresip.
pub struct Baresip {
    child: Child,
    dir: tempfile::TempDir,
    ctrl: TcpStream,
    buf: Vec<u8>,
    /// Where it takes SIP.
    pub sip: SocketAddr,
    token: u32,
}

fn installed() -> bool {
    Command::new("baresip")
        .arg("-h")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

impl Baresip {
    /// Starts baresip on `ip` with one account line (`<sip:...>;params`).
    pub async fn start(ip: &str, account: &str) -> Baresip {
        Baresip::start_with(ip, free_port(ip), account, "").await
    }

    /// Starts baresip on `ip:port` with one account line and extra config
    /// lines (`rtp_ports\t...`, say).
    pub async fn start_with(ip: &str, port: u16, account: &str, extra: &str) -> Baresip {
        assert!(
            installed(),
            "baresip is not installed: run the test command from README.md (it installs baresip)"
        );
        // The control port is picked free, then bound by baresip: another
        // test may take it in between. Then baresip says so and this tries
        // another port.
        for _ in 0..3 {
            if let Some(b) = Baresip::try_start(ip, port, account, extra).await {
                return b;
            }
        }
        panic!("baresip's ctrl_tcp found no free port in three tries");
    }

    async fn try_start(ip: &str, port: u16, account: &str, extra: &str) -> Option<Baresip> {
        let dir = tempfile::tempdir().expect("tempdir");
        let ctrl_port = free_port("127.0.0.1");
        let config = format!(
            "poll_method\tepoll\nsip_listen\t{ip}:{port}\nsip_trans_def\tudp\nnet_interface\t{ip}\n\
             audio_source\tausine,440\naudio_player\taufile,{heard}\nausrc_srate\t48000\n\
             ausrc_channels\t2\nauplay_channels\t2\nmodule_path\t/usr/lib/baresip/modules\n\
             module\tg711.so\nmodule\tausine.so\nmodule\taufile.so\nmodule_app\taccount.so\n\
             module_app\tmenu.so\nmodule_app\tctrl_tcp.so\nctrl_tcp_listen\t127.0.0.1:{ctrl_port}\n{extra}",
            heard = dir.path().join("heard.wav").display()
        );
        std::fs::write(dir.path().join("config"), config).expect("config");
        std::fs::write(dir.path().join("accounts"), format!("{account}\n")).expect("accounts");
        let log = std::fs::File::create(dir.path().join("trace.log")).expect("log");
        let child = Command::new("baresip")
            .arg("-s")
            .arg("-f")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("run baresip");
        let deadline = Instant::now() + Duration::from_secs(10);
        let ctrl = loop {
            match TcpStream::connect(("127.0.0.1", ctrl_port)).await {
                Ok(s) => break s,
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(e) => panic!("baresip's ctrl_tcp never listened: {e}"),
            }
        };
        // Connected, but perhaps to whoever holds the port: baresip's own
        // word settles it once its modules are loaded.
        let read = |d: &tempfile::TempDir| {
            std::fs::read_to_string(d.path().join("trace.log")).unwrap_or_default()
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while !read(&dir).contains("audio codecs") && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if read(&dir).contains("ctrl_tcp: failed to listen") {
            let mut child = child;
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        Some(Baresip {
            child,
            dir,
            ctrl,
            buf: Vec::new(),
            sip: format!("{ip}:{port}").parse().expect("addr"),
            token: 0,
        })
    }

    /// Everything baresip printed, its SIP trace included.
    pub fn trace(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("trace.log")).unwrap_or_default()
    }

    /// Sends a command (`dial`, `hangup`, ...).
    pub async fn command(&mut self, command: &str, params: &str) {
        self.token += 1;
        let body = serde_json::json!({
            "command": command, "params": params, "token": self.token.to_string()
        })
        .to_string();
        let frame = format!("{}:{body},", body.len());
        self.ctrl
            .write_all(frame.as_bytes())
            .await
            .expect("ctrl write");
    }

    /// The next event of `kind` (`CALL_ESTABLISHED`, ...) within `wait`.
    pub async fn event(&mut self, kind: &str, wait: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            while let Some(v) = self.frame() {
                if v["type"] == kind {
                    return v;
                }
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout_at(deadline, self.ctrl.read(&mut chunk))
                .await
                .unwrap_or_else(|_| panic!("no {kind} from baresip; trace:\n{}", self.trace()))
                .expect("ctrl read");
            assert!(n > 0, "baresip closed ctrl_tcp; trace:\n{}", self.trace());
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// One whole netstring from the buffer, parsed.
    fn frame(&mut self) -> Option<Value> {
        let colon = self.buf.iter().position(|b| *b == b':')?;
        let len: usize = std::str::from_utf8(&self.buf[..colon]).ok()?.parse().ok()?;
        if self.buf.len() < colon + 1 + len + 1 {
            return None;
        }
        let body = self.buf[colon + 1..colon + 1 + len].to_vec();
        self.buf.drain(..colon + len + 2);
        serde_json::from_slice(&body).ok()
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
