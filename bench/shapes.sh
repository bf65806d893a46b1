#!/usr/bin/env bash
# The statement shape, measured: on the native contest stack's PostgreSQL (limits on), pgbench
# runs each shape of crebito's two queries, prepared, ROUNDS times alternating, and reports
# transactions per second, mean latency and PostgreSQL's CPU per transaction.
#
#   bench/shapes.sh          (PORT=19985, SECONDS_EACH=8, PG_CLIENTS=4, ROUNDS=3)
#
# POST:    "cte"      sql/postgres/apply.sql (UPDATE … RETURNING feeding an INSERT, one statement)
#          "function" the same logic as a PL/pgSQL function (sql/postgres/citus/functions.sql,
#                     what the Citus layout delegates to a worker), on a single server
# extrato: "lateral"  sql/postgres/statement.sql (the subquery filtered on $1)
#          "c.id"     the same with the subquery filtered on c.id (the shape before Citus)
# Each transaction: a random client of the five, a credit of 1 (POST) or its statement.
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
export PORT="${PORT:-19985}"
secs="${SECONDS_EACH:-8}"
need pgbench postgresql-contrib

on_exit "\"$stack\" down >/dev/null 2>&1"
"$stack" up >/dev/null
pg=(-h "$(stack_env STACK_PG_HOST)" -p "$(stack_env STACK_PG_PORT_DB)" -U postgres)
# The functions, without their Citus distribution step.
sed '/^DO \$\$/,$d' "$repo/sql/postgres/citus/functions.sql" | "$stack" psql -q -v ON_ERROR_STOP=1 >/dev/null
# Some history, so the statement reads ten rows: 2 000 credits spread over the clients.
"$stack" psql -qc "INSERT INTO transacoes (cliente_id, valor, tipo, descricao)
                   SELECT 1 + g % 5, 1, 'c', 'seed' FROM generate_series(1, 2000) g; ANALYZE" >/dev/null

scripts=$(mktemp -d)
on_exit "rm -rf '$scripts'"
# shellcheck disable=SC2016 # the SQL's $N placeholders are not shell variables
to_pgbench() { sed -e 's/\$1::int4/:id/g' -e 's/\$1/:id/g' -e 's/\$2::int8/1::int8/g' -e 's/\$3::int4/1/g' \
  -e "s/\$4::text/'c'/g" -e "s/\$5::text/'bench'/g" -e '/^--/d' | tr '\n' ' '; }
{ echo '\set id random(1, 5)'; to_pgbench < "$repo/sql/postgres/apply.sql"; echo ';'; } > "$scripts/cte"
{ echo '\set id random(1, 5)'; to_pgbench < "$repo/sql/postgres/citus/apply.sql"; echo ';'; } > "$scripts/function"
{ echo '\set id random(1, 5)'; to_pgbench < "$repo/sql/postgres/statement.sql"; echo ';'; } > "$scripts/lateral"
# shellcheck disable=SC2016
{ echo '\set id random(1, 5)'; sed 's/WHERE cliente_id = \$1::int4/WHERE cliente_id = c.id/' "$repo/sql/postgres/statement.sql" | to_pgbench; echo ';'; } > "$scripts/c.id"
grep -q "cliente_id = c.id" "$scripts/c.id" || { echo "could not derive the c.id shape" >&2; exit 1; }

machine "pgbench -M prepared -c ${PG_CLIENTS:-4} -T $secs, PostgreSQL in its contest cgroup (${DB_CPUS:-0.65} CPU)"
echo "| round | shape | tx/s | mean latency | PostgreSQL CPU per tx |"
echo "|---|---|---|---|---|"
for round in $(seq "${ROUNDS:-3}"); do
  for shape in cte function lateral c.id; do
    c0=$(stack_cpu db)
    out=$(pgbench -n -M prepared -f "$scripts/$shape" -c "${PG_CLIENTS:-4}" -j 1 -T "$secs" "${pg[@]}" rinha 2>&1)
    c1=$(stack_cpu db)
    tx=$(awk '/number of transactions actually processed/ { print $NF }' <<<"$out" | cut -d/ -f1)
    tps=$(awk '/^tps/ { printf "%d", $3 }' <<<"$out")
    lat=$(awk '/latency average/ { print $4 " ms" }' <<<"$out")
    [ -n "$tx" ] || { echo "$out" >&2; exit 1; }
    echo "| $round | $shape | $tps | $lat | $(usec_per "$c0" "$c1" "$tx") µs |"
  done
done
