-- Forget idempotency keys older than the retention ($1, seconds). Run now and then by every
-- instance; concurrent runs are harmless.
DELETE FROM idempotencia WHERE criada_em < now() - make_interval(secs => $1::float8)
