//! What the load generator and the history checker share. One job a file:
//!
//! - [`history`]: the history's model (what each client sent and was answered);
//! - [`check`]: the rules both modes apply to a client's order — given as the database's rows
//!   (the ledger mode), or as the order the black-box search found;
//! - [`blackbox`]: the black-box mode — each client's problem from the answers alone, handed
//!   to the search (`infer`, order inference: Wing & Gong's search with Lowe's cache), its
//!   order then to the rules;
//! - [`report`]: the verdict and the findings of each kind;
//! - [`rfc3339`]: `realizada_em` as an instant;
//! - [`rng`]: the loader's random numbers (xorshift64*), reproducible from a seed.
//!
//! The loader itself is the `crebito-loader` binary (`main.rs`); the checker is
//! `crebito-check`.

pub mod blackbox;
pub mod check;
pub mod history;
pub(crate) mod infer;
pub mod report;
pub mod rfc3339;
pub mod rng;
