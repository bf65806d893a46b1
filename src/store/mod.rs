//! Stores: where balances live. Each one implements [`Ledger`] and nothing else.
//!
//! A store owns the balance invariant: `apply` checks the limit and records the transaction
//! in one atomic step (one SQLite transaction on the writer thread, one SQL statement on
//! PostgreSQL), so no interleaving of requests — in one process or across several — can
//! lose an update or push a balance below `-limite`.

pub mod postgres;
pub mod sqlite;

use std::future::Future;

use crate::domain::{Balance, ClientId, IdempotencyKey, Statement, StatementEntry, Transaction};

/// Why a store did not do what was asked. Each variant says what became of the request,
/// which is what the client is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    /// No client has this id: 404.
    #[error("client not found")]
    UnknownClient,
    /// The debit would leave the balance below `-limite`, or the credit would overflow it: 422.
    #[error("transaction refused: over the limit")]
    LimitExceeded,
    /// The idempotency key was used before for a different request; nothing applied: 422.
    #[error("idempotency key reused with a different request")]
    KeyReused,
    /// The store could not be reached, or refused the work as a whole: certainly not
    /// applied, safe to retry: 503.
    #[error("store unavailable")]
    Unavailable,
    /// The request reached the store but no answer came back (connection lost after the
    /// query was sent, or the deadline passed): it may or may not have been applied. A retry
    /// with the same `Idempotency-Key` is safe and tells which: 504.
    #[error("outcome unknown")]
    Unknown,
}

/// What [`Ledger::apply_once`] did with a keyed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Once {
    /// The answer: freshly computed, or the one stored with the key.
    pub outcome: Result<Balance, LedgerError>,
    /// The key had been seen with this very request: its stored answer, nothing applied.
    pub replayed: bool,
}

impl Once {
    /// An answer computed now (not a replay).
    pub fn fresh(outcome: Result<Balance, LedgerError>) -> Once {
        Once {
            outcome,
            replayed: false,
        }
    }
}

impl Once {
    /// The answer to a request whose key was stored before, the one rule of both stores: a
    /// different request under the key is refused ([`LedgerError::KeyReused`], nothing
    /// replayed); the same request gets its stored answer again, replayed: the balance it
    /// left if it was applied, the limit refusal if it was not.
    pub fn stored(same_request: bool, applied: bool, balance: Option<Balance>) -> Once {
        let outcome = match (same_request, applied, balance) {
            (false, ..) => Err(LedgerError::KeyReused),
            (true, true, Some(b)) => Ok(b),
            (true, ..) => Err(LedgerError::LimitExceeded),
        };
        Once {
            replayed: same_request,
            outcome,
        }
    }
}

/// A statement assembled from a store's rows, the one rule of both stores: each row carries
/// the client's balance and one transaction (or none: a client without transactions gives
/// one row whose entry columns are null); no row at all means no such client; a row that
/// does not decode fails the statement (logged), never the whole store.
pub struct StatementRows {
    client: ClientId,
    balance: Option<Balance>,
    entries: Vec<StatementEntry>,
}

impl StatementRows {
    pub fn new(client: ClientId) -> StatementRows {
        StatementRows {
            client,
            balance: None,
            entries: Vec::with_capacity(Statement::LAST),
        }
    }

    /// One row: the balance columns, and the entry's (valor, tipo, descricao, realizada_em
    /// in µs) when the row has one.
    pub fn push(
        &mut self,
        balance: Balance,
        entry: Option<(i64, &str, String, i64)>,
    ) -> Result<(), LedgerError> {
        self.balance.get_or_insert(balance);
        let Some((valor, tipo, descricao, at)) = entry else {
            return Ok(());
        };
        let entry = StatementEntry::decode(valor, tipo, descricao, at).map_err(|e| {
            tracing::error!(error = %e, client = self.client.get(), "statement not served");
            LedgerError::Unavailable
        })?;
        self.entries.push(entry);
        Ok(())
    }

    pub fn finish(self) -> Result<Statement, LedgerError> {
        match self.balance {
            Some(b) => Ok(Statement::new(b, self.entries)),
            None => Err(LedgerError::UnknownClient),
        }
    }
}

/// Which clients a store seeds: the contest's five, then `extra` more (ids 6 to 5 + `extra`)
/// with limit `extra_limit` each. The default is the contest data set, exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Seed {
    pub extra: u32,
    pub extra_limit: i64,
}

/// How long a store remembers an idempotency key at least, and how often it purges the keys
/// older than that (both stores follow it; `--key-retention`, `--key-purge-every`: clap owns
/// the defaults, 24 hours and 10 minutes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyPolicy {
    pub retention: std::time::Duration,
    pub purge_every: std::time::Duration,
}

/// Purges of expired idempotency keys that ran (`crebito_key_purges_total`), counted by the
/// store that runs them: the evidence, for an operator and for the tests, that a key
/// outlived a purge inside its retention and went only after.
#[derive(Debug, Default)]
pub struct Purges(std::sync::atomic::AtomicU64);

impl Purges {
    pub fn ran(&self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn render(&self, out: &mut String) {
        use std::fmt::Write;
        let _ = writeln!(
            out,
            "# HELP crebito_key_purges_total Purges of idempotency keys older than the retention that ran.\n\
             # TYPE crebito_key_purges_total counter\n\
             crebito_key_purges_total {}",
            self.0.load(std::sync::atomic::Ordering::Relaxed)
        );
    }
}

/// The two operations of the API, one round trip (or one atomic step) each.
pub trait Ledger: Send + Sync + 'static {
    /// Applies a transaction atomically and returns the new balance.
    fn apply(
        &self,
        client: ClientId,
        transaction: &Transaction,
    ) -> impl Future<Output = Result<Balance, LedgerError>> + Send;

    /// Applies a transaction at most once per `key` and client: the first time, exactly as
    /// [`Ledger::apply`], storing the key with the answer atomically; afterwards, the stored
    /// answer (`replayed`), or [`LedgerError::KeyReused`] if the request differs. Two
    /// requests racing with one key, on any instances, apply once.
    fn apply_once(
        &self,
        client: ClientId,
        transaction: &Transaction,
        key: &IdempotencyKey,
    ) -> impl Future<Output = Once> + Send;

    /// Reads the balance and the [`Statement::LAST`] newest transactions, consistently.
    fn statement(
        &self,
        client: ClientId,
    ) -> impl Future<Output = Result<Statement, LedgerError>> + Send;

    /// Whether the store answers at all (for `/healthz`).
    fn ping(&self) -> impl Future<Output = Result<(), LedgerError>> + Send;

    /// The store's own Prometheus lines, appended to `/metrics` (none by default).
    fn render_metrics(&self, _out: &mut String) {}
}
