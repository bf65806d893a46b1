-- The clients: the contest's five, then ?1 extra ones (ids 6, 7, …, 5 + ?1) with limit ?2
-- each (`--extra-clients`, off by default so the contest data set stays exact). Idempotent:
-- existing clients keep their balance.
WITH RECURSIVE extra (n) AS (
    SELECT 1 WHERE ?1 >= 1
    UNION ALL
    SELECT n + 1 FROM extra WHERE n < ?1
)
INSERT OR IGNORE INTO clientes (id, limite)
SELECT column1, column2
  FROM (VALUES (1, 100000),
               (2, 80000),
               (3, 1000000),
               (4, 10000000),
               (5, 500000))
UNION ALL
SELECT 5 + n, ?2 FROM extra
