-- ?1 cliente_id, ?2 signed delta (credit > 0, debit < 0).
-- Applies the delta only if the debit keeps saldo >= -limite and a credit cannot overflow.
UPDATE clientes
   SET saldo = saldo + ?2
 WHERE id = ?1
   AND CASE WHEN ?2 < 0 THEN saldo + ?2 >= -limite
            ELSE saldo <= 9223372036854775807 - ?2 END
RETURNING saldo, limite
