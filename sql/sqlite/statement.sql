-- ?1 cliente_id. One row per listed transaction (newest first), or one row with NULL
-- transaction columns when there are none; no row at all for an unknown client.
SELECT c.saldo, c.limite, t.valor, t.tipo, t.descricao, t.realizada_em
  FROM clientes c
  LEFT JOIN transacoes t
    ON t.id IN (SELECT id FROM transacoes WHERE cliente_id = ?1 ORDER BY id DESC LIMIT 10)
 WHERE c.id = ?1
 ORDER BY t.id DESC
