//! The black-box check against implementations that are wrong on purpose: small servers of
//! the contract, here in the test suite and nowhere else, each with one classic bug. The
//! fast loader runs the official profile against each (`--history --bracket`, nothing but
//! HTTP), and `crebito-check` without a ledger must name the anomaly; the same server
//! without its bug must pass. crebito itself is checked the same way in tests/stress.rs,
//! where both modes must agree.

mod common;

use std::collections::HashMap;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The bug a server has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bug {
    None,
    /// Reads the balance, lets others run, writes back: concurrent updates overwrite each
    /// other.
    LostUpdate,
    /// Every fifth debit refused as over the limit is applied all the same.
    AppliesRefused,
    /// Statements served from a copy refreshed every 200 ms.
    StaleStatement,
    /// Statements list the two newest transactions the wrong way round.
    Reorder,
    /// Every tenth POST is applied, then answered 504; its keyed retry applies it again.
    DoubleApply,
}

#[derive(Default)]
struct Client {
    saldo: i64,
    limite: i64,
    /// (valor, tipo, descricao), oldest first.
    rows: Vec<(i64, String, String)>,
}

#[derive(Default)]
struct State {
    clients: HashMap<u32, Client>,
    /// The stale copy of the statements (StaleStatement).
    snapshot: HashMap<u32, Value>,
    posts: u64,
    refusals: u64,
}

fn statement(c: &Client, reorder: bool) -> Value {
    let mut list: Vec<Value> = c
        .rows
        .iter()
        .rev()
        .take(10)
        .map(|(v, t, d)| json!({"valor": v, "tipo": t, "descricao": d, "realizada_em": "2024-01-01T00:00:00.000000Z"}))
        .collect();
    if reorder && list.len() >= 2 {
        list.swap(0, 1);
    }
    json!({"saldo": {"total": c.saldo, "limite": c.limite, "data_extrato": "2024-01-01T00:00:00.000000Z"},
           "ultimas_transacoes": list})
}

/// Serves the contract on a free loopback port until the test ends; its address.
async fn serve(bug: Bug) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = Arc::new(Mutex::new(State::default()));
    {
        let mut s = state.lock().unwrap();
        for (id, limite) in common::checks::CLIENTS {
            s.clients.insert(
                id,
                Client {
                    limite,
                    ..Client::default()
                },
            );
        }
    }
    if bug == Bug::StaleStatement {
        let state = state.clone();
        tokio::spawn(async move {
            loop {
                {
                    let mut s = state.lock().unwrap();
                    let snap: HashMap<u32, Value> = s
                        .clients
                        .iter()
                        .map(|(id, c)| (*id, statement(c, false)))
                        .collect();
                    s.snapshot = snap;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
    }
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                continue;
            };
            let state = state.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let (head, body) = loop {
                    let Ok(n) = sock.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..at]).into_owned();
                        let len = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        while buf.len() < at + 4 + len {
                            let Ok(n) = sock.read(&mut chunk).await else {
                                return;
                            };
                            if n == 0 {
                                return;
                            }
                            buf.extend_from_slice(&chunk[..n]);
                        }
                        break (head, buf[at + 4..at + 4 + len].to_vec());
                    }
                };
                let (status, answer) = answer(&state, bug, &head, &body).await;
                let reason = match status {
                    200 => "OK",
                    404 => "Not Found",
                    422 => "Unprocessable Entity",
                    _ => "Gateway Timeout",
                };
                let resp = format!(
                    "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                    answer.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    addr
}

async fn answer(state: &Mutex<State>, bug: Bug, head: &str, body: &[u8]) -> (u16, String) {
    let line = head.lines().next().unwrap_or_default();
    let path = line.split(' ').nth(1).unwrap_or_default();
    let parts: Vec<&str> = path.split('/').collect();
    let Some(id) = parts.get(2).and_then(|p| p.parse::<u32>().ok()) else {
        return (404, "{}".into());
    };
    if line.starts_with("GET") {
        let s = state.lock().unwrap();
        let Some(c) = s.clients.get(&id) else {
            return (404, "{}".into());
        };
        let st = match bug {
            Bug::StaleStatement => s
                .snapshot
                .get(&id)
                .cloned()
                .unwrap_or_else(|| statement(c, false)),
            _ => statement(c, bug == Bug::Reorder),
        };
        return (200, st.to_string());
    }
    let Ok(tx) = serde_json::from_slice::<Value>(body) else {
        return (422, "{}".into());
    };
    let (valor, tipo, d) = (
        tx["valor"].as_i64().unwrap_or(0),
        tx["tipo"].as_str().unwrap_or("").to_string(),
        tx["descricao"].as_str().unwrap_or("").to_string(),
    );
    let delta = if tipo == "c" { valor } else { -valor };
    if bug == Bug::LostUpdate {
        let (saldo, limite) = {
            let s = state.lock().unwrap();
            let Some(c) = s.clients.get(&id) else {
                return (404, "{}".into());
            };
            (c.saldo, c.limite)
        };
        if saldo + delta < -limite {
            return (422, "{}".into());
        }
        // The read-modify-write race: others run between the read and the write.
        tokio::time::sleep(Duration::from_millis(2)).await;
        let mut s = state.lock().unwrap();
        let c = s.clients.get_mut(&id).unwrap();
        c.saldo = saldo + delta;
        c.rows.push((valor, tipo, d));
        return (
            200,
            json!({"limite": limite, "saldo": saldo + delta}).to_string(),
        );
    }
    let mut s = state.lock().unwrap();
    s.posts += 1;
    let posts = s.posts;
    let Some(c) = s.clients.get_mut(&id) else {
        return (404, "{}".into());
    };
    if c.saldo + delta < -c.limite {
        if bug == Bug::AppliesRefused {
            s.refusals += 1;
            if s.refusals.is_multiple_of(5) {
                let c = s.clients.get_mut(&id).unwrap();
                c.saldo += delta;
                c.rows.push((valor, tipo, d));
            }
        }
        return (422, "{}".into());
    }
    c.saldo += delta;
    c.rows.push((valor, tipo, d.clone()));
    let reply = json!({"limite": c.limite, "saldo": c.saldo}).to_string();
    if bug == Bug::DoubleApply && head.to_ascii_lowercase().contains("idempotency-key") {
        // The first attempt of every tenth POST: applied, answered 504; the key is not kept,
        // so its retry applies it again.
        let retry = c.rows.iter().filter(|r| r.2 == d).count() > 1;
        if posts.is_multiple_of(10) && !retry {
            return (504, "{}".into());
        }
    }
    (200, reply)
}

