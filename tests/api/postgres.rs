//! What only PostgreSQL offers: several instances on one database, lost connections,
//! concurrent migrations, durability profiles.

use std::time::{Duration, Instant};

use crebito::configuration::{DatabaseUrl, PgProfile};
use serde_json::json;

use crate::common::api::retry_after;
use crate::common::checks;
use crate::helpers::{audit, pg, spawn_on};

/// A fresh database of its own, and the handle that can reach it directly.
async fn fresh_pg() -> (DatabaseUrl, pg::Database) {
    let db = pg::Database::create().await;
    (DatabaseUrl::Postgres(db.url.clone()), db)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_database_see_each_others_writes() {
    let (url, _db) = fresh_pg().await;
    let a = spawn_on(url.clone(), |_| {}).await;
    let b = spawn_on(url.clone(), |_| {}).await;
    let (status, _) = a
        .post_json(3, json!({"valor": 42, "tipo": "c", "descricao": "em a"}))
        .await;
    assert_eq!(status, 200);
    let (_, e) = b.extrato(3).await;
    assert_eq!(e["saldo"]["total"], 42);
    assert_eq!(e["ultimas_transacoes"][0]["descricao"], "em a");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_sequence_split_across_two_instances() {
    let (url, _db) = fresh_pg().await;
    let a = spawn_on(url.clone(), |_| {}).await;
    let b = spawn_on(url.clone(), |_| {}).await;
    // A–D: the 25 + 25 simultaneous requests alternate between the instances; E–F too.
    checks::official_validation_sequence(&[a.api.clone(), b.api.clone()]).await;
    for row in audit(&url).await {
        assert_eq!(row.saldo, row.sum);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_started_at_the_same_moment_migrate_safely() {
    let (url, _db) = fresh_pg().await;
    let apps = futures_join_all((0..4).map(|_| spawn_on(url.clone(), |_| {}))).await;
    let rows = audit(&url).await;
    assert_eq!(
        rows.iter()
            .map(|r| (r.id, r.limite, r.saldo))
            .collect::<Vec<_>>(),
        [
            (1, 100_000, 0),
            (2, 80_000, 0),
            (3, 1_000_000, 0),
            (4, 10_000_000, 0),
            (5, 500_000, 0)
        ]
    );
    for app in &apps {
        let (status, _) = app.extrato(1).await;
        assert_eq!(status, 200);
    }
}

async fn futures_join_all<F: Future + Send + 'static>(
    futs: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send,
{
    let mut set = tokio::task::JoinSet::new();
    for f in futs {
        set.spawn(f);
    }
    set.join_all().await
}

async fn persistence(db: &pg::Database) -> Vec<(String, String)> {
    let c = db.connect().await;
    c.query(
        "SELECT relname::text, relpersistence::text FROM pg_class \
         WHERE relname IN ('clientes', 'idempotencia', 'transacoes') ORDER BY 1",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profiles_switch_table_persistence_and_keep_the_data() {
    let (url, db) = fresh_pg().await;
    let contest = spawn_on(url.clone(), |a| a.store.pg_profile = PgProfile::Contest).await;
    assert_eq!(
        persistence(&db).await,
        [
            ("clientes".into(), "u".into()),
            ("idempotencia".into(), "u".into()),
            ("transacoes".into(), "u".into())
        ]
    );
    contest
        .post_json(1, json!({"valor": 5, "tipo": "c", "descricao": "x"}))
        .await;
    // Switching needs no pause: the old instance's idle connections hold no table lock.
    drop(contest);
    let durable = spawn_on(url.clone(), |a| a.store.pg_profile = PgProfile::Durable).await;
    assert_eq!(
        persistence(&db).await,
        [
            ("clientes".into(), "p".into()),
            ("idempotencia".into(), "p".into()),
            ("transacoes".into(), "p".into())
        ]
    );
    assert_eq!(durable.saldo(1).await, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
/// Its connections killed under it, three times: each request gets 503 (no live connection:
/// not applied) or 504 (sent on a connection that then turned out dead: the server's FATAL
/// answers it, and nothing tells whether it committed first), never anything else; the
/// instance recovers by itself, and none of those applied anything here.
async fn a_lost_connection_gives_503_or_504_then_recovers_without_applying_twice() {
    let (url, db) = fresh_pg().await;
    let app = spawn_on(url.clone(), |a| a.store.pg_connections = 2).await;
    let admin = db.connect().await;
    let mut accepted = 0i64;
    let mut unavailable = 0;
    let started = Instant::now();
    for round in 0..3 {
        let killed: i64 = admin
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE datname = current_database() AND pid <> pg_backend_pid()",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert!(
            killed >= 1,
            "round {round}: the instance's connections were there"
        );
        // Requests right after the kill get 503 (no live connection), 504 (sent on a
        // connection that then turned out dead: outcome unknown) or, once a slot is back,
        // 200: never anything else, and the instance recovers by itself.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (status, _) = app
                .post_json(1, json!({"valor": 1, "tipo": "c", "descricao": "retry"}))
                .await;
            match status.as_u16() {
                200 => {
                    accepted += 1;
                    break;
                }
                503 | 504 => unavailable += 1,
                other => panic!("unexpected {other}"),
            }
            assert!(Instant::now() < deadline, "did not recover");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert!(
        unavailable >= 1,
        "a lost connection is reported as 503 or 504"
    );
    let rows = audit(&url).await;
    assert_eq!(rows[0].saldo, accepted, "here no 503/504 was applied");
    assert_eq!(rows[0].rows, accepted);
    eprintln!(
        "recovered 3 times in {:?}, {unavailable} × 503/504",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_key_racing_on_two_instances_applies_once() {
    let (url, _db) = fresh_pg().await;
    let a = spawn_on(url.clone(), |_| {}).await;
    let b = spawn_on(url.clone(), |_| {}).await;
    checks::one_key_racing_on_two_apis(&a.api, &b.api).await;
    assert_eq!(audit(&url).await[3].rows, 5, "one transaction per key");
}

/// A store that does not answer in time: the client hears 504 "outcome unknown" after
/// `--store-timeout`, not nginx's 60 s; the request may still apply once the store moves,
/// and a retry with the same key tells the client which, without applying it twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_store_deadline_the_answer_is_504_and_a_keyed_retry_tells_what_happened() {
    let (url, db) = fresh_pg().await;
    let app = spawn_on(url.clone(), |a| a.store_timeout = 1).await;
    let mut admin = db.connect().await;
    let lock = admin.transaction().await.unwrap();
    lock.execute("SELECT 1 FROM clientes WHERE id = 1 FOR UPDATE", &[])
        .await
        .unwrap();

    let body = json!({"valor": 40, "tipo": "d", "descricao": "slow"});
    let started = Instant::now();
    let r = app
        .client
        .post(format!("{}/clientes/1/transacoes", app.base))
        .header("idempotency-key", "slow-1")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 504);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(r.text().await.unwrap().contains("outcome unknown"));
    // Reads are not held by the lock (MVCC): the pending debit is simply not visible yet.
    let (status, e) = app.extrato(1).await;
    assert_eq!((status.as_u16(), &e["saldo"]["total"]), (200, &json!(0)));

    lock.commit().await.unwrap(); // the store moves: the waiting statement applies
    let (status, answer, replayed) = app.post_keyed(1, body.clone(), "slow-1").await;
    assert_eq!((status.as_u16(), replayed), (200, true), "{answer}");
    assert_eq!(answer, json!({"limite": 100000, "saldo": -40}));
    let (status, _, replayed) = app.post_keyed(1, body, "slow-1").await;
    assert_eq!((status.as_u16(), replayed), (200, true));
    assert_eq!(app.saldo(1).await, -40, "applied exactly once");
}

/// Polls `condition` every 50 ms for up to 20 s.
async fn poll<F: std::future::Future<Output = bool>>(what: &str, mut condition: impl FnMut() -> F) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !condition().await {
        assert!(Instant::now() < deadline, "{what}: not within 20 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Which failure gets which answer, exactly: a statement past the deadline is 504 "store did
/// not answer in time"; a POST whose connection breaks after it was sent is 504 "outcome
/// unknown"; with no live connection the store refuses before sending, 503 "not applied";
/// `/healthz` says 503 while the store is unreachable and 200 once it is back; every one of
/// these 503s and 504s says `Retry-After: 1`; and neither the 503 nor the broken 504 applied
/// anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_is_503_a_broken_connection_504_and_healthz_follows_the_store() {
    let (url, db) = fresh_pg().await;
    let admin = db.connect().await;
    let dbname: String = admin
        .query_one("SELECT current_database()", &[])
        .await
        .unwrap()
        .get(0);

    // A statement held past a 1 s deadline (its table locked).
    let hasty = spawn_on(url.clone(), |a| a.store_timeout = 1).await;
    admin
        .batch_execute("BEGIN; LOCK TABLE transacoes IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let r = hasty
        .client
        .get(format!("{}/clientes/1/extrato", hasty.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 504);
    assert_eq!(
        retry_after(&r),
        Some("1"),
        "a read's 504 says when to retry"
    );
    assert_eq!(
        r.text().await.unwrap(),
        "store did not answer in time; retry"
    );
    admin.batch_execute("ROLLBACK").await.unwrap();
    drop(hasty);

    // A POST waiting on the client's row lock, its connection then terminated: sent, no
    // answer, so "unknown" (a 30 s deadline: the 504 is the broken connection's, not a timeout).
    let app = spawn_on(url.clone(), |a| {
        a.store.pg_connections = 1;
        a.store_timeout = 30;
    })
    .await;
    admin
        .batch_execute("BEGIN; SELECT 1 FROM clientes WHERE id = 1 FOR UPDATE")
        .await
        .unwrap();
    let api = app.api.clone();
    let pending = tokio::spawn(async move {
        let r = api
            .post_response(
                1,
                r#"{"valor": 7, "tipo": "c", "descricao": "quebra"}"#,
                None,
            )
            .await;
        let retry = retry_after(&r).map(str::to_string);
        (r.status(), r.text().await.unwrap(), retry)
    });
    let waiting = "SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
                   AND wait_event_type = 'Lock'";
    poll("the POST waits on the row lock", || async {
        !admin.query(waiting, &[]).await.unwrap().is_empty()
    })
    .await;
    admin
        .batch_execute(&format!(
            "SELECT pg_terminate_backend(pid) FROM ({waiting}) w"
        ))
        .await
        .unwrap();
    let (status, text, retry) = pending.await.unwrap();
    assert_eq!(status, 504, "{text}");
    assert_eq!(
        retry.as_deref(),
        Some("1"),
        "a POST's 504 says when to retry"
    );
    assert_eq!(
        text,
        "outcome unknown: retry with the same Idempotency-Key to apply it at most once"
    );
    admin.batch_execute("ROLLBACK").await.unwrap();

    // No connection can be had: /healthz is 503, and a POST is refused before it is sent.
    // (Done from the server's `postgres` database: a database cannot lock itself out.)
    let (server, connection) = tokio_postgres::connect(
        &db.url.replacen(&format!("/{dbname}?"), "/postgres?", 1),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    server
        .batch_execute(&format!(
            "ALTER DATABASE \"{dbname}\" WITH ALLOW_CONNECTIONS false; \
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{dbname}'"
        ))
        .await
        .unwrap();
    poll("/healthz reports the store down", || async {
        app.healthz().await
            == (
                reqwest::StatusCode::SERVICE_UNAVAILABLE,
                "store unavailable".to_string(),
            )
    })
    .await;
    let r = app.healthz_response().await;
    assert_eq!(r.status(), 503);
    assert_eq!(
        retry_after(&r),
        Some("1"),
        "/healthz's 503 says when to retry"
    );
    let r = app
        .post_response(
            1,
            r#"{"valor": 9, "tipo": "c", "descricao": "recusado"}"#,
            None,
        )
        .await;
    assert_eq!(
        retry_after(&r),
        Some("1"),
        "a POST's 503 says when to retry"
    );
    let (status, text) = (r.status(), r.text().await.unwrap());
    assert_eq!(status, 503, "{text}");
    assert_eq!(text, "store unavailable: not applied, retry");

    // Back: healthy again, by itself; neither the 503 nor the broken 504 was applied.
    server
        .batch_execute(&format!(
            "ALTER DATABASE \"{dbname}\" WITH ALLOW_CONNECTIONS true"
        ))
        .await
        .unwrap();
    poll("/healthz reports the store back", || async {
        app.healthz().await.0 == 200
    })
    .await;
    assert_eq!(app.saldo(1).await, 0);
    assert_eq!(audit(&url).await[0].rows, 0);
}

/// A database made by crebito 0.2.0 — transactions ordered by an identity `id`, no per-client
/// counter — is upgraded in place at start: its history keeps its order, the balances are
/// untouched, and new transactions are numbered after the old ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_made_by_0_2_0_keeps_its_history_in_order() {
    let (url, db) = fresh_pg().await;
    db.connect()
        .await
        .batch_execute(
            "CREATE TABLE clientes (id integer PRIMARY KEY, limite bigint NOT NULL CHECK (limite >= 0),
                                    saldo bigint NOT NULL DEFAULT 0,
                                    CONSTRAINT saldo_dentro_do_limite CHECK (saldo >= -limite));
             CREATE TABLE transacoes (id bigint GENERATED ALWAYS AS IDENTITY, cliente_id integer NOT NULL,
                                      valor integer NOT NULL CHECK (valor > 0),
                                      tipo char(1) NOT NULL CHECK (tipo IN ('c', 'd')),
                                      descricao varchar(10) NOT NULL,
                                      realizada_em timestamptz NOT NULL DEFAULT clock_timestamp());
             CREATE INDEX transacoes_cliente_id_id ON transacoes (cliente_id, id DESC);
             INSERT INTO clientes (id, limite, saldo) VALUES (1, 100000, 3), (2, 80000, -7);
             INSERT INTO transacoes (cliente_id, valor, tipo, descricao)
             VALUES (1, 1, 'c', 'o1'), (2, 7, 'd', 'p1'), (1, 1, 'c', 'o2'), (1, 1, 'c', 'o3');",
        )
        .await
        .unwrap();
    let app = spawn_on(url.clone(), |_| {}).await;
    let (status, body) = app
        .post_json(1, json!({"valor": 10, "tipo": "c", "descricao": "novo"}))
        .await;
    assert_eq!((status.as_u16(), &body["saldo"]), (200, &json!(13)));
    let order = |e: &serde_json::Value| -> Vec<String> {
        e["ultimas_transacoes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["descricao"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, e1) = app.extrato(1).await;
    assert_eq!(order(&e1), ["novo", "o3", "o2", "o1"], "{e1:#}");
    let (_, e2) = app.extrato(2).await;
    assert_eq!(
        (order(&e2), &e2["saldo"]["total"]),
        (vec!["p1".to_owned()], &json!(-7))
    );
    let seqs = db
        .connect()
        .await
        .query(
            "SELECT c.id, c.ultima_seq, array_agg(t.seq ORDER BY t.seq)::text
               FROM clientes c JOIN transacoes t ON t.cliente_id = c.id GROUP BY 1, 2 ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.get::<_, i32>(0),
                r.get::<_, i64>(1),
                r.get::<_, String>(2),
            )
        })
        .collect::<Vec<_>>();
    assert_eq!(
        seqs,
        [(1, 4, "{1,2,3,4}".to_owned()), (2, 1, "{1}".to_owned())]
    );
    for row in audit(&url).await {
        assert_eq!(row.saldo, row.sum, "{row:?}");
    }
}
