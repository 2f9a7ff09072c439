//! A large table end to end: 100,000 bindings imported from a CSV by the
//! command line, `sipmask serve` started on them, calls to a sample of
//! them routed to the right callee, and the same after a kill and a
//! restart (the table read back from the store), after a clean stop (the
//! table saved, read back, and brought up to date with what the command
//! line changed meanwhile), and after another server's start since the
//! save (the saved table left for the store).

mod common;

use std::process::Command;

use common::process::{serve_logged, serve_process};
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
    routes_to(caller, trunk, sut, row(i)).await;
}

/// [`routes`] for the binding (a, x, b).
async fn routes_to(
    caller: &mut Ua,
    trunk: &mut Ua,
    sut: std::net::SocketAddr,
    (a, x, b): (String, String, String),
) {
    let i = &a; // named in failures by its caller
    let d = Dialog::new(caller.addr, sut, &a, &x);
    caller.send(sut, &d.invite()).await;
    let inv = trunk.expect_request("INVITE").await;
    let uri = inv.raw.lines().next().unwrap_or_default().to_string();
    assert!(uri.contains(&b[b.len() - 8..]), "caller {i}: {uri}");
    let from = inv.header("From").unwrap_or_default();
    assert!(from.contains(&x[x.len() - 8..]), "caller {i}: {from}");
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
    refused(&mut caller, sut, &a, &x).await;
    drop(proc); // SIGKILL
    let mut proc = serve_process(bin, args(), port, trunk.addr).await;
    for &i in sample.iter().rev() {
        routes(&mut caller, &mut trunk, sut, i).await;
    }

    // A clean stop saves the table; the command line changes the store
    // while no server runs; the next start reads the saved table back
    // and applies the changes logged since.
    proc.stop();
    let saved = data.join("table.saved");
    assert!(saved.exists(), "a clean stop saves the table");
    let data_arg = data.display().to_string();
    cli(&["bindings", "remove", "--data-dir", &data_arg, "3"]); // row 2
    let added = ("13900000001", "17000000001", "15900000001");
    cli(&[
        "bindings",
        "add",
        "--data-dir",
        &data_arg,
        "--caller",
        added.0,
        "--virtual",
        added.1,
        "--callee",
        added.2,
    ]);
    let log = dir.path().join("restored.log");
    let mut proc = serve_logged(bin, args(), port, trunk.addr, Some(&log)).await;
    assert!(!saved.exists(), "a start takes the saved table away");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(text.contains("bindings loaded"), "{text}");
    assert!(!text.contains("saved table not used"), "{text}");
    for &i in &sample {
        routes(&mut caller, &mut trunk, sut, i).await;
    }
    let (a, x, _) = row(2);
    refused(&mut caller, sut, &a, &x).await;
    let owned = |s: &str| s.to_string();
    routes_to(
        &mut caller,
        &mut trunk,
        sut,
        (owned(added.0), owned(added.1), owned(added.2)),
    )
    .await;

    // Another server started after the one that saved it (as a new
    // instance taking over from a draining one does: it may have written
    // uses since) makes the saved table stale: the store is read. The
    // start is counted here by hand.
    proc.stop();
    assert!(saved.exists(), "a clean stop saves the table");
    let db = rusqlite::Connection::open(data.join("sipmask.db")).expect("open the database");
    db.execute("UPDATE serve_starts SET n = n + 1", [])
        .expect("a start counted");
    drop(db);
    let log = dir.path().join("stale.log");
    let _proc = serve_logged(bin, args(), port, trunk.addr, Some(&log)).await;
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(text.contains("saved table not used"), "{text}");
    for &i in sample.iter().rev() {
        routes(&mut caller, &mut trunk, sut, i).await;
    }
}

/// Runs the command line, which must succeed.
fn cli(args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_sipmask"))
        .args(args)
        .output()
        .expect("sipmask");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A call from `a` to `x` that no binding routes: refused.
async fn refused(caller: &mut Ua, sut: std::net::SocketAddr, a: &str, x: &str) {
    let d = Dialog::new(caller.addr, sut, a, x);
    caller.send(sut, &d.invite()).await;
    let no = caller.recv().await;
    assert!(no.code() >= 400, "{}", no.raw);
}
