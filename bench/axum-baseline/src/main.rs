//! crebito's contract served by axum instead of crebito's own hyper connection loop, with
//! the same domain types and the same SQLite ledger, on a single-threaded runtime like
//! `crebito serve --threads 1`. Usage: axum-baseline LISTEN SQLITE_PATH.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use crebito::domain::{ClientId, Transaction};
use crebito::store::sqlite::SqliteLedger;
use crebito::store::{Ledger, LedgerError};

type Shared = Arc<SqliteLedger>;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:9998".into());
    let path = args.next().unwrap_or_else(|| "/tmp/axum-baseline.db".into());
    // The server's own store settings: keys kept a day, purged every ten minutes, durable.
    let keys = crebito::store::KeyPolicy {
        retention: std::time::Duration::from_secs(86_400),
        purge_every: std::time::Duration::from_secs(600),
    };
    let ledger = Arc::new(
        SqliteLedger::open(std::path::Path::new(&path), Default::default(), keys, true)
            .expect("sqlite opens"),
    );
    let app = Router::new()
        .route("/clientes/{id}/transacoes", post(transacao))
        .route("/clientes/{id}/extrato", get(extrato))
        .layer(DefaultBodyLimit::max(4096))
        .with_state(ledger);
    let listener = tokio::net::TcpListener::bind(&listen).await.expect("binds");
    axum::serve(listener, app).await.expect("serves");
}

fn json(body: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn error(e: LedgerError) -> Response {
    match e {
        LedgerError::UnknownClient => (StatusCode::NOT_FOUND, "client not found").into_response(),
        LedgerError::LimitExceeded => (StatusCode::UNPROCESSABLE_ENTITY, "over the limit").into_response(),
        LedgerError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "store unavailable").into_response(),
    }
}

async fn transacao(State(ledger): State<Shared>, Path(id): Path<String>, body: Bytes) -> Response {
    let Some(id) = ClientId::parse(&id) else {
        return (StatusCode::NOT_FOUND, "client not found").into_response();
    };
    let t = match Transaction::parse_json(&body) {
        Ok(t) => t,
        Err(r) => return (StatusCode::UNPROCESSABLE_ENTITY, r.message()).into_response(),
    };
    match ledger.apply(id, &t).await {
        Ok(b) => json(serde_json::to_vec(&b).expect("serialises")),
        Err(e) => error(e),
    }
}

async fn extrato(State(ledger): State<Shared>, Path(id): Path<String>) -> Response {
    let Some(id) = ClientId::parse(&id) else {
        return (StatusCode::NOT_FOUND, "client not found").into_response();
    };
    match ledger.statement(id).await {
        Ok(s) => json(serde_json::to_vec(&s).expect("serialises")),
        Err(e) => error(e),
    }
}
