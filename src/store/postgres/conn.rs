//! The wire: one prepared connection to a PostgreSQL server, and what a failed request on it
//! means for the client ([`classify`]).
//!
//! Every request goes through [`Conn`]'s methods, never the client itself, because a group
//! commit (batch.rs) sends BEGIN, its members and COMMIT as several requests, and nothing
//! else may land between them — a statement that did would run inside that transaction and
//! could see, or spoil, writes that are not committed. Each method enqueues its request under
//! [`Conn`]'s gate, and the batch enqueues all of its under it at once
//! ([`Conn::send_together`]). What to send, and when, is the caller's business: this file
//! knows no queue, no slot and no retry.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use std::time::Duration;

use tokio_postgres::error::Severity;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Config, NoTls, Row, Statement as Prepared};

use crate::store::LedgerError;
use crate::store::postgres::options::Layout;
use crate::store::postgres::shard::Shard;
use crate::store::postgres::sql::{self, Kind};

/// How long start-up keeps trying to reach the server (it may still be starting).
const CONNECT_PATIENCE: Duration = Duration::from_secs(15);

pub(super) struct Conn {
    /// Private: requests go through the methods below, under the gate.
    client: Client,
    /// Held while a request is enqueued on the connection (see the module's doc).
    gate: Mutex<()>,
    /// The server ended the session (a FATAL error): nothing sent now would run, although
    /// the socket may not have closed yet.
    ended: AtomicBool,
    apply: Prepared,
    apply_once: Prepared,
    statement: Prepared,
    lock: Prepared,
    begin: Prepared,
    commit: Prepared,
    /// The Citus direct path's statements (shard.rs), by shard and kind, each prepared on
    /// this connection the first time it is needed.
    shards: RwLock<HashMap<(i64, Kind), Prepared>>,
}

impl Conn {
    /// Prepares the request statements of `layout` on `client`: the connection, ready.
    pub(super) async fn open(
        client: Client,
        layout: Layout,
    ) -> Result<Conn, tokio_postgres::Error> {
        let (apply, apply_once) = match layout {
            Layout::Single => (Kind::Apply.sql(), Kind::ApplyOnce.sql()),
            Layout::Citus => (sql::CITUS_APPLY, sql::CITUS_APPLY_ONCE),
        };
        let apply = client.prepare(apply).await?;
        let apply_once = client.prepare(apply_once).await?;
        let statement = client.prepare(Kind::Statement.sql()).await?;
        let lock = client.prepare(Kind::Lock.sql()).await?;
        let begin = client.prepare(sql::BEGIN).await?;
        let commit = client.prepare(sql::COMMIT).await?;
        Ok(Conn {
            client,
            gate: Mutex::new(()),
            ended: AtomicBool::new(false),
            apply,
            apply_once,
            statement,
            lock,
            begin,
            commit,
            shards: RwLock::new(HashMap::new()),
        })
    }

    /// The statement of this kind, prepared when the connection opened.
    pub(super) fn prepared(&self, kind: Kind) -> &Prepared {
        match kind {
            Kind::Apply => &self.apply,
            Kind::ApplyOnce => &self.apply_once,
            Kind::Statement => &self.statement,
            Kind::Lock => &self.lock,
        }
    }

    /// The statement of this kind on `shard`'s own tables, prepared on first use (one extra
    /// round trip per shard, kind and connection, then none).
    pub(super) async fn on_shard(
        &self,
        shard: &Shard,
        kind: Kind,
    ) -> Result<Prepared, tokio_postgres::Error> {
        let key = (shard.id, kind);
        if let Some(p) = self.shards.read().expect("not poisoned").get(&key) {
            return Ok(p.clone());
        }
        let p = self.prepare(shard.sql(kind)).await?;
        self.shards
            .write()
            .expect("not poisoned")
            .insert(key, p.clone());
        Ok(p)
    }

    /// BEGIN and COMMIT, prepared.
    pub(super) fn transaction(&self) -> (&Prepared, &Prepared) {
        (&self.begin, &self.commit)
    }

    /// Whether the connection can no longer run anything: closed, or its session ended by
    /// the server.
    pub(super) fn is_closed(&self) -> bool {
        self.client.is_closed() || self.ended.load(Ordering::Relaxed)
    }

    /// Ends the connection for crebito: nothing more is sent on it, and its slot reconnects
    /// (the caller no longer knows what state the session is in).
    pub(super) fn end(&self) {
        self.ended.store(true, Ordering::Relaxed);
    }

    /// Notes a request's error: one that ended the session ends the connection.
    fn noted<T>(
        &self,
        result: Result<T, tokio_postgres::Error>,
    ) -> Result<T, tokio_postgres::Error> {
        if let Err(e) = &result {
            let fatal = match e.as_db_error() {
                Some(db) => matches!(
                    db.parsed_severity(),
                    Some(Severity::Fatal | Severity::Panic)
                ),
                None => e.is_closed(),
            };
            if fatal {
                self.ended.store(true, Ordering::Relaxed);
            }
        }
        result
    }

