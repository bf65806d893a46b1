//! Stores: where balances live. Each one implements [`Ledger`] and nothing else.
//!
//! A store owns the balance invariant: `apply` checks the limit and records the transaction
//! in one atomic step (one SQLite transaction on the writer thread, one SQL statement on
//! PostgreSQL), so no interleaving of requests — in one process or across several — can
//! lose an update or push a balance below `-limite`.

pub mod postgres;
pub mod sqlite;

use std::future::Future;

use crate::domain::{Balance, ClientId, Statement, Transaction};

/// Why a store did not do what was asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    /// No client has this id: 404.
    #[error("client not found")]
    UnknownClient,
    /// The debit would leave the balance below `-limite`, or the credit would overflow it: 422.
    #[error("transaction refused: over the limit")]
    LimitExceeded,
    /// The store could not be reached or failed; nothing was applied twice: 503.
    #[error("store unavailable")]
    Unavailable,
}

/// The two operations of the API, one round trip (or one atomic step) each.
pub trait Ledger: Send + Sync + 'static {
    /// Applies a transaction atomically and returns the new balance.
    fn apply(
        &self,
        client: ClientId,
        transaction: &Transaction,
    ) -> impl Future<Output = Result<Balance, LedgerError>> + Send;

    /// Reads the balance and the [`Statement::LAST`] newest transactions, consistently.
    fn statement(
        &self,
        client: ClientId,
    ) -> impl Future<Output = Result<Statement, LedgerError>> + Send;

    /// Whether the store answers at all (for `/healthz`).
    fn ping(&self) -> impl Future<Output = Result<(), LedgerError>> + Send;
}
