//! Every SQL text the PostgreSQL store sends, in one place: each statement is a file in
//! `sql/postgres/` (read it there, with its comment), compiled in here. Nothing in this file
//! talks to a server; the rest of the store names a statement by its constant or by [`Kind`].

/// Which request statement: the API's three, and a batch's lock (batch.rs). Each is
/// prepared on every connection, and per shard on the Citus direct path (shard.rs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Apply,
    ApplyOnce,
    Statement,
    Lock,
}

impl Kind {
    /// Every kind, in one place (each is prepared per shard).
    #[cfg(test)]
    pub const ALL: [Kind; 4] = [Kind::Apply, Kind::ApplyOnce, Kind::Statement, Kind::Lock];

    /// The single server's text of the statement: what the single layout prepares, and what
    /// each shard's statement is rewritten from.
    pub fn sql(self) -> &'static str {
        match self {
            Kind::Apply => include_str!("../../../sql/postgres/apply.sql"),
            Kind::ApplyOnce => include_str!("../../../sql/postgres/apply_once.sql"),
            Kind::Statement => include_str!("../../../sql/postgres/statement.sql"),
            Kind::Lock => include_str!("../../../sql/postgres/lock.sql"),
        }
    }
}

/// A group commit's transaction.
pub const BEGIN: &str = "BEGIN";
pub const COMMIT: &str = "COMMIT";

/// The Citus layout's applies through the coordinator (delegated to the client's worker).
pub const CITUS_APPLY: &str = include_str!("../../../sql/postgres/citus/apply.sql");
pub const CITUS_APPLY_ONCE: &str = include_str!("../../../sql/postgres/citus/apply_once.sql");

/// The migration (migrate.rs).
pub const SCHEMA: &str = include_str!("../../../sql/postgres/schema.sql");
pub const SEED: &str = include_str!("../../../sql/postgres/seed.sql");
pub const PERSISTENCE: &str = include_str!("../../../sql/postgres/persistence.sql");
pub const SET_LOGGED: &str = include_str!("../../../sql/postgres/set_logged.sql");
pub const SET_UNLOGGED: &str = include_str!("../../../sql/postgres/set_unlogged.sql");
pub const MIGRATION_LOCK: &str = include_str!("../../../sql/postgres/migration_lock.sql");
pub const MIGRATION_UNLOCK: &str = include_str!("../../../sql/postgres/migration_unlock.sql");
pub const CITUS_EXTENSION: &str = include_str!("../../../sql/postgres/citus/extension.sql");
pub const CITUS_DISTRIBUTE: &str = include_str!("../../../sql/postgres/citus/distribute.sql");
pub const CITUS_FUNCTIONS: &str = include_str!("../../../sql/postgres/citus/functions.sql");

/// The Citus routes (route.rs).
pub const PLACEMENT_VERSION: &str =
    include_str!("../../../sql/postgres/citus/placement_version.sql");
pub const CLIENT_NODES: &str = include_str!("../../../sql/postgres/citus/client_nodes.sql");

/// Forgetting expired idempotency keys (purge.rs).
pub const PURGE_KEYS: &str = include_str!("../../../sql/postgres/purge_keys.sql");
