-- The database's final rows for crebito-check (stress/loader/src/history.rs, `Ledger`):
-- every client (id, limite, saldo) and every stored transaction (cliente_id, seq, valor, tipo,
-- descricao), each client's in `seq` order: the order they were applied in.
SELECT json_build_object(
  'clientes', (SELECT COALESCE(json_agg(json_build_array(id, limite, saldo) ORDER BY id), '[]') FROM clientes),
  'transacoes', (SELECT COALESCE(json_agg(json_build_array(cliente_id, seq, valor, tipo, descricao) ORDER BY cliente_id, seq), '[]') FROM transacoes))
