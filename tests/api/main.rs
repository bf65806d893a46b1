//! Integration tests: the real server, on a random port, against a fresh database per test.
//! Every test in `contract`, `concurrency` and `robustness` runs once per store.

mod checks;
mod concurrency;
mod contract;
mod helpers;
mod postgres;
mod robustness;
