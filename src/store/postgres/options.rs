//! What the PostgreSQL store is asked to be: the store's own notions of the CLI's flags,
//! onto which `startup` maps them, so that nothing below depends on the command line.

use crate::store::{KeyPolicy, Seed};

/// How the tables are stored: the store's own notion, onto which the CLI's profile
/// (`durable` / `contest`) is mapped by `startup`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persistence {
    /// Logged tables: a crash loses nothing the server's own durability settings keep.
    Logged,
    /// `UNLOGGED` tables: no WAL, emptied by crash recovery (the contest's trade-off).
    Unlogged,
}

/// Where the tables live: the store's own notion of the CLI's `--pg-layout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Plain tables on one server.
    Single,
    /// A Citus cluster: tables distributed by client, co-located; each request runs on the
    /// worker owning the client (sql/postgres/citus/).
    Citus,
}

/// How to set up and reach the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    pub persistence: Persistence,
    pub layout: Layout,
    pub seed: Seed,
    /// Connections kept open (each pipelines many concurrent queries).
    pub connections: u16,
    /// The most writes per transaction (batch.rs); 1: each write its own.
    pub batch: u16,
    /// The most writes waiting for one connection (batch.rs); beyond it a write is refused
    /// at once, never sent.
    pub queue: u16,
    /// Connections beyond the first only take a request that finds the first busy with a
    /// write while they are idle (node.rs); writes that find every connection busy queue for
    /// the first. Off: every connection is used alike.
    pub spill: bool,
    /// The Citus layout: each client's requests straight to its worker (route.rs), or all
    /// through the coordinator.
    pub direct: bool,
    pub keys: KeyPolicy,
}
