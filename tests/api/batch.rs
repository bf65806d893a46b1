//! Group commit on PostgreSQL (src/store/postgres/batch.rs): writes that queue behind one in
//! flight leave together, and each is told exactly what happened to it.
//!
//! Every test makes the batch it needs deterministically: an admin connection holds a
//! client's row lock, a write for that client goes first and waits on it (its instance has
//! one connection per node, now busy), the writes under test queue behind it (the
//! `crebito_pg_batch_waiting` gauge says when), and releasing the lock sends them as one
//! transaction. Nothing waits for a fixed time.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_postgres::{Client, NoTls};

use crate::common::api::Api;
use crate::helpers::{Backend, TestApp, audit, pg, spawn_app_with, spawn_on};
use crebito::configuration::DatabaseUrl;

/// Polls `condition` every 20 ms for up to 20 s.
async fn until<F: Future<Output = bool>>(what: &str, mut condition: impl FnMut() -> F) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !condition().await {
        assert!(Instant::now() < deadline, "{what}: not within 20 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn connect(url: &DatabaseUrl) -> Client {
    let DatabaseUrl::Postgres(url) = url else {
        panic!("a PostgreSQL store")
    };
    let (client, conn) = tokio_postgres::connect(url, NoTls).await.unwrap();
    tokio::spawn(conn);
    client
}

/// An admin connection holding `client`'s row lock until [`Held::release`].
struct Held(Client);

impl Held {
    async fn lock(url: &DatabaseUrl, client: i32) -> Held {
        let c = connect(url).await;
        c.batch_execute(&format!(
            "BEGIN; SELECT 1 FROM clientes WHERE id = {client} FOR UPDATE"
        ))
        .await
        .unwrap();
        Held(c)
    }

    async fn release(self) {
        self.0.batch_execute("COMMIT").await.unwrap();
    }
}

/// What a POST got: status, body (JSON, or the text as a JSON string), replayed.
type Answer = (StatusCode, Value, bool);

/// Sends a POST in the background: keyed when `key` is given.
fn post(api: &Api, client: i32, body: Value, key: Option<&str>) -> JoinHandle<Answer> {
    let (api, key) = (api.clone(), key.map(str::to_owned));
    tokio::spawn(async move {
        let mut req = api
            .client
            .post(format!("{}/clientes/{client}/transacoes", api.base))
            .body(body.to_string());
        if let Some(k) = key {
            req = req.header("idempotency-key", k);
        }
        let r = req.send().await.unwrap();
        let status = r.status();
        let replayed = r.headers().contains_key("idempotent-replayed");
        let text = r.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, body, replayed)
    })
}

/// Queues a POST behind the write in flight: sent, then waited for until the instance counts
/// one more write waiting (so the queue keeps the order of the calls).
async fn queue(app: &Api, client: i32, body: Value, key: Option<&str>) -> JoinHandle<Answer> {
    let before = app.metric("crebito_pg_batch_waiting").await;
    let h = post(app, client, body, key);
    until("the write queued", || async {
        app.metric("crebito_pg_batch_waiting").await == before + 1.0
    })
    .await;
    h
}

/// Sends a write for `client` and waits until a connection has it in flight. When the test
/// holds the client's row, the write stays there: that connection is then busy, and every
/// later write for it queues.
async fn occupy(app: &Api, client: i32, descricao: &str) -> JoinHandle<Answer> {
    let before = app.metric("crebito_pg_batch_size_count").await;
    let h = post(
        app,
        client,
        json!({"valor": 1, "tipo": "c", "descricao": descricao}),
        None,
    );
    until("the first write in flight", || async {
        app.metric("crebito_pg_batch_size_count").await == before + 1.0
    })
    .await;
    h
}

