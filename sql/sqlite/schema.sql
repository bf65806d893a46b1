-- crebito embedded store (SQLite). Applied at every start; every statement is idempotent.
PRAGMA journal_mode = WAL;

CREATE TABLE IF NOT EXISTS clientes (
    id     INTEGER PRIMARY KEY,
    limite INTEGER NOT NULL CHECK (limite >= 0),
    saldo  INTEGER NOT NULL DEFAULT 0 CHECK (saldo >= -limite)
);

-- `id` is the insertion order: statements list the newest first by it, never by a
-- timestamp that two transactions can share.
CREATE TABLE IF NOT EXISTS transacoes (
    id           INTEGER PRIMARY KEY,
    cliente_id   INTEGER NOT NULL REFERENCES clientes (id),
    valor        INTEGER NOT NULL CHECK (valor > 0),
    tipo         TEXT    NOT NULL CHECK (tipo IN ('c', 'd')),
    descricao    TEXT    NOT NULL,
    realizada_em INTEGER NOT NULL -- microseconds since the Unix epoch, UTC
);

CREATE INDEX IF NOT EXISTS transacoes_cliente_id_id ON transacoes (cliente_id, id DESC);

-- Idempotency keys (the Idempotency-Key header), each with the answer its first request got:
-- `aplicada` 1 is a 200 with saldo/limite, 0 a 422 over the limit. Purged after the retention.
CREATE TABLE IF NOT EXISTS idempotencia (
    cliente_id INTEGER NOT NULL,
    chave      TEXT    NOT NULL,
    pedido     TEXT    NOT NULL,
    aplicada   INTEGER NOT NULL,
    saldo      INTEGER,
    limite     INTEGER,
    criada_em  INTEGER NOT NULL, -- microseconds since the Unix epoch, UTC
    PRIMARY KEY (cliente_id, chave)
);
