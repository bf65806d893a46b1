-- ?1 cliente_id, ?2 chave, ?3 pedido, ?4 aplicada, ?5 saldo, ?6 limite, ?7 criada_em (µs)
INSERT INTO idempotencia (cliente_id, chave, pedido, aplicada, saldo, limite, criada_em)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
