-- ?1 cliente_id, ?2 chave: the stored answer of an idempotency key, if any.
SELECT pedido, aplicada, saldo, limite FROM idempotencia WHERE cliente_id = ?1 AND chave = ?2
