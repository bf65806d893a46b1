//! Every row of spec §1 and §6, one behaviour per test.

use serde_json::json;

use crate::common::checks::{self, CLIENTS};
use crate::for_each_store;
use crate::helpers::{TestApp, set_saldo};

for_each_store!(
    credit_answers_200_with_limite_and_saldo_only,
    debit_may_land_exactly_on_minus_limite_and_not_one_cent_below,
    every_invalid_payload_is_422_and_leaves_no_trace,
    unknown_or_non_numeric_ids_are_404_on_both_endpoints,
    statement_has_the_contract_shape_and_timestamps,
    statement_lists_the_10_newest_by_insertion_order,
    non_ascii_description_of_10_characters_round_trips,
    content_type_is_not_required_to_be_json,
    official_validation_sequence_a_to_f,
    healthz_and_metrics,
    unknown_routes_are_404_and_wrong_methods_405,
    a_credit_that_would_overflow_the_balance_is_422_and_debits_still_apply,
);

async fn credit_answers_200_with_limite_and_saldo_only(app: TestApp) {
    let (status, body) = app
        .post_json(
            1,
            json!({"valor": 1000, "tipo": "c", "descricao": "descricao"}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"limite": 100000, "saldo": 1000}));
    let (status, body) = app
        .post_json(1, json!({"valor": 9098, "tipo": "d", "descricao": "x"}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"limite": 100000, "saldo": -8098}));
}

