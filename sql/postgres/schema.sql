-- crebito PostgreSQL schema. Applied at every start under an advisory lock; idempotent.
-- The clients are seeded afterwards (seed.sql), once the layout is in place: on Citus the
-- tables are distributed first (citus/distribute.sql), so the rows go straight to their shards.
-- The persistence (LOGGED for the `durable` profile, UNLOGGED for `contest`) is set
-- afterwards by the binary, see src/store/postgres.rs.

-- Five rows updated all the time: leave room on each page so every update is HOT
-- (no index update, no new page).
CREATE TABLE IF NOT EXISTS clientes (
    id     integer PRIMARY KEY,
    limite bigint  NOT NULL CHECK (limite >= 0),
    saldo  bigint  NOT NULL DEFAULT 0,
    -- How many transactions the client has: bumped by the UPDATE that applies one (under the
    -- row lock), it numbers them (transacoes.seq) in the order they were applied.
    ultima_seq bigint NOT NULL DEFAULT 0,
    -- A safety net: apply.sql never attempts an update that breaks it.
    CONSTRAINT saldo_dentro_do_limite CHECK (saldo >= -limite)
) WITH (fillfactor = 50);

-- Append-only: pages filled completely. `seq` is the client's own order (1, 2, … as they were
-- applied; statements list newest first by it), taken from clientes.ultima_seq by the same
-- statement, so it holds whichever node or connection inserted the row — unlike an identity,
-- which Citus numbers per node. The one index is the one the statement query reads, unique:
-- two transactions can never share a place in a client's order.
CREATE TABLE IF NOT EXISTS transacoes (
    cliente_id   integer     NOT NULL,
    seq          bigint      NOT NULL,
    valor        integer     NOT NULL CHECK (valor > 0),
    tipo         char(1)     NOT NULL CHECK (tipo IN ('c', 'd')),
    descricao    varchar(10) NOT NULL,
    realizada_em timestamptz NOT NULL DEFAULT clock_timestamp()
) WITH (fillfactor = 100);

-- Databases made by crebito 0.2.0 ordered by an identity `id`: they get the counter and the
-- order, numbered from their `id` order (kept, unused), once.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_attribute
                    WHERE attrelid = 'clientes'::regclass AND attname = 'ultima_seq' AND NOT attisdropped) THEN
        ALTER TABLE clientes ADD COLUMN ultima_seq bigint NOT NULL DEFAULT 0;
        ALTER TABLE transacoes ADD COLUMN seq bigint;
        UPDATE transacoes AS t
           SET seq = r.n
          FROM (SELECT cliente_id, id, row_number() OVER (PARTITION BY cliente_id ORDER BY id) AS n
                  FROM transacoes) AS r
         WHERE t.cliente_id = r.cliente_id AND t.id = r.id;
        UPDATE clientes AS c
           SET ultima_seq = s.n
          FROM (SELECT cliente_id, max(seq) AS n FROM transacoes GROUP BY cliente_id) AS s
         WHERE c.id = s.cliente_id;
        ALTER TABLE transacoes ALTER COLUMN seq SET NOT NULL;
        DROP INDEX IF EXISTS transacoes_cliente_id_id;
    END IF;
END
$$;

CREATE UNIQUE INDEX IF NOT EXISTS transacoes_cliente_id_seq ON transacoes (cliente_id, seq DESC);

-- Idempotency keys (the Idempotency-Key header), each with the answer its first request got:
-- `aplicada` true is a 200 with saldo/limite, false a 422 over the limit. The primary key is
-- what makes two requests racing with one key apply once (apply_once.sql). Rows older than
-- the retention (24 h) are purged (purge_keys.sql).
CREATE TABLE IF NOT EXISTS idempotencia (
    cliente_id integer     NOT NULL,
    chave      varchar(64) NOT NULL,
    pedido     text        NOT NULL,
    aplicada   boolean     NOT NULL,
    saldo      bigint,
    limite     bigint,
    criada_em  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (cliente_id, chave)
);
