//! Routing, handlers, and the mapping from outcomes to status codes.
//!
//! | request                              | outcome                                          |
//! |--------------------------------------|--------------------------------------------------|
//! | `POST /clientes/{id}/transacoes`     | 200 balance · 404 unknown/non-numeric id · 422 invalid body, over the limit, bad or reused `Idempotency-Key` · 413 body too big · 408 body too slow · 503 not applied, retry · 504 outcome unknown |
//! | `GET /clientes/{id}/extrato`         | 200 statement · 404 · 503 · 504                  |
//! | `GET /healthz`                       | 200 `Healthy` · 503                              |
//! | `GET /metrics`                       | 200 Prometheus text                              |
//! | known path, other method             | 405 with `Allow`                                 |
//! | anything else                        | 404                                              |
//!
//! Every 503 and 504 carries `Retry-After: 1` ([`RETRY_AFTER_SECONDS`], set by
//! [`retry_later`]).

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{ALLOW, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use hyper::{Method, Request, Response, StatusCode};

use super::metrics::Metrics;
use super::route::Route;
use crate::domain::{ClientId, IdempotencyKey, InvalidKey, Transaction};
use crate::store::{Ledger, LedgerError, Once};

/// Request-level bounds (their defaults and ranges: `crate::configuration`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest accepted request body, in bytes (413 above it).
    pub max_body: usize,
    /// How long a client may take to send its body once the headers are in (408 after).
    pub body_timeout: Duration,
    /// How long the store may take to answer (504, outcome unknown, after).
    pub store_timeout: Duration,
}

impl Limits {
    /// How many bytes of a body are read at most, kept or dropped ([`DRAIN_LIMIT`]).
    fn drain_limit(&self) -> usize {
        DRAIN_LIMIT.max(self.max_body)
    }
}

/// How much of an oversized body is still read, and dropped, before the 413 (or of any
/// body before a refusal). Closing a connection on bytes the client sent but the server did
/// not read makes the kernel reset it, and the reset can destroy the answer before the client
/// reads it; behind nginx, which is still streaming the body upstream when the answer comes,
/// it was a 502 for 2 bodies of 12 KB in 200. Past this bound (or `max_body`, if larger) the
/// connection is closed anyway: in the contest stack nginx's own `client_max_body_size`
/// refuses such bodies before they reach crebito.
const DRAIN_LIMIT: usize = 64 * 1024;

/// The optional header that makes a POST safe to retry.
const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// Everything a handler needs, shared by all connections.
pub struct App<L> {
    pub ledger: L,
    pub limits: Limits,
    pub metrics: Metrics,
}

type Resp = Response<Full<Bytes>>;

const JSON: HeaderValue = HeaderValue::from_static("application/json");
const TEXT: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");

/// `Retry-After` on every 503 (not applied, retry) and 504 (outcome unknown, retry with the
/// same key), in RFC 9110's delay-seconds. One second is the shortest wait above none the
/// header can ask for: crebito cannot know when the store will answer again, so it asks for
/// the least and leaves the rest to the client, which should back off further when refused
/// again, with jitter, so that the clients refused together do not all come back together
/// (docs/src/challenge.md, "What a client can rely on"). nginx's own 503 past its in-flight
/// bound, and its own 502 and 504 when an instance fails it (deploy/nginx.conf, `@overloaded`,
/// `@upstream_failed`, `@upstream_timed_out`), say the same.
const RETRY_AFTER_SECONDS: HeaderValue = HeaderValue::from_static("1");

/// Answers one request. Never panics on any input, never returns an error: every outcome
/// is a response.
pub async fn handle<L: Ledger>(app: &App<L>, req: Request<Incoming>) -> Resp {
    let started = Instant::now();
    let (route, resp) = dispatch(app, req).await;
    app.metrics.observe(route, resp.status(), started.elapsed());
    resp
}

