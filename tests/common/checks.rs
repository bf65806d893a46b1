//! Checks that need only a base URL, so that the same code verifies one in-process
//! instance (tests/api) and the whole contest stack through nginx (tests/stack.rs).

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use super::api::Api;

/// The five contest clients (id, limite).
pub const CLIENTS: [(u32, i64); 5] = [
    (1, 100_000),
    (2, 80_000),
    (3, 1_000_000),
    (4, 10_000_000),
    (5, 500_000),
];

/// `n` simultaneous POSTs of `body` to client `id`; returns their statuses and bodies.
/// With several instances the requests alternate between them.
pub async fn simultaneous(
    apis: &[Api],
    id: u32,
    body: Value,
    n: usize,
) -> Vec<(StatusCode, Value)> {
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(n));
    let mut set = JoinSet::new();
    for k in 0..n {
        let (api, body, barrier) = (apis[k % apis.len()].clone(), body.clone(), barrier.clone());
        set.spawn(async move {
            barrier.wait().await;
            api.post_json(id, body).await
        });
    }
    set.join_all().await
}

/// Scenarios A–D of the official simulation: 25 simultaneous debits of 1 on client 1,
/// balance exactly −25; 25 simultaneous credits, balance exactly 0.
pub async fn concurrent_debits_then_credits(apis: &[Api]) {
    let api = &apis[0];
    let debits = simultaneous(
        apis,
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
    assert_eq!(api.saldo(1).await, -25);

    let credits = simultaneous(
        apis,
        1,
        json!({"valor": 1, "tipo": "c", "descricao": "validacao"}),
        25,
    )
    .await;
    assert!(
        credits.iter().all(|(s, _)| *s == 200),
        "every credit is 200: {credits:?}"
    );
    assert_eq!(api.saldo(1).await, 0);
}

/// Scenario E for one client (spec §2.1): expects that client to be untouched.
pub async fn criterios_cliente(apis: &[Api], id: u32, limite: i64) {
    let api = &apis[0];
    let other = &apis[apis.len() - 1];
    let (status, e) = api.extrato(id).await;
    assert_eq!(status, 200);
    assert_eq!(e["saldo"]["limite"], limite);
    assert_eq!(e["saldo"]["total"], 0);

    let (status, b) = api
        .post_json(id, json!({"valor": 1, "tipo": "c", "descricao": "toma"}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(b, json!({"limite": limite, "saldo": 1}));
    let (status, b) = other
        .post_json(id, json!({"valor": 1, "tipo": "d", "descricao": "devolve"}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(b, json!({"limite": limite, "saldo": 0}));

    let (status, e) = api.extrato(id).await;
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

    let (status, b) = api
        .post_json(id, json!({"valor": 1, "tipo": "c", "descricao": "danada"}))
        .await;
    assert_eq!(status, 200);
    let saved_saldo = b["saldo"].clone();
    // Four parallel statements, on every instance: read-your-writes across instances.
    let mut set = JoinSet::new();
    for k in 0..4 {
        let api = apis[k % apis.len()].clone();
        set.spawn(async move { api.extrato(id).await });
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
        let (status, _) = api.post(id, bad).await;
        assert_eq!(status, 422, "{bad}");
    }
}

/// The official validation scenarios A–F, in their order, against a fresh database.
pub async fn official_validation_sequence(apis: &[Api]) {
    concurrent_debits_then_credits(apis).await;
    let mut set = JoinSet::new();
    for (id, limite) in CLIENTS {
        let apis = apis.to_vec();
        set.spawn(async move { criterios_cliente(&apis, id, limite).await });
    }
    let (status, _) = apis[0].extrato(6).await;
    assert_eq!(status, 404, "client 6 does not exist");
    set.join_all().await;
}

/// Five rounds of one `Idempotency-Key` sent 20 times at once, alternately through `a` and
/// `b` (two instances, or two paths to one store): every answer 200, exactly one applied and
/// the rest replays of it, all with the same balance. Client 4 gains one credit per round.
pub async fn one_key_racing_on_two_apis(a: &Api, b: &Api) {
    for round in 0..5 {
        let key = format!("race-{round}");
        let mut set = JoinSet::new();
        for k in 0..20 {
            let api = if k % 2 == 0 { a.clone() } else { b.clone() };
            let key = key.clone();
            set.spawn(async move {
                api.post_keyed(4, json!({"valor": 1, "tipo": "c", "descricao": "r"}), &key)
                    .await
            });
        }
        let answers = set.join_all().await;
        assert!(answers.iter().all(|(s, _, _)| *s == 200), "{answers:?}");
        assert_eq!(
            answers.iter().filter(|(_, _, replayed)| !replayed).count(),
            1,
            "one applied, the rest replayed: {answers:?}"
        );
        let saldo = &answers[0].1["saldo"];
        assert!(
            answers.iter().all(|(_, body, _)| &body["saldo"] == saldo),
            "{answers:?}"
        );
    }
}
