//! The embedded store: one SQLite file, one writer thread, group commit.
//!
//! SQLite allows one writer at a time, and its calls block. So one dedicated OS thread owns
//! the connection and serves commands from a bounded channel: the async runtime never
//! blocks, and requests queue instead of contending for a lock. Whatever is queued when the
//! thread wakes up is served in one `BEGIN IMMEDIATE … COMMIT` (group commit): each `apply`
//! is still its own conditional `UPDATE … RETURNING` + `INSERT`, and no reply leaves before
//! the commit that contains it. WAL mode with `synchronous = FULL` by default: each batch's
//! commit is fsynced before its answers leave, so a power cut takes nothing answered 200 (one
//! flush per batch, not per write); `--sqlite-sync normal` syncs at checkpoints only, which a
//! crash of the process survives and a power cut may not (docs/src/architecture.md).
//!
//! Several instances may open one file (bench/shared-sqlite.sh: both contest instances on
//! one file, no database server). SQLite's file locks then order their commits: a
//! batch that writes waits for the other's lock in short sleeps ([`busy_wait`]), and a batch
//! that only reads takes a snapshot without the write lock, never waiting for the other's
//! flush.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use tokio::sync::{mpsc, oneshot};

use super::{KeyPolicy, Ledger, LedgerError, Once, Purges, Seed, StatementRows};
use crate::domain::{Balance, ClientId, IdempotencyKey, Statement, Timestamp, Transaction};

const SCHEMA: &str = include_str!("../../sql/sqlite/schema.sql");
const SEED: &str = include_str!("../../sql/sqlite/seed.sql");
const APPLY: &str = include_str!("../../sql/sqlite/apply.sql");
const INSERT: &str = include_str!("../../sql/sqlite/insert.sql");
const STATEMENT: &str = include_str!("../../sql/sqlite/statement.sql");
const CLIENT_EXISTS: &str = include_str!("../../sql/sqlite/client_exists.sql");
const KEY_LOOKUP: &str = include_str!("../../sql/sqlite/key_lookup.sql");
const KEY_INSERT: &str = include_str!("../../sql/sqlite/key_insert.sql");
const PURGE_KEYS: &str = include_str!("../../sql/sqlite/purge_keys.sql");

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error("cannot start the writer thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// How many requests may wait for the writer before callers wait for room.
const QUEUE: usize = 4096;

enum Command {
    Apply(
        ClientId,
        Transaction,
        oneshot::Sender<Result<Balance, LedgerError>>,
    ),
    ApplyOnce(ClientId, Transaction, IdempotencyKey, oneshot::Sender<Once>),
    Statement(ClientId, oneshot::Sender<Result<Statement, LedgerError>>),
    Ping(oneshot::Sender<Result<(), LedgerError>>),
}

/// Handle to the writer thread; cheap to share (`Arc` it). The thread ends when the last
/// handle is dropped.
pub struct SqliteLedger {
    tx: mpsc::Sender<Command>,
    purges: std::sync::Arc<Purges>,
}

impl SqliteLedger {
    /// Opens (creating if needed) the database file, applies the schema and seeds the
    /// clients, then starts the writer thread; `durable`: `synchronous = FULL`, else `NORMAL`.
    pub fn open(
        path: &Path,
        seed: Seed,
        keys: KeyPolicy,
        durable: bool,
    ) -> Result<SqliteLedger, OpenError> {
        let mut conn = Connection::open(path)?;
        conn.busy_handler(Some(busy_wait()))?;
        conn.execute_batch(SCHEMA)?;
        conn.execute(SEED, params![seed.extra, seed.extra_limit])?;
        conn.pragma_update(None, "synchronous", if durable { "FULL" } else { "NORMAL" })?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let purges = std::sync::Arc::new(Purges::default());
        let counted = purges.clone();
        std::thread::Builder::new()
            .name("crebito-sqlite".into())
            .spawn(move || writer(conn, rx, keys, &counted))
            .map_err(OpenError::Thread)?;
        Ok(SqliteLedger { tx, purges })
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

    async fn apply_once(&self, client: ClientId, t: &Transaction, key: &IdempotencyKey) -> Once {
        let unavailable = Once::fresh(Err(LedgerError::Unavailable));
        let (reply, rx) = oneshot::channel();
        let command = Command::ApplyOnce(client, *t, key.clone(), reply);
        if self.tx.send(command).await.is_err() {
            return unavailable;
        }
        rx.await.unwrap_or(unavailable)
    }

    async fn statement(&self, client: ClientId) -> Result<Statement, LedgerError> {
        self.call(|reply| Command::Statement(client, reply)).await
    }

    async fn ping(&self) -> Result<(), LedgerError> {
        self.call(Command::Ping).await
    }

    fn render_metrics(&self, out: &mut String) {
        self.purges.render(out);
    }
}

/// How long a transaction waits for another connection's lock before it fails (503).
const BUSY_LIMIT: Duration = Duration::from_secs(5);

/// The wait between two tries for a lock another connection holds: 25 µs, doubling up to
/// 800 µs. Another process may share the file (two instances on one database), and its
/// lock lasts one transaction and its flush, a fraction of a millisecond. SQLite's own
/// handler (`busy_timeout`) sleeps 1 ms at the first try and longer after, which at the
/// official rate put a millisecond on every write that met the other instance's commit
/// (docs/src/performance.md, "One SQLite file for both instances").
fn busy_backoff(tries: i32) -> Duration {
    Duration::from_micros(25 << tries.clamp(0, 5))
}

/// The busy handler: sleeps [`busy_backoff`] between tries, until [`BUSY_LIMIT`] has passed
/// since the first one (then SQLite returns `SQLITE_BUSY`: the batch fails, not applied).
fn busy_wait() -> impl FnMut(i32) -> bool + Send + 'static {
    let mut first = std::time::Instant::now();
    move |tries| {
        if tries == 0 {
            first = std::time::Instant::now();
        }
        if first.elapsed() >= BUSY_LIMIT {
            return false;
        }
        std::thread::sleep(busy_backoff(tries));
        true
    }
}

/// Most commands served by one commit.
const BATCH: usize = 256;

/// Group commit: whatever is queued when the writer wakes up (up to [`BATCH`] commands) is
/// served inside one `BEGIN IMMEDIATE … COMMIT`, in arrival order, and the replies are sent
/// only once that commit succeeded. Each `apply` is still atomic on its own (a refused one
/// changes nothing), statements see every earlier command of the batch, and if anything in
/// the batch fails the whole batch rolls back and every caller gets 503: nothing is ever
/// reported as applied unless it is committed.
/// Every `keys.purge_every` (checked when a command arrives), keys older than the retention
/// are forgotten first.
fn writer(mut conn: Connection, mut rx: mpsc::Receiver<Command>, keys: KeyPolicy, purges: &Purges) {
    let mut batch = std::collections::VecDeque::with_capacity(BATCH);
    let mut replies = Vec::with_capacity(BATCH);
    let mut purged = std::time::Instant::now();
    while let Some(first) = rx.blocking_recv() {
        if purged.elapsed() >= keys.purge_every {
            purged = std::time::Instant::now();
            let before = Timestamp::now().micros() - keys.retention.as_micros() as i64;
            match conn.execute(PURGE_KEYS, params![before]) {
                Ok(_) => purges.ran(),
                Err(e) => tracing::warn!(error = %e, "purging idempotency keys failed"),
            }
        }
        batch.push_back(first);
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(c) => batch.push_back(c),
                Err(_) => break,
            }
        }
        match serve_batch(&mut conn, &mut batch, &mut replies) {
            Ok(()) => replies.drain(..).for_each(Reply::send),
            Err(e) => {
                tracing::error!(error = %e, "sqlite store failed; batch rolled back");
                replies.drain(..).for_each(Reply::unavailable);
                batch
                    .drain(..)
                    .for_each(|c| Reply::unserved(c).unavailable());
            }
        }
    }
}

