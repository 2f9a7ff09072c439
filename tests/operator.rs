//! The operator's tools beside a running server: keys listed, issued and
//! revoked (over HTTP and on the command line) take effect at once, command
//! line binding changes reach the live server, one server per data dir,
//! private database files, and clear errors for bad tenant names.

mod common;

use std::process::Command;
use std::time::Duration;

use common::api::*;
use common::*;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_sipmask")
}

/// Retries `f` for up to 5 s (the change watcher polls every 250 ms).
async fn eventually<F: std::future::Future<Output = bool>>(mut f: impl FnMut() -> F) -> bool {
    for _ in 0..50 {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_rotated_and_revoked_at_once() {
    let api = api_with(|_| {}).await;
    let r = api.req("POST", "/v1/keys", None).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let new_key = r.json()["key"].as_str().expect("key").to_string();
    let r = api.req_as(&new_key, "GET", "/v1/keys", None).await;
    let items = r.json()["items"].as_array().cloned().expect("items");
    assert_eq!(items.len(), 2, "{}", r.body);
    assert!(!r.body.contains(&new_key), "keys are never listed");
    // Revoke the first key with the second: the first stops at once.
    let old_id = items[0]["id"].as_str().expect("id").to_string();
    let r = api
        .req_as(&new_key, "DELETE", &format!("/v1/keys/{old_id}"), None)
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(api.req("GET", "/v1/numbers", None).await.status, 401);
    assert_eq!(
        api.req_as(&new_key, "GET", "/v1/numbers", None)
            .await
            .status,
        200
    );
    // Another tenant's key id is not found.
    let r = api
        .req_as(&new_key, "DELETE", "/v1/keys/key_nothere0000", None)
        .await;
    assert_eq!(r.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_line_changes_reach_a_running_server() {
    let mut api = api_with(|_| {}).await;
    let dir = api.sut.dir.path().to_path_buf();
    // A key issued and one revoked on the command line.
    let (id, key) = sipmask::cli::add_key(&dir, "acme").expect("key");
    assert!(
        eventually(|| async { api.req_as(&key, "GET", "/v1/numbers", None).await.status == 200 })
            .await,
        "a key issued on the command line works without a restart"
    );
    assert!(sipmask::cli::revoke_key(&dir, "acme", &id).expect("revoke"));
    assert!(
        eventually(|| async { api.req_as(&key, "GET", "/v1/numbers", None).await.status == 401 })
            .await,
        "a key revoked on the command line stops working without a restart"
    );
    // A binding added on the command line is called at once, and a removed
    // one is refused.
    let cfg = config(&dir, api.callee.addr);
    let bid = add(&cfg, axb("13800000000", "17000000005", "13900000000"));
    tokio::time::sleep(sipmask::watch::EVERY * 3).await;
    assert_eq!(api.call("13800000000", "17000000005").await, 200);
    assert!(sipmask::cli::remove(&dir, bid).expect("remove"));
    tokio::time::sleep(sipmask::watch::EVERY * 3).await;
    assert_eq!(api.call("13800000000", "17000000005").await, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_server_per_data_dir_and_private_files() {
    use std::os::unix::fs::PermissionsExt;
    let api = api_with(|_| {}).await;
    let dir = api.sut.dir.path().to_path_buf();
    let cfg = config(&dir, api.callee.addr);
    let err = match sipmask::server::Server::start(cfg).await {
        Ok(_) => panic!("a second server started on the same data dir"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("in use"), "{err}");
    for f in ["sipmask.db", "sipmask.db-wal", "sipmask.db-shm"] {
        let p = dir.join(f);
        if p.exists() {
            let mode = std::fs::metadata(&p).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{f}");
        }
    }
}

#[test]
fn bad_or_duplicate_tenants_are_clear_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_str().expect("utf-8");
    let run = |name: &str| {
        Command::new(bin())
            .args(["tenants", "add", "--data-dir", d, name])
            .output()
            .expect("runs")
    };
    let ok = run("acme");
    assert!(ok.status.success());
    assert!(String::from_utf8_lossy(&ok.stdout).starts_with("smk_"));
    for bad in ["", "acme", "a b"] {
        let out = run(bad);
        assert!(!out.status.success(), "{bad:?} accepted");
        assert!(out.stdout.is_empty(), "{bad:?}: nothing on stdout");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("error: "), "{bad:?}: {err}");
    }
}

#[test]
fn reading_commands_refuse_a_data_dir_with_no_database_and_make_none() {
    let dir = tempfile::tempdir().expect("tempdir");
    let typo = dir.path().join("dta");
    let t = typo.to_str().expect("utf-8");
    for args in [
        vec!["bindings", "list", "--data-dir", t],
        vec!["tenants", "list", "--data-dir", t],
        vec!["calls", "--data-dir", t],
        vec!["accounts", "list", "--data-dir", t],
        vec!["bindings", "remove", "--data-dir", t, "1"],
        vec!["keys", "add", "--data-dir", t, "acme"],
    ] {
        let out = Command::new(bin()).args(&args).output().expect("runs");
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(
            out.stdout.is_empty(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("no sipmask database") && err.contains("dta"),
            "{args:?}: {err}"
        );
        assert!(
            !typo.join("sipmask.db").exists(),
            "{args:?} made a database"
        );
    }
}

#[test]
fn a_csv_import_reports_every_bad_row_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let csv = dir.path().join("b.csv");
    std::fs::write(
        &csv,
        "caller,virtual,callee\n13800000001,abc def,13900000001\n\
         13800000002,17000000001,13900000002\n13800000002,17000000001,13900000003\n",
    )
    .expect("write");
    let out = Command::new(bin())
        .args(["bindings", "import", "--data-dir"])
        .arg(dir.path().join("data"))
        .arg(&csv)
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("2 bad row(s)"), "{err}");
    assert!(err.contains("line 2:") && err.contains("line 4:"), "{err}");
}

/// An import is written a chunk at a time while the rest is checked: a
/// bad row far into the file, after chunks were written, still leaves
/// nothing, and a good file after it imports whole.
#[test]
fn a_bad_row_after_written_chunks_leaves_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let csv = dir.path().join("b.csv");
    let rows = 120_000u64;
    let mut text = String::from("caller,virtual,callee\n");
    for i in 0..rows {
        text.push_str(&format!(
            "{},{},{}\n",
            13_000_000_000 + i,
            17_000_000_000 + i % 100,
            15_000_000_000 + i
        ));
    }
    // Line 110,002 repeats line 2's caller on its X: a clash, not a parse error.
    let clash = format!(
        "{},{},{}\n",
        13_000_000_000u64, 17_000_000_000u64, 16_000_000_000u64
    );
    let bad = text.clone() + &clash;
    let import = |file: &std::path::Path| {
        Command::new(bin())
            .args(["bindings", "import", "--data-dir"])
            .arg(&data)
            .arg(file)
            .output()
            .expect("runs")
    };
    let list = || {
        let out = Command::new(bin())
            .args(["bindings", "list", "--data-dir"])
            .arg(&data)
            .output()
            .expect("runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    std::fs::write(&csv, &bad).expect("write");
    let out = import(&csv);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("line {}:", rows + 2)), "{err}");
    let listed = list();
    assert!(
        !listed.contains("13000000001"),
        "nothing of a failed import is kept: {listed:.300}"
    );
    std::fs::write(&csv, &text).expect("write");
    let out = import(&csv);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = list();
    assert_eq!(
        listed.matches("+86150").count() as u64,
        rows,
        "{listed:.300}"
    );
}

#[test]
fn config_errors_are_said_once_with_their_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = |args: &[&str]| Command::new(bin()).args(args).output().expect("runs");
    let missing = dir.path().join("missing.toml");
    let out = run(&["check-config", missing.to_str().expect("utf-8")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("os error 2").count(), 1, "{err}");
    let short = dir.path().join("short.toml");
    std::fs::write(&short, "[sip]\ntrunk = \"127.0.0.1:5090\"\n").expect("write");
    let out = run(&["check-config", short.to_str().expect("utf-8")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let typo = dir.path().join("typo.toml");
    std::fs::write(
        &typo,
        "[sip]\n# retransmit interval\nt1_msec = 5\n[api]\nburst = 0\n",
    )
    .expect("write");
    let out = run(&["check-config", typo.to_str().expect("utf-8")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("typo.toml:3: sip.t1_msec: unknown key"),
        "{err}"
    );
    assert!(
        err.contains("typo.toml:5: api.burst: must be at least 1"),
        "{err}"
    );
}

#[test]
fn logs_written_to_a_file_carry_no_colour_codes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = std::fs::File::create(dir.path().join("log")).expect("log file");
    let mut child = Command::new(bin())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--api-listen",
            "",
            "--data-dir",
        ])
        .arg(dir.path().join("data"))
        .stdout(log)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let path = dir.path().join("log");
    let mut text = String::new();
    for _ in 0..50 {
        text = std::fs::read_to_string(&path).unwrap_or_default();
        if text.contains("serving SIP") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(text.contains("serving SIP"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "escape codes in a log file: {text:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_cannot_share_a_port_unless_it_takes_over() {
    let port = free_port("127.0.0.1");
    let trunk: std::net::SocketAddr = "127.0.0.1:9".parse().expect("addr");
    let one = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(one.path(), trunk);
    cfg.sip.listen = vec![format!("127.0.0.1:{port}")];
    let _first = start(cfg.clone(), one).await;
    // Another data dir: no draining sibling, so the port must be free.
    let two = tempfile::tempdir().expect("tempdir");
    cfg.storage.data_dir = two.path().to_path_buf();
    let err = match sipmask::server::Server::start(cfg).await {
        Ok(_) => panic!("two unrelated servers shared a port"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("cannot listen"), "{err}");
}