    /// Runs a prepared statement.
    pub(super) async fn query(
        &self,
        statement: &Prepared,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, tokio_postgres::Error> {
        self.noted(self.gated(self.client.query(statement, params)).await)
    }

    /// Prepares a statement (one request: its parameters are built-in types).
    pub(super) async fn prepare(&self, sql: &str) -> Result<Prepared, tokio_postgres::Error> {
        self.noted(self.gated(self.client.prepare(sql)).await)
    }

    /// Prepares `sql` and runs it: two requests, each enqueued whole.
    pub(super) async fn query_text(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, tokio_postgres::Error> {
        let statement = self.prepare(sql).await?;
        self.query(&statement, params).await
    }

    /// An empty query: whether the server answers at all.
    pub(super) async fn ping(&self) -> Result<(), tokio_postgres::Error> {
        self.noted(self.gated(self.client.simple_query("")).await)
            .map(drop)
    }

    /// Runs the prepared statements in order as consecutive requests, nothing else between
    /// them, pipelined (one round trip); each one's result, in order. `None` when the first
    /// could not even be sent (the connection was closed): then none was.
    pub(super) async fn send_together(
        &self,
        requests: &[(&Prepared, &[&(dyn ToSql + Sync)])],
    ) -> Option<Vec<Result<Vec<Row>, tokio_postgres::Error>>> {
        let mut pending: Vec<_> = requests
            .iter()
            .map(|(statement, params)| Some(Box::pin(self.client.query(*statement, params))))
            .collect();
        let mut results: Vec<Option<Result<Vec<Row>, tokio_postgres::Error>>> =
            (0..requests.len()).map(|_| None).collect();
        let mut first = true;
        let mut unsent = false;
        std::future::poll_fn(|cx| {
            // The first poll of each enqueues its request; all of them under the gate. One
            // that fails on its first poll, before any answer can have come, was not sent;
            // requests are sent in order, so when the first was not, none was.
            let _gate = first.then(|| self.gate.lock().expect("not poisoned"));
            let mut done = true;
            for (i, (slot, result)) in pending.iter_mut().zip(results.iter_mut()).enumerate() {
                if let Some(f) = slot {
                    match f.as_mut().poll(cx) {
                        Poll::Ready(r) => {
                            if first && i == 0 && r.is_err() {
                                unsent = true;
                            }
                            *result = Some(r);
                            *slot = None;
                        }
                        Poll::Pending => done = false,
                    }
                }
            }
            first = false;
            if done { Poll::Ready(()) } else { Poll::Pending }
        })
        .await;
        if unsent {
            if let Some(Some(first)) = results.into_iter().next() {
                let _ = self.noted(first);
            }
            return None;
        }
        Some(
            results
                .into_iter()
                .map(|r| self.noted(r.expect("every request answered")))
                .collect(),
        )
    }

    /// Polls `request` for the first time under the gate. tokio-postgres enqueues a request
    /// on that first poll, before it waits for anything (`query::start`, `prepare`,
    /// `simple_query`): the gate orders it against a batch's.
    async fn gated<F: Future>(&self, request: F) -> F::Output {
        let mut request = std::pin::pin!(request);
        let mut first = true;
        std::future::poll_fn(|cx| {
            if first {
                first = false;
                let _gate = self.gate.lock().expect("not poisoned");
                return request.as_mut().poll(cx);
            }
            request.as_mut().poll(cx)
        })
        .await
    }
}

/// What a failed request means for the client. The server refusing a statement (an error it
/// reports, other than its own shutdown) means the statement rolled back: `Unavailable`.
/// Anything else — the connection broke, the server went away mid-statement — may have
/// committed: `Unknown`.
pub(super) fn classify(e: &tokio_postgres::Error) -> LedgerError {
    match e.as_db_error() {
        Some(db) => reported(db.parsed_severity(), db.code().code()),
        None => LedgerError::Unknown,
    }
}

/// An error the server reported, by severity and SQLSTATE. An ERROR rolls the statement (or
/// the transaction) back: `Unavailable`, unless its class says the server itself is going
/// away (57 operator intervention, 08 connection, 58 system, XX internal). A FATAL or PANIC
/// ends the session whatever its SQLSTATE, and may come after the work it answers is durable:
/// 53100 (disk full) from the WAL writer on COMMIT, after the commit record may have reached
/// the disk, or a PANIC whose crash recovery replays that record. Neither says the statement
/// rolled back: `Unknown`.
fn reported(severity: Option<Severity>, code: &str) -> LedgerError {
    let ends_session = matches!(severity, Some(Severity::Fatal | Severity::Panic));
    if ends_session || matches!(code.get(..2), Some("57" | "08" | "58" | "XX")) {
        LedgerError::Unknown
    } else {
        LedgerError::Unavailable
    }
}

pub(super) async fn connect_raw(config: &Config) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "postgres connection lost");
        }
    });
    Ok(client)
}

pub(super) async fn connect_with_patience(
    config: &Config,
) -> Result<Client, tokio_postgres::Error> {
    let deadline = tokio::time::Instant::now() + CONNECT_PATIENCE;
    loop {
        match connect_raw(config).await {
            Ok(c) => return Ok(c),
            Err(e) if tokio::time::Instant::now() < deadline && e.as_db_error().is_none() => {
                tracing::info!(error = %e, "postgres not reachable yet, retrying");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A FATAL or PANIC on COMMIT (53100 from XLogWrite, after the commit record may be on
    /// disk) says nothing of whether it committed: 504, never 503 "not applied". A plain ERROR
    /// with the same code rolled back: 503.
    #[test]
    fn a_fatal_or_panic_is_outcome_unknown_whatever_its_sqlstate() {
        for severity in [Severity::Fatal, Severity::Panic] {
            for code in ["53100", "25P03", "23505", "40001"] {
                assert_eq!(
                    reported(Some(severity), code),
                    LedgerError::Unknown,
                    "{severity:?} {code}"
                );
            }
        }
        for code in ["53100", "23505", "40001", "22003"] {
            assert_eq!(
                reported(Some(Severity::Error), code),
                LedgerError::Unavailable,
                "ERROR {code}"
            );
        }
        for code in ["57P01", "08006", "58030", "XX000"] {
            assert_eq!(
                reported(Some(Severity::Error), code),
                LedgerError::Unknown,
                "{code}"
            );
        }
    }
}