/// Backends of this database waiting on a lock (on a Citus cluster, on any node).
async fn lock_waits(admin: &Client, citus: bool) -> i64 {
    let view = if citus {
        "citus_stat_activity"
    } else {
        "pg_stat_activity"
    };
    admin
        .query_one(
            &format!(
                "SELECT count(*) FROM {view} \
                  WHERE wait_event_type = 'Lock' AND datname = current_database()"
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

/// Clients whose rows sit on one node (the Citus worker holding the most of them; every
/// client on a single server), each with its limit.
async fn clients_on_one_node(admin: &Client, citus: bool) -> Vec<(i32, i64)> {
    let rows = if citus {
        admin
            .query(
                "SELECT c.id, c.limite, s.nodeport FROM clientes c
                   JOIN citus_shards s
                     ON s.shardid = get_shard_id_for_distribution_column('clientes', c.id)
                  ORDER BY c.id",
                &[],
            )
            .await
            .unwrap()
    } else {
        admin
            .query("SELECT id, limite, 0 FROM clientes ORDER BY id", &[])
            .await
            .unwrap()
    };
    let mut by_node: std::collections::BTreeMap<i32, Vec<(i32, i64)>> = Default::default();
    for r in rows {
        by_node
            .entry(r.get(2))
            .or_default()
            .push((r.get(0), r.get(1)));
    }
    by_node.into_values().max_by_key(Vec::len).expect("clients")
}

/// One instance with one connection per node, a 30 s store deadline (nothing here times
/// out), and the admin connection.
async fn one_connection(backend: Backend) -> (TestApp, Client) {
    let app = spawn_app_with(backend, |a| {
        a.store.pg_connections = 1;
        a.store_timeout = 30;
    })
    .await;
    let admin = connect(&app.database_url).await;
    (app, admin)
}

/// Writes that queue behind one in flight leave as one transaction, and each member is told
/// what it would have been told alone: a refusal, an unknown client, a replay and a key reused
/// with another body in the same batch change nobody else's answer, and a client's writes keep
/// their order.
async fn a_batch_answers_each_member_as_if_it_had_run_alone(backend: Backend) {
    let citus = backend == Backend::Citus;
    let (app, admin) = one_connection(backend).await;
    let clients = clients_on_one_node(&admin, citus).await;
    assert!(clients.len() >= 3, "{clients:?}");
    let (blocker, (a, la), (b, lb)) = (clients[0].0, clients[1], clients[2]);

    // Before, alone (a write on an idle connection waits for nothing): a keyed debit, to be
    // replayed from inside the batch, and a write of each kind for each client (on Citus a
    // worker's connection prepares a shard's statements on first use, one more round trip,
    // which would keep a write out of the queue behind a busy connection).
    let (s, first, replayed) = app
        .post_keyed(a, json!({"valor": 5, "tipo": "d", "descricao": "m0"}), "k0")
        .await;
    assert_eq!((s.as_u16(), replayed), (200, false), "{first}");
    for (client, d) in [(a, "w1"), (b, "w2")] {
        let body = json!({"valor": 1, "tipo": "c", "descricao": d});
        assert_eq!(app.post_json(client, body).await.0, 200);
    }
    let body = json!({"valor": 1, "tipo": "c", "descricao": "w3"});
    assert_eq!(app.post_keyed(b, body, "kw").await.0, 200);
    let alone = (
        app.metric("crebito_pg_batch_size_count").await,
        app.metric("crebito_pg_batch_size_sum").await,
    );
    assert_eq!(alone, (4.0, 4.0), "each alone");

    let held = Held::lock(&app.database_url, blocker).await;
    let occupied = occupy(&app.api, blocker, "b0").await;
    let tx =
        |valor: i64, tipo: &str, d: &str| json!({"valor": valor, "tipo": tipo, "descricao": d});
    let mut members = vec![
        queue(&app.api, a, tx(100, "c", "m1"), None).await,
        queue(&app.api, b, tx(lb + 3, "d", "m2"), None).await,
        queue(&app.api, a, tx(300, "d", "m3"), None).await,
        queue(&app.api, b, tx(7, "c", "m4"), Some("k1")).await,
        queue(&app.api, b, tx(7, "c", "m4"), Some("k1")).await,
        queue(&app.api, b, tx(8, "c", "m5"), Some("k1")).await,
        queue(&app.api, a, tx(5, "d", "m0"), Some("k0")).await,
    ];
    if !citus {
        // An unknown client: on Citus it is not routed to a worker, so not in this batch.
        members.push(queue(&app.api, 6, tx(1, "c", "m6"), None).await);
    }
    held.release().await;
    assert_eq!(occupied.await.unwrap().0, 200);
    let mut answers = Vec::new();
    for m in members {
        answers.push(m.await.unwrap());
    }
    let ok = |saldo: i64, limite: i64, replayed: bool| {
        let body = json!({"limite": limite, "saldo": saldo});
        (StatusCode::OK, body, replayed)
    };
    let refused = |why: &str| (StatusCode::UNPROCESSABLE_ENTITY, json!(why), false);
    assert_eq!(
        answers[0],
        ok(96, la, false),
        "m1, after m0 (-5) and w1 (+1)"
    );
    assert_eq!(answers[1], refused("over the limit"), "m2");
    assert_eq!(
        answers[2],
        ok(-204, la, false),
        "m3, after m1: arrival order kept"
    );
    assert_eq!(answers[3], ok(9, lb, false), "m4, after w2 and w3");
    assert_eq!(
        answers[4],
        ok(9, lb, true),
        "m4 again: replayed from the same batch"
    );
    assert_eq!(
        answers[5],
        refused("Idempotency-Key already used with a different request"),
        "m5"
    );
    assert_eq!(
        answers[6],
        ok(-5, la, true),
        "k0 replayed: its first answer"
    );
    if !citus {
        let unknown = (StatusCode::NOT_FOUND, json!("client not found"), false);
        assert_eq!(answers[7], unknown, "m6");
    }
    // Four writes alone before, the blocker alone, then every member in one transaction.
    let n = answers.len() as f64;
    assert_eq!(app.metric("crebito_pg_batch_size_count").await, 6.0);
    assert_eq!(app.metric("crebito_pg_batch_size_sum").await, 5.0 + n);
    assert_eq!(app.metric("crebito_pg_batch_rollbacks_total").await, 0.0);
    let rows: std::collections::HashMap<i64, (i64, i64, i64)> = audit(&app.database_url)
        .await
        .into_iter()
        .map(|r| (r.id, (r.saldo, r.sum, r.rows)))
        .collect();
    assert_eq!(rows[&i64::from(a)], (-204, -204, 4), "m0, w1, m1, m3");
    assert_eq!(rows[&i64::from(b)], (9, 9, 3), "w2, w3, m4 once");
    assert_eq!(rows[&i64::from(blocker)], (1, 1, 1));
}

mod each_as_if_alone {
    use crate::helpers::Backend;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::a_batch_answers_each_member_as_if_it_had_run_alone(Backend::Postgres).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn citus() {
        super::a_batch_answers_each_member_as_if_it_had_run_alone(Backend::Citus).await
    }
}

/// Two batches on two instances, their clients arriving in opposite orders ([1, 2] and
/// [2, 1]): each takes the rows in ascending order, so neither can hold one row while waiting
/// for the other's. Arranged so that taking them in arrival order would deadlock (the first
/// batch gets row 1 and then needs row 2, which the second took first): PostgreSQL reports no
/// deadlock and no batch rolls back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_in_opposite_orders_on_two_instances_never_deadlock() {
    let db = pg::Database::create().await;
    let url = DatabaseUrl::Postgres(db.url.clone());
    let tweak = |a: &mut crebito::configuration::ServeArgs| {
        a.store.pg_connections = 1;
        a.store_timeout = 30;
    };
    let (x, y) = (
        spawn_on(url.clone(), tweak).await,
        spawn_on(url.clone(), tweak).await,
    );
    let admin = connect(&url).await;
    let deadlocks = || async {
        admin
            .query_one(
                "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()",
                &[],
            )
            .await
            .unwrap()
            .get::<_, i64>(0)
    };
    let deadlocks_before = deadlocks().await;
    // Each instance's first write waits on a row of its own (5, 4), so that the batches
    // start one after the other; row 1 is held too.
    let (five, four, one) = (
        Held::lock(&url, 5).await,
        Held::lock(&url, 4).await,
        Held::lock(&url, 1).await,
    );
    let bx = occupy(&x.api, 5, "x0").await;
    let by = occupy(&y.api, 4, "y0").await;
    let credit = |v: i64, d: &str| json!({"valor": v, "tipo": "c", "descricao": d});
    let x1 = queue(&x.api, 1, credit(1, "x1"), None).await;
    let x2 = queue(&x.api, 2, credit(2, "x2"), None).await;
    let y2 = queue(&y.api, 2, credit(20, "y2"), None).await;
    let y1 = queue(&y.api, 1, credit(10, "y1"), None).await;
    // x's batch starts first and waits for row 1 (y's first write still waits for row 4).
    five.release().await;
    assert_eq!(bx.await.unwrap().0, 200);
    until("x's batch waits for row 1", || async {
        lock_waits(&admin, false).await == 2
    })
    .await;
    // Then y's: in arrival order it would take row 2 and wait for row 1 behind x, and x,
    // once it has row 1, would wait for y's row 2.
    four.release().await;
    assert_eq!(by.await.unwrap().0, 200);
    until("both batches wait for row 1", || async {
        lock_waits(&admin, false).await == 2
    })
    .await;
    one.release().await;
    for h in [x1, x2, y2, y1] {
        let (s, body, _) = h.await.unwrap();
        assert_eq!(s, 200, "{body}");
    }
    assert_eq!(
        deadlocks().await,
        deadlocks_before,
        "a deadlock was detected"
    );
    for app in [&x, &y] {
        assert_eq!(app.metric("crebito_pg_batch_rollbacks_total").await, 0.0);
        assert_eq!(
            app.metric("crebito_pg_batch_size_sum").await,
            3.0,
            "a blocker and a batch of two"
        );
    }
    let rows = audit(&url).await;
    assert_eq!((rows[0].saldo, rows[0].rows), (11, 2));
    assert_eq!((rows[1].saldo, rows[1].rows), (22, 2));
}

/// A key stored by another instance while a batch waits for its rows is seen by the batch's
/// member (it locks its clients first, then reads the keys), which replays it: no unique
/// violation, nothing rolled back, applied once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_stored_while_a_batch_waits_for_its_rows_is_replayed_without_a_rollback() {
    let (x, admin) = one_connection(Backend::Postgres).await;
    let url = x.database_url.clone();
    let y = spawn_on(url.clone(), |a| a.store_timeout = 30).await;
    let (five, three) = (Held::lock(&url, 5).await, Held::lock(&url, 3).await);
    let blocker = occupy(&x.api, 5, "x0").await;
    let body = json!({"valor": 9, "tipo": "c", "descricao": "kc"});
    let member = queue(&x.api, 3, body.clone(), Some("kc")).await;
    let other = queue(
        &x.api,
        4,
        json!({"valor": 1, "tipo": "c", "descricao": "x4"}),
        None,
    )
    .await;
    // The same key through the other instance, alone, waiting for row 3 first.
    let alone = post(&y.api, 3, body, Some("kc"));
    until("the other instance waits for row 3", || async {
        lock_waits(&admin, false).await == 2
    })
    .await;
    five.release().await;
    assert_eq!(blocker.await.unwrap().0, 200);
    until("the batch waits for row 3 too", || async {
        lock_waits(&admin, false).await == 2
    })
    .await;
    three.release().await;
    let ok = json!({"limite": 1_000_000, "saldo": 9});
    assert_eq!(alone.await.unwrap(), (StatusCode::OK, ok.clone(), false));
    assert_eq!(member.await.unwrap(), (StatusCode::OK, ok, true));
    assert_eq!(other.await.unwrap().0, 200);
    assert_eq!(x.metric("crebito_pg_batch_rollbacks_total").await, 0.0);
    let rows = audit(&url).await;
    assert_eq!((rows[2].saldo, rows[2].rows), (9, 1), "applied once");
}

/// When a statement fails inside a batch (here a key another transaction stored without
/// taking the client's row lock, which crebito never does, but an older version or a hand
/// could), the transaction rolls back whole and every member runs again alone: each gets its
/// own answer, and nothing is applied twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_that_rolls_back_runs_each_member_again_alone() {
    let (x, admin) = one_connection(Backend::Postgres).await;
    let url = x.database_url.clone();
    let five = Held::lock(&url, 5).await;
    let blocker = occupy(&x.api, 5, "x0").await;
    let intruder = connect(&url).await;
    intruder
        .batch_execute(
            "BEGIN; INSERT INTO idempotencia (cliente_id, chave, pedido, aplicada, saldo, limite)
                    VALUES (1, 'kr', '11|c|kr', true, 11, 100000)",
        )
        .await
        .unwrap();
    let keyed = queue(
        &x.api,
        1,
        json!({"valor": 11, "tipo": "c", "descricao": "kr"}),
        Some("kr"),
    )
    .await;
    let two = queue(
        &x.api,
        2,
        json!({"valor": 3, "tipo": "c", "descricao": "y2"}),
        None,
    )
    .await;
    let four = queue(
        &x.api,
        4,
        json!({"valor": 4, "tipo": "d", "descricao": "y4"}),
        None,
    )
    .await;
    five.release().await;
    assert_eq!(blocker.await.unwrap().0, 200);
    // The batch's key INSERT waits for the intruder's uncommitted one.
    until("the batch waits for the intruder", || async {
        lock_waits(&admin, false).await == 1
    })
    .await;
    intruder.batch_execute("COMMIT").await.unwrap();
    assert_eq!(
        keyed.await.unwrap(),
        (
            StatusCode::OK,
            json!({"limite": 100_000, "saldo": 11}),
            true
        ),
        "the stored answer, replayed"
    );
    assert_eq!(
        two.await.unwrap(),
        (StatusCode::OK, json!({"limite": 80_000, "saldo": 3}), false)
    );
    assert_eq!(
        four.await.unwrap(),
        (
            StatusCode::OK,
            json!({"limite": 10_000_000, "saldo": -4}),
            false
        )
    );
    assert_eq!(x.metric("crebito_pg_batch_rollbacks_total").await, 1.0);
    let rows = audit(&url).await;
    assert_eq!(
        (rows[0].saldo, rows[0].rows),
        (0, 0),
        "the replayed key applied nothing"
    );
    assert_eq!((rows[1].saldo, rows[1].rows), (3, 1), "once");
    assert_eq!((rows[3].saldo, rows[3].rows), (-4, 1), "once");
}

