//! What the load generator and the history checker share: the history's format
//! ([`history`]) and the strict-serializability check, against the database's rows
//! ([`check`]) or from the answers alone ([`blackbox`]). The loader itself is the
//! `crebito-loader` binary (`main.rs`); the checker is `crebito-check`.

pub mod blackbox;
pub mod check;
pub mod history;
pub(crate) mod infer;
pub mod rfc3339;
