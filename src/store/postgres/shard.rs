//! The Citus layout's direct path: a client's statements run on its worker's own shard
//! tables, as plain PostgreSQL, instead of through Citus's planner.
//!
//! Why: on a worker, every statement Citus routes to a local shard is deparsed back to text,
//! parsed and planned again, and planned a second time by the distributed planner — about
//! 380 µs of a worker's CPU per POST against 180 µs for the same statement on the shard
//! table (docs/reports/cluster/routing/worker-cost.md). The statements are the single
//! server's own files (`apply.sql`, `apply_once.sql`, `statement.sql`), rewritten per shard:
//! each distributed table's name becomes its shard's, and the `/* shard guard */` mark in
//! each file becomes a call to `crebito_shard_guard(shard)` (sql/postgres/citus/functions.sql).
//!
//! The guard is what makes bypassing Citus safe: it takes the shard metadata lock that a
//! shard move takes exclusively before switching the placement, then checks that the shard
//! is still here; if it has gone, the statement fails with [`MOVED`] and rolls back whole,
//! and the store re-sends it through the coordinator. A shard table dropped after a move
//! (Citus drops the old copy a little later) fails with `undefined_table`, rolled back just
//! the same: [`is_moved`] covers both.

use tokio_postgres::error::SqlState;

use crate::store::postgres::sql::Kind;

/// Where the guard goes in each statement.
const GUARD_MARK: &str = "/* shard guard */";

/// The tables the statements name, each distributed by client and co-located.
const TABLES: [&str; 3] = ["clientes", "transacoes", "idempotencia"];

/// The SQLSTATE `crebito_shard_guard` raises when the shard is no longer on the node.
pub(super) const MOVED: &str = "CR001";

/// One shard's statements, ready to be prepared on its worker's connections.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Shard {
    /// The clientes shard's id (co-located shards move together; the guard locks this one).
    pub(super) id: i64,
    apply: String,
    apply_once: String,
    statement: String,
    lock: String,
}

impl Shard {
    /// The statements for shard `id`, whose tables are named `names` on its worker (in the
    /// order of [`TABLES`], as `shard_name()` gives them).
    pub(super) fn new(id: i64, names: [&str; 3]) -> Shard {
        let rewrite = |kind: Kind| {
            let sql = kind.sql();
            let mut out = sql.replacen(
                GUARD_MARK,
                &format!("(SELECT crebito_shard_guard({id}::int8)) AND"),
                1,
            );
            for (table, name) in TABLES.iter().zip(names) {
                out = rename(&out, table, name);
            }
            out
        };
        Shard {
            id,
            apply: rewrite(Kind::Apply),
            apply_once: rewrite(Kind::ApplyOnce),
            statement: rewrite(Kind::Statement),
            lock: rewrite(Kind::Lock),
        }
    }

    pub(super) fn sql(&self, kind: Kind) -> &str {
        match kind {
            Kind::Apply => &self.apply,
            Kind::ApplyOnce => &self.apply_once,
            Kind::Statement => &self.statement,
            Kind::Lock => &self.lock,
        }
    }
}

/// Whether a statement failed because its shard is no longer where it ran (nothing applied).
pub(super) fn is_moved(e: &tokio_postgres::Error) -> bool {
    e.code()
        .is_some_and(|c| c.code() == MOVED || *c == SqlState::UNDEFINED_TABLE)
}

/// `sql` with every whole-word occurrence of the identifier `table` replaced by `name`.
fn rename(sql: &str, table: &str, name: &str) -> String {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = String::with_capacity(sql.len() + 64);
    let mut rest = sql;
    while let Some(at) = rest.find(table) {
        let (before, after) = (&rest[..at], &rest[at + table.len()..]);
        let whole = !before.ends_with(word) && !after.starts_with(word);
        out.push_str(before);
        out.push_str(if whole { name } else { table });
        rest = after;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_statement_carries_one_guard_mark() {
        for kind in Kind::ALL {
            let sql = kind.sql();
            assert_eq!(sql.matches(GUARD_MARK).count(), 1, "{sql}");
        }
    }

    #[test]
    fn a_shard_statement_names_only_shard_tables_and_is_guarded_before_the_update() {
        let names = [
            "clientes_102008",
            "transacoes_102040",
            "idempotencia_102072",
        ];
        let shard = Shard::new(102008, names);
        for kind in Kind::ALL {
            let sql = shard.sql(kind);
            assert!(!sql.contains(GUARD_MARK), "{sql}");
            assert_eq!(
                sql.matches("(SELECT crebito_shard_guard(102008::int8)) AND")
                    .count(),
                1,
                "{sql}"
            );
            let bare = names.iter().fold(sql.to_string(), |s, n| s.replace(n, ""));
            for table in TABLES {
                assert_eq!(
                    rename(&bare, table, "!"),
                    bare,
                    "{kind:?} still names {table}:\n{sql}"
                );
            }
        }
        let apply = shard.sql(Kind::Apply);
        assert!(apply.contains("UPDATE clientes_102008\n"), "{apply}");
        assert!(
            apply.contains("INSERT INTO transacoes_102040 (cliente_id,"),
            "{apply}"
        );
        assert!(
            apply.contains("WHERE (SELECT crebito_shard_guard(102008::int8)) AND id = $1::int4"),
            "{apply}"
        );
        assert!(
            shard
                .sql(Kind::ApplyOnce)
                .contains("FROM idempotencia_102072\n"),
            "{}",
            shard.sql(Kind::ApplyOnce)
        );
    }

    #[test]
    fn renaming_leaves_longer_identifiers_alone() {
        assert_eq!(
            rename(
                "clientes c, clientes_x, xclientes, clientes.id, (clientes)",
                "clientes",
                "s_1"
            ),
            "s_1 c, clientes_x, xclientes, s_1.id, (s_1)"
        );
    }
}