/// A batch whose connection dies after it was sent: every member is told 504 "outcome
/// unknown", and a keyed retry settles each exactly once. Writes queued behind a write whose
/// connection died, never sent: 503 "not applied", and indeed not applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_batch_is_504_for_each_member_and_an_unsent_one_503() {
    let (x, admin) = one_connection(Backend::Postgres).await;
    let url = x.database_url.clone();
    let terminate_waiting = || async {
        admin
            .batch_execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                  WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .await
            .unwrap()
    };
    const UNKNOWN: &str =
        "outcome unknown: retry with the same Idempotency-Key to apply it at most once";

    // Sent, then lost: the batch waits for row 1 when its connection is cut.
    let (five, one) = (Held::lock(&url, 5).await, Held::lock(&url, 1).await);
    let blocker = occupy(&x.api, 5, "x0").await;
    let e1 = json!({"valor": 5, "tipo": "c", "descricao": "e1"});
    let e2 = json!({"valor": 6, "tipo": "c", "descricao": "e2"});
    let m1 = queue(&x.api, 1, e1.clone(), Some("e1")).await;
    let m2 = queue(&x.api, 2, e2.clone(), Some("e2")).await;
    five.release().await;
    assert_eq!(blocker.await.unwrap().0, 200);
    until("the batch waits for row 1", || async {
        lock_waits(&admin, false).await == 1
    })
    .await;
    terminate_waiting().await;
    for m in [m1, m2] {
        let (s, body, _) = m.await.unwrap();
        assert_eq!((s, body), (StatusCode::GATEWAY_TIMEOUT, json!(UNKNOWN)));
    }
    one.release().await;
    until("the instance reconnects", || async {
        x.healthz().await.0 == 200
    })
    .await;
    for (client, body, key, saldo, limite) in
        [(1, &e1, "e1", 5, 100_000), (2, &e2, "e2", 6, 80_000)]
    {
        let answer = json!({"limite": limite, "saldo": saldo});
        let (s, b, replayed) = x.post_keyed(client, body.clone(), key).await;
        assert_eq!(
            (s.as_u16(), &b, replayed),
            (200, &answer, false),
            "{key}: not applied before"
        );
        let (s, b, replayed) = x.post_keyed(client, body.clone(), key).await;
        assert_eq!(
            (s.as_u16(), &b, replayed),
            (200, &answer, true),
            "{key}: then replayed"
        );
    }

    // Never sent: the write in flight loses its connection; the writes behind it are refused.
    let five = Held::lock(&url, 5).await;
    let blocker = occupy(&x.api, 5, "x1").await;
    let f1 = queue(
        &x.api,
        3,
        json!({"valor": 7, "tipo": "c", "descricao": "f1"}),
        None,
    )
    .await;
    let f2 = queue(
        &x.api,
        4,
        json!({"valor": 8, "tipo": "c", "descricao": "f2"}),
        None,
    )
    .await;
    until("the blocker waits for row 5", || async {
        lock_waits(&admin, false).await == 1
    })
    .await;
    terminate_waiting().await;
    let (s, body, _) = blocker.await.unwrap();
    assert_eq!((s, body), (StatusCode::GATEWAY_TIMEOUT, json!(UNKNOWN)));
    for f in [f1, f2] {
        let (s, body, _) = f.await.unwrap();
        assert_eq!(
            (s, body),
            (
                StatusCode::SERVICE_UNAVAILABLE,
                json!("store unavailable: not applied, retry")
            )
        );
    }
    five.release().await;
    let rows = audit(&url).await;
    assert_eq!(
        rows.iter().map(|r| (r.saldo, r.rows)).collect::<Vec<_>>(),
        [(5, 1), (6, 1), (0, 0), (0, 0), (1, 1)],
        "e1 and e2 once; f1, f2 and the lost blocker x1 never"
    );
}

