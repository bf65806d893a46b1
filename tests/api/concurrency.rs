//! The balance invariant under concurrency: no lost update, never below −limite, every
//! accepted transaction stored exactly once.

use serde_json::json;

use crate::common::checks::{self, simultaneous};
use crate::for_each_store;
use crate::helpers::{TestApp, audit};

for_each_store!(
    twenty_five_debits_then_twenty_five_credits_at_once,
    debits_that_together_exceed_the_limit_accept_exactly_those_that_fit,
    mixed_concurrent_traffic_keeps_saldo_equal_to_the_accepted_sum,
    accepted_transactions_are_stored_exactly_once,
    the_statement_lists_the_newest_first_in_the_order_they_were_applied,
);

async fn twenty_five_debits_then_twenty_five_credits_at_once(app: TestApp) {
    checks::concurrent_debits_then_credits(std::slice::from_ref(&app.api)).await;
}

async fn debits_that_together_exceed_the_limit_accept_exactly_those_that_fit(app: TestApp) {
    // Client 2 has limite 80 000: 200 simultaneous debits of 1 000 — exactly 80 fit.
    let results = simultaneous(
        std::slice::from_ref(&app.api),
        2,
        json!({"valor": 1000, "tipo": "d", "descricao": "corrida"}),
        200,
    )
    .await;
    let accepted: Vec<i64> = results
        .iter()
        .filter(|(s, _)| *s == 200)
        .map(|(_, b)| b["saldo"].as_i64().unwrap())
        .collect();
    let refused = results.iter().filter(|(s, _)| *s == 422).count();
    assert_eq!(accepted.len(), 80, "exactly the debits that fit");
    assert_eq!(refused, 120, "the others are 422, nothing else");
    let mut seen = accepted.clone();
    seen.sort();
    let expected: Vec<i64> = (1..=80).rev().map(|k| -k * 1000).collect();
    assert_eq!(
        seen, expected,
        "every accepted debit saw a distinct, serialised balance"
    );
    let (_, e) = app.extrato(2).await;
    assert_eq!(e["saldo"]["total"], -80_000);
    assert_eq!(e["ultimas_transacoes"].as_array().unwrap().len(), 10);
}

async fn mixed_concurrent_traffic_keeps_saldo_equal_to_the_accepted_sum(app: TestApp) {
    // Client 1 (limite 100 000): 300 concurrent requests of varied amounts, debits and
    // credits interleaved; the final balance must be the sum of exactly the accepted ones.
    let mut set = tokio::task::JoinSet::new();
    for k in 0..300i64 {
        let api = app.api.clone();
        set.spawn(async move {
            let valor = 1_000 + (k * 7919) % 9_000;
            let tipo = if k % 4 == 0 { "c" } else { "d" };
            let (status, text) = api
                .post(
                    1,
                    &json!({"valor": valor, "tipo": tipo, "descricao": "mix"}).to_string(),
                )
                .await;
            (status, text, if tipo == "c" { valor } else { -valor })
        });
    }
    let mut sum = 0;
    let mut not_applied = 0;
    for (status, body, delta) in set.join_all().await {
        match status.as_u16() {
            200 => {
                sum += delta;
                let body: serde_json::Value = serde_json::from_str(&body).unwrap();
                assert!(body["saldo"].as_i64().unwrap() >= -100_000);
            }
            422 => assert!(delta < 0, "only debits may be refused"),
            // "Not applied, retry": allowed by the contract under load, and it must be true —
            // the balance below is the sum of the 200s only. Seen once on a busy CI machine,
            // Citus layout (cause not found yet), so counted and shown rather than failed.
            503 => {
                assert_eq!(body, "store unavailable: not applied, retry");
                not_applied += 1;
            }
            other => panic!("unexpected status {other}: {body}"),
        }
    }
    if not_applied > 0 {
        eprintln!("{not_applied} of 300 writes answered 503 (not applied)");
    }
    assert_eq!(
        app.saldo(1).await,
        sum,
        "the balance is the sum of the 200s"
    );
    assert!(sum >= -100_000);
}

async fn accepted_transactions_are_stored_exactly_once(app: TestApp) {
    // 250 concurrent requests over all five clients, mixed kinds and sizes, some refused.
    let mut set = tokio::task::JoinSet::new();
    for k in 0..250u32 {
        let api = app.api.clone();
        set.spawn(async move {
            let id = 1 + k % 5;
            let valor = 1 + i64::from(k * 104_729 % 60_000);
            let tipo = if k % 3 == 0 { "c" } else { "d" };
            let (status, _) = api
                .post_json(
                    id,
                    json!({"valor": valor, "tipo": tipo, "descricao": "audit"}),
                )
                .await;
            (
                id,
                status.as_u16(),
                if tipo == "c" { valor } else { -valor },
            )
        });
    }
    let mut accepted = [(0i64, 0i64); 6];
    for (id, status, delta) in set.join_all().await {
        assert!(status == 200 || status == 422, "status {status}");
        if status == 200 {
            accepted[id as usize].0 += 1;
            accepted[id as usize].1 += delta;
        }
    }
    let rows = audit(&app.database_url).await;
    assert_eq!(rows.len(), 5, "only the five clients exist");
    for a in rows {
        let (count, sum) = accepted[a.id as usize];
        assert_eq!(a.rows, count, "client {}: one stored row per 200", a.id);
        assert_eq!(
            a.sum, sum,
            "client {}: stored rows are the accepted ones",
            a.id
        );
        assert_eq!(
            a.saldo, a.sum,
            "client {}: saldo equals the sum of its transactions",
            a.id
        );
        assert!(a.saldo >= -a.limite, "client {}: never below -limite", a.id);
    }
}

async fn the_statement_lists_the_newest_first_in_the_order_they_were_applied(app: TestApp) {
    // 60 simultaneous credits of 1 on client 3, each with its own descricao: the balance each
    // was answered with is its place in the order they were applied (1 to 60), and the
    // statement lists the ten last of that order, newest first.
    let mut set = tokio::task::JoinSet::new();
    for k in 0..60 {
        let api = app.api.clone();
        set.spawn(async move {
            let d = format!("n{k:02}");
            let (status, body) = api
                .post_json(3, json!({"valor": 1, "tipo": "c", "descricao": d}))
                .await;
            assert_eq!(status, 200, "{body}");
            (body["saldo"].as_i64().unwrap(), d)
        });
    }
    let mut order = set.join_all().await;
    order.sort();
    let places: Vec<i64> = order.iter().map(|(saldo, _)| *saldo).collect();
    assert_eq!(
        places,
        (1..=60).collect::<Vec<_>>(),
        "each saw its own balance"
    );
    let newest_first: Vec<&str> = order
        .iter()
        .rev()
        .take(10)
        .map(|(_, d)| d.as_str())
        .collect();
    let (_, e) = app.extrato(3).await;
    let listed: Vec<&str> = e["ultimas_transacoes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["descricao"].as_str().unwrap())
        .collect();
    assert_eq!(listed, newest_first, "{e:#}");
    assert_eq!(e["saldo"]["total"], 60);
}
