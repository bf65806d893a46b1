-- ?1: keys created before this instant (µs since the epoch) are forgotten.
DELETE FROM idempotencia WHERE criada_em < ?1
