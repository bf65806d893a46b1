//! What only the Citus layout has to prove: the rows really are sharded by client over the
//! workers, and each request is one single-shard task on the worker owning the client
//! (not a multi-shard plan, not three round trips through the coordinator). The contract,
//! concurrency and idempotency suites run on Citus too (`for_each_store!`, module `citus`).

use std::process::Command;

use std::time::{Duration, Instant};

use crebito::configuration::{DatabaseUrl, PgLayout, PgRoute};
use serde_json::json;

use crate::common::checks;
use crate::helpers::{audit, citus, pg, set_saldo, spawn_on};

/// A fresh schema on the test cluster and an instance on it, with `extra` more clients.
async fn app_with_clients(extra: u32) -> (crate::helpers::TestApp, citus::Database) {
    let db = citus::Database::create().await;
    let app = spawn_on(DatabaseUrl::Postgres(db.url.clone()), |a| {
        a.store.pg_layout = PgLayout::Citus;
        a.store.extra_clients = extra;
        a.store.extra_clients_limit = 5_000;
    })
    .await;
    (app, db)
}

/// psql on the coordinator, in the test's schema, each statement on its own (as crebito
/// sends them: one statement outside any transaction block); returns (stdout, stderr).
fn psql(db: &citus::Database, statements: &[&str]) -> (String, String) {
    let c = citus::cluster();
    let schema = db.schema();
    let bin = pg::find_bin().expect("PostgreSQL binaries (deploy/native/stack pg-bin)");
    let out = Command::new(bin.join("psql"))
        .args(["-h", &c.dir.join("pg").display().to_string()])
        .args([
            "-p",
            &(c.port + 1).to_string(),
            "-U",
            "postgres",
            "-d",
            "rinha",
        ])
        .args(["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1"])
        .arg("-c")
        .arg(format!("SET search_path = {schema}"))
        .args(statements.iter().flat_map(|s| ["-c", s]))
        .output()
        .expect("psql runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "psql failed: {stderr}");
    (stdout, stderr)
}

/// The prepared statement with literal arguments, as psql can run it.
fn with_args(sql: &str, args: &[(&str, &str)]) -> String {
    let mut sql: String = sql
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    for (param, value) in args {
        sql = sql.replace(param, value);
    }
    sql
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_rows_live_on_different_workers() {
    let (app, db) = app_with_clients(20).await;
    // Extra clients exist, with their limit, and work like the contest's five.
    let (status, body) = app
        .post_json(
            25,
            json!({"valor": 5_000, "tipo": "d", "descricao": "extra"}),
        )
        .await;
    assert_eq!((status.as_u16(), &body["limite"]), (200, &json!(5_000)));
    assert_eq!(app.extrato(26).await.0, 404, "only 20 extra clients");
    for id in 1..=25 {
        app.post_json(id, json!({"valor": 1, "tipo": "c", "descricao": "x"}))
            .await;
    }
    // Where each client's balance row and transactions are: the node of its shard.
    let (placement, _) = psql(
        &db,
        &["WITH ids AS MATERIALIZED (SELECT id FROM clientes)
         SELECT ids.id, c.nodeport, t.nodeport
           FROM ids
           JOIN citus_shards c ON c.table_name = 'clientes'::regclass
            AND c.shardid = get_shard_id_for_distribution_column('clientes', ids.id)
           JOIN citus_shards t ON t.table_name = 'transacoes'::regclass
            AND t.shardid = get_shard_id_for_distribution_column('transacoes', ids.id)
          ORDER BY 1"],
    );
    let rows: Vec<Vec<&str>> = placement.lines().map(|l| l.split('|').collect()).collect();
    assert_eq!(rows.len(), 25, "{placement}");
    let mut nodes: Vec<&str> = rows.iter().map(|r| r[1]).collect();
    nodes.sort();
    nodes.dedup();
    assert_eq!(
        nodes.len(),
        2,
        "clients spread over both workers: {placement}"
    );
    for r in &rows {
        assert_eq!(
            r[1], r[2],
            "a client's transactions live with its balance: {r:?}"
        );
    }
    let coordinator = (citus::cluster().port + 1).to_string();
    assert!(
        !nodes.contains(&coordinator.as_str()),
        "no shard on the coordinator"
    );
    for row in audit(&DatabaseUrl::Postgres(db.url.clone())).await {
        assert_eq!(row.saldo, row.sum, "{row:?}");
    }
}

/// The coordinator's side: what a request sent there runs (the fallback after a shard move,
/// for a client the routes miss, and everything with `--pg-route coordinator`). The statement
/// is a router plan, and each apply function is delegated whole to the worker owning the
/// client: one remote call, no UPDATE or INSERT sent from the coordinator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_the_coordinator_each_request_is_one_task_on_the_clients_worker() {
    let (_app, db) = app_with_clients(0).await;
    let sql = |f| {
        std::fs::read_to_string(format!("{}/sql/postgres/{f}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    };

    // The statement (extrato): a router plan, one task.
    let statement = with_args(&sql("statement.sql"), &[("$1::int4", "3")]);
    let (plan, _) = psql(&db, &[&format!("EXPLAIN (COSTS OFF) {statement}")]);
    assert!(plan.contains("Task Count: 1"), "{plan}");

    // apply and apply_once: the whole call delegated to one worker, as one remote command
    // (no UPDATE or INSERT sent from the coordinator). Each debits 5 from client 3 (limit
    // 1 000 000): the first leaves -5, the second -10.
    for (file, extra, expected) in [
        ("citus/apply.sql", vec![], "-5|1000000|"),
        (
            "citus/apply_once.sql",
            vec![("$6::text", "'k1'"), ("$7::text", "'fp'")],
            "-10|1000000|",
        ),
    ] {
        let mut args = vec![
            ("$1::int4", "3"),
            ("$2::int8", "-5"),
            ("$3::int4", "5"),
            ("$4::text", "'d'"),
            ("$5::text", "'router'"),
        ];
        args.extend(extra);
        let call = with_args(&sql(file), &args);
        let (out, log) = psql(
            &db,
            &[
                "SET citus.log_remote_commands = on",
                "SET client_min_messages = log",
                &call,
            ],
        );
        let issued: Vec<&str> = log.lines().filter(|l| l.contains("issuing")).collect();
        assert_eq!(issued.len(), 1, "{file}: one remote command: {log}");
        assert!(issued[0].contains("crebito_apply"), "{file}: {log}");
        assert!(out.starts_with(expected), "{file}: {out}");
    }
}

/// The way onto a cluster: a database that ran in the single layout (plain tables on the
/// coordinator, with history) is distributed by `--pg-layout citus` with its rows; balances,
/// statements and their order carry over, and new transactions go on top.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_layout_database_moves_onto_the_cluster_with_its_history() {
    let db = citus::Database::create().await;
    let url = DatabaseUrl::Postgres(db.url.clone());
    let single = spawn_on(url.clone(), |_| {}).await;
    for (i, tipo) in ["d", "c", "d"].iter().enumerate() {
        let body = json!({"valor": 100 + i, "tipo": tipo, "descricao": format!("antes{i}")});
        assert_eq!(single.post_json(1, body).await.0, 200);
    }
    let (_, before) = single.extrato(1).await;
    drop(single);

    let sharded = spawn_on(url.clone(), |a| a.store.pg_layout = PgLayout::Citus).await;
    let (status, after) = sharded.extrato(1).await;
    assert_eq!(status, 200);
    assert_eq!(after["saldo"]["total"], before["saldo"]["total"]);
    assert_eq!(after["ultimas_transacoes"], before["ultimas_transacoes"]);
    let (status, _) = sharded
        .post_json(1, json!({"valor": 7, "tipo": "c", "descricao": "depois"}))
        .await;
    assert_eq!(status, 200);
    let (_, now) = sharded.extrato(1).await;
    assert_eq!(
        now["ultimas_transacoes"][0]["descricao"], "depois",
        "newest first"
    );
    assert_eq!(now["ultimas_transacoes"][1]["descricao"], "antes2");
    // The three tables are distributed, the rows in their shards (counted once).
    let (dist, _) = psql(
        &db,
        &[
            "SELECT count(*) FROM pg_dist_partition WHERE logicalrelid IN \
             ('clientes'::regclass, 'transacoes'::regclass, 'idempotencia'::regclass)",
            "SELECT count(*) FROM transacoes",
        ],
    );
    assert_eq!(dist.lines().collect::<Vec<_>>(), ["3", "4"], "{dist}");
    for row in audit(&url).await {
        assert_eq!(row.saldo, row.sum, "{row:?}");
    }
}

/// "Newest first" holds whichever node inserted a transaction. Citus numbers an identity per
/// node (worker group g from g·2⁴⁸+1, the coordinator from 1), and a call inside a transaction
/// block is not delegated: it runs on the node that received it, which inserts with its own
/// numbers. Four transactions applied that way through the coordinator, after three routed to
/// the owner, used to get smaller ids and be listed *below* the older ones. The order is now
/// the client's own counter, bumped by the UPDATE that holds its row lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newest_first_holds_for_transactions_inserted_through_another_node() {
    let (app, db) = app_with_clients(0).await;
    for d in ["a1", "a2", "a3"] {
        let (status, _) = app
            .post_json(1, json!({"valor": 1, "tipo": "c", "descricao": d}))
            .await;
        assert_eq!(status, 200);
    }
    let calls: Vec<String> = ["b1", "b2", "b3", "b4"]
        .iter()
        .map(|d| format!("SELECT * FROM crebito_apply(1, 2, 2, 'c', '{d}');"))
        .collect();
    psql(&db, &[&format!("BEGIN; {} COMMIT;", calls.join(" "))]);
    let (status, body) = app.extrato(1).await;
    assert_eq!(status, 200);
    let order: Vec<&str> = body["ultimas_transacoes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["descricao"].as_str().unwrap())
        .collect();
    assert_eq!(
        order,
        ["b4", "b3", "b2", "b1", "a3", "a2", "a1"],
        "{body:#}"
    );
    assert_eq!(body["saldo"]["total"], 11);
}

/// Everything through the coordinator (`--pg-route coordinator`, the path the direct route
/// falls back to): its delegated functions answer an overflow, a refusal, a replay and a key
/// reused with another body exactly as the direct path does, and nothing went to a worker
/// straight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_the_coordinator_an_overflow_a_replay_and_a_reused_key_are_answered_alike() {
    let db = citus::Database::create().await;
    let url = DatabaseUrl::Postgres(db.url.clone());
    let app = spawn_on(url.clone(), |a| {
        a.store.pg_layout = PgLayout::Citus;
        a.store.pg_route = PgRoute::Coordinator;
    })
    .await;
    // An overflow: refused like a debit over the limit; the largest balance is reached.
    set_saldo(&url, 1, i64::MAX - 10).await;
    let (s, text) = app
        .post(1, r#"{"valor": 11, "tipo": "c", "descricao": "estouro"}"#)
        .await;
    assert_eq!((s.as_u16(), text.as_str()), (422, "over the limit"));
    let (s, body) = app
        .post_json(1, json!({"valor": 10, "tipo": "c", "descricao": "topo"}))
        .await;
    assert_eq!(
        (s.as_u16(), body),
        (200, json!({"limite": 100000, "saldo": i64::MAX}))
    );
    let (s, body) = app
        .post_json(1, json!({"valor": 1, "tipo": "d", "descricao": "volta"}))
        .await;
    assert_eq!((s.as_u16(), &body["saldo"]), (200, &json!(i64::MAX - 1)));
    // A keyed debit, its replay, a key reused with another body, a refusal replayed.
    let debit = json!({"valor": 700, "tipo": "d", "descricao": "k"});
    let (s, first, replayed) = app.post_keyed(2, debit.clone(), "k1").await;
    assert_eq!(
        (s.as_u16(), &first, replayed),
        (200, &json!({"limite": 80000, "saldo": -700}), false)
    );
    let (s, again, replayed) = app.post_keyed(2, debit, "k1").await;
    assert_eq!((s.as_u16(), &again, replayed), (200, &first, true));
    let (s, text, _) = app
        .post_keyed(
            2,
            json!({"valor": 701, "tipo": "d", "descricao": "k"}),
            "k1",
        )
        .await;
    assert_eq!(
        (s.as_u16(), text),
        (
            422,
            json!("Idempotency-Key already used with a different request")
        )
    );
    let over = json!({"valor": 90000, "tipo": "d", "descricao": "big"});
    let (s, text, replayed) = app.post_keyed(2, over.clone(), "k2").await;
    assert_eq!(
        (s.as_u16(), text, replayed),
        (422, json!("over the limit"), false)
    );
    let (s, text, replayed) = app.post_keyed(2, over, "k2").await;
    assert_eq!(
        (s.as_u16(), text, replayed),
        (422, json!("over the limit"), true)
    );
    assert_eq!(app.saldo(2).await, -700);
    // All of it through the coordinator: no route to a worker was ever loaded.
    let metrics = app.metrics().await;
    assert!(!metrics.contains("crebito_pg_routed_clients"), "{metrics}");
    assert_eq!(
        app.metric(r#"crebito_pg_batch_size_count{node="owner"}"#)
            .await,
        8.0,
        "the eight POSTs, each through the coordinator"
    );
    // (Client 1's balance was set by hand for the overflow: its rows do not sum to it.)
    for row in audit(&url).await.into_iter().filter(|r| r.id != 1) {
        assert_eq!(row.saldo, row.sum, "{row:?}");
    }
}

/// The same key sent at once through an instance on the direct path and one through the
/// coordinator (the fallback racing the direct path, on one shard row): applied once, the
/// others replay it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_key_racing_on_the_direct_path_and_through_the_coordinator_applies_once() {
    let db = citus::Database::create().await;
    let url = DatabaseUrl::Postgres(db.url.clone());
    let direct = spawn_on(url.clone(), |a| a.store.pg_layout = PgLayout::Citus).await;
    let relayed = spawn_on(url.clone(), |a| {
        a.store.pg_layout = PgLayout::Citus;
        a.store.pg_route = PgRoute::Coordinator;
    })
    .await;
    checks::one_key_racing_on_two_apis(&direct.api, &relayed.api).await;
    assert_eq!(audit(&url).await[3].rows, 5, "one transaction per key");
}

/// The direct path's failures, on a worker: a POST held past the store's deadline by its
/// client's row lock is 504 "outcome unknown" and applies once the lock goes, which a keyed
/// retry tells without applying it twice; the same POST whose worker connection is cut while
/// it waits is 504 too, and applied never.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_direct_path_a_held_row_is_504_a_cut_connection_504_and_a_keyed_retry_settles_each()
{
    let db = citus::Database::create().await;
    let url = DatabaseUrl::Postgres(db.url.clone());
    let app = spawn_on(url.clone(), |a| {
        a.store.pg_layout = PgLayout::Citus;
        a.store_timeout = 1;
    })
    .await;
    let (admin, conn) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    const UNKNOWN: &str =
        "outcome unknown: retry with the same Idempotency-Key to apply it at most once";

    // Held past the deadline, then released: applied once, the retry replays it.
    admin
        .batch_execute("BEGIN; SELECT 1 FROM clientes WHERE id = 1 FOR UPDATE")
        .await
        .unwrap();
    let body = json!({"valor": 40, "tipo": "d", "descricao": "slow"});
    let (s, text, _) = app.post_keyed(1, body.clone(), "slow-1").await;
    assert_eq!((s.as_u16(), text), (504, json!(UNKNOWN)));
    admin.batch_execute("COMMIT").await.unwrap();
    let (s, answer, replayed) = app.post_keyed(1, body.clone(), "slow-1").await;
    assert_eq!((s.as_u16(), replayed), (200, true), "{answer}");
    assert_eq!(answer, json!({"limite": 100000, "saldo": -40}));
    assert_eq!(app.saldo(1).await, -40, "applied exactly once");

    // Cut while it waits on the worker: a long deadline, so the 504 is the cut's.
    let patient = spawn_on(url.clone(), |a| {
        a.store.pg_layout = PgLayout::Citus;
        a.store_timeout = 30;
    })
    .await;
    admin
        .batch_execute("BEGIN; SELECT 1 FROM clientes WHERE id = 1 FOR UPDATE")
        .await
        .unwrap();
    let api = patient.api.clone();
    let cut = tokio::spawn(async move {
        api.post_keyed(
            1,
            json!({"valor": 2, "tipo": "d", "descricao": "cut"}),
            "cut-1",
        )
        .await
    });
    // The waiting backend, on its worker: the one holding the tuple lock of this test's shard
    // of clientes (the first waiter for a row takes it; other tests share the cluster).
    let shard: String = admin
        .query_one(
            "SELECT shard_name('clientes'::regclass, get_shard_id_for_distribution_column('clientes', 1))",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let relname = shard.rsplit('.').next().unwrap().to_string();
    let waiters = format!(
        "FROM pg_locks l JOIN pg_class c ON c.oid = l.relation \
         WHERE l.locktype = 'tuple' AND c.relname = '{relname}'"
    );
    let waiting = format!(
        "SELECT coalesce(sum(result::int), 0)::int8 FROM run_command_on_workers($$SELECT count(*) {waiters}$$) WHERE success"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while admin
        .query_one(&waiting, &[])
        .await
        .unwrap()
        .get::<_, i64>(0)
        == 0
    {
        assert!(
            Instant::now() < deadline,
            "the POST never waited on the worker"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    admin
        .batch_execute(&format!(
            "SELECT run_command_on_workers($$SELECT pg_terminate_backend(l.pid) {waiters}$$)"
        ))
        .await
        .unwrap();
    let (s, text, _) = cut.await.unwrap();
    assert_eq!((s.as_u16(), text), (504, json!(UNKNOWN)));
    admin.batch_execute("COMMIT").await.unwrap();
    let retry = json!({"valor": 2, "tipo": "d", "descricao": "cut"});
    let deadline = Instant::now() + Duration::from_secs(20);
    let (s, answer, replayed) = loop {
        // The instance reconnects to the worker by itself (503 until then: not applied).
        let answer = patient.post_keyed(1, retry.clone(), "cut-1").await;
        if answer.0 != 503 || Instant::now() > deadline {
            break answer;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        (s.as_u16(), answer, replayed),
        (200, json!({"limite": 100000, "saldo": -42}), false),
        "the cut attempt applied nothing: the retry applies it"
    );
    assert_eq!(app.saldo(1).await, -42);
    let rows = audit(&url).await;
    assert_eq!((rows[0].saldo, rows[0].rows), (-42, 2));
}
