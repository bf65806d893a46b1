-- The Citus layout, step 2 of 3: distribute the tables by client, co-located, so every
-- row of one client (its balance, its transactions, its idempotency keys) lives on the
-- same worker and each request is answered by that worker alone. Idempotent: a table
-- already distributed is left as it is. Run after schema.sql, before seed.sql.
--
-- A table that already holds rows (a database that ran in the single layout) is distributed
-- with them: Citus copies them into the shards, and the coordinator's local copy is then
-- emptied (truncate_local_data_after_distributing_table), so nothing is counted twice.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = 'clientes'::regclass) THEN
        PERFORM create_distributed_table('clientes', 'id');
        PERFORM truncate_local_data_after_distributing_table('clientes');
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = 'transacoes'::regclass) THEN
        PERFORM create_distributed_table('transacoes', 'cliente_id', colocate_with => 'clientes');
        PERFORM truncate_local_data_after_distributing_table('transacoes');
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = 'idempotencia'::regclass) THEN
        PERFORM create_distributed_table('idempotencia', 'cliente_id', colocate_with => 'clientes');
        PERFORM truncate_local_data_after_distributing_table('idempotencia');
    END IF;
END
$$;
