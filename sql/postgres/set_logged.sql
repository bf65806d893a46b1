-- The durable profile: every table logged (WAL), converted in place if it was UNLOGGED.
ALTER TABLE transacoes SET LOGGED;
ALTER TABLE idempotencia SET LOGGED;
ALTER TABLE clientes SET LOGGED;
