-- Apply one transaction at most once per idempotency key, in one statement.
-- $1 cliente_id int4, $2 signed delta int8, $3 valor int4, $4 tipo text, $5 descricao text,
-- $6 chave text (the Idempotency-Key), $7 pedido text (the request's fingerprint).
--
-- If the key is known (`prev`), nothing is applied and its stored answer comes back with its
-- fingerprint, for the caller to compare. Otherwise the transaction is applied exactly as in
-- apply.sql and the key is inserted with the answer, in the same statement, hence the same
-- transaction. Two statements racing with one key: the second waits for the client's row
-- lock, then its key INSERT hits the primary key and the whole statement fails with a unique
-- violation (23505), undoing its UPDATE too; the caller asks again and gets the replay.
--
-- A key is only ever stored under its client's row lock: the UPDATE's when it applies, and
-- `locked`'s when it refuses (a refused UPDATE matches no row, so it locks none). That is what
-- lets a group commit's members read the keys safely after lock.sql: a key stored without
-- the lock could be inserted, uncommitted, under a batch's member, whose own key INSERT would
-- then fail with a unique violation and roll back the whole batch.
-- Result: one row: saldo, limite, known (as in apply.sql), then the stored answer's columns
-- (NULL when the key is new).
-- The comment `shard guard` in the WHERE clause marks where the Citus layout's direct path
-- puts its guard on a worker's own shard (src/store/postgres/shard.rs); here, just a comment.
WITH prev AS (
    SELECT pedido, aplicada, saldo, limite
      FROM idempotencia
     WHERE cliente_id = $1::int4 AND chave = $6::text
), u AS (
    UPDATE clientes
       SET saldo = saldo + $2::int8, ultima_seq = ultima_seq + 1
     WHERE /* shard guard */ id = $1::int4
       AND NOT EXISTS (SELECT 1 FROM prev)
       AND CASE WHEN $2::int8 < 0 THEN saldo + $2::int8 >= -limite
                ELSE saldo <= 9223372036854775807 - $2::int8 END
    RETURNING saldo, limite, ultima_seq
), i AS (
    INSERT INTO transacoes (cliente_id, seq, valor, tipo, descricao)
    SELECT $1::int4, u.ultima_seq, $3::int4, $4::text, $5::text FROM u
), locked AS (
    -- Read only for a refusal (below); had the UPDATE applied, its row would be skipped here
    -- (updated by this very statement), the lock being held already.
    SELECT id FROM clientes WHERE id = $1::int4 FOR UPDATE
), k AS (
    INSERT INTO idempotencia (cliente_id, chave, pedido, aplicada, saldo, limite)
    SELECT $1::int4, $6::text, $7::text, u.saldo IS NOT NULL, u.saldo, u.limite
      FROM (SELECT) AS one
      LEFT JOIN u ON true
     WHERE NOT EXISTS (SELECT 1 FROM prev)
       AND (u.saldo IS NOT NULL OR EXISTS (SELECT 1 FROM locked))
)
SELECT u.saldo,
       u.limite,
       CASE WHEN u.saldo IS NULL THEN EXISTS (SELECT 1 FROM clientes WHERE id = $1::int4) END AS known,
       prev.pedido,
       prev.aplicada,
       prev.saldo AS prev_saldo,
       prev.limite AS prev_limite
  FROM (SELECT) AS one
  LEFT JOIN u ON true
  LEFT JOIN prev ON true