/// A computed answer waiting for the commit.
enum Reply {
    Apply(
        oneshot::Sender<Result<Balance, LedgerError>>,
        Result<Balance, LedgerError>,
    ),
    ApplyOnce(oneshot::Sender<Once>, Once),
    Statement(
        oneshot::Sender<Result<Statement, LedgerError>>,
        Result<Statement, LedgerError>,
    ),
    Ping(oneshot::Sender<Result<(), LedgerError>>),
}

impl Reply {
    // A reply whose receiver is gone (the client hung up) is not an error.
    fn send(self) {
        match self {
            Reply::Apply(tx, r) => drop(tx.send(r)),
            Reply::ApplyOnce(tx, r) => drop(tx.send(r)),
            Reply::Statement(tx, r) => drop(tx.send(r)),
            Reply::Ping(tx) => drop(tx.send(Ok(()))),
        }
    }

    fn unavailable(self) {
        match self {
            Reply::Apply(tx, _) => drop(tx.send(Err(LedgerError::Unavailable))),
            Reply::ApplyOnce(tx, _) => drop(tx.send(Once::fresh(Err(LedgerError::Unavailable)))),
            Reply::Statement(tx, _) => drop(tx.send(Err(LedgerError::Unavailable))),
            Reply::Ping(tx) => drop(tx.send(Err(LedgerError::Unavailable))),
        }
    }

    /// The reply slot of a command the batch did not reach.
    fn unserved(c: Command) -> Reply {
        match c {
            Command::Apply(_, _, tx) => Reply::Apply(tx, Err(LedgerError::Unavailable)),
            Command::ApplyOnce(_, _, _, tx) => {
                Reply::ApplyOnce(tx, Once::fresh(Err(LedgerError::Unavailable)))
            }
            Command::Statement(_, tx) => Reply::Statement(tx, Err(LedgerError::Unavailable)),
            Command::Ping(tx) => Reply::Ping(tx),
        }
    }
}

/// What serving one command produced, before its reply slot is paired with it.
enum Served {
    Apply(Result<Balance, LedgerError>),
    ApplyOnce(Once),
    Statement(Result<Statement, LedgerError>),
    Ping,
}

