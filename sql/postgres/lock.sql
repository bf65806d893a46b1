-- Lock the clients of a group commit (src/store/postgres/batch.rs) before its members run:
-- $1 their ids. Rows are locked in ascending id order (the lock is taken above the sort), the
-- one order every batch follows, so two batches never wait on each other in a cycle. Run when
-- a member carries an idempotency key: each member's own statement then starts after every
-- lock is held, so its snapshot sees every key another transaction stored for its client
-- (storing one takes the client's row lock), and its key INSERT cannot meet a unique
-- violation that would abort the whole batch.
-- The comment `shard guard` marks where the Citus direct path puts its guard
-- (src/store/postgres/shard.rs); here, just a comment.
SELECT id
  FROM clientes
 WHERE /* shard guard */ id = ANY($1::int4[])
 ORDER BY id
   FOR UPDATE
