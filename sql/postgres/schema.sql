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
    -- A safety net: apply.sql never attempts an update that breaks it.
    CONSTRAINT saldo_dentro_do_limite CHECK (saldo >= -limite)
) WITH (fillfactor = 50);

-- Append-only: pages filled completely. `id` is the insertion order (statements list
-- newest first by it); there is deliberately no primary key, only the index the
-- statement query reads, so an insert updates one index.
CREATE TABLE IF NOT EXISTS transacoes (
    id           bigint      GENERATED ALWAYS AS IDENTITY,
    cliente_id   integer     NOT NULL,
    valor        integer     NOT NULL CHECK (valor > 0),
    tipo         char(1)     NOT NULL CHECK (tipo IN ('c', 'd')),
    descricao    varchar(10) NOT NULL,
    realizada_em timestamptz NOT NULL DEFAULT clock_timestamp()
) WITH (fillfactor = 100);

CREATE INDEX IF NOT EXISTS transacoes_cliente_id_id ON transacoes (cliente_id, id DESC);

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
