-- The Citus layout (`--pg-layout citus`), step 1 of 3, on the coordinator: the extension.
-- Needs `shared_preload_libraries = 'citus'` on every node and the workers registered
-- (deploy/native/cluster does both; docs/src/scaling-out.md).
CREATE EXTENSION IF NOT EXISTS citus
