-- Each client, the node holding its shard (clientes and the tables co-located with it live
-- together) as host and port, and that shard: the clientes shard's id (what the direct
-- path's guard locks) and the three shard tables' names on the node (what its statements
-- name instead of the distributed tables; src/store/postgres/shard.rs). The ids are
-- materialised first: Citus cannot join a distributed table with its own metadata views,
-- and silently returns nothing when asked.
WITH ids AS MATERIALIZED (SELECT id FROM clientes)
SELECT ids.id,
       s.nodename::text,
       s.nodeport::int4,
       s.shardid::int8,
       shard_name('clientes'::regclass, s.shardid)::text,
       shard_name('transacoes'::regclass,
                  get_shard_id_for_distribution_column('transacoes', ids.id))::text,
       shard_name('idempotencia'::regclass,
                  get_shard_id_for_distribution_column('idempotencia', ids.id))::text
  FROM ids
  JOIN citus_shards s ON s.table_name = 'clientes'::regclass
   AND s.shardid = get_shard_id_for_distribution_column('clientes', ids.id)
