-- crebito PostgreSQL schema. Applied at every start under an advisory lock; idempotent.
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

INSERT INTO clientes (id, limite) VALUES
    (1, 100000),
    (2, 80000),
    (3, 1000000),
    (4, 10000000),
    (5, 500000)
ON CONFLICT (id) DO NOTHING;
