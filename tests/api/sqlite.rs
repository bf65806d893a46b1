//! What only SQLite does: two instances (two processes in a deployment, two connections
//! here) on one database file, sharing its lock.

use std::time::Duration;

use crebito::configuration::DatabaseUrl;
use serde_json::json;

use crate::common::checks;
use crate::helpers::{TestApp, audit, spawn_on};

/// A fresh file in its own directory, and two instances on it.
async fn two_on_one_file() -> (tempfile::TempDir, DatabaseUrl, TestApp, TestApp) {
    let dir = tempfile::tempdir().unwrap();
    let url = DatabaseUrl::Sqlite(dir.path().join("shared.db"));
    let a = spawn_on(url.clone(), |_| {}).await;
    let b = spawn_on(url.clone(), |_| {}).await;
    (dir, url, a, b)
}

fn path(url: &DatabaseUrl) -> &std::path::Path {
    match url {
        DatabaseUrl::Sqlite(p) => p,
        other => panic!("not a SQLite url: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_file_see_each_others_writes() {
    let (_dir, _url, a, b) = two_on_one_file().await;
    let (status, _) = a
        .post_json(3, json!({"valor": 42, "tipo": "c", "descricao": "em a"}))
        .await;
    assert_eq!(status, 200);
    let (status, e) = b.extrato(3).await;
    assert_eq!(status, 200);
    assert_eq!(e["saldo"]["total"], 42);
    assert_eq!(e["ultimas_transacoes"][0]["descricao"], "em a");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_sequence_split_across_two_instances_on_one_file() {
    let (_dir, url, a, b) = two_on_one_file().await;
    checks::official_validation_sequence(&[a.api.clone(), b.api.clone()]).await;
    for row in audit(&url).await {
        assert_eq!(row.saldo, row.sum);
        assert!(row.saldo >= -row.limite);
    }
}

/// Both instances write to the same client at once: every write is answered (the second
/// waits for the other's lock instead of failing), and the file agrees with the answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_from_both_instances_all_apply_once() {
    let (_dir, url, a, b) = two_on_one_file().await;
    let mut tasks = Vec::new();
    for i in 0..200 {
        let api = if i % 2 == 0 {
            a.api.clone()
        } else {
            b.api.clone()
        };
        tasks.push(tokio::spawn(async move {
            api.post_json(1, json!({"valor": 1, "tipo": "c", "descricao": "x"}))
                .await
                .0
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    let row = audit(&url).await.into_iter().find(|r| r.id == 1).unwrap();
    assert_eq!((row.saldo, row.sum, row.rows), (200, 200, 200));
}

/// A statement takes no write lock: it is answered while another connection holds the
/// file's write lock (another instance's commit waiting for its flush), and it shows the
/// last committed state, not the uncommitted write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_is_served_while_another_connection_holds_the_write_lock() {
    let (_dir, url, a, _b) = two_on_one_file().await;
    let (status, _) = a
        .post_json(2, json!({"valor": 7, "tipo": "c", "descricao": "antes"}))
        .await;
    assert_eq!(status, 200);
    let other = rusqlite::Connection::open(path(&url)).unwrap();
    other
        .execute_batch("BEGIN IMMEDIATE; UPDATE clientes SET saldo = saldo + 1000 WHERE id = 2;")
        .unwrap();
    let (status, e) = a.extrato(2).await;
    other.execute_batch("ROLLBACK").unwrap();
    assert_eq!(status, 200, "{e}");
    assert_eq!(e["saldo"]["total"], 7);
}

/// A write that meets another connection's lock waits for it (the busy handler), and then
/// applies once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_waits_for_another_connections_lock_and_then_applies() {
    let (_dir, url, a, _b) = two_on_one_file().await;
    let other = rusqlite::Connection::open(path(&url)).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let api = a.api.clone();
    let write = tokio::spawn(async move {
        api.post_json(4, json!({"valor": 5, "tipo": "d", "descricao": "espera"}))
            .await
            .0
    });
    // Long enough for the write to reach the lock and retry several times.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!write.is_finished(), "the write did not wait for the lock");
    other.execute_batch("COMMIT").unwrap();
    assert_eq!(write.await.unwrap(), 200);
    let row = audit(&url).await.into_iter().find(|r| r.id == 4).unwrap();
    assert_eq!((row.saldo, row.sum, row.rows), (-5, -5, 1));
}
