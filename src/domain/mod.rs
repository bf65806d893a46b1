//! Domain types: parse, don't validate.
//!
//! Every value that reaches a store has been parsed into one of these types, and none of
//! them can hold a value the contract forbids: a [`ClientId`] is a positive integer that
//! fits the database column, an [`Amount`] is a positive integer whose effect on any
//! balance cannot overflow, a [`Description`] has 1 to 10 characters. The HTTP layer
//! turns a failed parse into a 404 or a 422; the stores never see invalid data.

mod client_id;
mod idempotency_key;
mod statement;
mod timestamp;
mod transaction;

pub use client_id::ClientId;
pub use idempotency_key::{IdempotencyKey, InvalidKey};
pub use statement::{Balance, CorruptEntry, Statement, StatementBalance, StatementEntry};
pub use timestamp::Timestamp;
pub use transaction::{Amount, Description, Kind, Rejection, Transaction};
