//! Stores: where balances live. Each one implements [`Ledger`] and nothing else.
//!
//! A store owns the balance invariant: `apply` checks the limit and records the transaction
//! in one atomic step (one SQLite transaction on the writer thread, one SQL statement on
//! PostgreSQL), so no interleaving of requests — in one process or across several — can
//! lose an update or push a balance below `-limite`.

pub mod postgres;
pub mod sqlite;

use std::future::Future;

use crate::domain::{Balance, ClientId, IdempotencyKey, Statement, Transaction};

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
}