async fn dispatch<L: Ledger>(app: &App<L>, req: Request<Incoming>) -> (Route, Resp) {
    let method = req.method().clone();
    let (route, id) = Route::of(req.uri().path());
    let resp = match route {
        Route::Transacoes if method == Method::POST => {
            post_transaction(app, ClientId::parse(id), req).await
        }
        Route::Transacoes => method_not_allowed("POST"),
        Route::Extrato if method == Method::GET || method == Method::HEAD => {
            get_statement(app, ClientId::parse(id)).await
        }
        Route::Healthz if method == Method::GET || method == Method::HEAD => {
            let ping = tokio::time::timeout(app.limits.store_timeout, app.ledger.ping()).await;
            match ping.unwrap_or(Err(LedgerError::Unknown)) {
                Ok(()) => text(StatusCode::OK, "Healthy"),
                Err(_) => retry_later(StatusCode::SERVICE_UNAVAILABLE, "store unavailable"),
            }
        }
        Route::Extrato | Route::Healthz => method_not_allowed("GET, HEAD"),
        Route::Metrics if method == Method::GET => {
            let mut body = app.metrics.render();
            app.ledger.render_metrics(&mut body);
            let mut r = Response::new(Full::new(Bytes::from(body)));
            r.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            r
        }
        Route::Metrics => method_not_allowed("GET"),
        Route::Other => text(StatusCode::NOT_FOUND, "not found"),
    };
    (route, resp)
}

async fn post_transaction<L: Ledger>(
    app: &App<L>,
    id: Option<ClientId>,
    req: Request<Incoming>,
) -> Resp {
    // A body announced past what would be drained is refused before a byte of it is read.
    let announced = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > app.limits.drain_limit() as u64) {
        return too_large();
    }
    // One key at most, of 1 to 64 visible ASCII characters.
    let mut keys = req.headers().get_all(IDEMPOTENCY_KEY).iter();
    let key = match (keys.next(), keys.next()) {
        (None, _) => None,
        (Some(v), None) => match IdempotencyKey::parse(v.as_bytes()) {
            Ok(k) => Some(k),
            Err(InvalidKey) => {
                let refused = text(StatusCode::UNPROCESSABLE_ENTITY, InvalidKey::MESSAGE);
                return drain_then(req, app, refused).await;
            }
        },
        (Some(_), Some(_)) => {
            return drain_then(
                req,
                app,
                text(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "one Idempotency-Key at most",
                ),
            )
            .await;
        }
    };
    let body = match read_body(req.into_body(), &app.limits).await {
        Body::Read(bytes) => bytes,
        Body::TooLarge => return too_large(),
        Body::TooSlow => return close(text(StatusCode::REQUEST_TIMEOUT, "request body too slow")),
        Body::Unreadable => {
            return close(text(StatusCode::BAD_REQUEST, "unreadable request body"));
        }
    };
    // The id is checked after the body is drained, so the connection stays usable.
    let Some(id) = id else {
        return text(StatusCode::NOT_FOUND, "client not found");
    };
    let transaction = match Transaction::parse_json(&body) {
        Ok(t) => t,
        Err(rejection) => return text(StatusCode::UNPROCESSABLE_ENTITY, rejection.message()),
    };
    let deadline = app.limits.store_timeout;
    let asked = Instant::now();
    let Some(key) = key else {
        let applied = tokio::time::timeout(deadline, app.ledger.apply(id, &transaction)).await;
        app.metrics
            .observe_store(Route::Transacoes, asked.elapsed());
        return match applied.unwrap_or(Err(LedgerError::Unknown)) {
            Ok(balance) => json(&balance),
            Err(e) => ledger_error(e),
        };
    };
    let once = tokio::time::timeout(deadline, app.ledger.apply_once(id, &transaction, &key))
        .await
        .unwrap_or(Once::fresh(Err(LedgerError::Unknown)));
    app.metrics
        .observe_store(Route::Transacoes, asked.elapsed());
    let mut resp = match once.outcome {
        Ok(balance) => json(&balance),
        Err(e) => ledger_error(e),
    };
    if once.replayed {
        resp.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    resp
}

/// Answers `resp` once the body is read (or found too large or too slow), so that the
/// connection stays usable for the client's next request.
async fn drain_then<L: Ledger>(req: Request<Incoming>, app: &App<L>, resp: Resp) -> Resp {
    match read_body(req.into_body(), &app.limits).await {
        Body::Read(_) => resp,
        _ => close(resp),
    }
}

