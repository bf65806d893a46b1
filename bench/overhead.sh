#!/usr/bin/env bash
# What crebito costs on top of PostgreSQL, in CPU per transaction.
#
#   bench/overhead.sh            (PORT, SECONDS_EACH=10, PG_CLIENTS=4, WRK_CONNECTIONS=32)
#
# 1. Brings up the native contest stack without CPU limits (STACK_LIMITS=off: the cgroups
#    still account CPU per service).
# 2. pgbench runs the very statement crebito prepares (sql/postgres/apply.sql, a credit to
#    a random client) for SECONDS_EACH: PostgreSQL CPU per transaction, "bare".
# 3. wrk sends the same credits through nginx for SECONDS_EACH: CPU per request of
#    PostgreSQL, of the two crebito instances and of nginx.
# Prints a table; wrk and pgbench run on the same machine and share its cores.
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
export PORT="${PORT:-19980}" STACK_LIMITS=off
secs="${SECONDS_EACH:-10}"
need wrk wrk
need pgbench postgresql-contrib

on_exit "\"$stack\" down >/dev/null 2>&1"
"$stack" up >/dev/null
script="$(mktemp)"
on_exit "rm -f '$script'"
{
  echo '\set id random(1, 5)'
  echo '\set v random(1, 10000)'
  # shellcheck disable=SC2016 # literal $N placeholders of the SQL, not shell variables
  sed -e 's/\$1::int4/:id/g' -e 's/\$1/:id/g' -e 's/\$2::int8/:v/g' -e 's/\$3::int4/:v/g' \
      -e "s/\$4::text/'c'/g" -e "s/\$5::text/'bench'/g" -e '/^--/d' "$repo/sql/postgres/apply.sql" | tr '\n' ' '
  echo ';'
} > "$script"

cpu() { stack_cpu "$1"; }

db0=$(cpu db)
pgout=$(pgbench -n -M prepared -f "$script" -c "${PG_CLIENTS:-4}" -j 1 -T "$secs" \
  -h "$(stack_env STACK_PG_HOST)" -p "$(stack_env STACK_PG_PORT_DB)" -U postgres rinha 2>&1)
db1=$(cpu db)
pg_tx=$(awk '/number of transactions actually processed/ { print $NF }' <<<"$pgout" | cut -d/ -f1)
pg_tps=$(awk '/^tps/ { print $3; exit }' <<<"$pgout")

read -r db2 a12 a22 lb2 <<<"$(cpu db) $(cpu api1) $(cpu api2) $(cpu lb)"
wrkout=$(wrk -t1 -c "${WRK_CONNECTIONS:-32}" -d "${secs}s" -s "$here/credit.lua" "http://127.0.0.1:$PORT")
read -r db3 a13 a23 lb3 <<<"$(cpu db) $(cpu api1) $(cpu api2) $(cpu lb)"
wrk_stats "$wrkout"

api_a=$(awk -v a="$a12" -v b="$a22" 'BEGIN { print a + b }')
api_b=$(awk -v a="$a13" -v b="$a23" 'BEGIN { print a + b }')
machine "${secs}s each"
cat <<TABLE
| path | throughput | PostgreSQL CPU/tx | crebito CPU/req (2 inst.) | nginx CPU/req |
|---|---|---|---|---|
| pgbench, prepared apply.sql, ${PG_CLIENTS:-4} conns | ${pg_tps%.*} tx/s | $(usec_per "$db0" "$db1" "$pg_tx") µs | – | – |
| wrk → nginx → crebito → PostgreSQL, ${WRK_CONNECTIONS:-32} conns | $rps req/s | $(usec_per "$db2" "$db3" "$reqs") µs | $(usec_per "$api_a" "$api_b" "$reqs") µs | $(usec_per "$lb2" "$lb3" "$reqs") µs |
TABLE
[ -z "$non2xx" ] || echo "warning: $non2xx non-2xx responses"
