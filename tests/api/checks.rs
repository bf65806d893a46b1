//! Checks that need only a base URL, so that the same code verifies one in-process
//! instance (tests/api) and the whole contest stack through nginx (tests/stack.rs).

#![allow(dead_code)]

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use tokio::task::JoinSet;

/// The five contest clients (id, limite).
pub const CLIENTS: [(u32, i64); 5] = [
    (1, 100_000),
    (2, 80_000),
    (3, 1_000_000),
    (4, 10_000_000),
    (5, 500_000),
];

pub async fn post(
    client: &Client,
    base: &str,
    id: impl std::fmt::Display,
    body: &str,
) -> (StatusCode, String) {
    let r = client
        .post(format!("{base}/clientes/{id}/transacoes"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("request sent");
    let status = r.status();
    (status, r.text().await.unwrap())
}

pub async fn post_json(
    client: &Client,
    base: &str,
    id: impl std::fmt::Display,
    body: Value,
) -> (StatusCode, Value) {
    let (status, text) = post(client, base, id, &body.to_string()).await;
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

pub async fn extrato(
    client: &Client,
    base: &str,
    id: impl std::fmt::Display,
) -> (StatusCode, Value) {
    let r = client
        .get(format!("{base}/clientes/{id}/extrato"))
        .send()
        .await
        .expect("request sent");
    let status = r.status();
    (
        status,
        serde_json::from_str(&r.text().await.unwrap()).unwrap_or(Value::Null),
    )
}

/// `GET /healthz`: status and body.
pub async fn healthz(client: &Client, base: &str) -> (StatusCode, String) {
    let r = client
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect("request sent");
    let status = r.status();
    (status, r.text().await.unwrap())
}

pub async fn saldo(client: &Client, base: &str, id: u32) -> i64 {
    let (status, body) = extrato(client, base, id).await;
    assert_eq!(status, 200);
    body["saldo"]["total"]
        .as_i64()
        .expect("saldo.total is an integer")
}

/// `n` simultaneous POSTs of `body` to client `id`; returns their statuses and bodies.
/// With several bases the requests alternate between them.
pub async fn simultaneous(
    client: &Client,
    bases: &[String],
    id: u32,
    body: Value,
    n: usize,
) -> Vec<(StatusCode, Value)> {
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(n));
    let mut set = JoinSet::new();
    for k in 0..n {
        let (client, base, body, barrier) = (
            client.clone(),
            bases[k % bases.len()].clone(),
            body.clone(),
            barrier.clone(),
        );
        set.spawn(async move {
            barrier.wait().await;
            post_json(&client, &base, id, body).await
        });
    }
    set.join_all().await
}

/// Scenarios A–D of the official simulation: 25 simultaneous debits of 1 on client 1,
/// balance exactly −25; 25 simultaneous credits, balance exactly 0.
pub async fn concurrent_debits_then_credits(client: &Client, bases: &[String]) {
    let base = &bases[0];
    let debits = simultaneous(
        client,
        bases,
        1,
        json!({"valor": 1, "tipo": "d", "descricao": "validacao"}),
        25,
    )
    .await;
    assert!(
        debits.iter().all(|(s, _)| *s == 200),
        "every debit is 200: {debits:?}"
    );
    let mut saldos: Vec<i64> = debits
        .iter()
        .map(|(_, b)| b["saldo"].as_i64().unwrap())
        .collect();
    saldos.sort();
    assert_eq!(
        saldos,
        (-25..=-1).collect::<Vec<_>>(),
        "each debit saw its own balance"
    );
    assert_eq!(saldo(client, base, 1).await, -25);

    let credits = simultaneous(
        client,
        bases,
        1,
        json!({"valor": 1, "tipo": "c", "descricao": "validacao"}),
        25,
    )
    .await;
    assert!(
        credits.iter().all(|(s, _)| *s == 200),
        "every credit is 200: {credits:?}"
    );
    assert_eq!(saldo(client, base, 1).await, 0);
}

/// Scenario E for one client (spec §2.1): expects that client to be untouched.
pub async fn criterios_cliente(client: &Client, bases: &[String], id: u32, limite: i64) {
    let base = &bases[0];
    let other = &bases[bases.len() - 1];
    let (status, e) = extrato(client, base, id).await;
    assert_eq!(status, 200);
    assert_eq!(e["saldo"]["limite"], limite);
    assert_eq!(e["saldo"]["total"], 0);

    let (status, b) = post_json(
        client,
        base,
        id,
        json!({"valor": 1, "tipo": "c", "descricao": "toma"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(b, json!({"limite": limite, "saldo": 1}));
    let (status, b) = post_json(
        client,
        other,
        id,
        json!({"valor": 1, "tipo": "d", "descricao": "devolve"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(b, json!({"limite": limite, "saldo": 0}));

    let (status, e) = extrato(client, base, id).await;
    assert_eq!(status, 200);
    let t = &e["ultimas_transacoes"];
    assert_eq!(
        (&t[0]["descricao"], &t[0]["tipo"], &t[0]["valor"]),
        (&json!("devolve"), &json!("d"), &json!(1))
    );
    assert_eq!(
        (&t[1]["descricao"], &t[1]["tipo"], &t[1]["valor"]),
        (&json!("toma"), &json!("c"), &json!(1))
    );

    let (status, b) = post_json(
        client,
        base,
        id,
        json!({"valor": 1, "tipo": "c", "descricao": "danada"}),
    )
    .await;
    assert_eq!(status, 200);
    let saved_saldo = b["saldo"].clone();
    // Four parallel statements, on every instance: read-your-writes across instances.
    let mut set = JoinSet::new();
    for k in 0..4 {
        let (client, b) = (client.clone(), bases[k % bases.len()].clone());
        set.spawn(async move { extrato(&client, &b, id).await });
    }
    for (status, e) in set.join_all().await {
        assert_eq!(status, 200);
        assert_eq!(e["ultimas_transacoes"][0]["descricao"], "danada");
        assert_eq!(e["ultimas_transacoes"][0]["tipo"], "c");
        assert_eq!(e["ultimas_transacoes"][0]["valor"], 1);
        assert_eq!(e["saldo"]["limite"], limite);
        assert_eq!(e["saldo"]["total"], saved_saldo);
    }

    for bad in [
        r#"{"valor": 1.2, "tipo": "d", "descricao": "devolve"}"#,
        r#"{"valor": 1, "tipo": "x", "descricao": "devolve"}"#,
        r#"{"valor": 1, "tipo": "c", "descricao": "123456789 e mais um pouco"}"#,
        r#"{"valor": 1, "tipo": "c", "descricao": ""}"#,
        r#"{"valor": 1, "tipo": "c", "descricao": null}"#,
    ] {
        let (status, _) = post(client, base, id, bad).await;
        assert_eq!(status, 422, "{bad}");
    }
}

/// The official validation scenarios A–F, in their order, against a fresh database.
pub async fn official_validation_sequence(client: &Client, bases: &[String]) {
    concurrent_debits_then_credits(client, bases).await;
    let mut set = JoinSet::new();
    for (id, limite) in CLIENTS {
        let (client, bases) = (client.clone(), bases.to_vec());
        set.spawn(async move { criterios_cliente(&client, &bases, id, limite).await });
    }
    let (status, _) = extrato(client, &bases[0], 6).await;
    assert_eq!(status, 404, "client 6 does not exist");
    set.join_all().await;
}
