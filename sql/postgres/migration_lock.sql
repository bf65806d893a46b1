-- Schema changes are serialised between instances starting together: $1 is crebito's
-- advisory lock key (src/store/postgres/migrate.rs).
SELECT pg_advisory_lock($1)
