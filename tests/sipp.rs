//! Calls driven by SIPp (Debian's sip-tester), the scenarios in
//! `sipp-scenarios/`: SIPp plays caller and callee on either side of a real
//! sipmask, over UDP and TCP.

mod common;

use common::*;

const A: &str = "13800000000";
const B: &str = "13900000000";
const X: &str = "17000000000";

/// Starts sipmask with `bindings` and runs one SIPp call through it, with
/// the server's clock `speed` times faster than real time.
async fn run(
    bindings: Vec<sipmask::cli::AddArgs>,
    tcp: bool,
    uas: &str,
    uac: &str,
    caller: &str,
    dialled: &str,
    speed: u32,
) {
    let sipp = Sipp::new();
    let uas_port = free_port("127.0.0.3");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(dir.path(), "127.0.0.3:9".parse().expect("addr"));
    cfg.sip.trunk = if tcp {
        format!("127.0.0.3:{uas_port};transport=tcp")
    } else {
        format!("127.0.0.3:{uas_port}")
    };
    for b in bindings {
        add(&cfg, b);
    }
    let sut = start(cfg, dir).await;
    let _ff = (speed > 1).then(|| sut.fast_forward(speed));
    sipp.call(sut.addr, uas_port, uas, uac, caller, dialled, tcp)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_axb_call_a_to_b_over_udp() {
    run(vec![axb(A, X, B)], false, "uas.xml", "uac.xml", A, X, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_axb_call_b_to_a_over_udp() {
    run(vec![axb(A, X, B)], false, "uas.xml", "uac.xml", B, X, 1).await;
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
        1,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_call_over_tcp() {
    run(vec![axb(A, X, B)], true, "uas.xml", "uac.xml", A, X, 1).await;
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
        1,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_maximum_call_length_sends_bye_to_both() {
    let mut b = axb(A, X, B);
    b.limits.max_call_secs = Some(1);
    // The second passes on the server's clock, four times faster.
    run(vec![b], false, "uas.xml", "uac_wait_bye.xml", A, X, 4).await;
}
