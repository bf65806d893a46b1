#!/usr/bin/env bash
# crebito's own hyper connection loop versus axum, same domain and SQLite ledger, both on a
# single-threaded runtime, each against a fresh database.
#
#   bench/http-layer.sh        (SECONDS_EACH=10, ROUNDS=3)
#
# wrk (1 thread, 32 keep-alive connections) sends credits (bench/credit.lua), then statements;
# prints requests/s and the server's CPU per request (from /proc/PID/stat); compare medians.
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need wrk wrk
(cd "$repo" && cargo build --release --locked -q)
(cd "$here/axum-baseline" && cargo build --release -q)
work=$(mktemp -d)
pid=""
stop_server() { [ -z "$pid" ] || kill "$pid" 2>/dev/null; }
on_exit stop_server
on_exit "rm -rf '$work'"

measure() { # label, then the server command
  local label=$1; shift
  rm -f "$work"/db*
  "$@" 2>/dev/null &
  pid=$!
  wait_http http://127.0.0.1:19950/clientes/1/extrato
  measure_server "$label" "$pid" 19950
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
}

machine "${SECONDS_EACH:-10}s each"
echo "| server | requests | req/s | server CPU/req |"
echo "|---|---|---|---|"
for _ in $(seq "${ROUNDS:-3}"); do
  measure "crebito (hyper)" "$repo/target/release/crebito" serve --threads 1 --listen 127.0.0.1:19950 --database-url "sqlite://$work/db"
  measure "axum 0.8" "$here/axum-baseline/target/release/axum-baseline" 127.0.0.1:19950 "$work/db"
done
