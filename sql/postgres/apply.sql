-- Apply one transaction, atomically, in one statement (one round trip).
-- $1 cliente_id int4, $2 signed delta int8 (credit > 0, debit < 0),
-- $3 valor int4, $4 tipo text, $5 descricao text.
--
-- The UPDATE takes the client's row lock; a concurrent request waits for it and then
-- re-checks the WHERE clause against the committed row (READ COMMITTED), so the limit
-- check and the new balance can never be based on a stale saldo. The INSERT runs only
-- if the UPDATE matched, numbered by the client's counter that the UPDATE bumped. Result: one row; saldo/limite NULL when refused, and `known`
-- (evaluated only then) tells an unknown client from one over the limit.
-- The comment `shard guard` in the WHERE clause marks where the Citus layout's direct path
-- puts its guard on a worker's own shard (src/store/postgres/shard.rs); here, just a comment.
WITH u AS (
    UPDATE clientes
       SET saldo = saldo + $2::int8, ultima_seq = ultima_seq + 1
     WHERE /* shard guard */ id = $1::int4
       AND CASE WHEN $2::int8 < 0 THEN saldo + $2::int8 >= -limite
                ELSE saldo <= 9223372036854775807 - $2::int8 END
    RETURNING saldo, limite, ultima_seq
), i AS (
    INSERT INTO transacoes (cliente_id, seq, valor, tipo, descricao)
    SELECT $1::int4, u.ultima_seq, $3::int4, $4::text, $5::text FROM u
)
SELECT u.saldo,
       u.limite,
       CASE WHEN u.saldo IS NULL THEN EXISTS (SELECT 1 FROM clientes WHERE id = $1) END AS known
  FROM (SELECT) AS one
  LEFT JOIN u ON true