/// Serves the queued commands in one transaction. A command leaves `batch` only once
/// served, so after an error what is left in it was not reached.
fn serve_batch(
    conn: &mut Connection,
    batch: &mut std::collections::VecDeque<Command>,
    replies: &mut Vec<Reply>,
) -> rusqlite::Result<()> {
    // A batch that only reads takes a snapshot and no write lock: in WAL mode it never waits
    // for a writer (another instance's commit and its flush), and it sees every write already
    // answered: a write is answered once its commit returns, which is after the commit became
    // visible (with `synchronous = FULL`, after its WAL frames were synced).
    let reads_only = batch
        .iter()
        .all(|c| matches!(c, Command::Statement(..) | Command::Ping(_)));
    let behavior = if reads_only {
        TransactionBehavior::Deferred
    } else {
        TransactionBehavior::Immediate
    };
    let txn = conn.transaction_with_behavior(behavior)?;
    while let Some(command) = batch.pop_front() {
        let served = match &command {
            Command::Apply(client, t, _) => apply(&txn, *client, t).map(Served::Apply),
            Command::ApplyOnce(client, t, key, _) => {
                apply_once(&txn, *client, t, key).map(Served::ApplyOnce)
            }
            Command::Statement(client, _) => statement(&txn, *client).map(Served::Statement),
            Command::Ping(_) => txn.query_row("SELECT 1", [], |_| Ok(Served::Ping)),
        };
        let served = match served {
            Ok(s) => s,
            Err(e) => {
                batch.push_front(command);
                return Err(e);
            }
        };
        replies.push(match (command, served) {
            (Command::Apply(_, _, tx), Served::Apply(r)) => Reply::Apply(tx, r),
            (Command::ApplyOnce(_, _, _, tx), Served::ApplyOnce(r)) => Reply::ApplyOnce(tx, r),
            (Command::Statement(_, tx), Served::Statement(r)) => Reply::Statement(tx, r),
            (Command::Ping(tx), Served::Ping) => Reply::Ping(tx),
            _ => unreachable!("each command is served by its own arm"),
        });
    }
    txn.commit()
}

/// The limit check and the insert, inside the batch's transaction. A refused transaction
/// changes nothing: the conditional update matched no row.
fn apply(
    txn: &rusqlite::Transaction<'_>,
    client: ClientId,
    t: &Transaction,
) -> rusqlite::Result<Result<Balance, LedgerError>> {
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
    Ok(Ok(balance))
}

/// `apply`, at most once per key: a known key replays its stored answer (or refuses a
/// different request); a new one is stored with the answer, in the batch's transaction.
fn apply_once(
    txn: &rusqlite::Transaction<'_>,
    client: ClientId,
    t: &Transaction,
    key: &IdempotencyKey,
) -> rusqlite::Result<Once> {
    let fingerprint = t.fingerprint();
    let prev = txn
        .prepare_cached(KEY_LOOKUP)?
        .query_row(params![client.get(), key.as_str()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, bool>(1)?,
                r.get::<_, Option<i64>>(2)?,
                r.get::<_, Option<i64>>(3)?,
            ))
        })
        .optional()?;
    if let Some((pedido, aplicada, saldo, limite)) = prev {
        let balance = saldo
            .zip(limite)
            .map(|(saldo, limite)| Balance { saldo, limite });
        return Ok(Once::stored(pedido == fingerprint, aplicada, balance));
    }
    let outcome = apply(txn, client, t)?;
    let stored = match outcome {
        Ok(b) => Some((true, Some(b.saldo), Some(b.limite))),
        Err(LedgerError::LimitExceeded) => Some((false, None, None)),
        Err(_) => None,
    };
    if let Some((aplicada, saldo, limite)) = stored {
        txn.prepare_cached(KEY_INSERT)?.execute(params![
            client.get(),
            key.as_str(),
            fingerprint,
            aplicada,
            saldo,
            limite,
            Timestamp::now().micros(),
        ])?;
    }
    Ok(Once::fresh(outcome))
}

fn statement(
    conn: &Connection,
    client: ClientId,
) -> rusqlite::Result<Result<Statement, LedgerError>> {
    let mut stmt = conn.prepare_cached(STATEMENT)?;
    let mut rows = stmt.query(params![client.get()])?;
    let mut statement = StatementRows::new(client);
    while let Some(row) = rows.next()? {
        let balance = Balance {
            saldo: row.get(0)?,
            limite: row.get(1)?,
        };
        let entry = match row.get::<_, Option<i64>>(2)? {
            Some(valor) => Some((valor, row.get_ref(3)?.as_str()?, row.get(4)?, row.get(5)?)),
            None => None,
        };
        // A corrupt row fails this statement only, not the batch around it.
        if let Err(e) = statement.push(balance, entry) {
            return Ok(Err(e));
        }
    }
    Ok(statement.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_busy_backoff_starts_far_below_sqlites_millisecond_and_stays_below_it() {
        let waits: Vec<_> = (0..100).map(busy_backoff).collect();
        assert_eq!(waits[0], Duration::from_micros(25));
        assert!(waits.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(*waits.last().unwrap(), Duration::from_micros(800));
    }
}
