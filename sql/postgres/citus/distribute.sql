-- The Citus layout, step 2 of 3: distribute the tables by client, co-located, so every
-- row of one client (its balance, its transactions, its idempotency keys) lives on the
-- same worker and each request is answered by that worker alone. Idempotent: a table
-- already distributed is left as it is. Run after schema.sql, before seed.sql.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = 'clientes'::regclass) THEN
        PERFORM create_distributed_table('clientes', 'id');
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = 'transacoes'::regclass) THEN
        PERFORM create_distributed_table('transacoes', 'cliente_id', colocate_with => 'clientes');
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = 'idempotencia'::regclass) THEN
        PERFORM create_distributed_table('idempotencia', 'cliente_id', colocate_with => 'clientes');
    END IF;
END
$$;
