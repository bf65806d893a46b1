-- ?1 cliente_id, ?2 valor, ?3 tipo, ?4 descricao, ?5 realizada_em (µs since the epoch)
INSERT INTO transacoes (cliente_id, valor, tipo, descricao, realizada_em) VALUES (?1, ?2, ?3, ?4, ?5)