/// A request body, as far as [`read_body`] got.
enum Body {
    Read(Bytes),
    /// Over `max_body`: read and dropped up to the drain limit, or given up past it.
    TooLarge,
    TooSlow,
    Unreadable,
}

/// Reads a body of at most `max_body` bytes within `body_timeout` (http-body-util's
/// `Limited` and `collect`). A larger one is still read, and dropped, up to about the drain
/// limit ([`DRAIN_LIMIT`]), so that the refusal is not lost to a reset.
async fn read_body(mut body: Incoming, limits: &Limits) -> Body {
    let read = async {
        match Limited::new(&mut body, limits.max_body).collect().await {
            Ok(collected) => Body::Read(collected.to_bytes()),
            Err(e) if e.is::<LengthLimitError>() => {
                let mut seen = limits.max_body;
                while seen <= limits.drain_limit() {
                    match body.frame().await {
                        Some(Ok(frame)) => seen += frame.data_ref().map_or(0, Bytes::len),
                        _ => break,
                    }
                }
                Body::TooLarge
            }
            Err(_) => Body::Unreadable,
        }
    };
    tokio::time::timeout(limits.body_timeout, read)
        .await
        .unwrap_or(Body::TooSlow)
}

async fn get_statement<L: Ledger>(app: &App<L>, id: Option<ClientId>) -> Resp {
    let Some(id) = id else {
        return text(StatusCode::NOT_FOUND, "client not found");
    };
    let asked = Instant::now();
    let read = tokio::time::timeout(app.limits.store_timeout, app.ledger.statement(id)).await;
    app.metrics.observe_store(Route::Extrato, asked.elapsed());
    match read.unwrap_or(Err(LedgerError::Unknown)) {
        Ok(statement) => json(&statement),
        // A read changes nothing: "unknown" only means "no answer in time".
        Err(LedgerError::Unknown) => retry_later(
            StatusCode::GATEWAY_TIMEOUT,
            "store did not answer in time; retry",
        ),
        Err(e) => ledger_error(e),
    }
}

/// What each store outcome tells the client (docs/src/challenge.md, "Faults").
fn ledger_error(e: LedgerError) -> Resp {
    match e {
        LedgerError::UnknownClient => text(StatusCode::NOT_FOUND, "client not found"),
        LedgerError::LimitExceeded => text(StatusCode::UNPROCESSABLE_ENTITY, "over the limit"),
        LedgerError::KeyReused => text(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Idempotency-Key already used with a different request",
        ),
        LedgerError::Unavailable => retry_later(
            StatusCode::SERVICE_UNAVAILABLE,
            "store unavailable: not applied, retry",
        ),
        LedgerError::Unknown => retry_later(
            StatusCode::GATEWAY_TIMEOUT,
            "outcome unknown: retry with the same Idempotency-Key to apply it at most once",
        ),
    }
}

fn json<T: serde::Serialize>(value: &T) -> Resp {
    let mut buf = Vec::with_capacity(1024);
    match serde_json::to_writer(&mut buf, value) {
        Ok(()) => {
            let mut r = Response::new(Full::new(Bytes::from(buf)));
            r.headers_mut().insert(CONTENT_TYPE, JSON);
            r
        }
        // Our own types always serialise; this arm exists so that nothing here can panic.
        Err(_) => text(StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
    }
}

fn text(status: StatusCode, body: &'static str) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, TEXT);
    r
}

/// A 503 or a 504: `text` with `Retry-After` ([`RETRY_AFTER_SECONDS`]).
fn retry_later(status: StatusCode, body: &'static str) -> Resp {
    debug_assert!(matches!(
        status,
        StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT
    ));
    let mut r = text(status, body);
    r.headers_mut().insert(RETRY_AFTER, RETRY_AFTER_SECONDS);
    r
}

fn method_not_allowed(allow: &'static str) -> Resp {
    let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    r.headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    r
}

/// Past `max_body` nothing more is kept: answer and close the connection.
fn too_large() -> Resp {
    close(text(
        StatusCode::PAYLOAD_TOO_LARGE,
        "request body too large",
    ))
}

fn close(mut r: Resp) -> Resp {
    r.headers_mut()
        .insert(hyper::header::CONNECTION, HeaderValue::from_static("close"));
    r
}
