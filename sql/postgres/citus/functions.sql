-- The Citus layout, step 3 of 3: apply.sql and apply_once.sql as functions that Citus
-- delegates, whole, to the worker holding the client's shard (one remote call per request).
-- Why not the statements themselves: Citus cannot router-plan a CTE that contains an INSERT,
-- so apply.sql would run in three steps through the coordinator (docs/src/scaling-out.md has
-- the measurement). Same logic, same results, same row lock as the single-node statements;
-- the OUT columns are in the same order, so the store decodes both alike.
--
-- `plan_cache_mode = force_custom_plan`: Citus 13.2 leaks about 46 KB of the cached plan's
-- memory on every execution of a PL/pgSQL statement that it runs on a local shard with a
-- generic plan (measured: a worker backend grew by 139 MB over 3 000 calls and was
-- OOM-killed under load; with custom plans it stays flat). Re-planning these one-row
-- statements costs less than the leak.
--
-- `search_path FROM CURRENT`: the worker runs a delegated call with its own connection's
-- search_path; the tables are found where crebito created them.
--
-- Citus evaluates expressions that only use parameters in both branches of a CASE before
-- sending the call, so the overflow guard is written to stay in range for debits too.

CREATE OR REPLACE FUNCTION crebito_apply(
    p_cliente int4, p_delta int8, p_valor int4, p_tipo text, p_descricao text,
    OUT o_saldo int8, OUT o_limite int8, OUT o_known bool)
LANGUAGE plpgsql
SET plan_cache_mode = force_custom_plan
SET search_path FROM CURRENT
AS $fn$
DECLARE
    v_seq int8;
BEGIN
    UPDATE clientes AS c
       SET saldo = c.saldo + p_delta, ultima_seq = c.ultima_seq + 1
     WHERE c.id = p_cliente
       AND CASE WHEN p_delta < 0 THEN c.saldo + p_delta >= -c.limite
                ELSE c.saldo <= 9223372036854775807 - greatest(p_delta, 0) END
    RETURNING c.saldo, c.limite, c.ultima_seq INTO o_saldo, o_limite, v_seq;
    IF FOUND THEN
        INSERT INTO transacoes (cliente_id, seq, valor, tipo, descricao)
        VALUES (p_cliente, v_seq, p_valor, p_tipo, p_descricao);
    ELSE
        o_known := EXISTS (SELECT 1 FROM clientes AS c WHERE c.id = p_cliente);
    END IF;
END
$fn$;

-- As apply_once.sql: a known key returns its stored answer and applies nothing; a new key
-- is stored with the answer in the same transaction. Two calls racing with one key: the
-- second waits for the client's row lock, then its key INSERT fails with a unique violation
-- (23505), which rolls the whole call back; the store asks again and gets the replay.
CREATE OR REPLACE FUNCTION crebito_apply_once(
    p_cliente int4, p_delta int8, p_valor int4, p_tipo text, p_descricao text,
    p_chave text, p_pedido text,
    OUT o_saldo int8, OUT o_limite int8, OUT o_known bool,
    OUT o_pedido text, OUT o_aplicada bool, OUT o_prev_saldo int8, OUT o_prev_limite int8)
LANGUAGE plpgsql
SET plan_cache_mode = force_custom_plan
SET search_path FROM CURRENT
AS $fn$
BEGIN
    SELECT k.pedido, k.aplicada, k.saldo, k.limite
      INTO o_pedido, o_aplicada, o_prev_saldo, o_prev_limite
      FROM idempotencia AS k
     WHERE k.cliente_id = p_cliente AND k.chave = p_chave;
    IF FOUND THEN
        RETURN;
    END IF;
    SELECT a.o_saldo, a.o_limite, a.o_known
      INTO o_saldo, o_limite, o_known
      FROM crebito_apply(p_cliente, p_delta, p_valor, p_tipo, p_descricao) AS a;
    IF o_saldo IS NULL AND o_known THEN
        -- A refusal locked no row: take the client's row lock before storing the key, as
        -- every key is stored (apply_once.sql, lock.sql).
        PERFORM 1 FROM clientes AS c WHERE c.id = p_cliente FOR UPDATE;
    END IF;
    IF o_saldo IS NOT NULL OR o_known THEN
        INSERT INTO idempotencia (cliente_id, chave, pedido, aplicada, saldo, limite)
        VALUES (p_cliente, p_chave, p_pedido, o_saldo IS NOT NULL, o_saldo, o_limite);
    END IF;
END
$fn$;

-- The guard of the direct path (src/store/postgres/shard.rs): a statement that an instance
-- runs on a worker's own shard tables, bypassing Citus's planner, first calls
-- crebito_shard_guard(<the client's clientes shard>). It takes the lock Citus's own routed
-- statements take on the shard's metadata (ShareLock, `lock_shard_metadata`), which a shard
-- move or split takes exclusively on every node before it switches the placement over
-- (`BlockWritesToShardList`, operations/shard_transfer.c); then, under that lock, it checks
-- that the placement is still on this node. So either the move waits until the statement
-- commits (and carries its write along), or the statement sees the move done and fails with
-- SQLSTATE CR001, rolled back whole, and the instance re-sends it through the coordinator.
-- PL/pgSQL, volatile: the placement is read with a snapshot taken after the lock.
CREATE OR REPLACE FUNCTION crebito_shard_guard(p_shard int8) RETURNS bool
LANGUAGE plpgsql
AS $fn$
BEGIN
    PERFORM lock_shard_metadata(5, ARRAY[p_shard]);
    IF NOT EXISTS (SELECT 1
                     FROM pg_dist_placement AS p, pg_dist_local_group AS g
                    WHERE p.shardid = p_shard AND p.groupid = g.groupid) THEN
        RAISE EXCEPTION 'shard % is not on this node (moved)', p_shard
              USING ERRCODE = 'CR001';
    END IF;
    RETURN true;
END
$fn$;

-- Citus propagates every new function to the workers by itself; what makes it *delegate*
-- calls is the distribution argument, set once here.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_dist_object
                    WHERE objid = 'crebito_apply(int4, int8, int4, text, text)'::regprocedure
                      AND distribution_argument_index IS NOT NULL) THEN
        PERFORM create_distributed_function('crebito_apply(int4, int8, int4, text, text)',
                                            '$1', colocate_with => 'clientes');
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_dist_object
                    WHERE objid = 'crebito_apply_once(int4, int8, int4, text, text, text, text)'::regprocedure
                      AND distribution_argument_index IS NOT NULL) THEN
        PERFORM create_distributed_function('crebito_apply_once(int4, int8, int4, text, text, text, text)',
                                            '$1', colocate_with => 'clientes');
    END IF;
END
$$;
