//! `Idempotency-Key`: a POST retried with its key is applied at most once, and answered
//! with what the first one got, on both stores.

use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use std::time::{Duration, Instant};

use crate::for_each_store;
use crate::helpers::{Backend, TestApp, audit, read_response, spawn_app_with};

for_each_store!(
    a_retry_with_the_same_key_replays_the_answer_and_applies_nothing,
    a_key_reused_for_a_different_request_is_422_and_applies_nothing,
    a_refused_debit_is_replayed_as_422_too,
    keys_belong_to_one_client,
    malformed_keys_are_422_and_leave_no_trace,
    simultaneous_requests_with_one_key_apply_once,
    a_key_sent_with_an_invalid_body_is_not_used_up,
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
        assert_eq!(
            r.text().await.unwrap(),
            "Idempotency-Key already used with a different request"
        );
    }
    assert_eq!(app.saldo(2).await, 10);
    assert_eq!(audit(&app.database_url).await[1].rows, 1);
}

async fn a_refused_debit_is_replayed_as_422_too(app: TestApp) {
    let over = json!({"valor": 80001, "tipo": "d", "descricao": "big"});
    let (s, body, replayed) = app.post_keyed(2, over.clone(), "r").await;
    assert_eq!(
        (s.as_u16(), body, replayed),
        (422, json!("over the limit"), false)
    );
    // Even once the debit would fit, the key's answer stays the first one.
    app.post_json(2, json!({"valor": 10, "tipo": "c", "descricao": "c"}))
        .await;
    let (s, body, replayed) = app.post_keyed(2, over.clone(), "r").await;
    assert_eq!(
        (s.as_u16(), body, replayed),
        (422, json!("over the limit"), true),
        "the stored refusal, replayed with its body"
    );
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
        assert_eq!(
            r.text().await.unwrap(),
            "Idempotency-Key must be 1 to 64 visible ASCII characters",
            "{key:?}"
        );
    }
    // Two keys, then a valid request, on one raw connection (an HTTP client would open a
    // new one by itself): the 422 leaves the connection usable, and applied nothing.
    let mut conn = TcpStream::connect(app.base.trim_start_matches("http://"))
        .await
        .unwrap();
    let request = |keys: &[&str]| {
        let keys: String = keys
            .iter()
            .map(|k| format!("Idempotency-Key: {k}\r\n"))
            .collect();
        format!(
            "POST /clientes/1/transacoes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             {keys}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    conn.write_all(request(&["a", "b"]).as_bytes())
        .await
        .unwrap();
    assert_eq!(
        read_response(&mut conn).await,
        (422, "one Idempotency-Key at most".to_string()),
        "two keys"
    );
    assert_eq!(app.saldo(1).await, 0);
    conn.write_all(request(&[&"x".repeat(64)]).as_bytes())
        .await
        .unwrap();
    assert_eq!(
        read_response(&mut conn).await,
        (200, r#"{"limite":100000,"saldo":3}"#.to_string()),
        "the same connection serves the next request; 64 characters is fine"
    );
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

/// Keys are remembered at least `--key-retention`, then purged (every `--key-purge-every`):
/// a purge that runs inside the retention leaves the key (another request with it is still
/// refused), and the key is a new request only once the retention has passed — never before.
/// Set to 8 s and 1 s here; `crebito_key_purges_total` says when a purge has run.
async fn an_expired_key_is_purged_and_can_be_used_again(backend: Backend) {
    const RETENTION: Duration = Duration::from_secs(8);
    let app = spawn_app_with(backend, |a| {
        a.store.key_retention = RETENTION.as_secs();
        a.store.key_purge_every = 1;
    })
    .await;
    let first = json!({"valor": 10, "tipo": "c", "descricao": "antes"});
    let second = json!({"valor": 20, "tipo": "c", "descricao": "depois"});
    let purges = app.metric("crebito_key_purges_total").await;
    // The key is stored between these two instants.
    let sent = Instant::now();
    let (s, _, replayed) = app.post_keyed(1, first, "k-expira").await;
    let stored = Instant::now();
    assert_eq!((s.as_u16(), replayed), (200, false));
    // A purge runs inside the retention (SQLite's writer purges when a command reaches it:
    // the statements read here bring them).
    while app.metric("crebito_key_purges_total").await <= purges {
        assert_eq!(app.extrato(1).await.0, 200);
        assert!(
            stored.elapsed() < RETENTION / 2,
            "no purge ran within half the retention (purges every 1 s)"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The key outlived it: another request with it is refused, applying nothing.
    let (s, body, _) = app.post_keyed(1, second.clone(), "k-expira").await;
    assert_eq!(s, 422, "{body}");
    assert!(stored.elapsed() < RETENTION, "checked inside the retention");
    // Past the retention, once a purge has run, the same key is a new request (polled, up to
    // 20 s more); before it, it was refused every time.
    let deadline = Instant::now() + RETENTION + Duration::from_secs(20);
    loop {
        let (s, body, replayed) = app.post_keyed(1, second.clone(), "k-expira").await;
        if s == 200 {
            assert!(
                sent.elapsed() >= RETENTION,
                "the key was purged within {:?} of being stored, inside its retention",
                sent.elapsed()
            );
            assert!(!replayed, "applied, not replayed");
            assert_eq!(body["saldo"], 30);
            break;
        }
        assert_eq!(s, 422, "{body}");
        assert!(
            Instant::now() < deadline,
            "the expired key was never purged"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(app.saldo(1).await, 30, "each request applied once");
    assert_eq!(audit(&app.database_url).await[0].rows, 2);
}

mod expiry {
    use super::an_expired_key_is_purged_and_can_be_used_again as expires;
    use crate::helpers::Backend;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        expires(Backend::Sqlite).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        expires(Backend::Postgres).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn citus() {
        expires(Backend::Citus).await
    }
}

/// A key sent with a body that is refused before the store (422) is not used up: the same key
/// with a valid body is then applied, as a first request.
async fn a_key_sent_with_an_invalid_body_is_not_used_up(app: TestApp) {
    let (s, body) = app
        .post_raw_keyed(
            1,
            r#"{"valor": 1.5, "tipo": "c", "descricao": "x"}"#,
            "k-invalido",
        )
        .await;
    assert_eq!(s, 422, "{body}");
    assert_eq!(
        body,
        "valor must be a positive integer no larger than 2147483647"
    );
    let valid = json!({"valor": 5, "tipo": "c", "descricao": "x"});
    let (s, body, replayed) = app.post_keyed(1, valid, "k-invalido").await;
    assert_eq!((s.as_u16(), replayed), (200, false), "{body}");
    assert_eq!(body, json!({"limite": 100000, "saldo": 5}));
    assert_eq!(audit(&app.database_url).await[0].rows, 1);
}