/// A connection's queue is bounded (`--pg-queue`): with it full, one more write is refused
/// at once — answered 503 while the write in flight still waits, not queued behind it — and
/// never sent; the writes already queued are served as before once the server answers. The
/// high-water mark and the refusals show on /metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_beyond_the_queue_bound_is_refused_at_once_and_never_sent() {
    let app = spawn_app_with(Backend::Postgres, |a| {
        a.store.pg_connections = 1;
        a.store.pg_queue = 2;
        a.store_timeout = 30;
    })
    .await;
    let five = Held::lock(&app.database_url, 5).await;
    let blocker = occupy(&app.api, 5, "x0").await;
    let credit = |v: i64, d: &str| json!({"valor": v, "tipo": "c", "descricao": d});
    let queued = [
        queue(&app.api, 1, credit(1, "q1"), None).await,
        queue(&app.api, 2, credit(2, "q2"), None).await,
    ];
    // Row 5 is still held: an answer now cannot have waited for the queue to move.
    let (s, body, _) = post(&app.api, 3, credit(3, "q3"), Some("q3"))
        .await
        .unwrap();
    assert_eq!(
        (s, body),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            json!("store unavailable: not applied, retry")
        ),
        "refused at once, with the queue full"
    );
    assert_eq!(app.metric("crebito_pg_batch_queue_full_total").await, 1.0);
    assert_eq!(app.metric("crebito_pg_batch_waiting_max").await, 2.0);
    assert_eq!(
        app.metric("crebito_pg_batch_queued_total").await,
        2.0,
        "q1 and q2 waited behind x0; q3, refused, did not"
    );
    five.release().await;
    assert_eq!(blocker.await.unwrap().0, 200);
    for q in queued {
        assert_eq!(q.await.unwrap().0, 200);
    }
    // Not applied: its keyed retry applies it now, the first time.
    let (s, _, replayed) = app.post_keyed(3, credit(3, "q3"), "q3").await;
    assert_eq!(
        (s.as_u16(), replayed),
        (200, false),
        "q3: not applied before"
    );
    let rows = audit(&app.database_url).await;
    assert_eq!(
        rows.iter().map(|r| (r.saldo, r.rows)).collect::<Vec<_>>(),
        [(1, 1), (2, 1), (3, 1), (0, 0), (1, 1)]
    );
}

