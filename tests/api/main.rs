//! Integration tests: the real server, on a random port, against a fresh database per test.
//! Every test in `contract`, `concurrency`, `idempotency` and `robustness` runs once per store
//! (SQLite, PostgreSQL, PostgreSQL with the Citus layout on a two-worker cluster).

mod batch;
mod citus;
#[path = "../common/mod.rs"]
mod common;
mod concurrency;
mod contract;
mod helpers;
mod idempotency;
mod postgres;
mod robustness;
mod sqlite;