/// `stress/check.sh` against `addr` (the official profile, short): the loader's history,
/// then crebito-check without a ledger; its report, with the page's text checked too.
fn run_and_check(addr: std::net::SocketAddr, idempotent: bool) -> Value {
    let root = env!("CARGO_MANIFEST_DIR");
    let build = Command::new(env!("CARGO"))
        .args(["build", "--locked", "-q", "-p", "crebito-loader"])
        .current_dir(root)
        .status()
        .unwrap();
    assert!(build.success());
    let dir = tempfile::tempdir().unwrap();
    let mut check = Command::new(format!("{root}/stress/check.sh"));
    check
        .args([
            "--target",
            &addr.to_string(),
            "--duration-scale",
            "0.04",
            "--out",
        ])
        .arg(dir.path())
        .env("LOADER_BIN", format!("{root}/target/debug/crebito-loader"));
    if idempotent {
        check.arg("--idempotent");
    }
    let out = check.output().unwrap();
    let report: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("check.json")).unwrap_or_else(|e| {
            panic!(
                "no check.json ({e}): {}",
                String::from_utf8_lossy(&out.stderr)
            )
        }),
    )
    .unwrap();
    let passed = report["strict_serializable"] == true;
    // Exit 0 yes, 1 no, 2 undecided (the search gave up: never a pass).
    let code = match report["verdict"].as_str() {
        Some("yes") => 0,
        Some("undecided") => 2,
        _ => 1,
    };
    assert_eq!(passed, code == 0);
    assert_eq!(out.status.code(), Some(code));
    assert_eq!(report["mode"], "black-box");
    let page = std::fs::read_to_string(dir.path().join("check.html")).unwrap();
    if passed {
        assert!(page.contains(": strictly serializable</h1>"), "{page}");
    } else if code == 2 {
        assert!(page.contains("undecided — gave up after"), "{page}");
    } else {
        assert!(page.contains("NOT strictly serializable"), "{page}");
        let first = report["violations"][0]["what"].as_str().unwrap();
        let escaped = first
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
            .replace('\'', "&#x27;");
        assert!(
            page.contains(&escaped),
            "the page names the first violation: {first}"
        );
    }
    report
}

fn violations(report: &Value) -> Vec<String> {
    report["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            format!(
                "({}) {}",
                v["rule"].as_str().unwrap(),
                v["what"].as_str().unwrap()
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_correct_server_passes_the_black_box_check() {
    let addr = serve(Bug::None).await;
    let report = tokio::task::spawn_blocking(move || run_and_check(addr, true))
        .await
        .unwrap();
    assert_passes(&report);
}

/// crebito itself, on its embedded store: the black-box check passes (the stack, on
/// PostgreSQL, in tests/stress.rs; Citus in tests/cluster.rs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crebito_on_sqlite_passes_the_black_box_check() {
    let dir = tempfile::tempdir().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut server = Command::new(env!("CARGO_BIN_EXE_crebito"))
        .args(["serve", "--listen", &addr.to_string(), "--database-url"])
        .arg(format!("sqlite://{}", dir.path().join("c.db").display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "crebito did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let report = tokio::task::spawn_blocking(move || run_and_check(addr, true))
        .await
        .unwrap();
    let _ = server.kill();
    let _ = server.wait();
    assert_passes(&report);
}

/// The black-box verdict on a correct server: strictly serializable, with enough applied to
/// mean something.
fn assert_passes(report: &Value) {
    assert_eq!(
        report["strict_serializable"],
        true,
        "{:#?}",
        violations(report)
    );
    assert!(report["applied"].as_u64().unwrap() > 500);
}

/// A wrong server is caught, with its anomaly named: one of `named` (which one depends on
/// what the statements happened to list).
async fn caught(bug: Bug, idempotent: bool, named: &[&str]) {
    let addr = serve(bug).await;
    let report = tokio::task::spawn_blocking(move || run_and_check(addr, idempotent))
        .await
        .unwrap();
    let found = violations(&report);
    assert_eq!(report["strict_serializable"], false, "{bug:?} passed");
    assert!(
        found.iter().any(|v| named.iter().any(|n| v.contains(n))),
        "{bug:?}: expected one of {named:?} among {found:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_update_is_caught() {
    caught(Bug::LostUpdate, false, &["(a lost update)"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_debit_applied_is_caught() {
    caught(
        Bug::AppliesRefused,
        false,
        &[
            "told \"not applied\" (422) but stored",
            "exactly the amount of a request told \"not applied\" (422), applied after all",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_statement_is_caught() {
    caught(Bug::StaleStatement, false, &["stale"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reordered_statement_is_caught() {
    caught(
        Bug::Reorder,
        false,
        &["two statements disagree", "is not that"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_request_applied_twice_is_caught() {
    caught(
        Bug::DoubleApply,
        true,
        &["applied twice", "is stored twice"],
    )
    .await;
}
