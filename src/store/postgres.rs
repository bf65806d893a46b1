//! The PostgreSQL store: the reference design, one round trip per request.
//!
//! PostgreSQL owns the invariant: `apply` is the single statement in
//! `sql/postgres/apply.sql` (conditional `UPDATE … RETURNING` + `INSERT`), `statement` the
//! single query in `sql/postgres/statement.sql`, both prepared once per connection.
//!
//! A few connections, not a pool: tokio-postgres pipelines concurrent queries on one
//! connection, and more than a handful of sessions fighting over five hot rows only adds
//! lock waits. Requests are spread round-robin over the slots. When a connection is lost,
//! the slot is marked dead and a background task reconnects with backoff; meanwhile the
//! other slots carry the traffic. A query is never re-sent, so nothing is applied twice,
//! and the caller is told what is known: no live connection, or a statement the server
//! refused, is `Unavailable` (certainly not applied); a connection that broke after the
//! query was sent is `Unknown` (maybe applied; a retry with an idempotency key tells).
//! The one exception, `apply_once` after a unique violation on its key, re-asks a statement
//! that the server has already rolled back as a whole.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio_postgres::{Client, Config, NoTls, Statement as Prepared};

use tokio_postgres::error::SqlState;

use super::{KeyPolicy, Ledger, LedgerError, Once, Seed};
use crate::domain::{Balance, ClientId, IdempotencyKey, Statement, StatementEntry, Transaction};

const SCHEMA: &str = include_str!("../../sql/postgres/schema.sql");
const SEED: &str = include_str!("../../sql/postgres/seed.sql");
const APPLY: &str = include_str!("../../sql/postgres/apply.sql");
const STATEMENT: &str = include_str!("../../sql/postgres/statement.sql");
const APPLY_ONCE: &str = include_str!("../../sql/postgres/apply_once.sql");
const CITUS_EXTENSION: &str = include_str!("../../sql/postgres/citus/extension.sql");
const CITUS_DISTRIBUTE: &str = include_str!("../../sql/postgres/citus/distribute.sql");
const CITUS_FUNCTIONS: &str = include_str!("../../sql/postgres/citus/functions.sql");
const CITUS_APPLY: &str = include_str!("../../sql/postgres/citus/apply.sql");
const CITUS_APPLY_ONCE: &str = include_str!("../../sql/postgres/citus/apply_once.sql");
const PURGE_KEYS: &str = include_str!("../../sql/postgres/purge_keys.sql");
const PERSISTENCE: &str = include_str!("../../sql/postgres/persistence.sql");

/// How the tables are stored: the store's own notion, onto which the CLI's profile
/// (`durable` / `contest`) is mapped by `startup`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persistence {
    /// Logged tables: a crash loses nothing the server's own durability settings keep.
    Logged,
    /// `UNLOGGED` tables: no WAL, emptied by crash recovery (the contest's trade-off).
    Unlogged,
}

/// Where the tables live: the store's own notion of the CLI's `--pg-layout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Plain tables on one server.
    Single,
    /// A Citus cluster: tables distributed by client, co-located; each request runs on the
    /// worker owning the client (sql/postgres/citus/).
    Citus,
}

/// How to set up and reach the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    pub persistence: Persistence,
    pub layout: Layout,
    pub seed: Seed,
    /// Connections kept open (each pipelines many concurrent queries).
    pub connections: u16,
    pub keys: KeyPolicy,
}

/// Key of the advisory lock that serialises schema changes between instances starting
/// at the same moment ("crebito" in ASCII, as a number).
const MIGRATION_LOCK: i64 = 0x63_72_65_62_69_74_6f;

/// How long start-up keeps trying to reach the server (it may still be starting).
const CONNECT_PATIENCE: Duration = Duration::from_secs(15);

struct Conn {
    client: Client,
    apply: Prepared,
    apply_once: Prepared,
    statement: Prepared,
}

struct Slot {
    conn: RwLock<Option<Arc<Conn>>>,
    reconnecting: AtomicBool,
}

struct Shared {
    config: Config,
    options: Options,
    slots: Vec<Slot>,
}

