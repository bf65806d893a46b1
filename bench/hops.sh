#!/usr/bin/env bash
# Where the tail comes from, per hop: the native contest stack (limits on) in trace mode
# (STACK_TRACE=1), the fast loader at each SCALE, then side by side
#   client    the loader's latency (from each request's scheduled arrival)
#   nginx     $request_time (client-facing) and $upstream_response_time (nginx -> crebito)
#   crebito   its request time and its time waiting for the store (histograms, /metrics)
#   postgres  statement execution time (pg_stat_statements: mean and max)
# plus each service's CPU throttling (periods throttled / periods).
#
#   bench/hops.sh [SCALE …]        (default 1 6 12; DURATION_SCALE=0.25, PORT=19990)
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
export PORT="${PORT:-19990}" STACK_TRACE=1
dscale="${DURATION_SCALE:-0.25}"
[ $# -gt 0 ] || set -- 1 6 12
loader="${LOADER_BIN:-$repo/target/release/crebito-loader}"
build_release
work=$(mktemp -d)
on_exit "\"$stack\" down >/dev/null 2>&1"
on_exit "rm -rf '$work'"

machine "DURATION_SCALE $dscale"
for scale in "$@"; do
  "$stack" up >/dev/null
  "$loader" --target "127.0.0.1:$PORT" --scale "$scale" --duration-scale "$dscale" --out "$work/loader.json" >/dev/null
  sleep 1.5 # nginx flushes its log every second
  for i in 1 2; do curl -s "$(stack_env STACK_OPS_URL)/metrics/api$i" > "$work/metrics-api$i.txt"; done
  "$stack" psql -Atq -c "COPY (SELECT query, calls, mean_exec_time, max_exec_time, stddev_exec_time
      FROM pg_stat_statements WHERE query ~* 'update clientes|from clientes c' ORDER BY calls DESC) TO STDOUT WITH CSV" > "$work/pgss.csv"
  "$stack" status --json > "$work/status.json"
  cp "$(stack_env STACK_LOG_DIR)/access.log" "$work/access.log"
  "$stack" down >/dev/null
  python3 "$repo/stress/report.py" hops --scale "$scale" --loader "$work/loader.json" --access "$work/access.log" \
    --metrics "$work/metrics-api1.txt" "$work/metrics-api2.txt" --pgss "$work/pgss.csv" --status "$work/status.json"
done
