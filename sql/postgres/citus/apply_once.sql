-- apply_once.sql on a Citus cluster: the same arguments and result columns, delegated to the
-- worker that owns client $1 (functions.sql).
SELECT * FROM crebito_apply_once($1::int4, $2::int8, $3::int4, $4::text, $5::text, $6::text, $7::text)
