-- Lock the clients of a group commit (src/store/postgres/batch.rs) before its members run:
-- $1 their ids. Rows are locked in ascending id order (the lock is taken above the sort), the
-- one order every batch follows, so two batches never wait on each other in a cycle. Run when
-- a member carries an idempotency key: each member's own statement then starts after every
-- lock is held, so its snapshot sees every key another transaction stored for its client, and
-- its key INSERT cannot meet a unique violation that would abort the whole batch. That holds
-- because crebito stores a key only under its client's row lock: apply_once.sql takes it with
-- its UPDATE when it applies and with its own FOR UPDATE when it refuses (a refused UPDATE
-- locks nothing; before that FOR UPDATE, a refused keyed retry could roll a batch of 32 back),
-- and crebito_apply_once (citus/functions.sql) likewise. A key stored any other way (by hand)
-- still can abort a batch: it then rolls back whole and each member runs again alone.
-- The comment `shard guard` marks where the Citus direct path puts its guard
-- (src/store/postgres/shard.rs); here, just a comment.
SELECT id
  FROM clientes
 WHERE /* shard guard */ id = ANY($1::int4[])
 ORDER BY id
   FOR UPDATE
