//! `Idempotency-Key`: a POST retried with its key is applied at most once, and answered
//! with what the first one got, on both stores.

use serde_json::json;
use tokio::task::JoinSet;

use crate::for_each_store;
use crate::helpers::{TestApp, audit};

for_each_store!(
    a_retry_with_the_same_key_replays_the_answer_and_applies_nothing,
    a_key_reused_for_a_different_request_is_422_and_applies_nothing,
    a_refused_debit_is_replayed_as_422_too,
    keys_belong_to_one_client,
    malformed_keys_are_422_and_leave_no_trace,
    simultaneous_requests_with_one_key_apply_once,
);

async fn a_retry_with_the_same_key_replays_the_answer_and_applies_nothing(app: TestApp) {
    let body = json!({"valor": 700, "tipo": "d", "descricao": "pix"});
    let (s1, b1, r1) = app.post_keyed(1, body.clone(), "k-1").await;
    assert_eq!((s1.as_u16(), r1), (200, false));
    assert_eq!(b1, json!({"limite": 100000, "saldo": -700}));
    // Something else happens in between: the replay is the first answer, not today's.
    app.post_json(1, json!({"valor": 5, "tipo": "c", "descricao": "x"}))
        .await;
    for _ in 0..3 {
        let (s, b, replayed) = app.post_keyed(1, body.clone(), "k-1").await;
        assert_eq!((s.as_u16(), replayed), (200, true));
        assert_eq!(b, b1);
    }
    assert_eq!(app.saldo(1).await, -695);
    assert_eq!(audit(&app.database_url).await[0].rows, 2);
}

async fn a_key_reused_for_a_different_request_is_422_and_applies_nothing(app: TestApp) {
    let (s, _, _) = app
        .post_keyed(
            2,
            json!({"valor": 10, "tipo": "c", "descricao": "a"}),
            "same",
        )
        .await;
    assert_eq!(s, 200);
    for other in [
        json!({"valor": 11, "tipo": "c", "descricao": "a"}),
        json!({"valor": 10, "tipo": "d", "descricao": "a"}),
        json!({"valor": 10, "tipo": "c", "descricao": "b"}),
    ] {
        let r = app
            .client
            .post(format!("{}/clientes/2/transacoes", app.base))
            .header("idempotency-key", "same")
            .body(other.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422, "{other}");
        assert!(r.text().await.unwrap().contains("Idempotency-Key"));
    }
    assert_eq!(app.saldo(2).await, 10);
    assert_eq!(audit(&app.database_url).await[1].rows, 1);
}

async fn a_refused_debit_is_replayed_as_422_too(app: TestApp) {
    let over = json!({"valor": 80001, "tipo": "d", "descricao": "big"});
    let (s, _, replayed) = app.post_keyed(2, over.clone(), "r").await;
    assert_eq!((s.as_u16(), replayed), (422, false));
    // Even once the debit would fit, the key's answer stays the first one.
    app.post_json(2, json!({"valor": 10, "tipo": "c", "descricao": "c"}))
        .await;
    let (s, _, replayed) = app.post_keyed(2, over.clone(), "r").await;
    assert_eq!((s.as_u16(), replayed), (422, true));
    let (s, _, replayed) = app.post_keyed(2, over, "r2").await;
    assert_eq!(
        (s.as_u16(), replayed),
        (200, false),
        "a new key is a new request"
    );
    assert_eq!(app.saldo(2).await, 10 - 80001);
}

async fn keys_belong_to_one_client(app: TestApp) {
    let body = json!({"valor": 3, "tipo": "c", "descricao": "k"});
    for id in [1, 2, 3] {
        let (s, _, replayed) = app.post_keyed(id, body.clone(), "shared").await;
        assert_eq!((s.as_u16(), replayed), (200, false), "client {id}");
    }
    let (s, _, _) = app.post_keyed(6, body, "shared").await;
    assert_eq!(s, 404);
    let rows = audit(&app.database_url).await;
    assert_eq!([rows[0].rows, rows[1].rows, rows[2].rows], [1, 1, 1]);
}

async fn malformed_keys_are_422_and_leave_no_trace(app: TestApp) {
    let body = json!({"valor": 3, "tipo": "c", "descricao": "k"}).to_string();
    for key in ["", "has space", &"x".repeat(65)] {
        let r = app
            .client
            .post(format!("{}/clientes/1/transacoes", app.base))
            .header("idempotency-key", key)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422, "{key:?}");
    }
    let r = app
        .client
        .post(format!("{}/clientes/1/transacoes", app.base))
        .header("idempotency-key", "a")
        .header("idempotency-key", "b")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422, "two keys");
    // The connection is still usable, and nothing was applied.
    assert_eq!(app.saldo(1).await, 0);
    let (s, _, _) = app
        .post_keyed(
            1,
            json!({"valor": 3, "tipo": "c", "descricao": "k"}),
            &"x".repeat(64),
        )
        .await;
    assert_eq!(s, 200, "64 characters is fine");
}

async fn simultaneous_requests_with_one_key_apply_once(app: TestApp) {
    let mut set = JoinSet::new();
    for _ in 0..40 {
        let api = app.api.clone();
        set.spawn(async move {
            api.post_keyed(
                1,
                json!({"valor": 9, "tipo": "d", "descricao": "race"}),
                "race",
            )
            .await
        });
    }
    let answers = set.join_all().await;
    assert!(
        answers
            .iter()
            .all(|(s, b, _)| *s == 200 && *b == json!({"limite": 100000, "saldo": -9})),
        "{answers:?}"
    );
    assert_eq!(
        answers.iter().filter(|(_, _, replayed)| !replayed).count(),
        1
    );
    assert_eq!(app.saldo(1).await, -9);
    assert_eq!(audit(&app.database_url).await[0].rows, 1);
}