/// With `--pg-spill` the second connection takes only a write that finds the first busy while
/// it is idle, or that finds the first's queue full; the other writes that find both busy
/// queue for the first (its next batch), even once the second is idle again. Used alike (the
/// default), the queued writes would split between them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_spill_the_second_connection_takes_only_what_finds_the_first_busy_or_full() {
    let app = spawn_app_with(Backend::Postgres, |a| {
        a.store.pg_connections = 2;
        a.store.pg_spill = true;
        a.store.pg_queue = 2;
        a.store_timeout = 30;
    })
    .await;
    let url = app.database_url.clone();
    let (five, four) = (Held::lock(&url, 5).await, Held::lock(&url, 4).await);
    let credit = |v: i64, d: &str| json!({"valor": v, "tipo": "c", "descricao": d});
    // The first connection, then the idle second, each busy with a write waiting for its row.
    let first = occupy(&app.api, 5, "s5").await;
    let second = occupy(&app.api, 4, "s4").await;
    // Both busy: the first's queue takes two, its bound; the next queues for the second.
    let queued = [
        queue(&app.api, 1, credit(1, "s1"), None).await,
        queue(&app.api, 2, credit(2, "s2"), None).await,
    ];
    let overflow = queue(&app.api, 3, credit(3, "s3a"), None).await;
    four.release().await;
    assert_eq!(second.await.unwrap().0, 200);
    assert_eq!(overflow.await.unwrap().0, 200);
    // A lane hands itself to its queue before its write is answered: the two queued for the
    // first still wait, although the second has been idle since.
    assert_eq!(app.metric("crebito_pg_batch_waiting").await, 2.0);
    // A new write finds the first busy and the second idle: served at once.
    assert_eq!(app.post_json(3, credit(3, "s3b")).await.0, 200);
    assert_eq!(app.metric("crebito_pg_batch_waiting").await, 2.0);
    five.release().await;
    assert_eq!(first.await.unwrap().0, 200);
    for q in queued {
        assert_eq!(q.await.unwrap().0, 200);
    }
    // Six writes in five transactions: the two queued for the first left together.
    assert_eq!(app.metric("crebito_pg_batch_size_count").await, 5.0);
    assert_eq!(app.metric("crebito_pg_batch_size_sum").await, 6.0);
    assert_eq!(app.metric("crebito_pg_batch_queue_full_total").await, 0.0);
    let rows = audit(&url).await;
    assert_eq!(
        rows.iter().map(|r| (r.saldo, r.rows)).collect::<Vec<_>>(),
        [(1, 1), (2, 1), (6, 2), (1, 1), (1, 1)]
    );
}