/// Handle to the connections. Dropping it lets the reconnect tasks end.
pub struct PgLedger {
    shared: Arc<Shared>,
    next: AtomicUsize,
}

impl PgLedger {
    /// Connects, applies the schema (once, under an advisory lock) with the profile's
    /// persistence and the layout, seeds the clients, and opens the prepared connections.
    pub async fn connect(url: &str, options: Options) -> Result<PgLedger, tokio_postgres::Error> {
        let mut config: Config = url.parse()?;
        // Statements are prepared once, when a connection opens, and PostgreSQL keeps their
        // plan until the table's statistics change. Prepared on a fresh, empty `transacoes`,
        // statement.sql got a bitmap scan of *every* transaction of the client plus a sort:
        // 1.76 ms and 275 buffers after a 20 s run at 6x, growing with history, against
        // 0.03 ms for the ordered index scan it gets on a full table (bench/hops.sh;
        // docs/src/performance.md, "Where the tail comes from"). Every query of crebito's
        // has an index that answers it directly, so its sessions rule out sequential and
        // bitmap scans: the plan no longer depends on when it was made.
        let planner = "-c enable_seqscan=off -c enable_bitmapscan=off";
        let session = match config.get_options() {
            Some(o) => format!("{o} {planner}"),
            None => planner.to_string(),
        };
        config.options(&session);
        let first = connect_with_patience(&config).await?;
        migrate(&first, &options).await?;
        let mut slots = Vec::with_capacity(usize::from(options.connections));
        slots.push(Slot::new(Some(prepare(first, options.layout).await?)));
        for _ in 1..options.connections {
            slots.push(Slot::new(Some(open(&config, options.layout).await?)));
        }
        let shared = Arc::new(Shared {
            config,
            options,
            slots,
        });
        tokio::spawn(purge_keys(Arc::downgrade(&shared), options.keys));
        Ok(PgLedger {
            shared,
            next: AtomicUsize::new(0),
        })
    }

    /// A live connection and its slot, starting from the next slot in turn; dead slots
    /// start reconnecting.
    fn conn(&self) -> Result<(usize, Arc<Conn>), LedgerError> {
        let n = self.shared.slots.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for k in 0..n {
            let i = (start + k) % n;
            let current = self.shared.slots[i]
                .conn
                .read()
                .expect("not poisoned")
                .clone();
            match current {
                Some(c) if !c.client.is_closed() => return Ok((i, c)),
                _ => self.mark_dead(i),
            }
        }
        Err(LedgerError::Unavailable)
    }

    fn mark_dead(&self, i: usize) {
        let slot = &self.shared.slots[i];
        *slot.conn.write().expect("not poisoned") = None;
        if !slot.reconnecting.swap(true, Ordering::AcqRel) {
            let shared = Arc::downgrade(&self.shared);
            tokio::spawn(reconnect(shared, i));
        }
    }

    /// What a failed query means for the client, and retires slot `i` if its connection
    /// is gone. The server refusing a statement (an error it reports, other than its own
    /// shutdown) means the statement rolled back: `Unavailable`. Anything else — the
    /// connection broke, the server went away mid-statement — may have committed: `Unknown`.
    fn failed(&self, i: usize, conn: &Conn, e: tokio_postgres::Error) -> LedgerError {
        tracing::error!(error = %e, db = ?e.as_db_error().map(|d| d.message()), "postgres query failed");
        if conn.client.is_closed() {
            self.mark_dead(i);
        }
        match e.as_db_error() {
            Some(db) if !matches!(&db.code().code()[..2], "57" | "08" | "58" | "XX") => {
                LedgerError::Unavailable
            }
            _ => LedgerError::Unknown,
        }
    }
}

impl Slot {
    fn new(conn: Option<Conn>) -> Slot {
        Slot {
            conn: RwLock::new(conn.map(Arc::new)),
            reconnecting: AtomicBool::new(false),
        }
    }
}

impl Ledger for PgLedger {
    async fn apply(&self, client: ClientId, t: &Transaction) -> Result<Balance, LedgerError> {
        let (slot, conn) = self.conn()?;
        let row = conn
            .client
            .query_one(
                &conn.apply,
                &[
                    &client.get(),
                    &t.delta(),
                    &t.amount.get(),
                    &t.kind.as_str(),
                    &t.description.as_str(),
                ],
            )
            .await
            .map_err(|e| self.failed(slot, &conn, e))?;
        decode_apply(&row)
    }

