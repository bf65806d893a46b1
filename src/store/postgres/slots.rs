//! The connections: a few slots, each one prepared connection, used in turn. A dead slot is
//! reopened in the background (schema and seed applied again first) while the others carry
//! the load; what a failed query means for the client is decided here, once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio_postgres::{Client, Config, NoTls, Statement as Prepared};

use super::{Layout, LedgerError, Options, PgLedger};

const APPLY: &str = include_str!("../../../sql/postgres/apply.sql");
const STATEMENT: &str = include_str!("../../../sql/postgres/statement.sql");
const APPLY_ONCE: &str = include_str!("../../../sql/postgres/apply_once.sql");
const CITUS_APPLY: &str = include_str!("../../../sql/postgres/citus/apply.sql");
const CITUS_APPLY_ONCE: &str = include_str!("../../../sql/postgres/citus/apply_once.sql");

/// How long start-up keeps trying to reach the server (it may still be starting).
const CONNECT_PATIENCE: Duration = Duration::from_secs(15);

pub(super) struct Conn {
    pub(super) client: Client,
    pub(super) apply: Prepared,
    pub(super) apply_once: Prepared,
    pub(super) statement: Prepared,
}

pub(super) struct Slot {
    pub(super) conn: RwLock<Option<Arc<Conn>>>,
    reconnecting: AtomicBool,
}

pub(super) struct Shared {
    config: Config,
    pub(super) options: Options,
    pub(super) slots: Vec<Slot>,
}

impl Shared {
    pub(super) fn new(config: Config, options: Options, slots: Vec<Slot>) -> Shared {
        Shared {
            config,
            options,
            slots,
        }
    }
}

impl PgLedger {
    /// A live connection and its slot, starting from the next slot in turn; dead slots
    /// start reconnecting.
    pub(super) fn conn(&self) -> Result<(usize, Arc<Conn>), LedgerError> {
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
    pub(super) fn failed(&self, i: usize, conn: &Conn, e: tokio_postgres::Error) -> LedgerError {
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
    pub(super) fn new(conn: Option<Conn>) -> Slot {
        Slot {
            conn: RwLock::new(conn.map(Arc::new)),
            reconnecting: AtomicBool::new(false),
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

pub(super) async fn prepare(client: Client, layout: Layout) -> Result<Conn, tokio_postgres::Error> {
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

pub(super) async fn open(config: &Config, layout: Layout) -> Result<Conn, tokio_postgres::Error> {
    prepare(connect_raw(config).await?, layout).await
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
            super::migrate::migrate(&client, &s.options).await?;
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