/// Without batching (`--pg-batch 1`, the contest profile's) no write makes a connection busy,
/// so with `--pg-spill` the second connection is the first's standby: a write sent while
/// another waits for its row on the first goes down the first's pipeline, behind it, and not
/// to the idle second. Used alike (or spill ignored without batching, as before), it would
/// go to the second and be answered at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_spill_and_no_batching_the_second_connection_is_a_standby() {
    let app = spawn_app_with(Backend::Postgres, |a| {
        a.store.pg_connections = 2;
        a.store.pg_spill = true;
        a.store.pg_batch = Some(1);
        a.store_timeout = 30;
    })
    .await;
    let url = app.database_url.clone();
    let admin = connect(&url).await;
    let five = Held::lock(&url, 5).await;
    let first = occupy(&app.api, 5, "t5").await;
    until("the first write waiting for its row", || async {
        lock_waits(&admin, false).await == 1
    })
    .await;
    // A write for a free row, handed to a connection, stays unanswered while the first waits.
    let next = occupy(&app.api, 4, "t4").await;
    for _ in 0..25 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(
            !next.is_finished(),
            "a write for a free row was answered while the first connection waited: it went to the second"
        );
    }
    assert_eq!(lock_waits(&admin, false).await, 1);
    five.release().await;
    assert_eq!(first.await.unwrap().0, 200);
    assert_eq!(next.await.unwrap().0, 200);
    let rows = audit(&url).await;
    assert_eq!(
        rows.iter().map(|r| (r.saldo, r.rows)).collect::<Vec<_>>(),
        [(0, 0), (0, 0), (0, 0), (1, 1), (1, 1)]
    );
}

