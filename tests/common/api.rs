//! A client of one crebito base URL — an in-process instance or the contest stack's nginx —
//! with one method per endpoint, as zero2prod's `TestApp` has.

use std::fmt::Display;
use std::time::Duration;

use reqwest::{Client, StatusCode};
use serde_json::Value;

#[derive(Clone)]
pub struct Api {
    pub client: Client,
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub base: String,
}

impl Api {
    /// A client that keeps connections alive (the usual HTTP client).
    pub fn new(base: impl Into<String>) -> Api {
        let client = Client::builder()
            .timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(64)
            .build()
            .unwrap();
        Api::with_client(client, base)
    }

    pub fn with_client(client: Client, base: impl Into<String>) -> Api {
        Api {
            client,
            base: base.into(),
        }
    }

    /// `POST /clientes/{id}/transacoes` with a raw body: status and body text.
    pub async fn post(&self, id: impl Display, body: &str) -> (StatusCode, String) {
        let r = self
            .client
            .post(format!("{}/clientes/{id}/transacoes", self.base))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("request sent");
        let status = r.status();
        (status, r.text().await.unwrap())
    }

    /// `POST` of a JSON value: status and the answer as JSON (`Null` if it is not JSON).
    pub async fn post_json(&self, id: impl Display, body: Value) -> (StatusCode, Value) {
        let (status, text) = self.post(id, &body.to_string()).await;
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// `POST` of a JSON value with an `Idempotency-Key`: status, the answer as JSON (a JSON
    /// string of the text when it is not JSON), and whether it was a replay
    /// (`Idempotent-Replayed: true`).
    pub async fn post_keyed(
        &self,
        id: impl Display,
        body: Value,
        key: &str,
    ) -> (StatusCode, Value, bool) {
        let r = self
            .client
            .post(format!("{}/clientes/{id}/transacoes", self.base))
            .header("content-type", "application/json")
            .header("idempotency-key", key)
            .body(body.to_string())
            .send()
            .await
            .expect("request sent");
        let status = r.status();
        let replayed = r
            .headers()
            .get("idempotent-replayed")
            .is_some_and(|v| v == "true");
        let text = r.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, body, replayed)
    }

    /// `POST` of a raw body with an `Idempotency-Key`: status and body text.
    pub async fn post_raw_keyed(
        &self,
        id: impl Display,
        body: &str,
        key: &str,
    ) -> (StatusCode, String) {
        let r = self
            .client
            .post(format!("{}/clientes/{id}/transacoes", self.base))
            .header("content-type", "application/json")
            .header("idempotency-key", key)
            .body(body.to_string())
            .send()
            .await
            .expect("request sent");
        (r.status(), r.text().await.unwrap())
    }

    /// `POST` of a raw body, with an `Idempotency-Key` if `key` is given: the whole response,
    /// for a test that looks at its headers ([`retry_after`]).
    pub async fn post_response(
        &self,
        id: impl Display,
        body: &str,
        key: Option<&str>,
    ) -> reqwest::Response {
        let mut req = self
            .client
            .post(format!("{}/clientes/{id}/transacoes", self.base))
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(key) = key {
            req = req.header("idempotency-key", key);
        }
        req.send().await.expect("request sent")
    }

    /// `GET /clientes/{id}/extrato`: status and the answer as JSON (`Null` if it is not).
    pub async fn extrato(&self, id: impl Display) -> (StatusCode, Value) {
        let r = self
            .client
            .get(format!("{}/clientes/{id}/extrato", self.base))
            .send()
            .await
            .expect("request sent");
        let status = r.status();
        (
            status,
            serde_json::from_str(&r.text().await.unwrap()).unwrap_or(Value::Null),
        )
    }

    /// `GET /healthz`: the whole response.
    pub async fn healthz_response(&self) -> reqwest::Response {
        self.client
            .get(format!("{}/healthz", self.base))
            .send()
            .await
            .expect("request sent")
    }

    /// `GET /healthz`: status and body.
    pub async fn healthz(&self) -> (StatusCode, String) {
        let r = self
            .client
            .get(format!("{}/healthz", self.base))
            .send()
            .await
            .expect("request sent");
        let status = r.status();
        (status, r.text().await.unwrap())
    }

    /// `GET /metrics`: the Prometheus text.
    pub async fn metrics(&self) -> String {
        let r = self
            .client
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .expect("request sent");
        assert_eq!(r.status(), 200);
        r.text().await.unwrap()
    }

    /// The sum of the series whose text starts with `series` and whose metric name is
    /// exactly `series`'s: `crebito_pg_batch_waiting`, or one series narrowed by labels,
    /// `crebito_pg_batch_size_bucket{node="owner",le="4"}`.
    pub async fn metric(&self, series: &str) -> f64 {
        let name = &series[..series.find('{').unwrap_or(series.len())];
        self.metrics()
            .await
            .lines()
            .filter(|l| l.starts_with(series))
            .filter(|l| l.find([' ', '{']).is_some_and(|end| &l[..end] == name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// The client's balance (`saldo.total`), asserting the statement answered 200.
    pub async fn saldo(&self, id: u32) -> i64 {
        let (status, body) = self.extrato(id).await;
        assert_eq!(status, 200);
        body["saldo"]["total"]
            .as_i64()
            .expect("saldo.total is an integer")
    }
}

/// The response's `Retry-After`, when it has exactly one that is text: what a 503 or a 504
/// tells the client to wait, in seconds (crebito and nginx both say `1`).
pub fn retry_after(r: &reqwest::Response) -> Option<&str> {
    let mut all = r.headers().get_all(reqwest::header::RETRY_AFTER).iter();
    match (all.next(), all.next()) {
        (Some(v), None) => v.to_str().ok(),
        _ => None,
    }
}
