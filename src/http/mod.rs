//! The HTTP contract, in one place.
//!
//! [`route`] says what a request is for; [`routes`] maps it to a handler and a handler's outcome to a status code and body
//! (spec §1 and §6); [`server`] owns connections: accept, limits, timeouts, graceful
//! shutdown; [`metrics`] counts what both see. None knows any SQL: handlers speak to a
//! [`crate::store::Ledger`].

pub mod metrics;
pub mod route;
pub mod routes;
pub mod server;

pub use metrics::Metrics;
pub use route::Route;
pub use routes::{App, Limits};
pub use server::{ConnLimits, Listener, serve};
