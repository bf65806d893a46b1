-- The clients: the contest's five, then $1 extra ones (ids 6, 7, …, 5 + $1) with limit $2
-- each (`--extra-clients`, off by default so the contest data set stays exact). Idempotent:
-- existing clients keep their balance. Also run after a crash has emptied UNLOGGED tables.
INSERT INTO clientes (id, limite)
SELECT id, limite
  FROM (VALUES (1, 100000::int8),
               (2, 80000),
               (3, 1000000),
               (4, 10000000),
               (5, 500000)) AS contest (id, limite)
UNION ALL
SELECT 5 + g, $2::int8
  FROM generate_series(1, $1::int4) AS g
ON CONFLICT (id) DO NOTHING
