SELECT 1 FROM clientes WHERE id = ?1
