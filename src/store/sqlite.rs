//! The embedded store: one SQLite file, one writer thread.
//!
//! SQLite allows one writer at a time, and its calls block. So one dedicated OS thread owns
//! the connection and serves commands from a bounded channel: the async runtime never
//! blocks, requests queue instead of contending for a lock, and every `apply` is one
//! `BEGIN IMMEDIATE … COMMIT` in which the conditional `UPDATE … RETURNING` and the
//! `INSERT` happen together. WAL mode with `synchronous = NORMAL`: a crash of the process
//! loses nothing; a power cut may lose the last commits (see docs/architecture.md).

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use tokio::sync::{mpsc, oneshot};

use super::{Ledger, LedgerError};
use crate::domain::{Balance, ClientId, Kind, Statement, StatementEntry, Timestamp, Transaction};

const SCHEMA: &str = include_str!("../../sql/sqlite/schema.sql");
const APPLY: &str = include_str!("../../sql/sqlite/apply.sql");
const INSERT: &str = include_str!("../../sql/sqlite/insert.sql");
const STATEMENT: &str = include_str!("../../sql/sqlite/statement.sql");
const CLIENT_EXISTS: &str = include_str!("../../sql/sqlite/client_exists.sql");

/// How many requests may wait for the writer before callers wait for room.
const QUEUE: usize = 4096;

enum Command {
    Apply(
        ClientId,
        Transaction,
        oneshot::Sender<Result<Balance, LedgerError>>,
    ),
    Statement(ClientId, oneshot::Sender<Result<Statement, LedgerError>>),
    Ping(oneshot::Sender<Result<(), LedgerError>>),
}

/// Handle to the writer thread; cheap to share (`Arc` it). The thread ends when the last
/// handle is dropped.
pub struct SqliteLedger {
    tx: mpsc::Sender<Command>,
    path: PathBuf,
}

impl SqliteLedger {
    /// Opens (creating if needed) the database file, applies the schema and seeds the five
    /// clients, then starts the writer thread.
    pub fn open(path: &Path) -> Result<SqliteLedger, rusqlite::Error> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let (tx, rx) = mpsc::channel(QUEUE);
        std::thread::Builder::new()
            .name("crebito-sqlite".into())
            .spawn(move || writer(conn, rx))
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        Ok(SqliteLedger {
            tx,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, LedgerError>>) -> Command,
    ) -> Result<T, LedgerError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(make(reply))
            .await
            .map_err(|_| LedgerError::Unavailable)?;
        rx.await.map_err(|_| LedgerError::Unavailable)?
    }
}

impl Ledger for SqliteLedger {
    async fn apply(
        &self,
        client: ClientId,
        transaction: &Transaction,
    ) -> Result<Balance, LedgerError> {
        let transaction = *transaction;
        self.call(|reply| Command::Apply(client, transaction, reply))
            .await
    }

    async fn statement(&self, client: ClientId) -> Result<Statement, LedgerError> {
        self.call(|reply| Command::Statement(client, reply)).await
    }

    async fn ping(&self) -> Result<(), LedgerError> {
        self.call(Command::Ping).await
    }
}

fn writer(mut conn: Connection, mut rx: mpsc::Receiver<Command>) {
    while let Some(command) = rx.blocking_recv() {
        // A reply whose receiver is gone (client hung up) is not an error.
        match command {
            Command::Apply(client, t, reply) => {
                let _ = reply.send(unavailable_on_error(apply(&mut conn, client, &t)));
            }
            Command::Statement(client, reply) => {
                let _ = reply.send(unavailable_on_error(statement(&conn, client)));
            }
            Command::Ping(reply) => {
                let ok = conn.query_row("SELECT 1", [], |_| Ok(())).map_err(|e| {
                    tracing::error!(error = %e, "sqlite ping failed");
                    LedgerError::Unavailable
                });
                let _ = reply.send(ok);
            }
        }
    }
}

fn unavailable_on_error<T>(r: rusqlite::Result<Result<T, LedgerError>>) -> Result<T, LedgerError> {
    r.unwrap_or_else(|e| {
        tracing::error!(error = %e, "sqlite store failed");
        Err(LedgerError::Unavailable)
    })
}

fn apply(
    conn: &mut Connection,
    client: ClientId,
    t: &Transaction,
) -> rusqlite::Result<Result<Balance, LedgerError>> {
    let txn = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let updated = txn
        .prepare_cached(APPLY)?
        .query_row(params![client.get(), t.delta()], |r| {
            Ok(Balance {
                saldo: r.get(0)?,
                limite: r.get(1)?,
            })
        })
        .optional()?;
    let Some(balance) = updated else {
        let exists = txn
            .prepare_cached(CLIENT_EXISTS)?
            .exists(params![client.get()])?;
        // Dropping `txn` rolls back: a refused transaction leaves no trace.
        return Ok(Err(if exists {
            LedgerError::LimitExceeded
        } else {
            LedgerError::UnknownClient
        }));
    };
    txn.prepare_cached(INSERT)?.execute(params![
        client.get(),
        t.amount.get(),
        t.kind.as_str(),
        t.description.as_str(),
        Timestamp::now().micros(),
    ])?;
    txn.commit()?;
    Ok(Ok(balance))
}

fn statement(
    conn: &Connection,
    client: ClientId,
) -> rusqlite::Result<Result<Statement, LedgerError>> {
    let mut stmt = conn.prepare_cached(STATEMENT)?;
    let mut rows = stmt.query(params![client.get()])?;
    let mut balance = None;
    let mut entries = Vec::with_capacity(Statement::LAST);
    while let Some(row) = rows.next()? {
        balance.get_or_insert(Balance {
            saldo: row.get(0)?,
            limite: row.get(1)?,
        });
        let Some(valor) = row.get::<_, Option<i64>>(2)? else {
            continue;
        };
        let tipo: String = row.get(3)?;
        entries.push(StatementEntry {
            valor,
            tipo: if tipo == "c" {
                Kind::Credit
            } else {
                Kind::Debit
            },
            descricao: row.get(4)?,
            realizada_em: Timestamp::from_micros(row.get(5)?),
        });
    }
    Ok(match balance {
        Some(b) => Ok(Statement::new(b, entries)),
        None => Err(LedgerError::UnknownClient),
    })
}