/// A queued write whose caller is gone — its deadline passed and it was answered 504 "outcome
/// unknown" — is dropped when its turn comes, never sent: the write ahead of it, sent before
/// its own deadline passed, is applied (its 504 was honest), the abandoned one is not, and the
/// connection serves the next write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_write_whose_caller_is_gone_is_never_sent() {
    let app = spawn_app_with(Backend::Postgres, |a| {
        a.store.pg_connections = 1;
        a.store_timeout = 5;
    })
    .await;
    let url = app.database_url.clone();
    let admin = connect(&url).await;
    let (five, four) = (Held::lock(&url, 5).await, Held::lock(&url, 4).await);
    let credit = |v: i64, d: &str| json!({"valor": v, "tipo": "c", "descricao": d});
    let blocker = occupy(&app.api, 5, "x0").await;
    let sent = queue(&app.api, 4, credit(4, "m4"), None).await;
    // The blocker answered, the batch task sends the queued write, which waits for row 4: the
    // connection stays busy with no caller's deadline on it.
    five.release().await;
    assert_eq!(blocker.await.unwrap().0, 200);
    until("the queued write sent, waiting for row 4", || async {
        lock_waits(&admin, false).await == 1 && app.metric("crebito_pg_batch_waiting").await == 0.0
    })
    .await;
    let gone = queue(&app.api, 3, credit(3, "m3"), Some("m3")).await;
    const UNKNOWN: &str =
        "outcome unknown: retry with the same Idempotency-Key to apply it at most once";
    for h in [sent, gone] {
        let (s, body, _) = h.await.unwrap();
        assert_eq!((s, body), (StatusCode::GATEWAY_TIMEOUT, json!(UNKNOWN)));
    }
    four.release().await;
    // The next write is served after the abandoned one's turn (behind it, or on an idle
    // connection once it has passed).
    assert_eq!(app.post_json(2, credit(2, "m2")).await.0, 200);
    let rows = audit(&url).await;
    assert_eq!(
        rows.iter().map(|r| (r.saldo, r.rows)).collect::<Vec<_>>(),
        [(0, 0), (2, 1), (0, 0), (4, 1), (1, 1)],
        "m4 applied (sent before its deadline), m3 never sent"
    );
    assert_eq!(app.metric("crebito_pg_batch_abandoned_total").await, 1.0);
    // Its keyed retry applies it, the first time.
    let (s, _, replayed) = app.post_keyed(3, credit(3, "m3"), "m3").await;
    assert_eq!((s.as_u16(), replayed), (200, false));
}