    async fn apply_once(&self, client: ClientId, t: &Transaction, key: &IdempotencyKey) -> Once {
        let fingerprint = t.fingerprint();
        // Twice at most: a unique violation on the key means a racing request with the same
        // key committed first, and this statement was rolled back whole; asked again, it finds
        // the key and replays that request's answer.
        for attempt in 0..2 {
            let (slot, conn) = match self.conn() {
                Ok(c) => c,
                Err(e) => {
                    return Once::fresh(Err(e));
                }
            };
            let row = conn
                .client
                .query_one(
                    &conn.apply_once,
                    &[
                        &client.get(),
                        &t.delta(),
                        &t.amount.get(),
                        &t.kind.as_str(),
                        &t.description.as_str(),
                        &key.as_str(),
                        &fingerprint,
                    ],
                )
                .await;
            let row = match row {
                Ok(row) => row,
                Err(e) if attempt == 0 && e.code() == Some(&SqlState::UNIQUE_VIOLATION) => continue,
                Err(e) => {
                    return Once::fresh(Err(self.failed(slot, &conn, e)));
                }
            };
            if let Some(pedido) = row.get::<_, Option<&str>>(3) {
                let outcome = if pedido != fingerprint {
                    Err(LedgerError::KeyReused)
                } else if row.get::<_, bool>(4) {
                    Ok(Balance {
                        saldo: row.get(5),
                        limite: row.get(6),
                    })
                } else {
                    Err(LedgerError::LimitExceeded)
                };
                return Once {
                    replayed: outcome != Err(LedgerError::KeyReused),
                    outcome,
                };
            }
            return Once::fresh(decode_apply(&row));
        }
        Once::fresh(Err(LedgerError::Unavailable))
    }

    async fn statement(&self, client: ClientId) -> Result<Statement, LedgerError> {
        let (slot, conn) = self.conn()?;
        let rows = conn
            .client
            .query(&conn.statement, &[&client.get()])
            .await
            .map_err(|e| self.failed(slot, &conn, e))?;
        let Some(first) = rows.first() else {
            return Err(LedgerError::UnknownClient);
        };
        let balance = Balance {
            saldo: first.get(0),
            limite: first.get(1),
        };
        let mut entries = Vec::with_capacity(rows.len());
        for row in &rows {
            let Some(valor) = row.get::<_, Option<i64>>(2) else {
                continue;
            };
            let entry =
                StatementEntry::decode(valor, row.get(3), row.get(4), row.get(5)).map_err(|e| {
                    tracing::error!(error = %e, client = client.get(), "statement not served");
                    LedgerError::Unavailable
                })?;
            entries.push(entry);
        }
        Ok(Statement::new(balance, entries))
    }

    async fn ping(&self) -> Result<(), LedgerError> {
        let (slot, conn) = self.conn()?;
        conn.client
            .simple_query("")
            .await
            .map(drop)
            .map_err(|e| self.failed(slot, &conn, e))
    }
}

/// The first three columns of apply.sql and apply_once.sql: the new balance, or why not.
fn decode_apply(row: &tokio_postgres::Row) -> Result<Balance, LedgerError> {
    let saldo: Option<i64> = row.get(0);
    let limite: Option<i64> = row.get(1);
    match (saldo, limite) {
        (Some(saldo), Some(limite)) => Ok(Balance { saldo, limite }),
        _ if row.get::<_, Option<bool>>(2) == Some(true) => Err(LedgerError::LimitExceeded),
        _ => Err(LedgerError::UnknownClient),
    }
}

/// Every `keys.purge_every`, forgets keys older than the retention; ends with the ledger.
async fn purge_keys(shared: std::sync::Weak<Shared>, keys: KeyPolicy) {
    loop {
        tokio::time::sleep(keys.purge_every).await;
        let Some(s) = shared.upgrade() else { return };
        let conn = s.slots[0].conn.read().expect("not poisoned").clone();
        drop(s);
        if let Some(conn) = conn {
            let secs = keys.retention.as_secs_f64();
            match conn.client.execute(PURGE_KEYS, &[&secs]).await {
                Ok(n) => tracing::debug!(purged = n, "expired idempotency keys"),
                Err(e) => tracing::warn!(error = %e, "purging idempotency keys failed"),
            }
        }
    }
}

