-- The balance and the 10 newest transactions of one client, from one snapshot.
-- $1 cliente_id. No row: unknown client. One row with NULL transaction columns: none yet.
-- The subquery filters on $1 rather than on c.id (the same value): on a Citus cluster that
-- makes the whole query a one-shard router plan instead of one task per shard.
-- The comment `shard guard` in the WHERE clause marks where the Citus layout's direct path
-- puts its guard on a worker's own shard (src/store/postgres/shard.rs); here, just a comment.
SELECT c.saldo,
       c.limite,
       t.valor::int8,
       t.tipo,
       t.descricao,
       (extract(epoch FROM t.realizada_em) * 1000000)::int8 AS realizada_em_us
  FROM clientes c
  LEFT JOIN LATERAL (
        SELECT seq, valor, tipo, descricao, realizada_em
          FROM transacoes
         WHERE cliente_id = $1::int4
         ORDER BY seq DESC
         LIMIT 10
  ) t ON true
 WHERE /* shard guard */ c.id = $1::int4
 ORDER BY t.seq DESC
