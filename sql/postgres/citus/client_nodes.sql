-- Each client and the node holding its shard (clientes and the tables co-located with it
-- live together), as host and port. The ids are materialised first: Citus cannot join a
-- distributed table with its own metadata views, and silently returns nothing when asked.
WITH ids AS MATERIALIZED (SELECT id FROM clientes)
SELECT ids.id, s.nodename::text, s.nodeport::int4
  FROM ids
  JOIN citus_shards s ON s.table_name = 'clientes'::regclass
   AND s.shardid = get_shard_id_for_distribution_column('clientes', ids.id)