/// A batch task that panics (debug builds panic on a member described `(panic)`:
/// src/store/postgres/batch.rs) does not leave its connection busy for ever: its members are
/// told 504 (they may have been sent, as far as anyone knows), the writes queued behind it 503
/// at once (never sent), the connection is retired and reopened, and writes are served again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_task_that_panics_frees_its_connection() {
    let app = spawn_app_with(Backend::Postgres, |a| {
        a.store.pg_connections = 1;
        a.store.pg_batch = Some(2);
        a.store_timeout = 30;
    })
    .await;
    let five = Held::lock(&app.database_url, 5).await;
    let blocker = occupy(&app.api, 5, "x0").await;
    let credit = |v: i64, d: &str| json!({"valor": v, "tipo": "c", "descricao": d});
    let panics = queue(&app.api, 1, credit(1, "(panic)"), None).await;
    let beside = queue(&app.api, 2, credit(2, "p2"), None).await;
    let behind = queue(&app.api, 3, credit(3, "p3"), None).await;
    five.release().await;
    assert_eq!(blocker.await.unwrap().0, 200);
    const UNKNOWN: &str =
        "outcome unknown: retry with the same Idempotency-Key to apply it at most once";
    for h in [panics, beside] {
        let (s, body, _) = h.await.unwrap();
        assert_eq!((s, body), (StatusCode::GATEWAY_TIMEOUT, json!(UNKNOWN)));
    }
    let (s, body, _) = behind.await.unwrap();
    assert_eq!(
        (s, body),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            json!("store unavailable: not applied, retry")
        ),
        "queued behind the panic: never sent"
    );
    until("writes are served again", || async {
        app.post_keyed(4, credit(4, "p4"), "p4").await.0 == 200
    })
    .await;
    let rows = audit(&app.database_url).await;
    assert_eq!(
        rows.iter().map(|r| (r.saldo, r.rows)).collect::<Vec<_>>(),
        [(0, 0), (0, 0), (0, 0), (4, 1), (1, 1)]
    );
}

/// A refused keyed write stores its key under its client's row lock, as an applied one does
/// (sql/postgres/apply_once.sql): a batch whose member carries the same key waits for that
/// lock, then reads the key and answers from it — nothing rolls back. Without the lock, the
/// member's key INSERT met the refusal's uncommitted key, and the unique violation rolled back
/// every member of the batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_keyed_write_elsewhere_never_rolls_a_batch_back() {
    let (x, admin) = one_connection(Backend::Postgres).await;
    let url = x.database_url.clone();
    let five = Held::lock(&url, 5).await;
    // crebito's own keyed statement, refused (far over client 1's limit), in a transaction
    // left open on another session: as a keyed retry through another instance, caught between
    // its statement and its commit.
    let other = connect(&url).await;
    other.batch_execute("BEGIN").await.unwrap();
    let refused = other
        .query(
            include_str!("../../sql/postgres/apply_once.sql"),
            &[
                &1i32,
                &-1_000_000_000i64,
                &1_000_000_000i32,
                &"d",
                &"kr",
                &"kr",
                &"another request",
            ],
        )
        .await
        .unwrap();
    assert_eq!(refused[0].get::<_, Option<i64>>(0), None, "refused");
    let blocker = occupy(&x.api, 5, "x0").await;
    let keyed = queue(
        &x.api,
        1,
        json!({"valor": 11, "tipo": "c", "descricao": "kr"}),
        Some("kr"),
    )
    .await;
    let two = queue(
        &x.api,
        2,
        json!({"valor": 3, "tipo": "c", "descricao": "y2"}),
        None,
    )
    .await;
    five.release().await;
    assert_eq!(blocker.await.unwrap().0, 200);
    until("the batch waits for the refusal's transaction", || async {
        lock_waits(&admin, false).await == 1
    })
    .await;
    other.batch_execute("COMMIT").await.unwrap();
    assert_eq!(
        keyed.await.unwrap(),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            json!("Idempotency-Key already used with a different request"),
            false
        ),
        "the key, read from the refusal"
    );
    assert_eq!(
        two.await.unwrap(),
        (StatusCode::OK, json!({"limite": 80_000, "saldo": 3}), false)
    );
    assert_eq!(
        x.metric("crebito_pg_batch_rollbacks_total").await,
        0.0,
        "the batch rolled back"
    );
    let rows = audit(&url).await;
    assert_eq!((rows[0].saldo, rows[0].rows), (0, 0), "nothing applied");
    assert_eq!((rows[1].saldo, rows[1].rows), (3, 1), "once");
}
