//! Every UDP datagram a party receives, captured on the loopback by tshark
//! (Debian's package; the test command installs it), to look for leaks in
//! media as well as in SIP.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One captured datagram.
#[derive(Debug)]
pub struct Datagram {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub payload: Vec<u8>,
}

/// A running capture.
pub struct Capture {
    child: Child,
    dir: tempfile::TempDir,
}

impl Capture {
    /// Captures what matches the BPF `filter` on `lo` until [`Capture::stop`].
    pub fn start(filter: &str) -> Capture {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("cap.pcap");
        let log = dir.path().join("log");
        let child = Command::new("dumpcap")
            .args(["-q", "-i", "lo", "-f", filter, "-w"])
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("dumpcap: run the test command from README.md (it installs tshark)");
        // dumpcap says where it captures once the filter is in place.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("Capturing on")
        {
            assert!(Instant::now() < deadline, "dumpcap never started");
            std::thread::sleep(Duration::from_millis(20));
        }
        Capture { child, dir }
    }

    /// Stops and returns what was captured.
    pub fn stop(mut self) -> Vec<Datagram> {
        // SIGINT lets dumpcap flush its file.
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        let out = Command::new("tshark")
            .args(["-r"])
            .arg(self.dir.path().join("cap.pcap"))
            .args([
                "-T",
                "fields",
                "-e",
                "ip.src",
                "-e",
                "udp.srcport",
                "-e",
                "ip.dst",
                "-e",
                "udp.dstport",
                "-e",
                "udp.payload",
            ])
            .stderr(Stdio::null())
            .output()
            .expect("tshark");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                let addr = |ip: &str, port: &str| format!("{ip}:{port}").parse().ok();
                Some(Datagram {
                    src: addr(f.first()?, f.get(1)?)?,
                    dst: addr(f.get(2)?, f.get(3)?)?,
                    payload: hex(f.get(4).copied().unwrap_or("")),
                })
            })
            .collect()
    }
}

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    (0..s.len() / 2)
        .filter_map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok())
        .collect()
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
