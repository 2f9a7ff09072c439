//! A large table end to end: 100,000 bindings imported from a CSV by the
//! command line, `sipmask serve` started on them, calls to a sample of
//! them routed to the right callee, and the same after a kill and a
//! restart (the table read back from the store).

mod common;

use std::process::Command;

use common::process::serve_process;
use common::*;

const N: u64 = 100_000;

/// Row `i`'s caller, X and callee, as the CSV writes them.
fn row(i: u64) -> (String, String, String) {
    (
        format!("{}", 13_000_000_000 + i),
        format!("{}", 17_000_000_000 + i % 1_000),
        format!("{}", 15_000_000_000 + i),
    )
}

/// Calls X of row `i` from its caller and expects its callee to ring,
/// shown X; refuses the ring.
async fn routes(caller: &mut Ua, trunk: &mut Ua, sut: std::net::SocketAddr, i: u64) {
    let (a, x, b) = row(i);
    let d = Dialog::new(caller.addr, sut, &a, &x);
    caller.send(sut, &d.invite()).await;
    let inv = trunk.expect_request("INVITE").await;
    let uri = inv.raw.lines().next().unwrap_or_default().to_string();
    assert!(uri.contains(&b[b.len() - 8..]), "row {i}: {uri}");
    let from = inv.header("From").unwrap_or_default();
    assert!(from.contains(&x[x.len() - 8..]), "row {i}: {from}");
    trunk.send(inv.from, &inv.reply(486, "busy", "", "")).await;
    let busy = caller.expect_response(486).await;
    caller.send(sut, &d.ack_failure(&busy)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_bindings_imported_route_before_and_after_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let csv = dir.path().join("bindings.csv");
    let mut text = String::from("caller,virtual,callee\n");
    for i in 0..N {
        let (a, x, b) = row(i);
        text.push_str(&format!("{a},{x},{b}\n"));
    }
    std::fs::write(&csv, text).expect("csv");
    let data = dir.path().join("data");
    let out = Command::new(env!("CARGO_BIN_EXE_sipmask"))
        .args(["bindings", "import", "--data-dir"])
        .arg(&data)
        .arg(&csv)
        .output()
        .expect("import");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut caller = Ua::bind("127.0.0.2").await;
    let mut trunk = Ua::bind("127.0.0.3").await;
    let port = free_port("127.0.0.1");
    let sut: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let args = || vec!["--data-dir".to_string(), data.display().to_string()];
    let bin = env!("CARGO_BIN_EXE_sipmask");
    // A sample spread over the ids: first, last and every 9,973rd.
    let sample: Vec<u64> = (0..N).step_by(9_973).chain([N - 1]).collect();
    let proc = serve_process(bin, args(), port, trunk.addr).await;
    for &i in &sample {
        routes(&mut caller, &mut trunk, sut, i).await;
    }
    // A party of one row calling the X of another is not its binding.
    let (a, _, _) = row(1);
    let (_, x, _) = row(2);
    let d = Dialog::new(caller.addr, sut, &a, &x);
    caller.send(sut, &d.invite()).await;
    let no = caller.recv().await;
    assert!(no.code() >= 400, "{}", no.raw);
    drop(proc); // SIGKILL
    let _proc = serve_process(bin, args(), port, trunk.addr).await;
    for &i in sample.iter().rev() {
        routes(&mut caller, &mut trunk, sut, i).await;
    }
}
