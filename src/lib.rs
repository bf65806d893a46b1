//! crebito: the Rinha de Backend 2024/Q1 bank API.
//!
//! - [`domain`]: values that cannot be invalid (client id, amount, kind, description).
//! - [`http`]: the contract — routes, status codes, limits, connections.
//! - [`store`]: the [`store::Ledger`] trait and its SQLite and PostgreSQL implementations.
//! - [`startup`]: builds an [`startup::Application`] from [`configuration`].

pub mod configuration;
pub mod domain;
pub mod healthcheck;
pub mod http;
pub mod shutdown;
pub mod startup;
pub mod store;
pub mod telemetry;
