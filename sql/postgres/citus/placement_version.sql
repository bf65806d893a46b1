-- Where every shard lives and which nodes serve: a fingerprint that changes when a shard
-- moves (citus_move_shard_placement, a rebalance) or a node is added, removed, disabled or
-- moves. The store polls it on the coordinator and reloads its routes when it changes.
SELECT md5(
    (SELECT coalesce(string_agg(placementid || ':' || shardid || ':' || groupid, ',' ORDER BY placementid), '')
       FROM pg_dist_placement)
    || '|' ||
    (SELECT coalesce(string_agg(nodeid || ':' || groupid || ':' || nodename || ':' || nodeport || ':' || isactive, ','
                                ORDER BY nodeid), '')
       FROM pg_dist_node))
