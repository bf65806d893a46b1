-- The consistency audit, portable across SQLite and PostgreSQL: per client, its limit and
-- balance, the sum of its stored transactions (credits minus debits) and how many are
-- stored. A ledger is consistent when saldo = soma and saldo >= -limite for every client.
-- Used by the test suite (tests/api/helpers) and by stress/run.sh.
SELECT CAST(c.id AS BIGINT) AS id,
       CAST(c.limite AS BIGINT) AS limite,
       CAST(c.saldo AS BIGINT) AS saldo,
       CAST(COALESCE(SUM(CASE WHEN t.tipo = 'c' THEN t.valor ELSE -t.valor END), 0) AS BIGINT) AS soma,
       CAST(COUNT(t.cliente_id) AS BIGINT) AS linhas
  FROM clientes c
  LEFT JOIN transacoes t ON t.cliente_id = c.id
 GROUP BY c.id, c.limite, c.saldo
 ORDER BY c.id
