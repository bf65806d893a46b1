-- The contest profile: every table UNLOGGED (no WAL; emptied by crash recovery).
ALTER TABLE transacoes SET UNLOGGED;
ALTER TABLE idempotencia SET UNLOGGED;
ALTER TABLE clientes SET UNLOGGED;