async fn debit_may_land_exactly_on_minus_limite_and_not_one_cent_below(app: TestApp) {
    for (id, limite) in CLIENTS {
        let (status, body) = app
            .post_json(
                id,
                json!({"valor": limite - 1, "tipo": "d", "descricao": "quase"}),
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(body["saldo"], -(limite - 1));
        let (status, text) = app
            .post(id, r#"{"valor": 2, "tipo": "d", "descricao": "demais"}"#)
            .await;
        assert_eq!(status, 422, "client {id}: one cent below -limite");
        assert_eq!(text, "over the limit");
        let (status, body) = app
            .post_json(id, json!({"valor": 1, "tipo": "d", "descricao": "exato"}))
            .await;
        assert_eq!(status, 200, "client {id}: exactly -limite is allowed");
        assert_eq!(body, json!({"limite": limite, "saldo": -limite}));
        // The refused debit left no trace.
        let (_, e) = app.extrato(id).await;
        let descs: Vec<&str> = e["ultimas_transacoes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["descricao"].as_str().unwrap())
            .collect();
        assert_eq!(descs, ["exato", "quase"]);
        assert_eq!(e["saldo"]["total"], -limite);
    }
}

async fn every_invalid_payload_is_422_and_leaves_no_trace(app: TestApp) {
    let big = format!(
        r#"{{"valor": {}, "tipo": "c", "descricao": "a"}}"#,
        i64::MAX
    );
    // The field that is wrong is named; anything that is not the contract's object is
    // "malformed". The messages are the README's, written out here.
    const VALOR: &str = "valor must be a positive integer no larger than 2147483647";
    const TIPO: &str = "tipo must be \"c\" or \"d\"";
    const DESCRICAO: &str = "descricao must be a string of 1 to 10 characters";
    const MALFORMED: &str = "body must be a JSON object with exactly valor (positive integer), tipo (\"c\" or \"d\") and descricao (1 to 10 characters)";
    let bodies: Vec<(&str, &str)> = vec![
        // the official five
        (
            r#"{"valor": 1.2, "tipo": "d", "descricao": "devolve"}"#,
            VALOR,
        ),
        (r#"{"valor": 1, "tipo": "x", "descricao": "devolve"}"#, TIPO),
        (
            r#"{"valor": 1, "tipo": "c", "descricao": "123456789 e mais um pouco"}"#,
            DESCRICAO,
        ),
        (r#"{"valor": 1, "tipo": "c", "descricao": ""}"#, DESCRICAO),
        (r#"{"valor": 1, "tipo": "c", "descricao": null}"#, DESCRICAO),
        // what the contest never sent
        (r#"{"valor": 0, "tipo": "c", "descricao": "zero"}"#, VALOR),
        (
            r#"{"valor": -1, "tipo": "c", "descricao": "negativo"}"#,
            VALOR,
        ),
        (
            r#"{"valor": "1", "tipo": "c", "descricao": "string"}"#,
            MALFORMED,
        ),
        (
            r#"{"valor": 1.0, "tipo": "c", "descricao": "fracao"}"#,
            VALOR,
        ),
        (
            r#"{"valor": 2147483648, "tipo": "c", "descricao": "grande"}"#,
            VALOR,
        ),
        (&big, VALOR),
        (
            r#"{"valor": 1e2, "tipo": "c", "descricao": "expoente"}"#,
            VALOR,
        ),
        (
            r#"{"valor": 1, "tipo": "C", "descricao": "maiuscula"}"#,
            TIPO,
        ),
        (r#"{"valor": 1, "tipo": null, "descricao": "nulo"}"#, TIPO),
        (r#"{"tipo": "c", "descricao": "sem valor"}"#, VALOR),
        (r#"{"valor": 1, "descricao": "sem tipo"}"#, TIPO),
        (r#"{"valor": 1, "tipo": "c"}"#, DESCRICAO),
        (
            r#"{"valor": 1, "tipo": "c", "descricao": "12345678901"}"#,
            DESCRICAO,
        ),
        (r#"{"valor": 1, "tipo": "c", "descricao": 12}"#, MALFORMED),
        (
            r#"{"valor": 1, "tipo": "c", "descricao": "a", "x": 1}"#,
            MALFORMED,
        ),
        (r#"[1, "c", "a"]"#, MALFORMED),
        (r#"{"valor": 1, "tipo": "c", "descricao": "a""#, MALFORMED),
        ("not json", MALFORMED),
        ("", MALFORMED),
        ("null", MALFORMED),
        ("{}", VALOR),
    ];
    for (body, message) in bodies {
        let (status, text) = app.post(1, body).await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(text, message, "{body}");
    }
    let (_, e) = app.extrato(1).await;
    assert_eq!(e["saldo"]["total"], 0);
    assert_eq!(e["ultimas_transacoes"], json!([]));
}

async fn unknown_or_non_numeric_ids_are_404_on_both_endpoints(app: TestApp) {
    let valid = json!({"valor": 1, "tipo": "c", "descricao": "x"});
    for id in [
        "6",
        "0",
        "-1",
        "abc",
        "1.5",
        "2147483647",
        "2147483648",
        "99999999999999999999",
        "%31",
        " 1",
    ] {
        let r = app
            .client
            .get(format!("{}/clientes/{id}/extrato", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "GET {id:?}");
        assert_eq!(r.text().await.unwrap(), "client not found", "GET {id:?}");
        let (status, text) = app.post(id, &valid.to_string()).await;
        assert_eq!(status, 404, "POST {id:?}");
        assert_eq!(text, "client not found", "POST {id:?}");
    }
    // The body is validated before the store is asked: an invalid body is 422 even for an
    // unknown (but well-formed) id; a malformed id is 404 whatever the body.
    let (status, _) = app.post(6, "{}").await;
    assert_eq!(status, 422);
    let (status, _) = app.post("abc", "{}").await;
    assert_eq!(status, 404);
}

fn assert_rfc3339_micros_utc(s: &str) {
    let b = s.as_bytes();
    assert_eq!(b.len(), 27, "{s}");
    for (i, c) in b.iter().enumerate() {
        match i {
            4 | 7 => assert_eq!(*c, b'-', "{s}"),
            10 => assert_eq!(*c, b'T', "{s}"),
            13 | 16 => assert_eq!(*c, b':', "{s}"),
            19 => assert_eq!(*c, b'.', "{s}"),
            26 => assert_eq!(*c, b'Z', "{s}"),
            _ => assert!(c.is_ascii_digit(), "{s}"),
        }
    }
}

async fn statement_has_the_contract_shape_and_timestamps(app: TestApp) {
    let (status, e) = app.extrato(2).await;
    assert_eq!(status, 200);
    assert_eq!(e["saldo"]["total"], 0);
    assert_eq!(e["saldo"]["limite"], 80000);
    assert_eq!(e["ultimas_transacoes"], json!([]));
    assert_eq!(e.as_object().unwrap().len(), 2);
    assert_eq!(e["saldo"].as_object().unwrap().len(), 3);

    let before = now_micros();
    app.post_json(2, json!({"valor": 500, "tipo": "d", "descricao": "pix"}))
        .await;
    let (_, e) = app.extrato(2).await;
    assert_rfc3339_micros_utc(e["saldo"]["data_extrato"].as_str().unwrap());
    let t = &e["ultimas_transacoes"][0];
    assert_eq!(t.as_object().unwrap().len(), 4);
    assert_eq!(
        (&t["valor"], &t["tipo"], &t["descricao"]),
        (&json!(500), &json!("d"), &json!("pix"))
    );
    let after = now_micros();
    let at = t["realizada_em"].as_str().unwrap();
    assert_rfc3339_micros_utc(at);
    // Between the request and its answer (one clock, UTC): catches epoch, timezone and
    // precision mistakes, at any time of day.
    assert!(
        before.as_str() <= at && at <= after.as_str(),
        "{before} <= {at} <= {after}"
    );
    let extrato_at = e["saldo"]["data_extrato"].as_str().unwrap();
    assert!(
        at <= extrato_at && extrato_at <= after.as_str(),
        "{at} <= {extrato_at} <= {after}"
    );
    assert_eq!(e["saldo"]["total"], -500);
}

/// Now, in the API's own format (RFC 3339, UTC, microseconds): such strings order as times.
fn now_micros() -> String {
    let dt = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        dt.microsecond()
    )
}

async fn statement_lists_the_10_newest_by_insertion_order(app: TestApp) {
    for k in 1..=12 {
        let tipo = if k % 3 == 0 { "d" } else { "c" };
        let (status, _) = app
            .post_json(
                3,
                json!({"valor": k, "tipo": tipo, "descricao": format!("t{k}")}),
            )
            .await;
        assert_eq!(status, 200);
    }
    let (_, e) = app.extrato(3).await;
    let list = e["ultimas_transacoes"].as_array().unwrap();
    let descs: Vec<&str> = list
        .iter()
        .map(|t| t["descricao"].as_str().unwrap())
        .collect();
    assert_eq!(
        descs,
        [
            "t12", "t11", "t10", "t9", "t8", "t7", "t6", "t5", "t4", "t3"
        ]
    );
    for t in list {
        let k: i64 = t["descricao"].as_str().unwrap()[1..].parse().unwrap();
        assert_eq!(t["valor"], k, "valor is the positive amount as sent");
        assert_eq!(t["tipo"], if k % 3 == 0 { "d" } else { "c" });
    }
    let expected: i64 = (1..=12).map(|k| if k % 3 == 0 { -k } else { k }).sum();
    assert_eq!(
        e["saldo"]["total"], expected,
        "saldo.total is the balance, not a sum of the listed 10"
    );
}

async fn non_ascii_description_of_10_characters_round_trips(app: TestApp) {
    for desc in [
        "ação💸ção€ñ",
        "ÇÇÇÇÇÇÇÇÇÇ",
        "日本語のテキスト十字",
        "\"\\\n\t</>&'x",
    ] {
        assert_eq!(desc.chars().count(), 10);
        let (status, _) = app
            .post_json(4, json!({"valor": 1, "tipo": "c", "descricao": desc}))
            .await;
        assert_eq!(status, 200, "{desc}");
        let (_, e) = app.extrato(4).await;
        assert_eq!(e["ultimas_transacoes"][0]["descricao"], desc);
    }
    let (status, _) = app
        .post_json(
            4,
            json!({"valor": 1, "tipo": "c", "descricao": "ação💸ção€ñX"}),
        )
        .await;
    assert_eq!(status, 422, "11 characters");
}

async fn content_type_is_not_required_to_be_json(app: TestApp) {
    let r = app
        .client
        .post(format!("{}/clientes/5/transacoes", app.base))
        .header("content-type", "text/plain")
        .body(r#"{"valor": 10, "tipo": "c", "descricao": "texto"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let r = app
        .client
        .post(format!("{}/clientes/5/transacoes", app.base))
        .body(r#"{"valor": 10, "tipo": "c", "descricao": "nenhum"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(app.saldo(5).await, 20);
}

async fn official_validation_sequence_a_to_f(app: TestApp) {
    checks::official_validation_sequence(std::slice::from_ref(&app.api)).await;
}

async fn healthz_and_metrics(app: TestApp) {
    let (status, body) = app.healthz().await;
    assert_eq!((status.as_u16(), body.as_str()), (200, "Healthy"));
    app.post_json(1, json!({"valor": 1, "tipo": "c", "descricao": "m"}))
        .await;
    app.post(1, "{}").await;
    let text = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("crebito_http_requests_total{route=\"transacoes\",status=\"200\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("crebito_http_requests_total{route=\"transacoes\",status=\"422\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("crebito_http_request_duration_seconds_count{route=\"transacoes\"} 2\n"),
        "{text}"
    );
    assert!(text.contains("crebito_connections_open "), "{text}");
}

async fn unknown_routes_are_404_and_wrong_methods_405(app: TestApp) {
    for path in [
        "/",
        "/clientes",
        "/clientes/1",
        "/clientes/1/extratos",
        "/clientes/1/transacoes/1",
        "/healthz/x",
    ] {
        let r = app
            .client
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{path}");
        assert_eq!(r.text().await.unwrap(), "not found", "{path}");
    }
    let r = app
        .client
        .get(format!("{}/clientes/1/transacoes", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "POST");
    assert_eq!(r.text().await.unwrap(), "method not allowed");
    for (method, path, allow) in [
        (reqwest::Method::DELETE, "/clientes/1/extrato", "GET, HEAD"),
        (reqwest::Method::PUT, "/clientes/1/transacoes", "POST"),
        (reqwest::Method::POST, "/healthz", "GET, HEAD"),
        (reqwest::Method::POST, "/metrics", "GET"),
    ] {
        let r = app
            .client
            .request(method.clone(), format!("{}{path}", app.base))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 405, "{method} {path}");
        assert_eq!(r.headers()["allow"], allow, "{method} {path}");
    }
    // HEAD: what GET would answer, without the body.
    for path in ["/clientes/1/extrato", "/healthz"] {
        let r = app
            .client
            .head(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "HEAD {path}");
        assert!(r.bytes().await.unwrap().is_empty(), "HEAD {path}: no body");
    }
    let r = app
        .client
        .head(format!("{}/clientes/6/extrato", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

/// `--extra-clients N` seeds clients 6…5+N with `--extra-clients-limit`; the contest's five
/// keep their limits, and without the flag client 6 does not exist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extra_clients_are_seeded_only_when_asked() {
    for backend in [
        crate::helpers::Backend::Sqlite,
        crate::helpers::Backend::Postgres,
    ] {
        let app = crate::helpers::spawn_app_with(backend, |a| {
            a.store.extra_clients = 3;
            a.store.extra_clients_limit = 777;
        })
        .await;
        for id in 6..=8 {
            let (status, body) = app.extrato(id).await;
            assert_eq!(status, 200, "{backend:?}: client {id}");
            assert_eq!(body["saldo"]["limite"], 777, "{backend:?}: client {id}");
        }
        assert_eq!(app.extrato(9).await.0, 404, "{backend:?}");
        assert_eq!(
            app.extrato(2).await.1["saldo"]["limite"],
            80_000,
            "{backend:?}"
        );
        let (status, _) = app
            .post_json(8, json!({"valor": 778, "tipo": "d", "descricao": "over"}))
            .await;
        assert_eq!(status, 422, "{backend:?}: the extra limit holds");
        let plain = crate::helpers::spawn_app(backend).await;
        assert_eq!(plain.extrato(6).await.0, 404, "{backend:?}: off by default");
    }
}

/// A balance is a 64-bit integer: a credit that would overflow it is refused like an
/// over-the-limit debit (422, nothing stored), one that lands exactly on the largest value is
/// applied, and a debit from there applies too. (On Citus the delegated function evaluates
/// both branches of its CASE before choosing: written as `MAX - delta`, a debit there would
/// overflow; sql/postgres/citus/functions.sql keeps both in range.)
async fn a_credit_that_would_overflow_the_balance_is_422_and_debits_still_apply(app: TestApp) {
    set_saldo(&app.database_url, 1, i64::MAX - 10).await;
    let (status, text) = app
        .post(1, r#"{"valor": 11, "tipo": "c", "descricao": "estouro"}"#)
        .await;
    assert_eq!((status.as_u16(), text.as_str()), (422, "over the limit"));
    let (status, body) = app
        .post_json(
            1,
            json!({"valor": 10, "tipo": "c", "descricao": "no limite"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"limite": 100000, "saldo": i64::MAX}));
    let (status, body) = app
        .post_json(1, json!({"valor": 1, "tipo": "d", "descricao": "volta"}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["saldo"], i64::MAX - 1);
    let (_, e) = app.extrato(1).await;
    let descs: Vec<&str> = e["ultimas_transacoes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["descricao"].as_str().unwrap())
        .collect();
    assert_eq!(
        descs,
        ["volta", "no limite"],
        "the refused credit left no trace"
    );
}
