-- The persistence of crebito's tables: 'p' logged, 'u' unlogged.
SELECT relname::text, relpersistence::text
  FROM pg_class
 WHERE relname IN ('clientes', 'transacoes', 'idempotencia') AND relkind = 'r'
   AND relnamespace = current_schema()::regnamespace
