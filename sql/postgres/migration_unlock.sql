-- Releases the migration's advisory lock ($1: its key).
SELECT pg_advisory_unlock($1)