async fn connect_raw(config: &Config) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "postgres connection lost");
        }
    });
    Ok(client)
}

async fn connect_with_patience(config: &Config) -> Result<Client, tokio_postgres::Error> {
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

async fn prepare(client: Client, layout: Layout) -> Result<Conn, tokio_postgres::Error> {
    let (apply, apply_once) = match layout {
        Layout::Single => (APPLY, APPLY_ONCE),
        Layout::Citus => (CITUS_APPLY, CITUS_APPLY_ONCE),
    };
    let apply = client.prepare(apply).await?;
    let apply_once = client.prepare(apply_once).await?;
    let statement = client.prepare(STATEMENT).await?;
    Ok(Conn {
        client,
        apply,
        apply_once,
        statement,
    })
}

async fn open(config: &Config, layout: Layout) -> Result<Conn, tokio_postgres::Error> {
    prepare(connect_raw(config).await?, layout).await
}

/// Applies the schema, the profile's persistence, the layout and the seed. Two instances
/// starting together take turns on the advisory lock; the second finds everything in place.
async fn migrate(client: &Client, options: &Options) -> Result<(), tokio_postgres::Error> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    let result = async {
        if options.layout == Layout::Citus {
            client.batch_execute(CITUS_EXTENSION).await?;
        }
        client.batch_execute(SCHEMA).await?;
        // Before distributing: Citus creates the shards with the tables' persistence.
        set_persistence(client, options.persistence).await?;
        if options.layout == Layout::Citus {
            client.batch_execute(CITUS_DISTRIBUTE).await?;
        }
        let extra = i32::try_from(options.seed.extra).unwrap_or(i32::MAX);
        client
            .execute(SEED, &[&extra, &options.seed.extra_limit])
            .await?;
        if options.layout == Layout::Citus {
            client.batch_execute(CITUS_FUNCTIONS).await?;
        }
        Ok(())
    }
    .await;
    client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await?;
    result
}

async fn set_persistence(
    client: &Client,
    persistence: Persistence,
) -> Result<(), tokio_postgres::Error> {
    let wanted = match persistence {
        Persistence::Logged => "p",
        Persistence::Unlogged => "u",
    };
    let mismatched = client
        .query(PERSISTENCE, &[])
        .await?
        .iter()
        .any(|r| r.get::<_, &str>(1) != wanted);
    if mismatched {
        let to = if wanted == "u" { "UNLOGGED" } else { "LOGGED" };
        tracing::info!(?persistence, "setting tables {to}");
        client
            .batch_execute(&format!(
                "ALTER TABLE transacoes SET {to}; ALTER TABLE idempotencia SET {to}; \
                 ALTER TABLE clientes SET {to};"
            ))
            .await?;
    }
    Ok(())
}

/// Reopens slot `i`, retrying every 50–250 ms (a restarted server is usually back within a
/// second). The schema and the seed are applied again first: a crash of a server running
/// the contest profile empties its UNLOGGED tables, clients included, and the ledger must
/// come back consistent (five clients at saldo 0, no transactions) rather than all 404s.
async fn reconnect(shared: std::sync::Weak<Shared>, i: usize) {
    let mut backoff = Duration::from_millis(50);
    loop {
        let Some(s) = shared.upgrade() else { return };
        let reopened = async {
            let client = connect_raw(&s.config).await?;
            migrate(&client, &s.options).await?;
            prepare(client, s.options.layout).await
        };
        match reopened.await {
            Ok(conn) => {
                *s.slots[i].conn.write().expect("not poisoned") = Some(Arc::new(conn));
                s.slots[i].reconnecting.store(false, Ordering::Release);
                tracing::info!(slot = i, "postgres connection re-established");
                return;
            }
            Err(e) => {
                tracing::warn!(slot = i, error = %e, "postgres reconnect failed");
            }
        }
        drop(s);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_millis(250));
    }
}
