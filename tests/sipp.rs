//! Calls driven by SIPp (Debian's sip-tester), the scenarios in
//! `sipp-scenarios/`: SIPp plays caller and callee on either side of a real
//! sipmask, over UDP and TCP. Fails loudly if `sipp` is missing: the test
//! command in README.md installs it.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};

use common::*;

const A: &str = "13800000000";
const B: &str = "13900000000";
const X: &str = "17000000000";

fn scenario(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("sipp-scenarios")
        .join(name)
}

fn free_port(ip: &str) -> u16 {
    loop {
        let u = std::net::UdpSocket::bind((ip, 0)).expect("udp");
        let port = u.local_addr().expect("addr").port();
        if std::net::TcpListener::bind((ip, port)).is_ok() {
            return port;
        }
    }
}

struct Sipp {
    dir: tempfile::TempDir,
}

impl Sipp {
    fn new() -> Sipp {
        assert!(
            Command::new("sipp")
                .arg("-v")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok(),
            "sipp is not installed: run the test command from README.md (it installs sip-tester)"
        );
        Sipp {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// Runs SIPp with `args` in its own working dir; returns (success, stdout+stderr).
    fn cmd(&self, args: &[String]) -> std::process::Child {
        Command::new("timeout")
            .arg("30")
            .arg("sipp")
            .args(args)
            .args(["-nostdin", "-m", "1", "-trace_err"])
            .current_dir(self.dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run sipp")
    }
}

fn finish(child: std::process::Child, who: &str) {
    let out = child.wait_with_output().expect("sipp exits");
    assert!(
        out.status.success(),
        "{who} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .join("\n"),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn s(v: &str) -> String {
    v.to_string()
}

/// Starts sipmask with `bindings`, the SIPp callee on 127.0.0.3 with
/// `uas`, then the SIPp caller as `caller` dialling `dialled` with `uac`.
async fn run(
    bindings: Vec<sipmask::cli::AddArgs>,
    tcp: bool,
    uas: &str,
    uac: &str,
    caller: &str,
    dialled: &str,
) {
    let sipp = Sipp::new();
    let uas_port = free_port("127.0.0.3");
    let t = if tcp { "t1" } else { "u1" };
    let trunk = if tcp {
        format!("127.0.0.3:{uas_port};transport=tcp")
    } else {
        format!("127.0.0.3:{uas_port}")
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(dir.path(), "127.0.0.3:9".parse().expect("addr"));
    cfg.sip.trunk = trunk;
    for b in bindings {
        add(&cfg, b);
    }
    let sut = start(cfg, dir).await;
    let callee = sipp.cmd(&[
        s("-sf"),
        scenario(uas).display().to_string(),
        s("-i"),
        s("127.0.0.3"),
        s("-p"),
        uas_port.to_string(),
        s("-t"),
        s(t),
    ]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let sut_addr = sut.addr.to_string();
    let uac_port = free_port("127.0.0.2");
    let caller_proc = sipp.cmd(&[
        sut_addr,
        s("-sf"),
        scenario(uac).display().to_string(),
        s("-i"),
        s("127.0.0.2"),
        s("-p"),
        uac_port.to_string(),
        s("-t"),
        s(t),
        s("-s"),
        s(dialled),
        s("-key"),
        s("caller"),
        s(caller),
    ]);
    tokio::task::spawn_blocking(move || {
        finish(caller_proc, "SIPp caller");
        finish(callee, "SIPp callee");
    })
    .await
    .expect("join");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_axb_call_a_to_b_over_udp() {
    run(vec![axb(A, X, B)], false, "uas.xml", "uac.xml", A, X).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_axb_call_b_to_a_over_udp() {
    run(vec![axb(A, X, B)], false, "uas.xml", "uac.xml", B, X).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_ax_call_over_udp() {
    run(
        vec![ax(X, B)],
        false,
        "uas.xml",
        "uac.xml",
        "13755556666",
        X,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_call_over_tcp() {
    run(vec![axb(A, X, B)], true, "uas.xml", "uac.xml", A, X).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_busy_callee() {
    run(
        vec![axb(A, X, B)],
        false,
        "uas_busy.xml",
        "uac_busy.xml",
        A,
        X,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_maximum_call_length_sends_bye_to_both() {
    let mut b = axb(A, X, B);
    b.max_call_secs = Some(1);
    run(vec![b], false, "uas.xml", "uac_wait_bye.xml", A, X).await;
}
