//! Bad input never hurts: oversized, slow, garbled or hostile requests get a 4xx (or a
//! closed connection), never a 5xx, a panic or a hang, and the server stays healthy.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::api::retry_after;
use crate::for_each_store;
use crate::helpers::{Backend, TestApp, spawn_app, spawn_app_with};

for_each_store!(
    oversized_bodies_are_413,
    garbage_never_gets_a_5xx_and_the_server_stays_healthy
);

fn host(app: &TestApp) -> String {
    app.base.trim_start_matches("http://").to_string()
}

/// Sends raw bytes, returns what came back until the server closed or 3 s passed.
async fn raw(app: &TestApp, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(host(app)).await.unwrap();
    let _ = s.write_all(bytes).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// Sends raw bytes, returns what came back once the server closed the connection, or
/// `None` if it was still open after `within`.
async fn raw_until_closed(app: &TestApp, bytes: &[u8], within: Duration) -> Option<String> {
    let mut s = TcpStream::connect(host(app)).await.unwrap();
    let _ = s.write_all(bytes).await;
    let mut out = Vec::new();
    match tokio::time::timeout(within, s.read_to_end(&mut out)).await {
        Ok(_) => Some(String::from_utf8_lossy(&out).into_owned()),
        Err(_) => None,
    }
}

fn status_of(response: &str) -> Option<u16> {
    response.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

async fn oversized_bodies_are_413(app: TestApp) {
    let huge = format!(
        r#"{{"valor": 1, "tipo": "c", "descricao": "{}"}}"#,
        "a".repeat(10_000)
    );
    let (status, text) = app.post(1, &huge).await;
    assert_eq!(status, 413);
    assert_eq!(text, "request body too large");
    // Chunked, without a Content-Length announcing it.
    let chunk = "x".repeat(5000);
    let req = format!(
        "POST /clientes/1/transacoes HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len()
    );
    assert_eq!(status_of(&raw(&app, req.as_bytes()).await), Some(413));
    // An oversized body still arriving when the server decides: it is read to the end (and
    // dropped) before the 413, so every byte the client sends is taken and the answer
    // arrives. Closing on unread bytes resets the connection: the client's next write fails
    // (behind nginx, streaming the body upstream, that was a 502).
    let body = "x".repeat(12_000);
    let head = format!(
        "POST /clientes/1/transacoes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut s = TcpStream::connect(host(&app)).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&body.as_bytes()[..1000]).await.unwrap();
    for part in body.as_bytes()[1000..].chunks(3700) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        s.write_all(part)
            .await
            .expect("the server takes the whole body before refusing it");
    }
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(3), s.read_to_end(&mut out))
        .await
        .expect("answered")
        .expect("read to the end");
    assert_eq!(status_of(&String::from_utf8_lossy(&out)), Some(413));
    let (status, _) = app
        .post_json(
            1,
            serde_json::json!({"valor": 1, "tipo": "c", "descricao": "ok"}),
        )
        .await;
    assert_eq!(status, 200, "still serving");

    // The bound is `--max-body`, 4096 bytes, exactly: a valid body padded to 4096 bytes (JSON
    // allows the whitespace) is served; one byte more is refused.
    let at_bound = |len: usize| {
        let json = r#"{"valor": 1, "tipo": "c", "descricao": "borda"}"#;
        format!("{json}{}", " ".repeat(len - json.len()))
    };
    let (status, text) = app.post(1, &at_bound(4096)).await;
    assert_eq!(
        (status.as_u16(), text.contains("\"saldo\":")),
        (200, true),
        "{text}"
    );
    let (status, text) = app.post(1, &at_bound(4097)).await;
    assert_eq!(
        (status.as_u16(), text.as_str()),
        (413, "request body too large")
    );

    // A body announced past what is ever drained (64 KiB) is refused before a byte of it is
    // sent: the head alone gets the 413, and the connection is closed.
    let head = "POST /clientes/1/transacoes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 70000\r\n\r\n";
    let answer = raw_until_closed(&app, head.as_bytes(), Duration::from_secs(5))
        .await
        .expect("answered and closed without waiting for the body");
    assert_eq!(status_of(&answer), Some(413), "{answer}");
    assert!(answer.ends_with("request body too large"), "{answer}");
}

async fn garbage_never_gets_a_5xx_and_the_server_stays_healthy(app: TestApp) {
    let long_header = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    // Every input and the exact answer it gets: hyper refuses a broken head with 400 (431 for
    // a head over its buffer), crebito the rest. A dropped connection or a 5xx fails.
    let malformed = "body must be a JSON object with exactly valor (positive integer), tipo (\"c\" or \"d\") and descricao (1 to 10 characters)";
    let cases: Vec<(Vec<u8>, u16, &str)> = vec![
        (b"\x00\x01\x02\x03garbage\r\n\r\n".to_vec(), 400, ""),
        (b"GET\r\n\r\n".to_vec(), 400, ""),
        (b"POST /clientes/1/transacoes HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n".to_vec(), 400, ""),
        (b"POST /clientes/1/transacoes HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello".to_vec(), 400, ""),
        (b"POST /clientes/1/transacoes HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551616\r\n\r\n".to_vec(), 400, ""),
        // A body that is not UTF-8 (12 bytes, as announced).
        (b"POST /clientes/1/transacoes HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n{\"valor\":\xff\xfe}".to_vec(), 422, malformed),
        // A chunked body whose chunk size is not hexadecimal: the body cannot be read.
        (b"POST /clientes/1/transacoes HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n".to_vec(), 400, "unreadable request body"),
        (b"GET /clientes/\xc3\x28/extrato HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), 400, ""),
        (b"BREW /clientes/1/extrato HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), 405, "method not allowed"),
        (long_header.into_bytes(), 431, ""),
    ];
    for (case, status, body) in &cases {
        let resp = raw(&app, case).await;
        let shown = String::from_utf8_lossy(&case[..case.len().min(80)]);
        assert_eq!(status_of(&resp), Some(*status), "{shown:?}: {resp}");
        assert_eq!(
            resp.split("\r\n\r\n").nth(1),
            Some(*body),
            "{shown:?}: {resp}"
        );
    }
    // A query string changes nothing: the statement, exactly.
    let resp = raw(
        &app,
        b"GET /clientes/1/extrato?x=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status_of(&resp), Some(200), "{resp}");
    let body: serde_json::Value =
        serde_json::from_str(resp.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(
        (&body["saldo"]["total"], &body["ultimas_transacoes"]),
        (&json!(0), &json!([]))
    );
    let (status, _) = app.healthz().await;
    assert_eq!(status, 200, "still healthy");
    let (_, e) = app.extrato(1).await;
    assert_eq!(e["saldo"]["total"], 0, "nothing was applied");
}

/// A client that never finishes its body gets 408 once the body timeout passes; one that
/// never finishes its headers is disconnected. Neither blocks anyone else. (The timeout is
/// set to 1 s; each must end well before the default's 10 s, however loaded the machine.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_time_out() {
    let app = spawn_app_with(Backend::Sqlite, |a| a.request_timeout = 1).await;
    let started = Instant::now();
    let resp = raw(
        &app,
        b"POST /clientes/1/transacoes HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{\"valor\":",
    )
    .await;
    assert_eq!(status_of(&resp), Some(408), "{resp}");
    assert_eq!(
        resp.rsplit("\r\n\r\n").next(),
        Some("request body too slow"),
        "{resp}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "the configured 1 s, not the default: {:?}",
        started.elapsed()
    );

    let started = Instant::now();
    let resp = raw_until_closed(
        &app,
        b"GET /clientes/1/extrato HTTP/1.1\r\nHost: x\r\n",
        Duration::from_secs(8),
    )
    .await
    .expect("closed by the header timeout (1 s), not left open");
    assert!(
        status_of(&resp).is_none_or(|c| c == 408),
        "nothing, or a 408: {resp}"
    );
    eprintln!(
        "header timeout closed the connection after {:?}",
        started.elapsed()
    );

    let (status, _) = app.healthz().await;
    assert_eq!(status, 200, "still healthy");
}

/// Connections are bounded: with `--max-connections 1`, a second client waits (in the kernel's
/// accept queue) until the first connection is gone — here closed by the idle timeout — and is
/// then served normally.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_limit_wait_their_turn() {
    let app = spawn_app_with(Backend::Sqlite, |a| {
        a.max_connections = 1;
        a.request_timeout = 1;
    })
    .await;
    // The kernel's accept queue is FIFO: the idle connection is accepted first.
    let idle = TcpStream::connect(host(&app)).await.unwrap();
    let started = Instant::now();
    let resp = raw(
        &app,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    let waited = started.elapsed();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(
        waited >= Duration::from_millis(500),
        "served only after the idle connection was dropped ({waited:?})"
    );
    drop(idle);
}

/// A store that fails mid-way answers 503 with `Retry-After: 1`, applies nothing, and serves
/// again once repaired. (The failure: the transactions table disappears under the running
/// server.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_sqlite_store_answers_503_and_applies_nothing() {
    let app = spawn_app(Backend::Sqlite).await;
    let crebito::configuration::DatabaseUrl::Sqlite(path) = app.database_url.clone() else {
        unreachable!()
    };
    let body = serde_json::json!({"valor": 10, "tipo": "c", "descricao": "antes"});
    assert_eq!(app.post_json(1, body.clone()).await.0, 200);

    let sabotage = rusqlite::Connection::open(&path).unwrap();
    sabotage.busy_timeout(Duration::from_secs(5)).unwrap();
    sabotage
        .execute_batch("ALTER TABLE transacoes RENAME TO escondida")
        .unwrap();
    let r = app.post_response(1, &body.to_string(), None).await;
    assert_eq!(retry_after(&r), Some("1"), "a 503 says when to retry");
    let (status, text) = (r.status(), r.text().await.unwrap());
    assert_eq!(
        (status.as_u16(), text.as_str()),
        (503, "store unavailable: not applied, retry")
    );
    let saldo: i64 = sabotage
        .query_row("SELECT saldo FROM clientes WHERE id = 1", [], |r| r.get(0))
        .unwrap();
    assert_eq!(saldo, 10, "the failed transaction was rolled back");

    sabotage
        .execute_batch("ALTER TABLE escondida RENAME TO transacoes")
        .unwrap();
    let (status, b) = app.post_json(1, body).await;
    assert_eq!(status, 200);
    assert_eq!(b["saldo"], 20);
    assert_eq!(app.saldo(1).await, 20);
}

/// The embedded store busy past `--store-timeout` (another process holds SQLite's write
/// lock): 504 "outcome unknown" in time, with `Retry-After: 1`; once the lock is gone the
/// queued request applies, and a retry with the same key says so without applying it twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_sqlite_store_answers_504_and_a_keyed_retry_tells_what_happened() {
    let app = spawn_app_with(Backend::Sqlite, |a| a.store_timeout = 1).await;
    let crebito::configuration::DatabaseUrl::Sqlite(path) = &app.database_url else {
        unreachable!("a SQLite app")
    };
    let blocker = rusqlite::Connection::open(path).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let body = json!({"valor": 7, "tipo": "c", "descricao": "busy"});
    let started = Instant::now();
    let r = app
        .post_response(3, &body.to_string(), Some("busy-1"))
        .await;
    assert_eq!(retry_after(&r), Some("1"), "a 504 says when to retry");
    let (status, text) = (r.status(), r.text().await.unwrap());
    assert_eq!(
        (status.as_u16(), text.as_str()),
        (
            504,
            "outcome unknown: retry with the same Idempotency-Key to apply it at most once"
        )
    );
    assert!(started.elapsed() < Duration::from_secs(4));
    blocker.execute_batch("COMMIT").unwrap();

    let (status, answer, replayed) = app.post_keyed(3, body, "busy-1").await;
    assert_eq!((status.as_u16(), replayed), (200, true), "{answer}");
    assert_eq!(app.saldo(3).await, 7, "applied exactly once");
}
