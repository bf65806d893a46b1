//! What only the Citus layout has to prove: the rows really are sharded by client over the
//! workers, and each request is one single-shard task on the worker owning the client
//! (not a multi-shard plan, not three round trips through the coordinator). The contract,
//! concurrency and idempotency suites run on Citus too (`for_each_store!`, module `citus`).

use std::process::Command;

use crebito::configuration::{DatabaseUrl, PgLayout};
use serde_json::json;

use crate::helpers::{audit, citus, pg, spawn_on};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_request_is_one_task_on_the_clients_worker() {
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
