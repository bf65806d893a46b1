//! What the load generator and the history checker share: the history's format
//! ([`history`]) and the strict-serializability check ([`check`]). The loader itself is the
//! `crebito-loader` binary (`main.rs`); the checker is `crebito-check`.

pub mod check;
pub mod history;
